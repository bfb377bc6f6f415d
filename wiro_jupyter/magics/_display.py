"""What the magics show: provenance in an output's metadata, and the display of a task in its cell.

Every output a magic displays carries `metadata["wiro"]`, what produced it (`provenance`): for a task its
model, id, status, parameters, elapsed seconds and cost; for a chat turn its backend,
session and ids (`_wchat`). Never a secret: the metadata passes the redactor that knows them.
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from IPython.core.interactiveshell import InteractiveShell

    from .._task import AsyncTask, Task
    from ..widgets._view import TaskView

__all__ = ["TaskDisplay", "install", "provenance", "report_saved", "task_mimebundle", "uninstall"]

Bundle = tuple[dict[str, Any], dict[str, Any]]  # (data, metadata), as `display(data, raw=True, metadata=...)` takes them


def provenance(task: Task | AsyncTask | None = None, **facts: Any) -> dict[str, Any]:
    """`{"wiro": {...}}` for an output's metadata: what produced it.

    That is a task's model, task id, status, parameters (files as name + hash), elapsed seconds and cost,
    and the `facts` given (those that are None are left out). JSON-safe, and every registered secret
    masked whatever fact it hid in.
    """
    from .._exceptions import redact

    if task is not None:
        elapsed = task.elapsed if task.done else None
        facts = {
            "model": task.model,
            "task_id": task.id,
            "status": task.status,
            "parameters": task.parameters,
            "elapsed_s": round(float(elapsed), 3) if elapsed is not None else None,
            "cost": task.cost,
            **facts,
        }
    known = {name: value for name, value in facts.items() if value is not None}
    return {"wiro": json.loads(redact(json.dumps(known, default=str)))}


def task_mimebundle(task: Task | AsyncTask) -> Bundle:
    """IPython's formatter for tasks shown as values (`%wiro task`, `%wiro recover`, `task` in a cell)."""
    return task._repr_mimebundle_(), provenance(task)


_TASK_TYPE = "wiro_jupyter._task._TaskBase"


def install(shell: InteractiveShell) -> None:
    """Show every task value with its provenance."""
    if shell.display_formatter is not None:  # None only in a shell built without its display machinery
        shell.display_formatter.mimebundle_formatter.for_type_by_name(*_TASK_TYPE.rsplit(".", 1), task_mimebundle)


def uninstall(shell: InteractiveShell) -> None:
    if shell.display_formatter is not None:
        shell.display_formatter.mimebundle_formatter.pop(_TASK_TYPE, None)


def _status(task: Task, note: str = "") -> dict[str, Any]:
    from .._render import status_bundle, task_status_line

    return status_bundle(task_status_line(task) + (f" — {note}" if note else ""))


class TaskDisplay:
    """The display of one task in its cell.

    In a kernel it is live while the task runs: with a widget front end a `TaskView` (status bar with
    Cancel/Kill, outputs below), displayed from its mimebundle (widget view + static fallback) so that
    the display carries the provenance; without one, a status line. When the task has ended nothing is
    live any more, so the same display (by display id) gets the *static* bundle (HTML, PNG, text: no
    widget view) with the final provenance (elapsed time, cost). A saved notebook then shows the outputs
    everywhere: JupyterLab without a kernel (where a widget view whose model is gone shows "Error
    displaying widget: model not found"), nbconvert HTML (which picks the widget view over its
    fallback), GitHub, VS Code. Outside a kernel (terminal IPython) nothing shows until the outputs do.
    """

    def __init__(self, task: Task, *, live: bool) -> None:
        self.task = task
        self.view: TaskView | None = None
        self.handle: Any = None  # IPython's DisplayHandle of the live display
        if not live:
            return
        from IPython.display import display

        from ..widgets import TaskView, has_widget_frontend

        if has_widget_frontend():
            self.view = TaskView(task)
            data, metadata = self.view._repr_mimebundle_()
        else:
            data, metadata = _status(task, "running"), {}
        self.handle = display(data, raw=True, metadata={**metadata, **provenance(task)}, display_id=True)

    def final(self, *, failed: bool = False, timeout: float = 30.0) -> Bundle:
        """The final bundle. Blocks (outputs are downloaded, the view waited for): call it off the kernel's loop.

        A failed task shows its status line (its error is the cell's error).
        """
        if self.view is not None:
            self.view.wait(timeout)
            data = self.view.static_bundle()
        elif failed:
            data = _status(self.task)
        else:
            from .._render import task_bundle

            data = task_bundle(self.task)
        return data, provenance(self.task)

    def show(self, final: Bundle) -> None:
        """Replace the live display by `final` (outside a kernel: display it now)."""
        from IPython.display import display

        if self.handle is not None:
            self.handle.update(final[0], raw=True, metadata=final[1])
        else:
            display(final[0], raw=True, metadata=final[1])

    def show_when_done(self) -> None:
        """For a task left running (--no-wait, --timeout): give the display its final state from a thread."""
        threading.Thread(target=self._refresh_when_done, name="wiro-magic-final", daemon=True).start()

    def _refresh_when_done(self) -> None:
        # No parent header of our own: ipykernel then uses the cell running now, and headless
        # runners (nbclient) apply a display update only while they listen to that cell.
        # (JupyterLab routes updates by display id to the cell that made the display.)
        with contextlib.suppress(BaseException):
            self.task.wait()
        with contextlib.suppress(Exception):  # the live widget already shows the outcome; this is the saved copy
            self.show(self.final(failed=not self.task.ok, timeout=120.0))


def report_saved(paths: list[Path], directory: str) -> None:
    names = ", ".join(p.name for p in paths[:6]) + (" …" if len(paths) > 6 else "")
    print(
        f"Saved {len(paths)} file{'s' if len(paths) != 1 else ''} to {directory}: {names}"
        if paths
        else f"Nothing to save to {directory}: the task has no output files."
    )
