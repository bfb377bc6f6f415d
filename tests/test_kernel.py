"""The plain Python API inside a real ipykernel: blocking calls work while the
kernel's own loop runs, and "interrupt kernel" stops the paid task."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

import pytest
from kernels import Kernel


@pytest.fixture
def kernel(start_kernel: Callable[..., Kernel]) -> Kernel:
    return start_kernel(load_ext=False)  # the plain Python API, no magics


def collect(kc: Any, msg_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """iopub messages of one execution, until the kernel is idle again."""
    messages = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no idle status within {timeout} s; got {[m['msg_type'] for m in messages]}") from None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages


def test_blocking_run_inside_a_kernel(kernel: Kernel) -> None:
    _, kc = kernel
    msg_id = kc.execute("import wiro_jupyter as wj\nt = wj.Wiro().run('wiro/text-to-image', prompt='kernel')\nprint(t.ok)")
    out = collect(kc, msg_id)
    text = "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
    assert "True" in text, out


def test_interrupt_kernel_kills_the_running_task(kernel: Kernel, emulator: Any) -> None:
    km, kc = kernel
    msg_id = kc.execute("import wiro_jupyter as wj\nwj.Wiro().run('wiro/slow', prompt='interrupt', seconds=120)")
    # Wait until the emulator says the task runs (a bounded wait on the server's own state).
    deadline = time.monotonic() + 30
    running = None
    while running is None:
        assert time.monotonic() < deadline, "the task never started"
        running = next(
            (
                r
                for r in list(emulator.tasks.values())
                if r.parameters.get("prompt") == "interrupt" and r.started_at is not None and r.ended_at is None
            ),
            None,
        )
        time.sleep(0.02)
    km.interrupt_kernel()
    out = collect(kc, msg_id)
    stderr = "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
    errors = [m["content"]["ename"] for m in out if m["msg_type"] == "error"]
    assert errors == ["KeyboardInterrupt"]
    assert "killed on the server" in stderr
    assert emulator.wait_task(running.id, timeout=10).status == "task_cancel"
