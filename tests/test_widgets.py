"""Widgets without a browser: forms from parameters, validation, values and code, the status bar driven
by real emulator tasks, outputs and their static fallbacks, Markdown sanitization, throttling, the
text fallback, and Cancel clicked (a comm message) while a kernel cell awaits the task."""

from __future__ import annotations

import datetime
import io
import shlex
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets
import pytest
from conftest import elements, wait_for_widget_state
from kernels import Kernel
from PIL import Image

from wiro_jupyter import Wiro
from wiro_jupyter._events import STAGES, TaskEvent
from wiro_jupyter._exceptions import ValidationError
from wiro_jupyter._models import Model, Parameter
from wiro_jupyter._outputs import Output
from wiro_jupyter._render import fill_item, items_html, output_item, render_markdown, safe_url
from wiro_jupyter.widgets import OutputsView, RunForm, StatusBar, TaskView, Upload, form, has_widget_frontend
from wiro_jupyter.widgets._fields import FileField, NumberField, SelectField
from wiro_jupyter.widgets._frontend import WIDGET_VIEW
from wiro_jupyter.widgets._static import static_file
from wiro_jupyter.widgets._throttle import Throttle

REPO = Path(__file__).resolve().parents[1]
XSS = '<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script>'


@pytest.fixture
def live(emu: Any) -> Any:
    """The session emulator with stages that take a little time (restored afterwards)."""
    before = emu.stage_delay
    emu.stage_delay = 0.01
    yield emu
    emu.stage_delay = before


def png_bytes(color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def bundle_of(widget: Any) -> dict[str, Any]:
    data, _metadata = widget._repr_mimebundle_()
    return data


# ------------------------------------------------------------------------------------------------ forms


def test_form_has_a_widget_for_every_parameter_type(wiro: Wiro) -> None:
    f = form("wiro/kitchen-sink", client=wiro)
    fields = f.fields
    # The model's order, with the URL companions folded into their file fields.
    assert list(fields) == [
        "prompt",
        "title",
        "mode",
        "scene",
        "inputImage",
        "count",
        "amount",
        "ratio",
        "enabled",
        "gallery",
        "mixed",
        "seed",
    ]
    assert isinstance(fields["prompt"].row, ipywidgets.Textarea)
    assert isinstance(fields["title"].row, ipywidgets.Text) and fields["title"].row.placeholder == "A title"
    mode = fields["mode"]
    assert isinstance(mode, SelectField) and isinstance(mode.input, ipywidgets.Dropdown)
    assert mode.input.options == (("Fast", "fast"), ("Quality", "quality"), ("Match input", ""))
    assert mode.input.value == "fast"
    assert fields["scene"].input.value == "beach"  # selectwithcover: a dropdown too
    count = fields["count"]
    assert isinstance(count, NumberField) and isinstance(count.slider, ipywidgets.IntSlider)
    assert (count.slider.min, count.slider.max, count.slider.step, count.slider.value) == (1, 10, 1, 3)
    # One widget: the slider's readout is its number box (editable in the browser), no second widget to link.
    assert count.input is count.slider and count.row is count.slider and count.slider.readout is True
    count.slider.value = 7
    assert count.value == 7 and f.values["count"] == 7
    count.set(12)  # clamped to the bounds, as the number box did
    assert count.value == 10
    count.set(3)
    amount = fields["amount"]  # number: a box, bounded
    assert amount.slider is None and isinstance(amount.input, ipywidgets.BoundedIntText)
    assert (amount.input.min, amount.input.max, amount.input.value) == (0, 100, 7)
    ratio = fields["ratio"]  # a bounded float with a step: slider + box
    assert isinstance(ratio.slider, ipywidgets.FloatSlider) and ratio.slider.readout is True
    assert (ratio.slider.min, ratio.slider.max, ratio.slider.step, ratio.slider.value) == (0.0, 1.0, 0.1, 0.5)
    assert ratio.slider.readout_format == ".1f"  # as many decimals as the step
    assert isinstance(fields["enabled"].row, ipywidgets.Checkbox) and fields["enabled"].value is False
    image = fields["inputImage"]
    assert isinstance(image, FileField) and image.upload.multiple is False
    assert isinstance(image.urls, ipywidgets.Text) and image.companion is not None
    assert image.row is image.urls and image.widgets() == [image.urls, image.upload]  # the picker under the URL box
    assert "wiro-field-inputImage" in image.upload._dom_classes
    assert image.companion.id == "inputImageUrl"
    for pid in ("gallery", "mixed"):
        files = fields[pid]
        assert isinstance(files, FileField) and files.upload.multiple is True
        assert isinstance(files.urls, ipywidgets.Textarea)
    assert "up to 5" in fields["gallery"].urls.placeholder


def test_form_labels_required_markers_help_groups_and_advanced(wiro: Wiro) -> None:
    f = form("wiro/kitchen-sink", client=wiro)
    assert "Prompt" in f.fields["prompt"].row.description and "wiro-required" in f.fields["prompt"].row.description
    assert "wiro-required" in f.fields["mode"].row.description
    assert "wiro-required" not in f.fields["title"].row.description
    prompt_note = f.fields["prompt"].note
    assert prompt_note is not None and "Echoed back" in prompt_note.value
    assert f.fields["title"].note is None  # no help text, no widget
    sections = [c for c in f.children if "wiro-group" in c._dom_classes]
    titles = [s.children[0].value for s in sections]
    assert titles == ["<b>Inputs</b>", "<b>Numbers</b>", "<b>Advanced</b>"]
    advanced = [c for c in sections[2].children if isinstance(c, ipywidgets.Accordion)]
    assert len(advanced) == 1 and advanced[0].selected_index is None  # collapsed
    assert f.fields["seed"].row in advanced[0].children[0].children
    assert "wiro-field-count" in f.fields["count"].row._dom_classes


def test_text_to_image_ranges_and_defaults(wiro: Wiro) -> None:
    f = form("wiro/text-to-image", client=wiro, prompt="a lighthouse", width=768)
    width = f.fields["width"]
    assert (width.slider.min, width.slider.max, width.slider.step) == (256, 1024, 64)
    assert width.value == 768
    guidance = f.fields["guidance"]
    assert isinstance(guidance.slider, ipywidgets.FloatSlider) and guidance.slider.step == 0.5
    assert f.values["style"] == "photo" and f.values["prompt"] == "a lighthouse"
    with pytest.raises(ValidationError, match="did you mean 'width'"):
        form("wiro/text-to-image", client=wiro, widht=512)


def test_validation_messages_go_next_to_their_field(wiro: Wiro) -> None:
    f = form("wiro/kitchen-sink", client=wiro)
    errors = f.validate()
    assert set(errors) == {"prompt"} and "required" in errors["prompt"]
    assert "required" in f.fields["prompt"].note.value and "wiro-invalid" in f.fields["prompt"].row._dom_classes
    assert "1 field needs attention" in f.summary.value
    with pytest.raises(ValidationError):
        f.run()  # nothing sent
    f.fields["prompt"].set("hello")  # live re-validation after a refused run clears the message
    assert f.fields["prompt"].error == "" and f.summary.value == ""

    g = form("wiro/image-to-image", client=wiro)
    assert "required" in g.validate()["inputImage"]
    g.set_values(inputImage="/no/such/file.png")
    message = g.validate()["inputImage"]
    assert "does not exist" in message
    assert g.fields["inputImage"].note is not None and "does not exist" in g.fields["inputImage"].note.value
    g.set_values(inputImageUrl="https://example.com/a.png")  # the companion's id reaches the same box
    assert g.validate() == {} and g.values["inputImage"] == "https://example.com/a.png"
    g.fields["inputImage"].urls.value = "https://example.com/a.png, https://example.com/b.png"
    assert "takes one file" in g.validate()["inputImage"]


def test_values_with_an_upload_and_a_run(wiro: Wiro) -> None:
    f = form("wiro/image-to-image", client=wiro, effect="grayscale")
    data = png_bytes("blue")
    f.fields["inputImage"].upload.value = (
        {
            "name": "blue.png",
            "type": "image/png",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )
    values = f.values
    assert isinstance(values["inputImage"], Upload) and values["inputImage"].name == "blue.png"
    assert values["inputImage"].read() == data and f.values["inputImage"].read() == data  # fresh each time
    assert values["effect"] == "grayscale"
    task = f.run()
    assert f.task is task and isinstance(f.view, TaskView) and f.result.children == (f.view,)
    assert f.view.wait(30)
    assert task.ok and task.parameters["inputImage"]
    assert f.view.status_bar.state == "done"
    assert [i["kind"] for i in f.view.outputs_view.items] == ["image"]
    assert "blue.png" in f.python() and "# uploaded in the form: blue.png" in f.python()


def test_run_button_starts_the_task_and_shows_it_under_the_form(wiro: Wiro) -> None:
    f = form("wiro/kitchen-sink", client=wiro, prompt="clicked", title="From the button")
    shown = threading.Event()
    f.result.observe(lambda change: shown.set() if change["new"] else None, names="children")
    f.run_button.click()
    assert shown.wait(30), f.summary.value
    assert f.view.wait(30) and f.task.ok
    kinds = sorted(i["kind"] for i in f.view.outputs_view.items)
    assert kinds == ["image", "json"]
    echoed = next(i for i in f.view.outputs_view.items if i["kind"] == "json")["json"]
    assert echoed["title"] == "From the button"


def test_code_and_python_round_trip(wiro: Wiro) -> None:
    f = form(
        "wiro/kitchen-sink",
        client=wiro,
        prompt="Line one\nline two",
        title="My title",
        count=5,
        mode="quality",
        enabled=True,
        gallery=["https://x.test/1.png", "https://x.test/2.png"],
    )
    cell = f.code()
    first, _, body = cell.partition("\n")
    assert body == "Line one\nline two"  # the main text goes to the cell body
    tokens = shlex.split(first)
    assert tokens[:3] == ["%%wiro", "run", "wiro/kitchen-sink"]
    args = dict(token.split("=", 1) for token in tokens[3:])
    assert args == {
        "title": "My title",
        "mode": "quality",
        "count": "5",
        "enabled": "true",
        "gallery": "https://x.test/1.png,https://x.test/2.png",
    }  # defaults (amount=7 …) left out
    code = f.python()
    compile(code, "<form>", "exec")
    assert "task = wj.Wiro().run(" in code and "'wiro/kitchen-sink'," in code
    assert "prompt='Line one\\nline two'," in code and "count=5," in code and "amount=" not in code
    namespace: dict[str, Any] = {}
    call = code.split("task = ", 1)[1].replace("wj.Wiro().run", "capture", 1)
    exec(f"result = {call}", {"capture": lambda *a, **k: (a, k)}, namespace)
    assert namespace["result"][1] == {k: v for k, v in f.changed_values().items()}

    odd = RunForm(
        Model(slug="x/odd", parameters=[Parameter(id="my-param", type="text"), Parameter(id="class", type="text")]),
        **{"my-param": "a b", "class": "c"},
    )
    assert "inputs={'my-param': 'a b', 'class': 'c'}" in odd.python()
    compile(odd.python(), "<odd>", "exec")
    line, body = odd.code().split("\n")
    assert shlex.split(line)[3:] == ["class=c"] and body == "a b"  # the first text parameter is the main one


def test_form_code_view_and_static_fallbacks(wiro: Wiro) -> None:
    f = form("wiro/text-to-image", client=wiro, prompt="a lighthouse")
    f.code_button.value = True
    assert "%%wiro run wiro/text-to-image" in f.code_view.value and "wj.Wiro().run(" in f.code_view.value
    f.fields["width"].set(640)
    assert "width=640" in f.code_view.value  # follows the values while shown
    data = bundle_of(f)
    assert WIDGET_VIEW in data and data[WIDGET_VIEW]["model_id"] == f.model_id
    assert "%%wiro run wiro/text-to-image width=640" in data["text/plain"]
    assert "<table>" in data["text/html"] and "a lighthouse" in data["text/html"]


def test_synthetic_sixty_parameter_form_builds_fast() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from bench_form import synthetic_model
    finally:
        sys.path.pop(0)
    model = synthetic_model(60)
    RunForm(model)  # warm
    best = min(_timed(lambda: RunForm(model)) for _ in range(3))
    assert len(RunForm(model).fields) == 60
    from ipywidgets.widgets.widget import _instances

    ipywidgets.Widget.close_all()
    RunForm(model)
    # In a kernel each widget model opens a comm: one widget per field where possible (no wrapper boxes, no second
    # number box), shared Layout/Style models. 60 inputs + 15 file pickers + 30 help notes + groups and chrome.
    assert len(_instances) <= 150, f"{len(_instances)} widget models for 60 parameters"
    ipywidgets.Widget.close_all()
    assert best < 0.25, f"building a 60-parameter form took {best * 1000:.0f} ms"  # budget 0.1 s; slack for CI


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ------------------------------------------------------------------------------------------------ status bar


def test_status_bar_goes_queued_running_done(wiro: Wiro, live: Any) -> None:
    live.pause_queue()
    task = wiro.run("wiro/text-to-image", prompt="stages", wait=False)
    bar = StatusBar(task, interval=0)
    states: list[str] = []
    stages: list[int] = []
    percentages: list[float] = []
    bar.observe(lambda c: states.append(c["new"]), names="state")
    bar.observe(lambda c: stages.append(c["new"]), names="stage")
    bar.observe(lambda c: percentages.append(c["new"]), names="percentage")
    assert bar.state == "queued" and bar.model == "wiro/text-to-image" and bar.task_id == task.id
    assert bar.started_at > 0 and [s["id"] for s in bar.stages] == list(STAGES)
    assert live.wait_registered(task.token, timeout=10)
    live.resume_queue()
    assert bar.wait(30)
    assert states[0] == "running" and states[-1] == "done" and "failed" not in states
    assert stages == sorted(stages) and bar.stage == len(STAGES) - 1
    assert any(0 < p < 100 for p in percentages) and bar.percentage == 100
    assert bar.elapsed > 0 and bar.cost >= 0 and bar.error == ""
    text = bar.text()
    assert "done" in text and "Finished (10/10)" in text
    data = bundle_of(bar)
    assert data[WIDGET_VIEW]["model_id"] == bar.model_id
    assert data["text/plain"] == text and 'data-state="done"' in data["text/html"]


def test_status_bar_failed_shows_the_error(wiro: Wiro) -> None:
    task = wiro.run("wiro/always-fails", prompt="boom", wait=False)
    bar = StatusBar(task)
    assert bar.wait(30)
    assert bar.state == "failed" and "synthetic failure" in bar.error
    assert "synthetic failure" in bar.text() and "#b91c1c" in bar.static_html()


def test_status_bar_of_a_finished_task_is_final_at_once(wiro: Wiro) -> None:
    task = wiro.run("wiro/kitchen-sink", prompt="done already", mode="fast")
    bar = StatusBar(task)
    assert bar.finished.is_set() and bar.state == "done" and bar.stage == len(STAGES) - 1


def test_cancel_message_while_queued_and_kill_while_running(wiro: Wiro, emu: Any) -> None:
    emu.pause_queue()
    queued = wiro.run("wiro/slow", prompt="q", seconds=30, wait=False)
    bar = StatusBar(queued)
    assert bar.state == "queued"
    bar._handle_custom_msg({"action": "cancel"}, [])  # what the front end's Cancel button sends
    assert bar.wait(30)
    bar.stop_thread.join(30)
    assert bar.state == "cancelled" and bar.stop_result == "cancel" and "cancelled" in bar.error
    assert emu.tasks[queued.id].status == "task_cancel"
    emu.resume_queue()

    running = wiro.run("wiro/slow", prompt="k", seconds=30, wait=False)
    bar = StatusBar(running, interval=0)
    started = threading.Event()
    bar.observe(lambda c: started.set() if c["new"] == "running" else None, names="state")
    assert started.wait(30) or bar.state == "running"
    bar._handle_custom_msg({"action": "kill"}, [])
    assert bar.wait(30)
    bar.stop_thread.join(30)
    assert bar.state == "cancelled" and emu.tasks[running.id].status == "task_cancel"
    assert bar.stop_result == "kill" and bar.busy == "" and bar.notice == ""


# ------------------------------------------------------------------------------------------------ outputs


def test_task_view_of_several_images_has_static_fallbacks(wiro: Wiro) -> None:
    task = wiro.run("wiro/text-to-image", prompt="grid", samples=3)
    view = TaskView(task)
    assert view.wait(30)
    items = view.outputs_view.items
    assert [i["kind"] for i in items] == ["image"] * 3
    assert all(i["src"].startswith("data:image/png;base64,") and i["url"].startswith("http") for i in items)
    data = bundle_of(view)
    assert data[WIDGET_VIEW]["model_id"] == view.model_id
    assert data["text/html"].count("<img ") == 3 and "wiro-grid" in data["text/html"]
    assert "image/png" in data and data["image/png"] == items[0]["src"].split(",", 1)[1]
    assert "done" in data["text/plain"] and "0.png" in data["text/plain"]
    assert "image/png" in bundle_of(view.outputs_view)


def test_audio_animation_json_and_files(wiro: Wiro) -> None:
    speech = OutputsView(wiro.run("wiro/text-to-speech", text="hello"))
    assert speech.wait(30)
    assert [(i["kind"], i["src"][:15]) for i in speech.items] == [("audio", "data:audio/wav;")]
    assert "<audio controls" in bundle_of(speech)["text/html"]

    animation = OutputsView(wiro.run("wiro/animate", prompt="bounce", frames=4))
    assert animation.wait(30)
    kinds = {i["name"]: i["kind"] for i in animation.items}
    assert kinds["output.gif"] == "animated" and kinds["output.webp"] == "image"

    sink = OutputsView(wiro.run("wiro/kitchen-sink", prompt="json please", title="T", mode="fast"))
    assert sink.wait(30)
    tree = next(i for i in sink.items if i["kind"] == "json")
    assert tree["json"]["prompt"] == "json please"
    assert "<details" in bundle_of(sink)["text/html"]

    slow = OutputsView(wiro.run("wiro/slow", prompt="t", seconds=1))
    assert slow.wait(30)
    text = slow.items[0]
    assert text["kind"] == "text" and "slept 1 seconds" in text["html"]

    blob = OutputsView(wiro.run("wiro/big-file", megabytes=2))
    assert blob.wait(30)
    link = blob.items[0]
    assert link["kind"] == "file" and link["src"] == "" and link["url"].startswith("http")  # linked, not embedded
    assert f'href="{link["url"]}"' in bundle_of(blob)["text/html"]


def test_llm_answer_streams_and_is_sanitized(wiro: Wiro, live: Any) -> None:
    live.pause_queue()
    task = wiro.run("wiro/chat-llm", prompt=XSS, wait=False)
    view = OutputsView(task, interval=0.01)
    answers: list[str] = []
    view.observe(lambda c: answers.append(c["new"]), names="answer_html")
    assert live.wait_registered(task.token, timeout=10)
    live.resume_queue()
    assert view.wait(30) and task.ok
    assert len(answers) >= 2  # streamed, not only the end
    assert view.answer_html == render_markdown(task.text)  # the final text is exact
    assert view.thinking_html and view.streaming is False
    for html_text in (view.answer_html, bundle_of(view)["text/html"], bundle_of(TaskView(task))["text/html"]):
        tags, handlers = elements(html_text)
        assert not {"script", "img"} & tags and not handlers
        assert "&lt;script&gt;window.__xss=2&lt;/script&gt;" in html_text  # shown as text
    assert "text/markdown" not in bundle_of(TaskView(task))  # only sanitized HTML goes out


def test_sanitizing_helpers() -> None:
    assert safe_url("javascript:alert(1)") == "" and safe_url(" https://a.test/x.png ") == "https://a.test/x.png"
    hostile = Output(name="a.md", url="javascript:alert(1)", content_type="text/markdown")
    item = fill_item(output_item(hostile), b"# Title\n<script>alert(1)</script><img src=x onerror=alert(2)>")
    assert item["url"] == "" and "<h1>Title</h1>" in item["html"]
    assert elements(item["html"]) == ({"h1", "p"}, [])
    svg = fill_item(output_item(Output(name="x.svg", url="https://a.test/x.svg", content_type="image/svg+xml")), b"<svg/>")
    assert svg["src"].startswith("data:application/octet-stream;")  # never an SVG (script) data: URL
    page = items_html([item], answer_html=render_markdown("<b onclick=x>hi</b>"))
    assert elements(page)[1] == [] and "script" not in elements(page)[0]


# ------------------------------------------------------------------------------------------------ throttling


class FakeTask:
    """Just enough of a Task for the views: an event stream driven by the test."""

    model, id, token, status, progress, cost, error = "fake/llm", "1", "tok", "task_start", None, None, None

    def __init__(self) -> None:
        self.text = self.thinking = ""
        self.done = self.ok = False
        self.files: list[Output] = []
        self.event_log: list[TaskEvent] = []
        self.listeners: list[Any] = []

    def add_listener(self, listener: Any, *, replay: bool = True) -> None:
        self.listeners.append(listener)

    def emit(self, event: TaskEvent) -> None:
        self.event_log.append(event)
        for listener in self.listeners:
            listener(event)


def test_streamed_text_is_throttled_and_ends_exact() -> None:
    task = FakeTask()
    view = OutputsView(task, interval=0.05)
    updates: list[str] = []
    view.observe(lambda c: updates.append(c["new"]), names="answer_html")
    start = time.monotonic()
    for i in range(300):  # a 300-token stream, one token per millisecond
        piece = f"word{i} "
        task.text += piece
        task.emit(TaskEvent(kind="task_output", answer_delta=piece, answer=task.text))
        time.sleep(0.001)  # pacing the fake stream, not synchronisation
    elapsed = time.monotonic() - start
    task.done, task.ok, task.status = True, True, "task_postprocess_end"
    task.emit(TaskEvent(kind="done"))
    assert view.wait(10)
    assert 2 <= len(updates) <= elapsed / 0.05 + 3, (len(updates), elapsed)
    assert view.answer_html == render_markdown(task.text) and "word299" in view.answer_html


def test_throttle_coalesces_and_final_flush_wins() -> None:
    calls: list[float] = []
    ran = threading.Event()
    throttle = Throttle(lambda: (calls.append(time.monotonic()), ran.set()), interval=0.2)
    throttle()  # runs at once
    for _ in range(50):
        throttle()  # coalesced into one deferred call
    assert len(calls) == 1
    ran.clear()
    assert ran.wait(5) and len(calls) == 2 and calls[1] - calls[0] >= 0.19
    throttle()
    throttle.flush(final=True)  # cancels the pending call, runs now, closes
    count = len(calls)
    throttle()
    throttle.flush()
    assert len(calls) == count and throttle.closed


# ------------------------------------------------------------------------------------------------ text fallback


def test_text_progress_without_a_widget_front_end(wiro: Wiro, live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert has_widget_frontend() is False  # no kernel here
    monkeypatch.setenv("WIRO_JUPYTER_WIDGETS", "1")
    assert has_widget_frontend() is True
    monkeypatch.delenv("WIRO_JUPYTER_WIDGETS")
    live.pause_queue()
    task = wiro.run("wiro/text-to-image", prompt="text", wait=False)
    view = TaskView(task)
    out = io.StringIO()
    view.show_text(out)
    assert live.wait_registered(task.token, timeout=10)
    live.resume_queue()
    assert view.wait(30)
    assert view.status_bar.finished.wait(5)
    lines = out.getvalue().strip().splitlines()
    assert lines[0].endswith("Queued (1/10)")
    assert any("Started (6/10)" in line for line in lines)
    final = next(i for i, line in enumerate(lines) if " · done in " in line)
    assert any("0.png" in line for line in lines[final:])

    shown = io.StringIO()
    monkeypatch.setattr(sys, "stdout", shown)
    view._ipython_display_()  # what display(view) does in terminal IPython: text, no widget
    assert " · done in " in shown.getvalue()
    assert repr(view).startswith("<TaskView wiro/text-to-image")


def test_static_files_resolve() -> None:
    assert static_file("status.js") == REPO / "js" / "status.js"
    assert static_file("media.js").read_text().rstrip().endswith("export default { render };")
    with pytest.raises(FileNotFoundError):
        static_file("nope.js")


# ------------------------------------------------------------------------------------------------ kernel


AWAITED_CELL = """
import time
import wiro_jupyter as wj
from wiro_jupyter.widgets import TaskView
t = wj.Wiro().run("wiro/slow", prompt="x", seconds=60, wait=False)
display(TaskView(t))
try:
    await t.wait_async(90)
    outcome = "finished"
except wj.TaskCancelledError:
    outcome = "cancelled"
print("CELL1-END", outcome, t.status, repr(time.time()))
"""
# The magic's own mechanism: an input transformer rewrites the cell into an awaited call (wiro_jupyter.magics).
MAGIC_CELL = "%%wiro run wiro/slow seconds=60\ntake your time"


@pytest.mark.parametrize("cell", [AWAITED_CELL, MAGIC_CELL], ids=["awaited-wait_async", "wiro-run-magic"])
def test_cancel_clicked_while_a_cell_awaits(cell: str, emu: Any, start_kernel: Callable[..., Kernel]) -> None:
    """The status bar's Cancel (a comm message) is handled while a cell awaits the task; the task is stopped on
    the emulator, the cell ends, and the next cell runs only after it."""
    emu.stage_delay = 0.02
    before = set(emu.tasks)
    _, kc = start_kernel()
    try:
        deadline = time.monotonic() + 60
        # stop_on_error=False: with the magic, a cancelled task fails its cell (TaskCancelledError), and a failing
        # cell makes the kernel abort the cells queued behind it (as "Run All" stops at an error).
        first = kc.execute(cell, stop_on_error=False)
        # the status bar's comm, once it shows the task running
        bar_comm = wait_for_widget_state(kc, "StatusBar", lambda state: state.get("state") == "running", deadline)
        # What the front end sends when Cancel is clicked: anywidget's model.send() -> a custom message.
        click = kc.session.msg("comm_msg", {"comm_id": bar_comm, "data": {"method": "custom", "content": {"action": "cancel"}}})
        clicked_at = time.monotonic()
        kc.shell_channel.send(click)
        second = kc.execute('import time; print("CELL2-START", repr(time.time()))')
        order: list[tuple[str, str, float]] = []  # iopub is one ordered stream
        idle: set[str] = set()
        texts: dict[str, str] = {}
        errors: dict[str, str] = {}
        while idle != {first, second}:
            assert time.monotonic() < deadline, f"cells did not finish: {order}"
            msg = kc.get_iopub_msg(timeout=30)
            parent = msg["parent_header"].get("msg_id", "")
            at = time.monotonic() - clicked_at
            kind = msg["msg_type"]
            if kind == "status" and parent in (first, second):
                order.append((parent, msg["content"]["execution_state"], at))
                if msg["content"]["execution_state"] == "idle":
                    idle.add(parent)
            elif kind == "execute_input" and parent == second:
                order.append((parent, "execute_input", at))
            elif kind == "stream":
                texts[parent] = texts.get(parent, "") + msg["content"]["text"]
            elif kind == "comm_msg" and msg["content"]["comm_id"] == bar_comm:
                state = msg["content"]["data"].get("state", {})
                if state.get("state") in ("cancelled", "done", "failed"):
                    order.append(("bar", state["state"], at))
            elif kind == "error":
                errors[parent] = msg["content"]["ename"]
        first_idle = next(i for i, (p, s, _) in enumerate(order) if p == first and s == "idle")
        second_start = next(i for i, (p, s, _) in enumerate(order) if p == second and s in ("busy", "execute_input"))
        assert first_idle < second_start, order  # the next cell waited for this one
        assert [s for p, s, _ in order if p == "bar"][:1] == ["cancelled"], order
        handled = next(a for p, s, a in order if p == "bar")
        assert handled < 10, f"the click took {handled:.1f} s to stop the task"
        if cell is AWAITED_CELL:
            assert texts[first].split()[:3] == ["CELL1-END", "cancelled", "task_cancel"]
            assert float(texts[second].split()[1]) >= float(texts[first].split()[3])
            assert first not in errors
        else:
            assert errors.get(first) in (None, "TaskCancelledError"), errors
        assert second not in errors and texts[second].startswith("CELL2-START")
        started = [t for key, t in emu.tasks.items() if key not in before]
        assert len(started) == 1
        assert started[0].status == "task_cancel" and started[0].pexit == "-1"  # it was running: killed
    finally:
        emu.stage_delay = 0
