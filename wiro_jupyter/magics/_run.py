"""`%%wiro run` (and `%wiro run`, a cell without a body): plan, start, wait, finish.

Every step is a Python call: the plan reads the line and body into `Wiro().model(slug)` and
parameters, the start is `Wiro().run(slug, params, wait=False)`, the wait `task.wait_async()` (an
awaited cell, see `_transform`: the kernel keeps handling the status bar's Cancel) or `task.wait()`
(a blocking cell, where Ctrl-C stops the task), and the finish saves and shows the outputs.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, kwds, magic_arguments

from .._exceptions import TaskCancelledError, TaskFailedError, WiroTimeoutError
from ._account import require_client
from ._complete import remember_model
from ._display import Bundle, TaskDisplay, provenance, report_saved
from ._parse import (
    assignments,
    convert_value,
    interpolate,
    model_slug,
    output_name,
    parse_body,
    parse_words,
    seconds,
    split_words,
    usage,
)
from ._transform import publish_result

if TYPE_CHECKING:
    from pathlib import Path

    from IPython.core.interactiveshell import InteractiveShell

    from .._client import Wiro
    from .._models import Model
    from .._task import Task
    from ..widgets._form import RunForm

__all__ = ["RunRequest", "model_values", "open_form", "parse_run", "run_cell_async", "run_cell_blocking", "run_line"]


@dataclass
class RunRequest:
    """A parsed `run` line."""

    slug: str
    params: dict[str, str] = field(default_factory=dict)  # raw `name=value` strings, in order
    output: str | None = None
    no_wait: bool = False
    form: bool = False
    reuse: bool = False
    save: str | None = None
    timeout: float | None = None


@magic_arguments("%wiro run")
@kwds(usage="%(prog)s OWNER/MODEL [name=value ...] [-o VAR] [--no-wait] [--form] [--reuse] [--save DIR] [--timeout S]")
@argument("slug", nargs="?", metavar="OWNER/MODEL", help="the model, e.g. wiro/text-to-image")
@argument("assignments", nargs="*", metavar="name=value", help="parameters, converted to their type (they win over the body)")
@argument(
    "-o", "--output", metavar="VAR", type=output_name, help="store the Task in VAR (the cell's result is the Task too: _, Out[N])"
)
@argument("--no-wait", action="store_true", help="return at once; the task stays live and its status bar keeps updating")
@argument("--form", action="store_true", help="show the model's form prefilled with these values instead of running")
@argument("--reuse", action="store_true", help="reuse an identical finished task from the journal instead of paying again")
@argument("--save", metavar="DIR", help="save the output files into DIR")
@argument("--timeout", metavar="S", type=seconds, help="stop waiting after S seconds (the task keeps running; %%wiro recover ID)")
def run_line(shell: InteractiveShell, args: argparse.Namespace) -> None:
    """Run a model. A %%wiro run cell's body is the prompt (or a JSON object of parameters);
    %wiro run is the same on one line, without a body, and waits in place."""
    publish_result(shell, run_cell_blocking(shell, args.rest, None))


def parse_run(line: str, *, namespace: dict[str, Any] | None = None) -> RunRequest:
    """Parse the part of the magic line after `run` (`{name}` in words interpolated from `namespace`)."""
    args = parse_words(run_line, split_words(line, namespace))
    words = [] if args.slug is None else [args.slug, *args.assignments]
    if not words or "=" in words[0]:
        raise UsageError(f"the model is missing (OWNER/MODEL, e.g. wiro/text-to-image)\n{usage(run_line)}")
    return RunRequest(
        slug=model_slug(words[0]),
        params=assignments(words[1:], usage(run_line)),
        output=args.output,
        no_wait=args.no_wait,
        form=args.form,
        reuse=args.reuse,
        save=args.save,
        timeout=args.timeout,
    )


def model_values(model: Model, raw: dict[str, str]) -> dict[str, Any]:
    """`name=value` strings → the values given to the Python API, by the type of each of the model's parameters."""
    by_id = {p.id: p for p in model.parameters}
    return {name: convert_value(value, by_id.get(name)) for name, value in raw.items()}


@dataclass
class _Plan:
    request: RunRequest
    model: Model
    params: dict[str, Any]
    client: Wiro


def _plan(shell: InteractiveShell, line: str, body: str | None) -> _Plan:
    request = parse_run(line, namespace=shell.user_ns)
    json_params, text = parse_body(body)
    if request.no_wait and (request.save or request.timeout):
        raise UsageError("--no-wait returns before there are outputs: drop --save/--timeout, or call task.save(DIR) later.")
    if request.form and (request.no_wait or request.save or request.timeout or request.reuse):
        raise UsageError("--form only shows the form; it does not run, wait or save.")
    client = require_client()
    model = client.model(request.slug)
    remember_model(model)
    params: dict[str, Any] = dict(json_params or {})
    if text is not None:
        main = model.main_text_parameter
        if main is None:
            raise UsageError(
                f"{model.slug} has no text parameter for a plain-text body; set its parameters with "
                f"name=value on the line or a JSON object body (%wiro info {model.slug} lists them)."
            )
        params[main.id] = interpolate(text, shell.user_ns)
    params.update(model_values(model, request.params))
    return _Plan(request, model, params, client)


def open_form(
    shell: InteractiveShell, model: Model, params: dict[str, Any], client: Wiro, *, output: str | None, show: bool
) -> RunForm:
    """`--form` / `%wiro form`: the generated form, prefilled, with the values checked as a run would check them."""
    from IPython.display import display

    from .._params import coerce_values
    from ..widgets import form

    values = coerce_values(model, params)
    widget = form(model.slug, client=client, **values)
    if output:
        shell.user_ns[output] = widget
    if show:
        display(widget, metadata=provenance(model=model.slug, parameters=values))
    return widget


class _Waiting:
    """A started task that the cell waits for, and what its end shows."""

    def __init__(self, shell: InteractiveShell, plan: _Plan) -> None:
        self.request = plan.request
        # reuse=None (not --reuse) leaves it to the session's default (`%wiro config reuse=on|off`).
        self.task = plan.client.run(plan.model.slug, plan.params, wait=False, reuse=plan.request.reuse or None)
        if plan.request.output:
            shell.user_ns[plan.request.output] = self.task
        self.display = TaskDisplay(self.task, live=getattr(shell, "kernel", None) is not None)
        self.final: Bundle | None = None
        self.saved: list[Path] | None = None

    def detach(self) -> Task:
        """Leave the task running: its display still gets the final state (or a note says how to wait)."""
        if self.display.handle is not None:
            self.display.show_when_done()
        else:
            name = self.request.output or "_"
            print(
                f"Task {self.task.id} ({self.task.model}) runs in the background. {name}.wait() waits for it; "
                f"then display {name} for its outputs."
            )
        return self.task

    async def wait_async(self) -> Task:
        """Wait on the kernel's loop (an awaited cell); the task's own wait wakes the loop, so an interrupt lands at once."""
        error: BaseException | None = None
        try:
            await self.task.wait_async(self.request.timeout)
        except (WiroTimeoutError, TaskFailedError, asyncio.CancelledError) as exc:
            error = exc
        await asyncio.to_thread(self._finish, error)
        return self._end(error)

    def wait(self) -> Task:
        """Wait in this thread (a blocking cell); Ctrl-C stops the task on the server."""
        error: BaseException | None = None
        try:
            self.task.wait(self.request.timeout)
        except (WiroTimeoutError, TaskFailedError, KeyboardInterrupt) as exc:
            error = exc
        self._finish(error)
        return self._end(error)

    def _finish(self, error: BaseException | None) -> None:
        """Save (if asked) and compute the final display. Blocking (downloads): off the kernel's loop."""
        if isinstance(error, WiroTimeoutError):
            return  # the task runs on; nothing is final yet
        failed = error is not None
        if self.request.save and not failed:
            self.saved = self.task.save(self.request.save)
        self.final = self.display.final(failed=failed)

    def _end(self, error: BaseException | None) -> Task:
        """Show the outcome; return the task or raise the cell's error (in one line, no traceback)."""
        if isinstance(error, WiroTimeoutError):
            self.detach()
            raise error
        if self.saved is not None and self.request.save:
            report_saved(self.saved, self.request.save)
        if self.final is not None:
            self.display.show(self.final)
        if isinstance(error, (asyncio.CancelledError, KeyboardInterrupt)):
            raise _interrupted(self.task) from None
        if error is not None:
            raise error
        return self.task


def _start(shell: InteractiveShell, line: str, body: str | None) -> _Waiting | Task | RunForm:
    """What the cell waits for; or its value at once: the form (--form), a task left running (--no-wait)."""
    plan = _plan(shell, line, body)
    if plan.request.form:
        return open_form(shell, plan.model, plan.params, plan.client, output=plan.request.output, show=True)
    waiting = _Waiting(shell, plan)
    return waiting.detach() if plan.request.no_wait else waiting


def _interrupted(task: Task) -> TaskCancelledError:
    if task.status == "task_cancel":
        message = f"The cell was interrupted; task {task.id} ({task.model}) was stopped on the server."
    else:
        message = f"The cell was interrupted; task {task.id} ({task.model}) is {task.status} (see the note above)."
    return TaskCancelledError(message, task=task, hint="")


async def run_cell_async(shell: InteractiveShell, line: str, body: str) -> Task | RunForm:
    """The awaited `%%wiro run` cell (see `_transform`): the kernel stays free while the task runs."""
    started = _start(shell, line, body)
    return await started.wait_async() if isinstance(started, _Waiting) else started


def run_cell_blocking(shell: InteractiveShell, line: str, body: str | None) -> Task | RunForm:
    """`%%wiro run` where the cell cannot be awaited, and `%wiro run`: waits in this thread (Ctrl-C stops the task)."""
    started = _start(shell, line, body)
    return started.wait() if isinstance(started, _Waiting) else started
