"""`%%wchat` (cell): chat with a Wiro LLM or a Dify-compatible (Wbot) app; a thin parser over the Python API.

Every feature is a Python call: the conversation is `wiro_jupyter.chat_session(name, model=..., wbot=...,
new=...)` (`chat._sessions`), the turn is `session.chat.send(text)`, and the cell shows the turn in a
`ChatView` (`widgets._chat`) driven by the turn's events. Only the sessions' protocol is used
(`ChatSession.backend/label/conversation`, the `ChatBackend` of its chat), so both backends take one path.

Two ways to wait, as for `%%wiro` (see `_transform`): in a kernel the cell is awaited, so the
widget's Stop button is handled while the answer streams; elsewhere it blocks, and Ctrl-C stops
generation. Either way an interrupt stops the answer on the server and fails the cell with one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, kwds, magic_arguments

from ._display import provenance
from ._parse import interpolate, model_slug, output_name, parse_words, split_words, usage
from ._transform import CellInterrupted, publish_result, wait_interruptibly

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ..chat._messages import ChatEvent, ChatMessage
    from ..chat._sessions import ChatSession
    from ..widgets._chat import ChatView

__all__ = ["WchatMagics", "WchatRequest", "parse_wchat", "run_cell_async", "run_cell_blocking"]

DESCRIPTION = """Chat with a Wiro LLM or a Dify-compatible (Wbot) chat app. The cell body is your message.

Consecutive %%wchat cells of a notebook continue one conversation: the Wiro model gets the
same session_id (so it remembers), the Wbot app the same conversation_id, until --new.
The body is sent as written, except that {name}, {obj.attr}, {d['key']}, {In[3]} and {Out[3]}
are replaced by Python values (unknown names stay as written; {{ and }} are literal braces).

The cell shows the new turn: your message, then the answer streaming in (its Markdown rendered), the model's
thinking and an agent's tool steps folded away, images and files inline, usage and latency under
it. Its Stop button stops generation (the cell then ends with the partial answer); interrupting
the kernel stops it too (and fails the cell). Provenance (backend, model, session, conversation,
task or message id, elapsed time, cost/usage) is in the output's metadata["wiro"].
A saved notebook shows each turn without a kernel. Answers are untrusted: what they contain shows as
text, links or inline data, never runs; images of an answer's Markdown stay links unless
WIRO_JUPYTER_REMOTE_IMAGES=1.
"""

EXAMPLES = """Examples:
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

FILES_TIMEOUT = 30.0  # seconds the end of a turn waits for its files to be fetched for display


@magics_class
class WchatMagics(Magics):
    @magic_arguments("%wchat")
    @kwds(description=DESCRIPTION, epilog=EXAMPLES)
    @argument(
        "model",
        nargs="?",
        metavar="OWNER/MODEL",
        help="a Wiro LLM (default: the one chosen last in this notebook, else wiro/chat-llm, or WIRO_CHAT_MODEL); "
        "choosing another model starts a new conversation (a note says so)",
    )
    @argument("--wbot", action="store_true", help="the Dify-compatible chat app of WBOT_API_KEY, at WBOT_API_URL")
    @argument("--new", action="store_true", help="start a new conversation")
    @argument(
        "--session",
        metavar="NAME",
        default="default",
        help="keep several named conversations side by side (default: %(default)s)",
    )
    @argument("-o", "--output", metavar="VAR", type=output_name, help="store the reply (a ChatMessage) in VAR")
    @no_var_expand
    @cell_magic
    def wchat(self, line: str, cell: str) -> None:
        assert self.shell is not None  # IPython registers magics with their shell
        publish_result(self.shell, run_cell_blocking(self.shell, line, cell))


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
    magic = WchatMagics.wchat
    args = parse_words(magic, split_words(line, namespace))
    model = model_slug(args.model) if args.model is not None else None
    if model and args.wbot:
        raise UsageError(
            f"--wbot chats with the app of WBOT_API_KEY; it takes no model. Drop {model!r} or drop --wbot.\n{usage(magic)}"
        )
    session = str(args.session).strip()
    if not session:
        raise UsageError(f"--session needs a name.\n{usage(magic)}")
    return WchatRequest(model=model, wbot=args.wbot, new=args.new, session=session, output=args.output)


# --------------------------------------------------------------------------------------
# provenance and display


def _turn_facts(session: ChatSession, message: ChatMessage | None = None, *, error: str = "") -> dict[str, Any]:
    """What produced a turn: backend, session, model, conversation; once it ended, its ids, timing and cost."""
    facts: dict[str, Any] = {
        "chat": session.backend,
        "session": session.name,
        "model": (message.model if message is not None else "") or session.model or session.backend,
        "conversation": session.conversation,
        "error": error or None,
    }
    if message is not None:
        meta = message.metadata
        facts.update(
            task_id=message.task_id,
            message_id=message.message_id,
            conversation_id=message.conversation_id,
            session_id=message.session_id,
            latency_s=round(float(message.latency_s), 3) if message.latency_s else None,
            elapsed_s=meta.get("elapsed_s"),
            cost=meta.get("cost"),
            usage=dict(message.usage) or None,
            stopped=True if meta.get("stopped") else None,
        )
    return facts


class _Turn:
    """The display of one `%%wchat` turn in its cell.

    With a widget front end: a `ChatView` of this turn only (no input box; its Stop button
    works while an awaited cell waits), displayed with a display id; when the turn ends the
    same display gets the final bundle (widget view + sanitized HTML/text transcript, with the
    turn's files once the kernel fetched them) and the final provenance, so a saved notebook shows
    the answer. Without widgets (terminal IPython, a plain shell): the finished reply is displayed
    once at the end.
    """

    def __init__(self, session: ChatSession, text: str) -> None:
        from IPython.display import display

        from ..widgets import ChatView, has_widget_frontend

        self.session = session
        self.view: ChatView | None = None
        self.handle: Any = None  # IPython's DisplayHandle of the live display
        if has_widget_frontend():
            self.view = ChatView(session.chat, messages=[], follow=False, show_input=False)
            self.record = self.view.begin(text)
            data, metadata = self.view._repr_mimebundle_()
            self.handle = display(data, raw=True, metadata={**metadata, **provenance(**_turn_facts(session))}, display_id=True)

    def feed(self, event: ChatEvent) -> None:
        if self.view is not None:
            self.view.feed(event)

    def done(self, message: ChatMessage) -> None:
        from IPython.display import display

        if self.view is None:
            display(message._repr_mimebundle_(), raw=True, metadata=provenance(**_turn_facts(self.session, message)))
            return
        self.view.complete(message)
        self.view.wait_files(FILES_TIMEOUT)  # the saved copy shows them inline, not as links
        self._update(self.view, _turn_facts(self.session, message))

    def failed(self, exc: BaseException, *, partial: ChatMessage | None = None, interrupted: bool = False) -> None:
        if self.view is None:
            return  # the cell's error says it all
        partial = partial or getattr(exc, "partial_message", None)  # what a failed turn had, when it says
        self.view.fail(exc, record=self.record, state="stopped" if interrupted else "error", partial=partial)
        error = "interrupted: generation was stopped" if interrupted else (str(exc) or type(exc).__name__)
        self._update(self.view, _turn_facts(self.session, partial, error=error))

    def _update(self, view: ChatView, facts: dict[str, Any]) -> None:
        data, metadata = view._repr_mimebundle_()
        with contextlib.suppress(Exception):  # the live widget already shows the outcome
            self.handle.update(data, raw=True, metadata={**metadata, **provenance(**facts)})


# --------------------------------------------------------------------------------------
# the cell: plan, send (awaited or blocking), finish


@dataclass
class _Plan:
    request: WchatRequest
    session: ChatSession
    text: str


def _plan(shell: InteractiveShell, line: str, body: str | None) -> _Plan:
    from ..chat._sessions import open_session

    request = parse_wchat(line, shell.user_ns)
    text = interpolate(body or "", shell.user_ns).strip("\n")
    if not text.strip():
        raise UsageError(f"The cell body is the message to send, and it is empty.\n{usage(WchatMagics.wchat)}")
    session, note = open_session(request.session, model=request.model, wbot=request.wbot, new=request.new)
    if note:
        sys.stderr.write(note + "\n")
    return _Plan(request, session, text)


def _finish(shell: InteractiveShell, plan: _Plan, message: ChatMessage) -> ChatMessage:
    if plan.request.output:
        shell.user_ns[plan.request.output] = message
    return message


def _interrupted(plan: _Plan) -> CellInterrupted:
    return CellInterrupted(
        f"the %%wchat cell was interrupted; generation was stopped ({plan.session.label}). The part that arrived is shown above."
    )


async def run_cell_async(shell: InteractiveShell, line: str, body: str) -> ChatMessage:
    """The awaited `%%wchat` cell (see _transform): the kernel stays free (Stop works) while the answer streams."""
    from .._exceptions import WiroError

    plan = _plan(shell, line, body)
    turn = _Turn(plan.session, plan.text)
    chat = plan.session.chat
    # The chat's own send, in a worker thread (the chat runs on the package's loop; its send and stop may be
    # called from any thread); this cell only awaits it, waking its loop so that an interrupt lands at once.
    waiting = asyncio.ensure_future(asyncio.to_thread(chat.send, plan.text, on_event=turn.feed))
    try:
        message = await wait_interruptibly(asyncio.shield(waiting))
    except asyncio.CancelledError:
        # Kernel interrupt: stop the answer on the server, keep what arrived, fail the cell in one line.
        with contextlib.suppress(Exception):
            await asyncio.to_thread(chat.stop)
        try:
            partial = await asyncio.wait_for(asyncio.shield(waiting), 30)
        except BaseException as exc:
            turn.failed(exc, interrupted=True)
        else:
            turn.failed(KeyboardInterrupt(), partial=partial, interrupted=True)
        raise _interrupted(plan) from None
    except WiroError as exc:
        turn.failed(exc)
        raise
    turn.done(message)
    return _finish(shell, plan, message)


def run_cell_blocking(shell: InteractiveShell, line: str, body: str | None) -> ChatMessage:
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
