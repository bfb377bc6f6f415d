"""How long does building a RunForm for a 60-parameter model take?

Builds `RunForm` for a synthetic model (Model/Parameter objects made here: no server) N times and
prints the mean and median build time in ms, next to the baseline of building the same number of
plain `ipywidgets.Text` widgets (60 per round) in the same process, and the ratio of the two.

    python benchmarks/bench_form.py [--rounds 50] [--params 60]

Outside a kernel, widgets open no real comm (ipywidgets uses a no-op comm), so this measures the
Python side: widget construction, trait validation and the form's own logic.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import ipywidgets

from wiro_jupyter._models import Model, Option, Parameter
from wiro_jupyter.widgets import RunForm

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--params", type=int, default=60)
    args = parser.parse_args(argv)

    model = synthetic_model(args.params)
    # Warm up: imports, traitlets' class setup, the ES modules read from disk.
    measure(lambda: RunForm(model), 3)
    measure(lambda: [ipywidgets.Text() for _ in range(args.params)], 3)

    form_ms = measure(lambda: RunForm(model), args.rounds)
    base_ms = measure(lambda: [ipywidgets.Text() for _ in range(args.params)], args.rounds)
    from ipywidgets.widgets.widget import _instances

    sample = RunForm(model)
    widgets = len(_instances)
    ipywidgets.Widget.close_all()

    print(f"RunForm, {args.params} parameters, {args.rounds} rounds ({widgets} widget models per form)")
    print(
        f"  form:      mean {statistics.mean(form_ms):7.2f} ms   median {statistics.median(form_ms):7.2f} ms   "
        f"max {max(form_ms):7.2f} ms"
    )
    print(
        f"  baseline:  mean {statistics.mean(base_ms):7.2f} ms   median {statistics.median(base_ms):7.2f} ms   "
        f"({args.params} plain ipywidgets.Text)"
    )
    print(f"  ratio form/baseline (median): {statistics.median(form_ms) / statistics.median(base_ms):.2f}x")
    print(f"  fields: {len(sample.fields)}; budget: well under 100 ms per form")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
