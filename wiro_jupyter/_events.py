"""What happens to a task, as typed events: one `TaskEvent` per socket frame or Task/Detail read,
and the stages a task goes through (docs/protocol.md, Wiro §8).

Every consumer of a task (the status bar, the chat widget, the journal, a voice session, a
terminal progress line, a user's `on_event`) listens to one stream of these.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ._fields import to_number


@dataclass
class TaskEvent:
    """One thing that happened to a task, as it arrived (socket frame or poll).

    `kind` is the server's status name (`task_start`, `task_output`, …) or one
    of our own: `poll` (state read by Task/Detail), `socket_lost`, `done`.
    `answer_delta` / `thinking_delta` carry only the new LLM text of a
    cumulative snapshot; `answer` / `thinking` the running full text.
    """

    kind: str
    message: Any = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    time: float = field(default_factory=time.time)
    answer_delta: str = ""
    thinking_delta: str = ""
    answer: str = ""
    thinking: str = ""
    progress: dict[str, Any] | None = None
    audio: bytes | None = field(default=None, repr=False)

    @property
    def percentage(self) -> float | None:
        if self.progress and self.progress.get("percentage") is not None:
            number = to_number(self.progress.get("percentage"))
            return float(number) if number is not None else None
        return None

    @property
    def line(self) -> str:
        """A one-line text for logs and terminals."""
        if self.answer_delta or self.thinking_delta:
            return self.answer_delta or self.thinking_delta
        if self.progress:
            return f"{self.progress.get('task', 'progress')} {self.progress.get('percentage', '?')}%"
        if isinstance(self.message, str):
            return self.message
        return ""


# Status names fixed by the docs (the emulator shares only these constants).
STAGES = (
    "task_queue",
    "task_accept",
    "task_assign",
    "task_preprocess_start",
    "task_preprocess_end",
    "task_start",
    "task_output",
    "task_end",
    "task_postprocess_start",
    "task_postprocess_end",
)
TERMINAL = ("task_postprocess_end", "task_cancel")
