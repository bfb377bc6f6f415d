"""`%%wchat` (cell): chat with a Wiro LLM or a Dify-compatible (Wbot) app; a thin parser over the Python API.

Every feature is a Python call: the conversation is `wiro_jupyter.chat_session(name, model=..., wbot=...,
new=...)` (`_sessions`), the turn is `chat.send(text)` (a `Chat` or `WbotChat`), and the cell shows the
turn in a `ChatView` (`widgets._chat`) driven by the turn's events. See `HELP` (shown by `%%wchat?`).

Two ways to wait, as for `%%wiro` (see `_transform`): in a kernel the cell is awaited, so the
widget's Stop button is handled while the answer streams; elsewhere it blocks, and Ctrl-C stops
generation. Either way an interrupt stops the answer on the server and fails the cell with one line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class, no_var_expand

from ._parse import interpolate, split_words
from ._transform import CellInterrupted, publish_result, register_async_cell, unregister_async_cell, wait_interruptibly

HELP = """Chat with a Wiro LLM or a Dify-compatible (Wbot) chat app. The cell body is your message.

%%wchat [OWNER/MODEL] [--wbot] [--new] [--session NAME] [-o VAR]
    Consecutive %%wchat cells of a notebook continue one conversation: the Wiro model gets the
    same session_id (so it remembers), the Wbot app the same conversation_id, until --new.
      OWNER/MODEL     a Wiro LLM (default: the one chosen last in this notebook, else wiro/chat-llm,
                      or WIRO_CHAT_MODEL); choosing another model starts a new conversation (a note
                      says so). The model, or the backend, once chosen is remembered for the notebook.
      --wbot          the Dify-compatible chat app of WBOT_API_KEY, at WBOT_API_URL (default: Wbot)
      --new           start a new conversation
      --session NAME  keep several named conversations side by side (default: "default")
      -o VAR          store the reply (a ChatMessage) in VAR; the cell's value (_, Out[N]) is the reply too
    The body is sent as written, except that {name}, {obj.attr}, {d['key']}, {In[3]} and {Out[3]}
    are replaced by Python values (unknown names stay as written; {{ and }} are literal braces).

    The cell shows the new turn: your message, then the answer streaming in (its Markdown rendered), the model's
    thinking and an agent's tool steps folded away, images and files inline, usage and latency under
    it. Its Stop button stops generation (the cell then ends with the partial answer); interrupting
    the kernel stops it too (and fails the cell). Provenance (backend, model, session/conversation
    id, task or message id, elapsed time, cost/usage) is in the output's metadata["wiro"].
    A saved notebook shows each turn without a kernel. Answers are untrusted: what they contain shows as
    text, links or inline data, never runs; images of an answer's Markdown stay links unless
    WIRO_JUPYTER_REMOTE_IMAGES=1.

Examples:
    %load_ext wiro_jupyter
    %%wchat wiro/chat-llm
    What is a lighthouse?

    %%wchat
    And how tall is the tallest one?        <- the same conversation

    %%wchat --wbot --session support -o reply
    Hello {name}!

The same in Python: chat = wiro_jupyter.chat_session(); chat.send("..."); chat.widget() shows the
whole conversation with an input box.
"""

USAGE = "%%wchat [OWNER/MODEL] [--wbot] [--new] [--session NAME] [-o VAR]"
FILES_TIMEOUT = 30.0  # seconds the end of a turn waits for its files to be fetched for display


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (message + usage) instead of printing and exiting."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{message}\nusage: {USAGE}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise UsageError(message or f"usage: {USAGE}")


def _parser() -> _Parser:
    parser = _Parser(prog="%%wchat", usage=USAGE, add_help=False, allow_abbrev=False)
    parser.add_argument("model", nargs="?", metavar="OWNER/MODEL")
    parser.add_argument("--wbot", action="store_true")
    parser.add_argument("--new", action="store_true")
    parser.add_argument("--session", metavar="NAME", default="default")
    parser.add_argument("-o", "--output", metavar="VAR")
    return parser


@dataclass
class WchatRequest:
    """A parsed `%%wchat` line."""

    model: str | None = None
    wbot: bool = False
    new: bool = False
    session: str = "default"
    output: str | None = None


def parse_wchat(line: str, namespace: dict[str, Any] | None = None) -> WchatRequest:
    """Parse the magic line (`{name}` in words interpolated from `namespace`). Raises UsageError."""
    words = split_words(line, namespace)
    if any(w in ("-h", "--help") for w in words):
        raise UsageError(HELP)
    args = _parser().parse_args(words)
    model = args.model
    if model is not None and (model.count("/") != 1 or model.startswith("/") or model.endswith("/")):
        raise UsageError(f"{model!r} is not a model: write OWNER/MODEL, e.g. wiro/chat-llm\nusage: {USAGE}")
    if model and args.wbot:
        raise UsageError(
            f"--wbot chats with the app of WBOT_API_KEY; it takes no model. Drop {model!r} or drop --wbot.\nusage: {USAGE}"
        )
    output = args.output
    if output is not None and (not output.isidentifier() or output in ("True", "False", "None")):
        raise UsageError(f"-o needs a Python variable name; {output!r} is not one.")
    session = str(args.session).strip()
    if not session:
        raise UsageError(f"--session needs a name.\nusage: {USAGE}")
    return WchatRequest(model=model, wbot=bool(args.wbot), new=bool(args.new), session=session, output=output)


# --------------------------------------------------------------------------------------
# provenance and display


def provenance(session: Any, message: Any = None, *, error: str = "") -> dict[str, Any]:
    """`{"wiro": {...}}` for the output's metadata: what produced this turn. Never a secret."""
    from .._exceptions import redact

    info: dict[str, Any] = {"chat": session.backend, "session": session.name}
    if session.backend == "wiro":
        info["model"] = session.model
        info["session_id"] = str(session.chat.session_id)
    else:
        info["model"] = (message.model if message is not None else "") or "wbot"
        info["base_url"] = session.chat.base_url
        info["conversation_id"] = session.chat.conversation_id
    if message is not None:
        meta = message.metadata or {}
        if message.task_id:
            info["task_id"] = message.task_id
        if message.message_id:
            info["message_id"] = message.message_id
        if message.conversation_id:
            info["conversation_id"] = message.conversation_id
        if message.latency_s:
            info["latency_s"] = round(float(message.latency_s), 3)
        if meta.get("elapsed_s") is not None:
            info["elapsed_s"] = meta["elapsed_s"]
        if meta.get("cost") is not None:
            info["cost"] = meta["cost"]
        if message.usage:
            info["usage"] = dict(message.usage)
        if meta.get("stopped"):
            info["stopped"] = True
    if error:
        info["error"] = error
    # JSON-safe, and every registered secret masked whatever field it hid in.
    return {"wiro": json.loads(redact(json.dumps(info, default=str)))}


def _split(result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    if isinstance(result, tuple):
        return dict(result[0] or {}), dict(result[1] or {})
    return dict(result or {}), {}


class _Turn:
    """The display of one `%%wchat` turn in its cell.

    With a widget front end: a `ChatView` of this turn only (no input box; its Stop button
    works while an awaited cell waits), displayed with a display id; when the turn ends the
    same display gets the final bundle (widget view + sanitized HTML/text transcript, with the
    turn's files once the kernel fetched them) and the final provenance, so a saved notebook shows
    the answer. Without widgets (terminal IPython, a plain shell): the finished reply is displayed
    once at the end (`_render.chat_message_bundle`).
    """

    def __init__(self, session: Any, text: str) -> None:
        from IPython.display import display

        from ..widgets import has_widget_frontend

        self.session = session
        self.text = text
        self.view: Any = None
        self.record: Any = None
        self.handle: Any = None
        if has_widget_frontend():
            from ..widgets._chat import ChatView

            self.view = ChatView(session.chat, messages=[], follow=False, show_input=False)
            self.record = self.view.begin(text)
            data, metadata = _split(self.view._repr_mimebundle_())
            self.handle = display(data, raw=True, metadata={**metadata, **provenance(session)}, display_id=True)

    def feed(self, event: Any) -> None:
        if self.view is not None:
            self.view.feed(event)

    def done(self, message: Any) -> None:
        from IPython.display import display

        if self.view is None:
            data, metadata = _split(message._repr_mimebundle_())
            display(data, raw=True, metadata={**metadata, **provenance(self.session, message)})
            return
        self.view.complete(message)
        self.view.wait_files(FILES_TIMEOUT)  # the saved copy shows them inline, not as links
        self._update(provenance(self.session, message))

    def failed(self, exc: BaseException, *, interrupted: bool = False) -> None:
        partial = getattr(exc, "partial_message", None)
        if self.view is None:
            return  # the cell's error says it all
        self.view.fail(exc, record=self.record, state="stopped" if interrupted else "error")
        self._update(provenance(self.session, partial, error=str(exc) or type(exc).__name__))

    def _update(self, metadata: dict[str, Any]) -> None:
        data, widget_metadata = _split(self.view._repr_mimebundle_())
        with contextlib.suppress(Exception):  # the live widget already shows the outcome
            self.handle.update(data, raw=True, metadata={**widget_metadata, **metadata})


# --------------------------------------------------------------------------------------
# the cell: plan, send (awaited or blocking), finish


@dataclass
class _Plan:
    request: WchatRequest
    session: Any  # ChatSession
    text: str


def _plan(shell: Any, line: str, body: str | None) -> _Plan:
    import sys

    from ..chat._sessions import open_session

    request = parse_wchat(line, shell.user_ns)
    text = interpolate(body or "", shell.user_ns).strip("\n")
    if not text.strip():
        raise UsageError(f"The cell body is the message to send, and it is empty.\nusage: {USAGE}\n(body: your message)")
    session, note = open_session(request.session, model=request.model, wbot=request.wbot, new=request.new)
    if note:
        sys.stderr.write(note + "\n")
    return _Plan(request, session, text)


def _finish(shell: Any, plan: _Plan, message: Any) -> Any:
    if plan.request.output:
        shell.user_ns[plan.request.output] = message
    return message


def _interrupted(plan: _Plan) -> CellInterrupted:
    return CellInterrupted(
        f"the %%wchat cell was interrupted; generation was stopped ({plan.session.label}). The part that arrived is shown above."
    )


async def run_cell_async(shell: Any, line: str, body: str) -> Any:
    """The awaited `%%wchat` cell (see _transform): the kernel stays free (Stop works) while the answer streams."""
    from .. import _loop
    from .._exceptions import WiroError

    plan = _plan(shell, line, body)
    turn = _Turn(plan.session, plan.text)
    chat = plan.session.chat
    # The turn runs on the package's loop (where the chat's client lives); this cell only waits for it.
    future = _loop.submit(chat.aio.send(plan.text, on_event=turn.feed))
    waiting = asyncio.wrap_future(future)
    try:
        message = await wait_interruptibly(asyncio.shield(waiting))
    except asyncio.CancelledError:
        # Kernel interrupt: stop the answer on the server, keep what arrived, fail the cell in one line.
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(_loop.submit(chat.aio.stop()))
        try:
            partial = await asyncio.wait_for(asyncio.shield(waiting), 30)
        except BaseException as exc:
            turn.failed(exc, interrupted=True)
        else:
            turn.failed(_Partial(partial), interrupted=True)
        raise _interrupted(plan) from None
    except WiroError as exc:
        turn.failed(exc)
        raise
    turn.done(message)
    return _finish(shell, plan, message)


def run_cell_blocking(shell: Any, line: str, body: str | None) -> Any:
    """`%%wchat` where the cell cannot be awaited: waits in this thread (Ctrl-C stops generation)."""
    from .._exceptions import WiroError

    plan = _plan(shell, line, body)
    turn = _Turn(plan.session, plan.text)
    try:
        message = plan.session.chat.send(plan.text, on_event=turn.feed)
    except KeyboardInterrupt as exc:
        turn.failed(exc, interrupted=True)
        raise _interrupted(plan) from None
    except WiroError as exc:
        turn.failed(exc)
        raise
    turn.done(message)
    return _finish(shell, plan, message)


class _Partial(Exception):
    """What an interrupted turn had when it stopped (carries it like a failed turn's exception does)."""

    def __init__(self, message: Any) -> None:
        super().__init__("interrupted: generation was stopped")
        self.partial_message = message


# --------------------------------------------------------------------------------------
# the magic, completion, load / unload


@magics_class
class WchatMagics(Magics):
    @no_var_expand
    @cell_magic
    def wchat(self, line: str, cell: str) -> None:
        publish_result(self.shell, run_cell_blocking(self.shell, line, cell))

    wchat.__doc__ = HELP


_OPTIONS = ["--wbot", "--new", "--session", "-o"]


def complete(shell: Any, event: Any) -> list[str]:
    """Custom completer for `%%wchat`: options and the model slugs seen so far."""
    text = event.text_until_cursor or event.line or ""
    words = text.split()
    if text[-1:].isspace():
        words.append("")
    if len(words) >= 2 and words[-2] in ("--session", "-o"):
        if words[-2] == "--session":
            from ..chat._sessions import sessions

            return sorted(sessions())
        return []
    try:
        from ._wiro import KNOWN_SLUGS

        slugs = sorted(KNOWN_SLUGS)
    except ImportError:  # pragma: no cover - the %wiro plug-in is part of the package
        slugs = []
    return [*_OPTIONS, *slugs]


def load(shell: Any) -> None:
    shell.register_magics(WchatMagics)
    register_async_cell("wchat", run_cell_async)
    _unload_completer(shell)
    shell.set_hook("complete_command", complete, str_key="%%wchat")


def _unload_completer(shell: Any) -> None:
    dispatch = getattr(getattr(shell, "Completer", None), "custom_completers", None)
    if dispatch is not None:
        dispatch.strs.pop("%%wchat", None)


def unload(shell: Any) -> None:
    unregister_async_cell("wchat")
    _unload_completer(shell)
    manager = shell.magics_manager
    manager.magics["cell"].pop("wchat", None)
    manager.registry.pop("WchatMagics", None)
