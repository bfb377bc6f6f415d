"""Figure 7, forms: building a `RunForm` for a synthetic 60-parameter model (every parameter type, in groups,
some advanced, some required; made here, no server), against building 60 plain `ipywidgets.Text`. Rounds of
the two alternate, so both see the same machine load; medians.

Outside a kernel, widgets open no real comm (ipywidgets uses a no-op comm), so this measures the Python
side: widget construction, trait validation and the form's own logic. The full run also times the same
builds inside a real IPython kernel (jupyter_client's KernelManager, cwd = the repository), where every
widget model opens a comm (one `comm_open` message with its whole state).
"""

from __future__ import annotations

import gc
import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import ipywidgets

from wiro_jupyter._models import Model, Option, Parameter
from wiro_jupyter.widgets import RunForm

from _harness import REPO, Row, Server, Target, median

TYPES = (
    "text",
    "textarea",
    "select",
    "range",
    "number",
    "float",
    "checkbox",
    "fileinput",
    "multifileinput",
    "combinefileinput",
    "selectwithcover",
    "range",
)


def synthetic_model(count: int = 60) -> Model:
    """A model with `count` parameters of every type, in 4 groups, some advanced, some required."""
    params = []
    for i in range(count):
        kind = TYPES[i % len(TYPES)]
        p = Parameter(
            id=f"p{i}_{kind}",
            type=kind,
            label=f"Parameter {i} ({kind})",
            group=f"Group {i % 4}",
            required=i % 7 == 0,
            description=f"Help text for parameter {i}." if i % 2 else "",
            placeholder="…",
            advanced=i % 5 == 4,
        )
        if kind in ("select", "selectwithcover"):
            p.options = [Option(value=f"v{k}", label=f"Option {k}") for k in range(6)]
            p.default = "v2"
        elif kind == "range":
            p.min, p.max, p.step, p.default = 0, 100, 1, 50
        elif kind == "float":
            p.min, p.max, p.step, p.default = 0.0, 1.0, 0.05, 0.5
        elif kind == "number":
            p.min, p.max, p.default = 0, 999999, 42
        elif kind == "checkbox":
            p.default = "false"
        elif kind in ("multifileinput", "combinefileinput"):
            p.max_files = 4
        params.append(p)
    return Model(slug="bench/sixty-parameters", title="Sixty parameters", description="Synthetic", parameters=params)


def measure(build: Callable[[], Any], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        result = build()
        times.append((time.perf_counter() - start) * 1000)
        _close(result)
    return times


def _close(result: Any) -> None:
    # Forget every widget of the round, so the global registry does not grow across rounds.
    del result
    ipywidgets.Widget.close_all()


def widget_models(build: Callable[[], Any]) -> int:
    """How many widget models (comms, in a kernel) one `build()` creates."""
    from ipywidgets.widgets.widget import _instances

    ipywidgets.Widget.close_all()
    result = build()
    count = len(_instances)
    _close(result)
    return count


# Runs inside the kernel: prints one JSON line with the timings (ms) and the model counts.
KERNEL_CELL = """
import json, sys
sys.path.insert(0, "benchmarks")
import ipywidgets
import bench_form
from wiro_jupyter.widgets import RunForm
model = bench_form.synthetic_model({params})
form = lambda: RunForm(model)
base = lambda: [ipywidgets.Text() for _ in range({params})]
form_ms, base_ms = bench_form.interleaved(form, base, {rounds})
print("BENCH " + json.dumps({{"form": form_ms, "base": base_ms, "form_models": bench_form.widget_models(form),
                             "base_models": bench_form.widget_models(base)}}))
"""


def in_kernel(rounds: int, params: int, timeout: float = 300) -> dict[str, Any]:
    """Time the builds inside a real kernel; its stdout comes back as iopub `stream` messages."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(REPO), stderr=subprocess.DEVNULL)  # its TCP/debugger warnings; errors come on iopub
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        msg_id = kc.execute(KERNEL_CELL.format(rounds=rounds, params=params))
        out, error = "", ""
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the kernel had not finished the builds after {timeout:g} s")
            msg = kc.get_iopub_msg(timeout=max(1.0, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out += content["text"]
            elif kind == "error":
                error = "\n".join(content["traceback"])
            elif kind == "status" and content["execution_state"] == "idle":
                break
        line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
        if line is None:
            raise RuntimeError(f"the kernel printed no result:\n{out}\n{error}")
        return json.loads(line[len("BENCH ") :])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def interleaved(form: Callable[[], Any], base: Callable[[], Any], rounds: int) -> tuple[list[float], list[float]]:
    measure(form, 3)  # warm-up: imports, traitlets' class setup, the ES modules read from disk
    measure(base, 3)
    form_ms: list[float] = []
    base_ms: list[float] = []
    for _ in range(rounds):
        form_ms += measure(form, 1)
        base_ms += measure(base, 1)
    return form_ms, base_ms


def run(server: Server, quick: bool) -> list[Row]:
    params, rounds = 60, 5 if quick else 50
    model = synthetic_model(params)
    form_ms, base_ms = interleaved(lambda: RunForm(model), lambda: [ipywidgets.Text() for _ in range(params)], rounds)
    models = widget_models(lambda: RunForm(model))
    rows = [Row(f"7 form, {params} parameters: build", median(form_ms), median(base_ms), "ms", f"{params} Text",
                Target(ratio=1.5, limit=100), f"median of {rounds} rounds; {models} widget models per form")]
    if not quick:
        result = in_kernel(rounds, params)
        rows.append(Row("7 form, in a kernel: build", median(result["form"]), median(result["base"]), "ms",
                        f"{params} Text", Target(ratio=1.5, limit=100),
                        f"{result['form_models']} widget models (comms) per form, {result['base_models']} for the baseline"))
    return rows
