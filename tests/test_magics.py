"""The IPython magics (`%wiro`, `%%wiro run`): parsing, a real InteractiveShell, and real kernels.

Three levels:
- pure parsing functions (`wiro_jupyter.magics._parse`, `_run.parse_run`, `_wiro.parse_subcommand`);
- the magics in a real `InteractiveShell` against the emulator (the blocking path,
  plus the awaited path forced through IPython's own asyncio runner);
- an ipykernel driven by jupyter_client / nbclient, where `%%wiro` cells are awaited
  on the kernel's loop: the cell's result, the status bar's Cancel (a comm message)
  while the cell waits, the next cell held back, a kernel interrupt stopping the
  paid task, and failing cells stopping a pipeline with a short message.
"""

from __future__ import annotations

import json
import os
import queue
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from IPython.core.error import UsageError
from kernels import Kernel, kernel_env, running_kernel

from wiro_jupyter.magics import _transform
from wiro_jupyter.magics._parse import convert_value, interpolate, parse_body
from wiro_jupyter.magics._run import parse_run
from wiro_jupyter.magics._wiro import parse_subcommand


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the developer's ~/.config/wiro-jupyter/credentials.json."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


# ============================================================================ parsing (pure)


def test_run_line_options_and_pairs_in_any_order() -> None:
    req = parse_run('wiro/text-to-image prompt="a red fox" -o pic width=768 --no-wait --timeout 5 seed=-1')
    assert req.slug == "wiro/text-to-image"
    assert req.params == {"prompt": "a red fox", "width": "768", "seed": "-1"}
    assert (req.output, req.no_wait, req.form, req.save, req.timeout) == ("pic", True, False, None, 5.0)
    req = parse_run("wiro/x --save=out/dir --form title='a = b'")
    assert (req.save, req.form, req.params) == ("out/dir", True, {"title": "a = b"})
    assert parse_run("wiro/x --save 'my dir'").save == "my dir"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("", "the model is missing"),
        ("-o x", "the model is missing"),
        ("prompt=x", "the model is missing"),
        ("text-to-image", "is not a model"),
        ("a/b/c", "is not a model"),
        ("wiro/x foo", "'foo' is not a name=value parameter"),
        ("wiro/x 9x=1", "'9x=1' is not a name=value parameter"),
        ("wiro/x --bogus", "unrecognized arguments: --bogus"),
        ("wiro/x -o 1x", "-o needs a Python variable name"),
        ("wiro/x -o class", "-o needs a Python variable name"),
        ("wiro/x --timeout soon", "not a number of seconds"),
        ("wiro/x --timeout -1", "more than 0 seconds"),
        ('wiro/x prompt="unclosed', "No closing quotation"),
    ],
)
def test_run_line_errors_are_usage_errors_with_usage(line: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_run(line)
    assert fragment in str(info.value)


def test_run_line_usage_and_help() -> None:
    with pytest.raises(UsageError) as info:
        parse_run("wiro/x --bogus")
    assert "usage: %%wiro run OWNER/MODEL [name=value ...] [-o VAR] [--no-wait]" in str(info.value)
    with pytest.raises(UsageError) as info:
        parse_run("wiro/x -h")
    assert "--save DIR" in str(info.value) and "store the Task in VAR" in str(info.value)


def test_run_line_words_are_interpolated_after_splitting() -> None:
    ns = {"text": 'a "quoted" fox, with spaces', "slug": "wiro/chat-llm", "n": 3}
    req = parse_run("{slug} prompt={text} count={n} title={missing}", namespace=ns)
    assert req.slug == "wiro/chat-llm"
    assert req.params == {"prompt": 'a "quoted" fox, with spaces', "count": "3", "title": "{missing}"}


def test_subcommands_parse() -> None:
    name, args = parse_subcommand("models cat dog --category image -c llm --limit 5")
    assert name == "models" and args.search == ["cat", "dog"] and args.category == ["image", "llm"] and args.limit == 5
    assert parse_subcommand("info wiro/x")[1].slug == "wiro/x"
    assert parse_subcommand("form wiro/x a=1 b='c d'")[1].assignments == ["a=1", "b=c d"]
    assert parse_subcommand('run wiro/x a="1 2" --no-wait')[1].rest == 'wiro/x a="1 2" --no-wait'
    assert parse_subcommand("tasks -n 3 --model wiro/x")[1].limit == 3
    assert parse_subcommand("emulator")[1].action == "start"
    assert parse_subcommand("emulator stop")[1].action == "stop"
    assert parse_subcommand("login --no-store")[1].no_store is True
    assert parse_subcommand("")[0] == "help"
    assert parse_subcommand("task {t}", namespace={"t": "2221"})[1].token == "2221"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("modles", "Did you mean 'models'?"),
        ("info", "required: OWNER/MODEL"),
        ("emulator go", "invalid choice: 'go'"),
        ("tasks --limit many", "invalid int value"),
        ("login --store --no-store", "not allowed with argument"),
        ("config --verbose", "unrecognized arguments"),
    ],
)
def test_subcommand_errors(line: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_subcommand(line)
    assert fragment in str(info.value)


def test_values_are_left_to_the_python_api_except_json() -> None:
    text = SimpleNamespace(type="textarea")
    rng = SimpleNamespace(type="range")
    multi = SimpleNamespace(type="multifileinput")
    assert convert_value("768", rng) == "768"  # prepare_run converts (and checks) numbers
    assert convert_value("[1, 2]", rng) == [1, 2]
    assert convert_value("true", None) is True
    assert convert_value("null", None) is None
    assert convert_value('{"a": 1}', None) == {"a": 1}
    assert convert_value("[not json", rng) == "[not json"
    assert convert_value("[draft] a fox", text) == "[draft] a fox"  # text stays text
    assert convert_value("true", text) == "true"
    assert convert_value("a.png, https://x/b.png", multi) == ["a.png", "https://x/b.png"]
    assert convert_value('["a.png"]', multi) == ["a.png"]


def test_body_forms() -> None:
    assert parse_body('{"prompt": "a cat", "width": 768}') == ({"prompt": "a cat", "width": 768}, None)
    assert parse_body("  {}  ") == ({}, None)
    assert parse_body("\n\n  a lighthouse\n  at dawn\n") == (None, "  a lighthouse\n  at dawn")
    assert parse_body("{subject} at dawn") == (None, "{subject} at dawn")
    assert parse_body("{{literal}} braces") == (None, "{{literal}} braces")
    assert parse_body("[1, 2] is not an object") == (None, "[1, 2] is not an object")
    assert parse_body("") == (None, None)
    assert parse_body(None) == (None, None)
    with pytest.raises(UsageError) as info:
        parse_body('{"prompt": "a cat",}')
    assert "not valid JSON" in str(info.value) and "line 1 column" in str(info.value)


def test_interpolation() -> None:
    class Obj:
        size = 7
        _private = "hidden"

    task_like = type("Task", (), {"text": "the answer"})()
    ns: dict[str, Any] = {
        "x": 5,
        "In": ["", "print('cell one')"],
        "Out": {2: "two"},
        "d": {"k": "K", "items": [1, 2, 3]},
        "o": Obj(),
        "t": task_like,
    }
    text = "{x} {In[1]} {Out[2]} {d['k']} {d[\"items\"][-1]} {o.size} {t} {nope} {Out[9]} {o._private} {x + 1}"
    assert interpolate(text, ns) == "5 print('cell one') two K 3 7 the answer {nope} {Out[9]} {o._private} {x + 1}"
    assert interpolate('{{x}} is {x}; {{ and }} alone; {"json": 1}', ns) == '{x} is 5; { and } alone; {"json": 1}'
    assert interpolate("no braces", ns) == "no braces"


# ============================================================================ InteractiveShell

# The awaited path needs a kernel; a plain InteractiveShell runs the blocking path
# unless FORCE_AWAIT makes it await through IPython's own asyncio runner.


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    created = not InteractiveShell.initialized()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        sh: Any = InteractiveShell.instance(config=config)
        yield sh
        if "wiro_jupyter" in sh.extension_manager.loaded:
            sh.run_line_magic("unload_ext", "wiro_jupyter")
        if created:
            InteractiveShell.clear_instance()


@pytest.fixture
def ip(shell: Any, emu_env: Any) -> Iterator[Any]:
    """The shell with the extension loaded and WIRO_* pointing at the emulator."""
    from wiro_jupyter import _client

    if "wiro_jupyter" not in shell.extension_manager.loaded:
        shell.run_line_magic("load_ext", "wiro_jupyter")
    yield shell
    _transform.FORCE_AWAIT = None
    # default_client() is per settings, and its journal per WIRO_HOME at creation: each test has its own home
    for client in _client._default.values():
        client.close()
    _client._default.clear()


def run(ip: Any, code: str) -> tuple[Any, Any]:
    """Run a cell (stored in history, like a notebook cell); return (ExecutionResult, captured output)."""
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        result = ip.run_cell(code, store_history=True)
    return result, captured


def wiro_outputs(captured: Any) -> list[Any]:
    return [o for o in captured.outputs if "wiro" in (o.metadata or {})]


def assert_short_error(captured: Any, *secrets: str) -> None:
    """An error message, not a traceback of the package; no secret anywhere."""
    text = captured.stdout + captured.stderr
    assert "wiro_jupyter/" not in text and "site-packages" not in text, text
    assert "Traceback (most recent call last)" not in text.replace('File "/app/run.py"', ""), text
    for secret in secrets:
        assert secret not in text


def test_load_ext_is_cheap() -> None:
    code = (
        "import sys, time\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "sh = InteractiveShell.instance()\n"
        "t = time.perf_counter(); sh.run_line_magic('load_ext', 'wiro_jupyter'); dt = time.perf_counter() - t\n"
        "heavy = [m for m in ('httpx', 'websockets', 'PIL', 'ipywidgets', 'anywidget', 'wiro_jupyter._client') "
        "if m in sys.modules]\n"
        "print(heavy, dt, sh.find_line_magic('wiro') is not None, sh.find_cell_magic('wiro') is not None)"
    )
    env = {**os.environ, "IPYTHONDIR": os.environ.get("XDG_CONFIG_HOME", "/tmp") + "/ipython"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    heavy, seconds, line, cell = result.stdout.strip().rsplit(" ", 3)[0], *result.stdout.strip().rsplit(" ", 3)[1:]
    assert heavy == "[]", result.stdout
    assert float(seconds) < 0.5 and line == "True" and cell == "True", result.stdout


def test_plain_text_body_runs_and_displays_with_provenance(ip: Any, emu_env: Any) -> None:
    result, cap = run(ip, "%%wiro run wiro/text-to-image width=768 -o pic\na lighthouse at dawn\n")
    assert result.success, cap.stderr
    pic = ip.user_ns["pic"]
    assert pic.ok and ip.user_ns["_"] is pic and result.result is pic
    assert ip.user_ns["Out"][result.execution_count] is pic
    [shown] = wiro_outputs(cap)
    assert "image/png" in shown.data and "text/html" in shown.data
    meta = shown.metadata["wiro"]
    assert meta["model"] == "wiro/text-to-image" and meta["task_id"] == pic.id
    assert meta["parameters"] == {"prompt": "a lighthouse at dawn", "width": 768}
    assert meta["elapsed_s"] >= 0 and meta["cost"] == pytest.approx(0.02)
    assert emu_env.tasks[pic.id].parameters["width"] == "768"
    assert emu_env.api_key not in json.dumps(shown.metadata)


def test_name_value_pairs_are_converted_and_checked(ip: Any, emu_env: Any) -> None:
    result, cap = run(ip, "%%wiro run wiro/kitchen-sink mode=Quality count=7 ratio=0.3 enabled=true seed=5 -o ks\nhello")
    assert result.success, cap.stderr
    params = ip.user_ns["ks"].parameters
    assert params == {"prompt": "hello", "mode": "quality", "count": 7, "ratio": 0.3, "enabled": True, "seed": 5}
    runs = emu_env.stats.count("Run/")
    result, cap = run(ip, "%%wiro run wiro/text-to-image width=2000 style=pastel\na fox")
    assert type(result.error_in_exec).__name__ == "ValidationError"
    assert "'width' must be between 256 and 1024" in cap.stdout + cap.stderr
    assert "Did you mean" in cap.stdout + cap.stderr or "must be one of" in cap.stdout + cap.stderr
    assert emu_env.stats.count("Run/") == runs  # nothing was sent
    assert_short_error(cap, emu_env.api_key)


def test_json_body_and_line_overrides(ip: Any) -> None:
    result, cap = run(ip, '%%wiro run wiro/text-to-image width=512 -o j\n{"prompt": "a cat", "width": 768, "height": 256}')
    assert result.success, cap.stderr
    assert ip.user_ns["j"].parameters == {"prompt": "a cat", "width": 512, "height": 256}
    result, cap = run(ip, '%%wiro run wiro/text-to-image\n{"prompt": "a cat", "width": 768,}')
    assert isinstance(result.error_in_exec, UsageError)
    assert "not valid JSON" in cap.stderr
    assert_short_error(cap)


def test_interpolation_in_bodies_and_lines(ip: Any) -> None:
    run(ip, "subject = 'a red fox'\nsize = 320")
    first, _ = run(ip, "print('first cell')")
    cell = (
        "%%wiro run wiro/kitchen-sink mode=fast title={subject} count={size} -o a\n"
        "{subject}, {{literal}}, {In[N]}, {unknown_name}, {Out[99999]}"
    ).replace("N", str(first.execution_count))
    result, cap = run(ip, cell)
    # count=320 is out of range: the interpolated value went through the API's validation
    assert type(result.error_in_exec).__name__ == "ValidationError"
    assert "'count' must be between 1 and 10; got 320" in cap.stdout + cap.stderr
    run(ip, "size = 3")
    result, cap = run(ip, cell)
    assert result.success, cap.stderr
    params = ip.user_ns["a"].parameters
    assert params["title"] == "a red fox" and params["count"] == 3
    assert params["prompt"] == "a red fox, {literal}, print('first cell'), {unknown_name}, {Out[99999]}"
    # {Out[n]} of an LLM cell is its answer
    chat, _ = run(ip, "%%wiro run wiro/chat-llm -o c1\nsay something")
    result, cap = run(ip, "%%wiro run wiro/chat-llm -o c2\nSummarise: {Out[N]}".replace("N", str(chat.execution_count)))
    assert result.success, cap.stderr
    assert ip.user_ns["c2"].parameters["prompt"] == "Summarise: " + ip.user_ns["c1"].text
    [shown] = wiro_outputs(cap)
    assert "text/markdown" not in shown.data  # LLM answers render as sanitised HTML, never raw Markdown
    assert '<div class="wiro-answer">' in shown.data["text/html"]


def test_batch_cell_runs_each_line_once_and_a_bad_line_alone(ip: Any, emu_env: Any) -> None:
    ip.user_ns["size"] = 256
    before = emu_env.stats.count("Run")
    line = "%%wiro batch wiro/text-to-image width={size} height=256 -c 2 -o res"
    cell = line + '\na fox\n\n{"prompt": "a lighthouse"}\n{"prompt": "x", "width": 99999}\n'
    result, cap = run(ip, cell)
    assert result.success, cap.stderr
    res = ip.user_ns["res"]
    assert [item.status for item in res.items] == ["ok", "ok", "failed"]
    assert [item.task.parameters["width"] for item in res.items[:2]] == [256, 256]  # {size} interpolated
    assert "width" in res.items[2].error and emu_env.stats.count("Run") == before + 2  # the bad line never sent
    [shown] = wiro_outputs(cap)
    assert shown.metadata["wiro"]["model"] == "wiro/text-to-image" and shown.metadata["wiro"]["ok"] == 2
    again, cap = run(ip, cell)  # the same cell again: a resumed batch sends nothing new
    assert again.success, cap.stderr
    assert emu_env.stats.count("Run") == before + 2 and [i.status for i in ip.user_ns["res"].items][:2] == ["ok", "ok"]


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("%%wiro batch", "OWNER/MODEL"),
        ("%%wiro batch notaslug", "owner/model"),
        ("%%wiro batch wiro/slow -c 0", "must be 1 or more"),
        ("%%wiro batch wiro/slow -o 1x", "Python variable name"),
        ("%%wiro batch wiro/slow stray", "not a name=value parameter"),
    ],
)
def test_batch_cell_usage_errors(ip: Any, line: str, fragment: str) -> None:
    result, cap = run(ip, f"{line}\na prompt\n")
    assert not result.success and fragment in str(result.error_in_exec), str(result.error_in_exec)
    assert_short_error(cap)


def test_no_wait_returns_at_once_and_the_task_stays_live(ip: Any, emu_env: Any) -> None:
    emu_env.pause_queue()
    result, cap = run(ip, "%%wiro run wiro/text-to-image --no-wait -o bg\nqueued")
    assert result.success, cap.stderr
    bg = ip.user_ns["bg"]
    assert not bg.done and ip.user_ns["_"] is bg
    assert "runs in the background" in cap.stdout
    emu_env.resume_queue()
    assert bg.wait(30).ok


def test_save_writes_the_outputs(ip: Any, tmp_path: Path) -> None:
    target = tmp_path / "outs"
    result, cap = run(ip, f"%%wiro run wiro/text-to-image samples=2 --save '{target}' -o s\ntwo")
    assert result.success, cap.stderr
    assert sorted(p.name for p in target.iterdir()) == ["0.png", "1.png"]
    assert f"Saved 2 files to {target}" in cap.stdout
    from wiro_jupyter import tasks

    assert sorted(Path(p).name for p in tasks(1)[0].saved) == ["0.png", "1.png"]


def test_form_shows_the_prefilled_form_instead_of_running(ip: Any, emu_env: Any) -> None:
    runs = emu_env.stats.count("Run/")
    result, cap = run(ip, "%%wiro run wiro/text-to-image width=768 style=illustration --form -o f\na castle")
    assert result.success, cap.stderr
    form = ip.user_ns["f"]
    assert type(form).__name__ == "RunForm" and ip.user_ns["_"] is form
    assert form.values["prompt"] == "a castle" and form.values["width"] == 768
    [shown] = wiro_outputs(cap)
    assert shown.metadata["wiro"] == {
        "model": "wiro/text-to-image",
        "parameters": {"prompt": "a castle", "width": 768, "style": "illustration"},
    }
    assert emu_env.stats.count("Run/") == runs
    result, cap = run(ip, "%%wiro run wiro/text-to-image width=5000 --form\nx")
    assert type(result.error_in_exec).__name__ == "ValidationError"
    result, _ = run(ip, "f2 = %wiro form wiro/text-to-image seed=3")
    assert result.success and ip.user_ns["f2"].values["seed"] == 3
    # the form's "Code" view gives back a %%wiro cell that this parser reads
    code = form.code()
    first_line, _, body = code.partition("\n")
    request = parse_run(first_line.removeprefix("%%wiro run "))
    assert request.slug == "wiro/text-to-image" and body == "a castle"
    assert request.params["width"] == "768" and request.params["style"] == "illustration"


def test_timeout_leaves_the_task_running(ip: Any, emu_env: Any) -> None:
    result, cap = run(ip, "%wiro run wiro/slow seconds=60 --timeout 0.3 -o slow")
    assert type(result.error_in_exec).__name__ == "WiroTimeoutError"
    assert "recover" in cap.stderr + cap.stdout
    slow = ip.user_ns["slow"]
    assert not slow.done
    run(ip, "%wiro kill {slow.id}")
    assert emu_env.wait_task(slow.id, timeout=10).status == "task_cancel"


def test_failed_task_fails_the_cell_and_the_next_cell_works(ip: Any, emu_env: Any) -> None:
    result, cap = run(ip, "%%wiro run wiro/always-fails -o bad\nhi")
    assert type(result.error_in_exec).__name__ == "TaskFailedError"
    assert "synthetic failure" in cap.stderr + cap.stdout
    [status] = wiro_outputs(cap)  # the status line, with provenance
    assert status.metadata["wiro"]["task_id"] == ip.user_ns["bad"].id
    assert_short_error(cap, emu_env.api_key)
    result, _ = run(ip, "1 + 1")
    assert result.success and result.result == 2


@pytest.mark.parametrize(
    ("cell", "error", "fragment"),
    [
        ("%%wiro run wiro/text-to-imag\nx", "NotFoundError", "Did you mean 'wiro/text-to-image'"),
        ("%%wiro run wiro/text-to-image --colour red\nx", "UsageError", "unrecognized arguments: --colour"),
        ("%%wiro run\nx", "UsageError", "the model is missing"),
        ("%%wiro models\nx", "UsageError", "A %%wiro cell runs a model"),
        ("%%wiro run wiro/big-file\nsome text", "UsageError", "has no text parameter"),
        ("%%wiro run wiro/slow --no-wait --save out\nx", "UsageError", "--no-wait returns before"),
        ("%wiro modles", "UsageError", "Did you mean 'models'?"),
        ("%wiro upload /no/such/file.png", "UsageError", "no file"),
    ],
)
def test_errors_are_short(ip: Any, emu_env: Any, cell: str, error: str, fragment: str) -> None:
    result, cap = run(ip, cell)
    assert type(result.error_in_exec).__name__ == error
    assert fragment in cap.stdout + cap.stderr
    assert_short_error(cap, emu_env.api_key)


def test_missing_key_says_how_to_fix_it(ip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WIRO_API_KEY")
    result, cap = run(ip, "%%wiro run wiro/text-to-image\nx")
    assert type(result.error_in_exec).__name__ == "AuthenticationError"
    assert "%wiro login" in cap.stdout and "%wiro emulator start" in cap.stdout
    result, cap = run(ip, "%wiro models")
    assert type(result.error_in_exec).__name__ == "AuthenticationError"


def test_line_run_is_a_cell_without_body(ip: Any) -> None:
    result, cap = run(ip, "%wiro run wiro/text-to-image prompt='a fox' -o lr")
    assert result.success, cap.stderr
    assert ip.user_ns["lr"].ok and ip.user_ns["_"] is ip.user_ns["lr"]
    assert len(wiro_outputs(cap)) == 1


def test_models_info_and_completion(ip: Any) -> None:
    from IPython.core.completer import provisionalcompleter

    from wiro_jupyter.magics import _complete

    _complete.KNOWN_SLUGS.clear()
    _complete.KNOWN_MODELS.clear()

    def complete(code: str) -> list[str]:
        with provisionalcompleter():
            return [c.text for c in ip.Completer.completions(code, len(code))]

    assert {"models", "info", "emulator", "login"} <= set(complete("%wiro "))
    assert complete("%wiro mo") == ["models"]
    assert "wiro/text-to-image" not in complete("%wiro info wiro/te")  # not fetched yet
    result, _ = run(ip, "found = %wiro models image")
    assert result.success and ip.user_ns["found"]
    assert all("image" in (m.slug + m.title).lower() for m in ip.user_ns["found"])
    result, _ = run(ip, "cats = %wiro models --category llm")
    assert [m.slug for m in ip.user_ns["cats"]] == ["wiro/chat-llm"]
    result, _ = run(ip, "%wiro models")
    assert result.success
    assert "wiro/text-to-image" in complete("%wiro info wiro/te")
    assert "wiro/text-to-image" in complete("%%wiro run wiro/te")
    assert "wiro/slow" in complete("%%wiro wiro/sl")
    assert complete("%wiro models --ca")[-1] == "--category"
    assert "stop" in complete("%wiro emulator st")
    result, _ = run(ip, "m = %wiro info wiro/text-to-image")
    assert [p.id for p in ip.user_ns["m"].parameters][:3] == ["prompt", "negativePrompt", "width"]
    assert {"prompt=", "width="} <= set(complete("%%wiro run wiro/text-to-image "))
    assert "width=" in complete("%%wiro run wiro/text-to-image wi")
    assert "--no-wait" in complete("%%wiro run wiro/text-to-image --no")
    assert "seed=" in complete("%wiro form wiro/text-to-image se")


def test_task_cancel_kill_tasks_recover(ip: Any, emu_env: Any) -> None:
    result, cap = run(ip, "%%wiro run wiro/text-to-image -o done\nfor the journal")
    done = ip.user_ns["done"]
    result, _ = run(ip, "t1 = %wiro task {done.id}\nt2 = %wiro task {done.token}")
    assert result.success and ip.user_ns["t1"].ok and ip.user_ns["t2"].id == done.id
    # a Task shown as a value carries the provenance too (the formatter the extension registers)
    data, metadata = ip.display_formatter.format(ip.user_ns["t1"])
    assert metadata["wiro"]["task_id"] == done.id and "text/html" in data
    # cancel (queued) and kill (running)
    emu_env.pause_queue()
    run(ip, "%%wiro run wiro/text-to-image --no-wait -o q\nqueued")
    q = ip.user_ns["q"]
    result, cap = run(ip, "%wiro cancel {q.token}")
    assert result.success and "cancel" in cap.stdout
    assert emu_env.wait_task(q.id, timeout=10).status == "task_cancel"
    emu_env.resume_queue()
    run(ip, "%wiro run wiro/slow seconds=60 --no-wait -o s")
    s = ip.user_ns["s"]
    emu_env.wait_task(s.id, timeout=10, statuses=("task_start",))
    result, cap = run(ip, "%wiro kill {s.id}")
    assert result.success and "stop" in cap.stdout
    assert emu_env.wait_task(s.id, timeout=10).status == "task_cancel"
    # the journal and recovery
    result, _ = run(ip, "j = %wiro tasks -n 10")
    ids = [e.task_id for e in ip.user_ns["j"]]
    assert done.id in ids and q.id in ids and s.id in ids
    result, _ = run(ip, "j2 = %wiro tasks --model wiro/slow")
    assert {e.model for e in ip.user_ns["j2"]} == {"wiro/slow"}
    result, cap = run(ip, "r = %wiro recover {done.id}")
    assert result.success, cap.stderr
    assert ip.user_ns["r"].ok and [o.name for o in ip.user_ns["r"].files] == ["0.png"]


def test_upload(ip: Any, tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "in.png"
    Image.new("RGB", (8, 8), "red").save(path)
    result, cap = run(ip, f"up = %wiro upload '{path}'")
    assert result.success, cap.stderr
    assert ip.user_ns["up"].url.startswith("http") and ip.user_ns["up"].name == "in.png"


def test_login_keeps_the_key_for_the_session_and_stores_it_owner_only(
    ip: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, emu_env: Any
) -> None:
    from wiro_jupyter import _credentials as _config_store
    from wiro_jupyter.magics import _account

    answers = iter([emu_env.signature_key, emu_env.signature_secret])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr("builtins.input", lambda prompt="": "y")
    monkeypatch.delenv("WIRO_API_KEY")
    monkeypatch.delenv("WIRO_API_SECRET", raising=False)
    result, cap = run(ip, "%wiro login")
    assert result.success, cap.stderr
    assert os.environ["WIRO_API_KEY"] == emu_env.signature_key
    assert os.environ["WIRO_API_SECRET"] == emu_env.signature_secret
    assert "signature authentication" in cap.stdout
    for secret in (emu_env.signature_key, emu_env.signature_secret):
        assert secret not in cap.stdout + cap.stderr
    path = _config_store.credentials_path()
    assert path == tmp_path / "xdg" / "wiro-jupyter" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"api_key": emu_env.signature_key, "api_secret": emu_env.signature_secret}
    # signed requests work against the emulator's signature project
    result, cap = run(ip, "%%wiro run wiro/text-to-image -o signed\nsigned")
    assert result.success and ip.user_ns["signed"].ok, cap.stderr
    # %wiro config masks both
    result, cap = run(ip, "%wiro config")
    shown = json.dumps(cap.outputs[0].data)
    assert "signature" in shown and "credentials file" in shown and "(present)" in shown
    assert emu_env.signature_key not in shown and emu_env.signature_secret not in shown
    # a new session without WIRO_API_KEY reads the file at %load_ext
    monkeypatch.delenv("WIRO_API_KEY")
    monkeypatch.delenv("WIRO_API_SECRET")
    _account.credentials_from_file()
    assert os.environ["WIRO_API_KEY"] == emu_env.signature_key
    assert str(path) in _account.STATE.key_source
    # group/other-readable files still work but warn
    path.chmod(0o644)
    monkeypatch.delenv("WIRO_API_KEY")
    result, cap = run(ip, "%reload_ext wiro_jupyter")
    assert "chmod 600" in cap.stderr and os.environ["WIRO_API_KEY"] == emu_env.signature_key
    # logout --forget
    result, cap = run(ip, "%wiro logout --forget")
    assert "WIRO_API_KEY" not in os.environ and not path.exists()


def test_login_without_storing(ip: Any, monkeypatch: pytest.MonkeyPatch, emu_env: Any) -> None:
    from wiro_jupyter import _credentials as _config_store

    answers = iter([emu_env.api_key, ""])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr("builtins.input", lambda prompt="": "")  # the default is No
    result, cap = run(ip, "%wiro login")
    assert result.success and "api-key authentication" in cap.stdout
    assert "WIRO_API_SECRET" not in os.environ
    assert not _config_store.credentials_path().exists()
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "")
    result, cap = run(ip, "%wiro login --no-store")
    assert isinstance(result.error_in_exec, UsageError) and "No API key entered" in cap.stderr


def test_config_masks_secrets(ip: Any, emu_env: Any) -> None:
    result, cap = run(ip, "%wiro config")
    assert result.success
    [shown] = cap.outputs
    text = shown.data["text/plain"]
    for label in ("API URL", "socket URL", "authentication", "API key", "API secret", "journal", "emulator"):
        assert label in text
    assert emu_env.api_url in text and "api-key" in text and f"wi…{emu_env.api_key[-2:]}" in text
    assert emu_env.api_key not in json.dumps(shown.data)


def test_emulator_start_and_stop_restore_the_environment(ip: Any, monkeypatch: pytest.MonkeyPatch, emu_env: Any) -> None:
    from wiro_jupyter.magics._account import _ENV_NAMES

    for name in _ENV_NAMES:  # whatever happens, the test's environment comes back
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    before = emu_env.api_url
    result, cap = run(ip, "%wiro emulator start --delay 0")
    assert result.success, cap.stderr
    notice = cap.outputs[0].data
    assert "synthetic" in notice["text/plain"].lower() and "synthetic" in notice["text/html"]
    assert os.environ["WIRO_API_URL"] != before
    result, cap = run(ip, "%wiro emulator status")
    assert "runs at" in cap.stdout
    result, cap = run(ip, "%%wiro run wiro/text-to-image -o local\nlocal")
    assert result.success and ip.user_ns["local"].ok
    result, cap = run(ip, "%wiro config")
    assert "the local emulator" in cap.outputs[0].data["text/plain"]
    result, cap = run(ip, "%wiro emulator stop")
    assert result.success and "Stopped the local emulator" in cap.stdout
    assert os.environ["WIRO_API_URL"] == before
    result, cap = run(ip, "%wiro emulator stop")
    assert "not running" in cap.stdout


def test_help_documents_everything(ip: Any) -> None:
    doc = ip.find_line_magic("wiro").__doc__
    assert doc == ip.find_cell_magic("wiro").__doc__
    for needle in (
        "{{",
        "}}",
        "{In[3]}",
        "{Out[3]}",
        "-o VAR",
        "--no-wait",
        "--form",
        "--save DIR",
        "--timeout",
        "%wiro models",
        "%wiro info",
        "%wiro form",
        "%wiro task",
        "%wiro cancel",
        "%wiro kill",
        "%wiro tasks",
        "%wiro recover",
        "%wiro upload",
        "%wiro login",
        "%wiro config",
        "%wiro emulator",
        "metadata",
        "Cancel",
    ):
        assert needle in doc, needle
    result, cap = run(ip, "%wiro")
    assert result.success and "%%wiro run OWNER/MODEL" in cap.stdout


def test_the_transformer_and_the_awaited_path(ip: Any) -> None:
    cell = "%%wiro run wiro/text-to-image -o aw\na 'quoted' body\n"
    assert "run_cell_magic" in ip.transform_cell(cell)  # a plain shell is not a kernel: blocking path
    _transform.FORCE_AWAIT = True
    rewritten = ip.transform_cell(cell)
    assert rewritten.startswith("await __import__('wiro_jupyter.magics._transform'")
    assert "run_async_cell('wiro', 'run wiro/text-to-image -o aw', \"a 'quoted' body\\n\")" in rewritten
    assert "pinfo" in ip.transform_cell("%%wiro?\n")  # help stays help
    assert "run_cell_magic('time'" in ip.transform_cell("%%time\nx = 1\n")
    # IPython's asyncio runner runs the awaited cell: same result, no second display
    result, cap = run(ip, cell)
    assert result.success, cap.stderr
    assert ip.user_ns["_"] is ip.user_ns["aw"] and result.result is ip.user_ns["aw"]
    assert len(wiro_outputs(cap)) == 1 and cap.stdout == ""
    result, cap = run(ip, "%%wiro run wiro/always-fails\nx")
    assert type(result.error_in_exec).__name__ == "TaskFailedError"
    assert_short_error(cap)


def test_plugins_register_async_cells(ip: Any) -> None:
    """The contract `_wchat.py` uses: a handler per cell magic, awaited where possible."""
    seen: list[tuple[str, str]] = []

    async def probe(shell: Any, line: str, body: str) -> str:
        seen.append((line, body))
        return f"value:{line}"

    def probe_magic(line: str, cell: str) -> None:  # the blocking path
        _transform.publish_result(ip, f"blocking:{line}")

    ip.register_magic_function(probe_magic, "cell", "probe")
    _transform.register_async_cell("probe", probe)
    try:
        result, _ = run(ip, "%%probe hello\nbody")
        assert result.success and ip.user_ns["_"] == "blocking:hello" and not seen
        _transform.FORCE_AWAIT = True
        result, cap = run(ip, "%%probe hello\nbody")
        assert result.success and ip.user_ns["_"] == "value:hello" and seen == [("hello", "body\n")]
        assert result.result == "value:hello" and cap.stdout == ""
    finally:
        _transform.unregister_async_cell("probe")
        ip.magics_manager.magics["cell"].pop("probe", None)


def test_reload_and_unload(ip: Any) -> None:
    def marks() -> int:
        return sum(1 for t in ip.input_transformers_cleanup if getattr(t, "_wiro_async_cell_transformer", False))

    assert marks() == 1
    run(ip, "%reload_ext wiro_jupyter")
    run(ip, "%load_ext wiro_jupyter")  # IPython says it is loaded already; nothing doubles
    assert marks() == 1
    chain = ip.Completer.custom_completers.strs["%wiro"]
    assert len(list(chain)) == 1
    result, _ = run(ip, "%wiro tasks -n 1")
    assert result.success
    run(ip, "%unload_ext wiro_jupyter")
    assert marks() == 0 and ip.find_line_magic("wiro") is None and ip.find_cell_magic("wiro") is None
    assert "%wiro" not in ip.Completer.custom_completers.strs and "wiro" not in _transform.ASYNC_CELL_HANDLERS
    run(ip, "%load_ext wiro_jupyter")
    assert marks() == 1 and ip.find_line_magic("wiro") is not None


def test_credentials_store_edge_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wiro_jupyter import _credentials as _config_store

    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _config_store.credentials_path() == tmp_path / "home" / ".config" / "wiro-jupyter" / "credentials.json"
    assert _config_store.load_credentials() == ({}, None)
    path = _config_store.save_credentials("k" * 20)
    assert _config_store.load_credentials() == ({"api_key": "k" * 20}, None)
    path.write_text("{not json")
    found, warning = _config_store.load_credentials()
    assert found == {} and warning and "not valid JSON" in warning
    path.write_text("{}")
    assert "no api_key" in (_config_store.load_credentials()[1] or "")
    assert _config_store.delete_credentials() and not _config_store.delete_credentials()


# ============================================================================ kernels


@pytest.fixture(scope="module")
def kernel(emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    """One kernel, with the extension loaded, for the tests of this module (a kernel takes seconds to start)."""
    home = tmp_path_factory.mktemp("kernel")
    with running_kernel(kernel_env(emulator, home), home) as started:
        yield started


def _collect(kc: Any, msg_ids: set[str], timeout: float = 30.0) -> list[dict[str, Any]]:
    """iopub messages (in arrival order) until every execution in `msg_ids` is idle."""
    messages: list[dict[str, Any]] = []
    idle: set[str] = set()
    deadline = time.monotonic() + timeout
    while idle != msg_ids:
        try:
            msg = kc.get_iopub_msg(timeout=max(0.05, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"not idle within {timeout} s: {[m['msg_type'] for m in messages]}") from None
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            idle.add(msg["parent_header"].get("msg_id", ""))
        idle &= msg_ids
    return messages


def _execute(kc: Any, code: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    msg_id = kc.execute(code)
    return [m for m in _collect(kc, {msg_id}, timeout) if m["parent_header"].get("msg_id") == msg_id]


def _of(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m["content"] for m in messages if m["msg_type"] == kind]


def _wait_for(kc: Any, predicate: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Read iopub until `predicate(msg)`; return everything read (bounded)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=max(0.05, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"not seen within {timeout} s: {[m['msg_type'] for m in seen]}") from None
        seen.append(msg)
        if msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        if predicate(msg):
            return seen


def test_kernel_awaited_cell_result_display_and_provenance(kernel: Kernel, emulator: Any) -> None:
    _, kc = kernel
    out = _execute(kc, "%%wiro run wiro/text-to-image width=512 -o pic\na harbour at night")
    assert not _of(out, "error"), _of(out, "error")
    [live] = _of(out, "display_data")
    assert "application/vnd.jupyter.widget-view+json" in live["data"]  # the TaskView
    assert live["metadata"]["wiro"]["model"] == "wiro/text-to-image"
    [final] = _of(out, "update_display_data")
    assert final["transient"]["display_id"] == live["transient"]["display_id"]
    assert "image/png" in final["data"] and "text/html" in final["data"]
    assert "application/vnd.jupyter.widget-view+json" not in final["data"]  # static once nothing is live
    meta = final["metadata"]["wiro"]
    assert meta["parameters"] == {"prompt": "a harbour at night", "width": 512}
    assert meta["status"] == "task_postprocess_end" and "elapsed_s" in meta and meta["cost"] == pytest.approx(0.02)
    assert not _of(out, "execute_result")  # shown once, by the magic
    out = _execute(kc, "print(type(_).__name__, _ is pic, Out[max(Out)] is pic, pic.ok)")
    assert "".join(c["text"] for c in _of(out, "stream")).split() == ["Task", "True", "True", "True"]
    serialized = json.dumps([m["content"] for m in out])
    assert emulator.api_key not in serialized


def test_kernel_cancel_button_works_while_the_cell_awaits(kernel: Kernel, emu: Any) -> None:
    """The status bar's Cancel (a comm message) is handled during an awaited %%wiro cell; the next cell waits."""
    _, kc = kernel
    emu.pause_queue()  # the task stays queued: Cancel is the button for that
    # (stop_on_error=False: the cancelled cell fails, and ipykernel would otherwise skip the queued next cell)
    first = kc.execute("%%wiro run wiro/text-to-image -o queued\nwaiting in the queue", stop_on_error=False)
    bar: dict[str, str] = {}

    def bar_opened(msg: dict[str, Any]) -> bool:
        content = msg["content"]
        if msg["msg_type"] == "comm_open" and content["data"]["state"].get("_anywidget_id", "").endswith("StatusBar"):
            bar["comm"] = content["comm_id"]
        return msg["msg_type"] == "display_data" and msg["parent_header"].get("msg_id") == first

    seen = _wait_for(kc, bar_opened)
    task_id = next(m["content"]["metadata"]["wiro"]["task_id"] for m in seen if m["msg_type"] == "display_data")
    second = kc.execute("print('second cell ran')")
    click = kc.session.msg("comm_msg", {"comm_id": bar["comm"], "data": {"method": "custom", "content": {"action": "cancel"}}})
    clicked = time.monotonic()
    kc.shell_channel.send(click)
    out = _collect(kc, {first, second}, timeout=20)
    elapsed = time.monotonic() - clicked
    assert emu.wait_task(task_id, timeout=5).status == "task_cancel"
    errors = [m["content"] for m in out if m["msg_type"] == "error" and m["parent_header"]["msg_id"] == first]
    assert [e["ename"] for e in errors] == ["TaskCancelledError"], errors
    order = [
        (m["parent_header"].get("msg_id"), m["msg_type"], m["content"].get("execution_state"))
        for m in out
        if m["msg_type"] in ("status", "execute_input")
    ]
    first_idle = order.index((first, "status", "idle"))
    second_input = order.index((second, "execute_input", None))
    assert first_idle < second_input, order  # the kernel held the next cell back
    assert "second cell ran" in "".join(m["content"].get("text", "") for m in out if m["parent_header"].get("msg_id") == second)
    assert elapsed < 10


def test_kernel_interrupt_stops_the_paid_task(kernel: Kernel, emulator: Any) -> None:
    km, kc = kernel
    msg_id = kc.execute("%%wiro run wiro/slow seconds=60 -o slow\n")
    seen = _wait_for(kc, lambda m: m["msg_type"] == "display_data" and m["parent_header"].get("msg_id") == msg_id)
    task_id = seen[-1]["content"]["metadata"]["wiro"]["task_id"]
    emulator.wait_task(task_id, timeout=10, statuses=("task_start",))
    interrupted = time.monotonic()
    km.interrupt_kernel()
    out = [m for m in _collect(kc, {msg_id}, timeout=20) if m["parent_header"].get("msg_id") == msg_id]
    took = time.monotonic() - interrupted
    assert emulator.wait_task(task_id, timeout=5).status == "task_cancel"
    [error] = _of(out, "error")
    assert error["ename"] == "TaskCancelledError"
    assert "was stopped on the server" in error["evalue"]
    assert "wiro_jupyter/" not in "".join(error["traceback"])
    stderr = "".join(c["text"] for c in _of(out, "stream") if c["name"] == "stderr")
    assert "killed on the server" in stderr
    assert took < 5, f"the interrupt took {took:.1f} s"
    [final] = _of(out, "update_display_data")
    assert final["metadata"]["wiro"]["status"] == "task_cancel"
    out = _execute(kc, "print(slow.status)")
    assert "".join(c["text"] for c in _of(out, "stream")).strip() == "task_cancel"


@pytest.mark.parametrize(
    ("code", "ename"),
    [
        ("%%wiro run wiro/text-to-image --bogus\nx", "UsageError"),  # awaited path
        ("%wiro bogus", "UsageError"),  # line magic
        ('%%wiro run wiro/text-to-image\n{"prompt": ', "UsageError"),
        ("%%wiro run wiro/nope\nx", "NotFoundError"),
    ],
)
def test_kernel_errors_fail_the_cell(kernel: Kernel, code: str, ename: str) -> None:
    """What nbclient/papermill look at to stop a pipeline: the execute_reply's status."""
    _, kc = kernel
    reply = kc.execute_interactive(code, timeout=30, output_hook=lambda msg: None)
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == ename
    assert "wiro_jupyter/" not in "".join(reply["content"]["traceback"])


def test_kernel_no_wait_keeps_the_kernel_free(kernel: Kernel, emulator: Any) -> None:
    _, kc = kernel
    out = _execute(kc, "%%wiro run wiro/slow seconds=1 --no-wait -o bg\n")
    assert not _of(out, "error")
    out = _execute(kc, "print(bg.done)\nawait bg.wait_async(30)\nprint(bg.ok)")
    assert "".join(c["text"] for c in _of(out, "stream")).split() == ["False", "True"]


def _notebook(*cells: str) -> Any:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_nbclient_failing_cell_stops_the_pipeline(emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    for name, value in kernel_env(emulator, tmp_path).items():
        monkeypatch.setenv(name, value)
    nb = _notebook("%load_ext wiro_jupyter", "%%wiro run wiro/always-fails\nhello", "print('not reached')")
    client = NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError) as info:
        client.execute()
    assert "TaskFailedError" in str(info.value)
    [error] = [o for o in nb.cells[1].outputs if o.output_type == "error"]
    assert error.ename == "TaskFailedError" and len(error.traceback) == 1
    assert "wiro_jupyter/" not in error.traceback[0]
    assert nb.cells[2].outputs == [] and nb.cells[2].execution_count is None


def test_nbclient_errors_are_short_and_the_next_cell_works(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbclient import NotebookClient

    for name, value in kernel_env(emulator, tmp_path).items():
        monkeypatch.setenv(name, value)
    nb = _notebook(
        "%load_ext wiro_jupyter",
        "%%wiro run wiro/no-such-model\nx",  # bad slug
        "%%wiro run wiro/text-to-image --bogus\nx",  # unknown option
        '%%wiro run wiro/text-to-image\n{"prompt": }',  # malformed JSON
        "%%wiro run wiro/text-to-image style=pastel\nx",  # a value the model refuses
        "import os\nkey = os.environ.pop('WIRO_API_KEY')",
        "%%wiro run wiro/text-to-image\nx",  # missing key
        "os.environ['WIRO_API_KEY'] = key",
        "%%wiro run wiro/text-to-image -o ok\nthe next cell works",
        "print(ok.ok)",
    )
    client = NotebookClient(
        nb, timeout=60, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [(i, o) for i, c in enumerate(nb.cells) for o in c.outputs if o.output_type == "error"]
    assert [(i, o.ename) for i, o in errors] == [(1, "NotFoundError"), (4, "ValidationError"), (6, "AuthenticationError")]
    for _, error in errors:
        text = "\n".join(error.traceback)
        assert "wiro_jupyter/" not in text and "Traceback (most recent call last)" not in text, text
    # IPython prints a UsageError as one stderr line (the cell still fails: the reply's status is "error")
    for index, fragment in ((2, "unrecognized arguments: --bogus"), (3, "not valid JSON")):
        [stream] = nb.cells[index].outputs
        assert stream.name == "stderr" and stream.text.startswith("UsageError: ") and fragment in stream.text
    assert "True" in nb.cells[9].outputs[0].text
    assert emulator.api_key not in json.dumps(nb)
