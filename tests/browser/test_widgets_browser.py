"""The widgets in JupyterLab in Chromium: a generated form filled in and run, Cancel on a slow task,
and an LLM answer carrying HTML/script that must render as text. Each kernel starts its own emulator
(`wj.use_emulator()` in the notebook's first cell). Screenshots go to test-artifacts/."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .harness import JupyterLab, shot

REPO = Path(__file__).resolve().parents[2]

SETUP = """\
import wiro_jupyter as wj
from wiro_jupyter.widgets import TaskView, form
emu = wj.use_emulator(stage_delay=0.05, quiet=True)"""


# Record every stage the status bar shows (data-stage of .wiro-status), as it changes in the page.
RECORD_STAGES = """() => {
  window.__wiroStages = [];
  new MutationObserver((records) => {
    for (const r of records) {
      const stage = Number(r.target.dataset.stage);
      const seen = window.__wiroStages;
      if (r.target.classList.contains('wiro-status') && seen[seen.length - 1] !== stage) seen.push(stage);
    }
  }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ['data-stage']});
}"""


def test_generated_form_fill_in_and_run(lab: JupyterLab, browser_page: Any) -> None:
    page = browser_page
    start = time.monotonic()
    lab.open_notebook(page, [SETUP, 'f = form("wiro/kitchen-sink")\nf', "print(repr(f.values))"], name="widgets-form.ipynb")
    lab.run_all(page)
    form = lab.wait_for(page, ".wiro-form")
    # Every parameter type got its widget.
    for selector in (
        ".wiro-field-prompt textarea",
        ".wiro-field-title input[type=text]",
        ".wiro-field-mode select",
        ".wiro-field-scene select",
        ".wiro-field-count .noUi-handle",
        ".wiro-field-count .widget-readout[contenteditable=true]",  # the slider's number box
        ".wiro-field-amount input[type=number]",
        ".wiro-field-ratio .noUi-handle",
        ".wiro-field-enabled input[type=checkbox]",
        ".wiro-field-inputImage.widget-upload",  # the picker, under its URL box
        ".wiro-field-inputImage input[type=text]",
        ".wiro-field-gallery textarea",
        ".wiro-field-mixed.widget-upload",
    ):
        assert form.locator(selector).count() == 1, selector
    assert form.locator(".wiro-field-prompt .wiro-required").count() == 1

    form.locator(".wiro-field-prompt textarea").fill("A lighthouse at dusk")
    form.locator(".wiro-field-title input[type=text]").fill("Browser title")
    form.locator(".wiro-field-mode select").select_option(label="Quality")
    handle = form.locator(".wiro-field-count .noUi-handle")
    box = handle.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y, steps=8)
    page.mouse.up()
    readout = form.locator(".wiro-field-count .widget-readout")
    page.wait_for_function("(el) => el.textContent.trim() !== '3'", arg=readout.element_handle(), timeout=10_000)
    moved_to = int(readout.inner_text())
    assert moved_to > 3
    lab.run_cell(page, 2)  # the drag reached the kernel
    assert f"'count': {moved_to}" in lab.output_text(page, 2)
    # Typing into the readout sets the value too (Enter), clamped to the slider's bounds.
    typed = 2
    readout.click()
    readout.evaluate("(el) => window.getSelection().selectAllChildren(el)")  # the number typed replaces it
    page.keyboard.type(str(typed))
    page.keyboard.press("Enter")
    page.wait_for_function("(el) => el.textContent.trim() === '2'", arg=readout.element_handle(), timeout=10_000)
    lab.run_cell(page, 2)
    assert f"'count': {typed}" in lab.output_text(page, 2)
    form.locator(".wiro-code-toggle").click()
    lab.wait_for(page, ".wiro-code-cell")
    shot(page, "widgets-form-filled", form.locator(".wiro-field-count"))

    page.evaluate(RECORD_STAGES)
    form.locator("button.wiro-run").click()
    done = lab.wait_for(page, ".wiro-form .wiro-status[data-state='done']", timeout=40)
    steps = done.locator(".wiro-step")
    assert steps.count() == 10
    assert "reached" in (steps.last.get_attribute("class") or "")
    seen = page.evaluate("() => window.__wiroStages")
    assert seen == sorted(seen) and seen[-1] == 9, seen  # the bar stepped forward, live, to the last stage
    assert len(seen) >= 3, seen
    image = lab.wait_for(page, ".wiro-form .wiro-media img.wiro-image", timeout=30)
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=10_000)
    tree = lab.wait_for(page, ".wiro-form .wiro-media .wiro-json")
    assert "Browser title" in tree.inner_text()
    image.click()  # click to enlarge
    lightbox = lab.wait_for(page, ".wiro-lightbox img")
    shot(page, "widgets-form-lightbox")
    lightbox.click()
    page.locator(".wiro-lightbox").wait_for(state="detached", timeout=5_000)
    assert "%%wiro run wiro/kitchen-sink" in form.locator(".wiro-code-cell").inner_text()

    lab.run_cell(page, 2)
    values = lab.output_text(page, 2)
    assert "'prompt': 'A lighthouse at dusk'" in values and "'title': 'Browser title'" in values
    assert "'mode': 'quality'" in values and f"'count': {typed}" in values
    shot(page, "widgets-form-done", form.locator(".wiro-status"))
    assert time.monotonic() - start < 60


AWAITING_CELL = """\
import time
t = wj.Wiro().run("wiro/slow", prompt="take your time", seconds=60, wait=False)
v = TaskView(t)
display(v)
try:
    await t.wait_async(90)  # the cell waits here; the kernel still handles the button's message
except wj.TaskCancelledError:
    pass
print("CELL1-END", t.status, repr(time.time()))"""

CHECK_CELL = """\
import time
ran_at = time.time()  # before waiting for anything: when the kernel let this cell run
v.status_bar.stop_thread.join(30)  # the button's stop request records its result after the task has ended
print("CELL2", t.status, emu.tasks[t.id].status, v.status_bar.stop_result, repr(ran_at))"""

def test_cancel_stops_a_slow_task_while_its_cell_awaits(lab: JupyterLab, browser_page: Any) -> None:
    page = browser_page
    start = time.monotonic()
    name = lab.open_notebook(page, [SETUP, AWAITING_CELL, CHECK_CELL], name="widgets-cancel.ipynb")
    lab.start_run_all(page, name)
    lab.wait_for(page, ".wiro-status[data-state='running']", timeout=30)
    lab.wait_for(page, ".wiro-status .wiro-percent", timeout=10)
    prompt = lab.cell(page, 1).locator(".jp-InputPrompt").inner_text()
    assert "*" in prompt, prompt  # the cell is still running: it awaits the task
    shot(page, "widgets-cancel-running")
    clicked = time.monotonic()
    page.locator(".wiro-status button.wiro-cancel").click()
    bar = lab.wait_for(page, ".wiro-status[data-state='cancelled']", timeout=30)
    took = time.monotonic() - clicked
    error = bar.locator(".wiro-status-error")
    assert error.is_visible() and "killed" in error.inner_text()  # it was running
    color = bar.evaluate("(el) => getComputedStyle(el).borderLeftColor")
    assert color == "rgb(185, 28, 28)"  # red
    assert took < 10, f"Cancel took {took:.1f} s"
    lab.wait_for(page, ".jp-Cell:nth-child(3) .jp-OutputArea-output:has-text('CELL2')", timeout=30)
    lab.wait_for_idle(name)
    first = lab.output_text(page, 1).split("CELL1-END", 1)[1].split()
    second = lab.output_text(page, 2).split()
    assert first[0] == "task_cancel"
    assert second[1:4] == ["task_cancel", "task_cancel", "kill"]  # stopped on the emulator too (it was running)
    assert float(second[4]) >= float(first[1])  # the next cell ran only after this one had ended
    shot(page, "widgets-cancel-done")
    assert time.monotonic() - start < 60


def test_llm_answer_with_html_renders_as_text(lab: JupyterLab, browser_page: Any) -> None:
    page = browser_page
    start = time.monotonic()
    cell = (
        "prompt = '<img src=x onerror=\"window.__xss=1\"> <script>window.__xss=2</script>'\n"
        't = wj.Wiro().run("wiro/chat-llm", prompt=prompt, wait=False)\n'
        "TaskView(t)"
    )
    lab.open_notebook(page, [SETUP, cell], name="widgets-xss.ipynb")
    lab.run_all(page)
    lab.wait_for(page, ".wiro-status[data-state='done']", timeout=30)
    answer = lab.wait_for(page, ".wiro-media .wiro-answer")
    page.wait_for_function("(el) => !el.classList.contains('streaming')", arg=answer.element_handle(), timeout=10_000)
    text = answer.inner_text()
    assert '<img src=x onerror="window.__xss=1">' in text and "<script>window.__xss=2</script>" in text
    assert answer.locator("img, script").count() == 0
    assert page.locator(".jp-OutputArea-output img[src='x']").count() == 0
    assert page.evaluate("() => typeof window.__xss") == "undefined"
    assert page.locator(".wiro-media details.wiro-thinking").count() == 1
    shot(page, "widgets-xss-as-text")
    assert time.monotonic() - start < 60
