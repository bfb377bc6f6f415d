"""How a realtime voice session can end without you ending it. Both keep what was said so far."""

from __future__ import annotations

from .._exceptions import WiroConnectionError, WiroError

KEPT = "What was said so far is kept: session.transcript, session.audio, session.save_audio(path)."


class VoiceConnectionLost(WiroConnectionError):
    """The task socket dropped during a realtime session; the server ends a session whose socket closes (Wiro §9)."""

    default_hint = f"Check the network, then open a new session to go on. {KEPT}"


class VoiceSessionEnded(WiroError):
    """The server ended a realtime session before the client did (an exhausted balance, a killed task, …)."""

    default_hint = (
        f"Top up your Wiro balance if it ran out (the task in your dashboard says more), then open a new session. {KEPT}"
    )
