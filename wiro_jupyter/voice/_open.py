"""`open_voice`: the widget of a new voice session with the default client; what `%wiro voice` shows.

Its own module, imported by nobody in the package: it needs the client module (`default_client`), which
itself hands out voice sessions, and the widget module must not depend on the client (the arrows of the
import graph point one way: widgets -> voice -> client).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._client import default_client

if TYPE_CHECKING:
    from ..widgets._voice import VoiceView


def open_voice(slug: str, params: dict[str, Any]) -> VoiceView:
    """The widget of a new voice session with `slug` (not started: its Start button starts it).

    The model is looked up now, so a wrong slug fails in the cell; its parameters are checked
    when the session starts.
    """
    return default_client().voice(slug, **params).widget()
