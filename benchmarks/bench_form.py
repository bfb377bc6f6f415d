"""How long does building a RunForm for a 60-parameter model take?

Builds `RunForm` for a synthetic model (Model/Parameter objects made here: no server) N times and
prints the mean and median build time in ms, next to the baseline of building the same number of
plain `ipywidgets.Text` widgets (60 per round) in the same process, and the ratio of the two.

    python benchmarks/bench_form.py [--rounds 50] [--params 60] [--kernel]

Outside a kernel, widgets open no real comm (ipywidgets uses a no-op comm), so this measures the
Python side: widget construction, trait validation and the form's own logic. `--kernel` also starts a
real IPython kernel (jupyter_client's KernelManager, cwd = the repository) and times the same builds
inside it, where every widget model opens a comm (one `comm_open` message with its whole state).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets

from wiro_jupyter._models import Model, Option, Parameter
from wiro_jupyter.widgets import RunForm

REPO = Path(__file__).resolve().parents[1]

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
import gc, json, sys, time
sys.path.insert(0, "benchmarks")
import ipywidgets
import bench_form
from wiro_jupyter.widgets import RunForm
model = bench_form.synthetic_model({params})
form = lambda: RunForm(model)
base = lambda: [ipywidgets.Text() for _ in range({params})]
bench_form.measure(form, 3)
bench_form.measure(base, 3)
form_ms, base_ms = [], []
for _ in range({rounds}):  # interleaved: both see the same kernel load
    form_ms += bench_form.measure(form, 1)
    base_ms += bench_form.measure(base, 1)
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


def report(title: str, form_ms: list[float], base_ms: list[float], params: int) -> None:
    print(title)
    print(
        f"  form:      mean {statistics.mean(form_ms):7.2f} ms   median {statistics.median(form_ms):7.2f} ms   "
        f"max {max(form_ms):7.2f} ms"
    )
    print(
        f"  baseline:  mean {statistics.mean(base_ms):7.2f} ms   median {statistics.median(base_ms):7.2f} ms   "
        f"max {max(base_ms):7.2f} ms   ({params} plain ipywidgets.Text)"
    )
    print(f"  ratio form/baseline (median): {statistics.median(form_ms) / statistics.median(base_ms):.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--params", type=int, default=60)
    parser.add_argument("--kernel", action="store_true", help="also time the builds inside a real kernel")
    args = parser.parse_args(argv)

    model = synthetic_model(args.params)
    # Warm up: imports, traitlets' class setup, the ES modules read from disk.
    measure(lambda: RunForm(model), 3)
    measure(lambda: [ipywidgets.Text() for _ in range(args.params)], 3)

    form_ms = measure(lambda: RunForm(model), args.rounds)
    base_ms = measure(lambda: [ipywidgets.Text() for _ in range(args.params)], args.rounds)
    sample = RunForm(model)
    models = widget_models(lambda: RunForm(model))
    fields = len(sample.fields)
    ipywidgets.Widget.close_all()

    report(
        f"RunForm, {args.params} parameters, {args.rounds} rounds, no kernel "
        f"({models} widget models per form, {models / args.params:.2f} per parameter)",
        form_ms,
        base_ms,
        args.params,
    )
    if args.kernel:
        result = in_kernel(args.rounds, args.params)
        report(
            f"In a kernel ({result['form_models']} widget models per form, "
            f"{result['form_models'] / args.params:.2f} per parameter; baseline {result['base_models']})",
            result["form"],
            result["base"],
            args.params,
        )
    print(f"  fields: {fields}; budget: well under 100 ms per form")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
