"""Before anything is sent: a batch's inputs as parameters, each item checked, its name and its price.

Pure functions, no network: the runner (`_runner.py`) calls them once, up front, so an invalid item
fails alone before the first Run goes out and the budget is known before it is spent.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from .._exceptions import ValidationError
from .._fields import to_number
from .._params import prepare_run

if TYPE_CHECKING:
    import pandas

    from .._models import Model

#: What `batch()` takes: prompts, dicts of parameters, or a pandas DataFrame (a row an item).
BatchInputs: TypeAlias = "Iterable[str | Mapping[str, Any]] | pandas.DataFrame"

# Parameters that say how many files a run makes, for models priced per output (`cpo`).
COUNT_PARAMETERS = ("samples", "maxImages", "numImages", "num_images", "numOutputs", "num_outputs", "batch_size", "batchSize")
# Price methods whose per-run price is known before running; for the others (per second, per token…)
# the runner raises its estimate to the dearest item it has seen (`Plan.estimate` is the floor).
FIXED_PRICE_METHODS = ("", "cpr", "cpo")


@dataclass
class Plan:
    """One valid item, ready to be sent: its parameters (prepared again just before sending, so file
    inputs are not all held in memory at once) and what it may cost."""

    index: int
    params: dict[str, Any] = field(repr=False)
    estimate: float
    resent: bool = False  # sent again after the server showed that a Run with an unknown outcome started nothing


@dataclass
class Table:
    """A batch's inputs: what each item shows as its `input`, its parameters (or why it has none),
    and what `to_pandas()` needs to rebuild the input columns."""

    shown: list[Any]
    params: list[dict[str, Any] | str]  # a str: why the input is not usable
    columns: list[str]
    frame: pandas.DataFrame | None = None


def is_dataframe(value: Any) -> bool:
    """A pandas DataFrame (checked without importing pandas)."""
    return type(value).__name__ == "DataFrame" and type(value).__module__.split(".")[0] == "pandas"


def read_inputs(model: Model, inputs: Any) -> Table:
    """Strings (the model's main text parameter), dicts of parameters, or a pandas DataFrame (a row an
    item, columns are parameters; missing values are left out)."""
    if is_dataframe(inputs):
        frame = inputs
        rows = [{str(k): _plain(v) for k, v in row.items() if not _missing(v)} for row in frame.to_dict(orient="records")]
        return Table(shown=[dict(r) for r in rows], params=list(rows), columns=[str(c) for c in frame.columns], frame=frame)
    if isinstance(inputs, (str, bytes, Mapping)) or not hasattr(inputs, "__iter__"):
        raise ValidationError(
            "A batch takes a list of inputs (prompts, dicts of parameters) or a pandas DataFrame, "
            f"not a {type(inputs).__name__}.",
            hint="Wrap a single prompt in a list: batch(model, ['a prompt']). Nothing was sent.",
        )
    main = model.main_text_parameter
    shown: list[Any] = []
    params: list[dict[str, Any] | str] = []
    columns: dict[str, None] = {}
    for value in inputs:
        shown.append(value)
        if isinstance(value, str):
            if main is None:
                params.append(f"{model.slug} has no text parameter for a plain-text input; give a dict of parameters.")
                continue
            params.append({main.id: value})
        elif isinstance(value, Mapping):
            params.append({str(k): _plain(v) for k, v in value.items()})
        else:
            params.append(f"An input must be a string or a dict of parameters, not a {type(value).__name__}.")
            continue
        columns.update(dict.fromkeys(params[-1]))
    return Table(shown=shown, params=params, columns=list(columns))


def _missing(value: Any) -> bool:
    """A DataFrame's empty cell (NaN, None, NaT, pd.NA)."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT and NA are the values unequal to themselves
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    """A NumPy scalar (what DataFrame cells hold) as the Python number or bool the validation expects."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


def check(model: Model, params: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    """The item's journal-safe parameters (`PreparedRun.summary`); raises ValidationError like `run()`.

    The item's own parameters win over the batch's common ones."""
    return prepare_run(model, {**common, **params}).summary


def batch_name(model: Model, table: Table, summaries: list[dict[str, Any] | None]) -> str:
    """A name that is the same whenever the same model gets the same inputs and common parameters
    (file inputs by content, through the summaries), so calling the batch again resumes it."""
    items = [
        s if s is not None else {"unusable": json.dumps(shown, default=str)}
        for s, shown in zip(summaries, table.shown, strict=True)
    ]
    blob = json.dumps([model.slug.lower(), items], sort_keys=True, default=str, separators=(",", ":"))
    return f"{model.slug}#{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def estimate(model: Model, summary: dict[str, Any]) -> float | None:
    """The most one run of `model` with these parameters is expected to cost, from the catalogue's price
    (`dynamicprice` → `Model.price`) and its per-run approximation (`approximatelycost`): None when the
    model has no price. Per output (`cpo`): times the number of outputs asked for."""
    if model.price is None:
        return None
    price = float(model.price)
    if model.price_method == "cpo":
        price *= _output_count(model, summary)
    approximate = to_number(model.raw.get("approximatelycost"))
    return max(price, float(approximate) if approximate is not None else 0.0)


def _output_count(model: Model, summary: dict[str, Any]) -> int:
    by_id = {p.id: p for p in model.parameters}
    for name in COUNT_PARAMETERS:
        value = summary.get(name, by_id[name].default if name in by_id else None)
        count = to_number(value)
        if count is not None and math.isfinite(count):
            return max(1, math.ceil(count))
    return 1
