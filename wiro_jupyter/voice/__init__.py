"""Realtime voice: talk to a model from a script or the notebook (docs/protocol.md, Wiro §9).

    with wiro.voice("openai/gpt-realtime-mini", voice="marin") as session:
        session.send_audio("question.wav")          # any WAV, bytes or NumPy array: sent as 24 kHz mono
        reply = session.wait_reply(timeout=30)      # VoiceTurn: user_text, ai_text, audio, cost
    session.transcript, session.save_audio("conversation.wav"), session.task

`session.widget()` talks through the browser's microphone instead. One session is one task on
the client's shared task socket, so its events are the same `TaskEvent`s as every task's.
"""

from ._errors import VoiceConnectionLost, VoiceSessionEnded
from ._session import AsyncVoiceSession, VoiceTurn
from ._sync import VoiceSession

__all__ = ["AsyncVoiceSession", "VoiceConnectionLost", "VoiceSession", "VoiceSessionEnded", "VoiceTurn"]
