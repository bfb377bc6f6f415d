"""The batch progress widget in JupyterLab in Chromium: its Stop button stops a running batch while the
cell awaits it (nothing more is sent, the tasks in flight are killed on the server). The kernel starts
its own emulator (`wj.use_emulator()` in the notebook's first cell). Screenshots go to test-artifacts/."""

from __future__ import annotations

import time
from typing import Any

from .harness import JupyterLab, shot

SETUP = """\
import wiro_jupyter as wj
emu = wj.use_emulator(stage_delay=0.05, quiet=True)
wiro = wj.Wiro()"""

AWAITING_CELL = """\
import time
run = wiro.start_batch("wiro/slow", [f"browser {i}" for i in range(6)], concurrency=2, seconds=60)
result = await run.wait_async(90, progress=True)  # the cell waits here; the kernel still handles Stop
print("CELL1-END", *[i.status for i in result.items], repr(time.time()))"""

CHECK_CELL = """\
import time
statuses = [emu.tasks[i.task.id].status for i in result.items if i.task is not None]
print("CELL2", emu.stats.count("Run"), *statuses, repr(time.time()))"""

THUMBNAILS_CELL = """\
images = wiro.start_batch("wiro/text-to-image", ["a fox", "an owl", "a cat"], width=256, height=256)
display(images)  # the live view itself (not replaced at the end): its thumbnails are drawn by js/batch.js
await images.wait_async(60)
print("THUMBS-END", images.progress().ok)"""

def test_stop_button_stops_a_running_batch(lab: JupyterLab, browser_page: Any) -> None:
    page = browser_page
    start = time.monotonic()
    name = lab.open_notebook(page, [SETUP, AWAITING_CELL, CHECK_CELL], name="batch-stop.ipynb")
    lab.start_run_all(page, name)
    widget = lab.wait_for(page, ".wiro-batch[data-state='running']", timeout=60)
    lab.wait_for(page, ".wiro-batch .wiro-batch-counts:has-text('2 running'):has-text('4 waiting')", timeout=30)
    assert "wiro/slow · batch wiro/slow#" in widget.locator(".wiro-batch-title").inner_text()
    prompt = lab.cell(page, 1).locator(".jp-InputPrompt").inner_text()
    assert "*" in prompt, prompt  # the cell is still running: it awaits the batch
    shot(page, "batch-running", widget)

    stop = widget.locator("button.wiro-batch-stop")
    clicked = time.monotonic()
    stop.click()
    stopped = lab.wait_for(page, ".wiro-batch[data-state='stopped'], .wiro-batch-static[data-state='stopped']", timeout=30)
    took = time.monotonic() - clicked
    assert took < 10, f"Stop took {took:.1f} s"
    text = stopped.inner_text()
    assert "2 cancelled" in text and "4 skipped" in text, text
    lab.wait_for(page, ".jp-Cell:nth-child(3) .jp-OutputArea-output:has-text('CELL2')", timeout=30)
    lab.wait_for_idle(name)
    first = lab.output_text(page, 1).split("CELL1-END", 1)[1].split()
    second = lab.output_text(page, 2).split("CELL2", 1)[1].split()
    assert first[:6] == ["cancelled", "cancelled", "skipped", "skipped", "skipped", "skipped"]
    assert second[0] == "2"  # only the two first items were ever sent
    assert second[1:3] == ["task_cancel", "task_cancel"]  # killed on the emulator too
    assert float(second[3]) >= float(first[6])  # the next cell ran only after this one had ended
    # Once the batch ended, its display became the static copy of its final state (what a saved notebook shows).
    lab.wait_for(page, ".wiro-batch-static[data-state='stopped']", timeout=30)
    shot(page, "batch-stopped")
    assert time.monotonic() - start < 90


def test_thumbnails_arrive_in_the_live_view(lab: JupyterLab, browser_page: Any) -> None:
    page = browser_page
    lab.open_notebook(page, [SETUP, THUMBNAILS_CELL], name="batch-thumbnails.ipynb")
    lab.run_all(page)
    view = lab.wait_for(page, ".wiro-batch[data-state='done']", timeout=60)
    assert "3/3 done · 3 ok" in view.locator(".wiro-batch-counts").inner_text()
    thumbs = view.locator("img.wiro-batch-thumb")
    page.wait_for_function("(root) => root.querySelectorAll('img.wiro-batch-thumb').length === 3", arg=view.element_handle())
    for i in range(3):
        image = thumbs.nth(i)
        assert (image.get_attribute("src") or "").startswith("data:image/")
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=10_000)
    assert not view.locator("button.wiro-batch-stop").is_visible()  # nothing left to stop
    assert "THUMBS-END 3" in lab.output_text(page, 1)
    shot(page, "batch-thumbnails", view)
