"""What a batch gives back: one `BatchItem` per input, in input order, and the `BatchResult` around them.

A result is filled in live by its runner (`_runner.BatchRun`) on the client's event loop, and read from
any thread: a widget, a display, the caller once the batch has ended. Items are only ever updated, never
added or removed, so reading them while the batch runs is safe.

Displays carry model output, which is untrusted: every name, URL and text goes through `_render`
(`escape`, `safe_url`, `data_url`, and `html_bundle`, which sanitises the whole fragment once more).
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import _render
from .._exceptions import WiroError

if TYPE_CHECKING:
    import pandas

    from .._outputs import Output

log = logging.getLogger("wiro_jupyter")

#: An item's status once the batch has ended. While it runs, an item is also `waiting` (not sent yet)
#: or `running` (sent, not finished).
FINAL = ("ok", "failed", "skipped", "cancelled")
#: The columns `to_pandas()` adds after the input's own columns.
RESULT_COLUMNS = ("status", "task_id", "cost", "elapsed", "outputs", "text", "error")
GALLERY_LIMIT = 60  # images shown in a result's display; the rest are counted
TABLE_LIMIT = 50  # items listed in a result's display
THUMBNAIL_PIXELS = 160
THUMBNAIL_SOURCE_LIMIT = 8 * 1024**2  # bigger images are linked, not fetched for a thumbnail


@dataclass(frozen=True)
class BatchProgress:
    """A batch's counts at one moment (what the progress widget and the text bar show)."""

    total: int
    ok: int
    failed: int
    skipped: int
    cancelled: int
    running: int
    waiting: int
    spent: float
    budget: float | None
    limit: int  # tasks in flight allowed right now (lowered when the account's limit is reached)
    concurrency: int  # tasks in flight asked for
    elapsed: float
    throughput: float | None  # items finished per second by this run
    eta: float | None  # seconds until every item has finished, at that pace
    state: str  # running | stopping | done | stopped

    @property
    def finished(self) -> int:
        return self.ok + self.failed + self.skipped + self.cancelled


def progress_line(p: BatchProgress) -> str:
    """'2 failed · 3 running · 23 waiting · $0.2400 of $1 · limit 2 (asked 8)' (a bar shows the rest)."""
    bits = [f"{n} {what}" for what, n in (("failed", p.failed), ("cancelled", p.cancelled), ("skipped", p.skipped)) if n]
    spent = f"${p.spent:.4f}" + (f" of ${p.budget:g}" if p.budget is not None else "")
    bits += [f"{p.running} running", f"{p.waiting} waiting", spent]
    if p.limit < p.concurrency:
        bits.append(f"limit {p.limit} (asked {p.concurrency})")
    return " · ".join(bits)


class RunView(Protocol):
    """What a progress display needs of a running batch (`_runner.BatchRun`), so displays need not know the runner."""

    model: str
    name: str

    @property
    def items(self) -> list[BatchItem]: ...

    @property
    def done(self) -> bool: ...

    def progress(self) -> BatchProgress: ...

    def add_listener(self, listener: Callable[[BatchItem | None], None]) -> None: ...

    def remove_listener(self, listener: Callable[[BatchItem | None], None]) -> None: ...

    def stop(self) -> None: ...


@dataclass(eq=False)
class BatchItem:
    """One input of a batch and what became of it.

    `status`: `ok`, `failed`, `skipped` (never sent: invalid parameters are `failed`, a budget or a Stop
    `skipped`), `cancelled` (its task was stopped); while the batch runs also `waiting` or `running`.
    `error` is one sentence for every status but `ok`. `task` is a `Task` (an `AsyncTask` from
    `AsyncWiro`), or None when the item never ran.
    """

    index: int
    input: Any
    task: Any = None
    status: str = "waiting"
    error: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict, repr=False)  # journal-safe, as sent

    @property
    def cost(self) -> float | None:
        return self.task.cost if self.task is not None else None

    @property
    def elapsed(self) -> float | None:
        return self.task.elapsed if self.task is not None and self.task.done else None

    @property
    def outputs(self) -> list[str]:
        """The URLs of the item's output files."""
        return [o.url for o in self.task.files] if self.task is not None else []

    @property
    def text(self) -> str:
        """An LLM's answer ('' for models that produce files)."""
        return self.task.text if self.task is not None else ""

    def __repr__(self) -> str:
        task = f" task={self.task.id}" if self.task is not None else ""
        error = f" error={self.error[:80]!r}" if self.error else ""
        return f"<BatchItem {self.index} {self.status}{task}{error}>"


class BatchResult:
    """The items of a batch, aligned with its inputs; counts, cost, a table (`to_pandas`), files (`save`).

    Shows as counts and a gallery of the image outputs in a notebook.
    """

    def __init__(
        self,
        model: str,
        name: str,
        items: list[BatchItem],
        *,
        input_columns: list[str],
        rows: list[dict[str, Any]],
        frame: pandas.DataFrame | None = None,
        budget: float | None = None,
    ) -> None:
        self.model = model
        self.name = name
        self.items = items
        self.budget = budget
        self.done = False  # set by the runner once every item has its final status
        self._input_columns = input_columns
        self._rows = rows  # each input as parameters (a text input under the model's main text parameter)
        self._frame = frame  # a DataFrame input, whose index and column types to_pandas() keeps
        self._thumbnails: dict[str, str] = {}

    # -- the items ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[BatchItem]:
        return iter(self.items)

    def __getitem__(self, index: int) -> BatchItem:
        return self.items[index]

    def _with(self, status: str) -> list[BatchItem]:
        return [item for item in self.items if item.status == status]

    @property
    def ok(self) -> list[BatchItem]:
        return self._with("ok")

    @property
    def failed(self) -> list[BatchItem]:
        return self._with("failed")

    @property
    def skipped(self) -> list[BatchItem]:
        return self._with("skipped")

    @property
    def cancelled(self) -> list[BatchItem]:
        return self._with("cancelled")

    @property
    def spent(self) -> float:
        """What the batch's tasks cost, as the server reports it (Task/Detail `totalcost`)."""
        return float(sum(item.cost or 0.0 for item in self.items if item.task is not None and item.task.done))

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((*FINAL, "running", "waiting"), 0)
        for item in self.items:
            counts[item.status] = counts.get(item.status, 0) + 1
        return counts

    def summary(self) -> str:
        """'wiro/text-to-image · 10 items: 8 ok, 1 failed, 1 skipped · $0.1600 of $0.20'."""
        counts = {k: v for k, v in self.counts().items() if v}
        parts = ", ".join(f"{n} {status}" for status, n in counts.items()) or "nothing"
        budget = f" of ${self.budget:g}" if self.budget is not None else ""
        return f"{self.model} · batch {self.name} · {len(self.items)} items: {parts} · ${self.spent:.4f}{budget}"

    def __repr__(self) -> str:
        return f"<BatchResult {self.summary()}>"

    # -- a table ----------------------------------------------------------------------------------
    def to_pandas(self) -> pandas.DataFrame:
        """One row per input, in order: the input's columns, then status, task_id, cost, elapsed,
        outputs (a list of URLs), text and error. An input column named like one of those is renamed
        `input_<name>`. A DataFrame input keeps its index and its columns' types."""
        import pandas as pd

        if self._frame is not None:
            return result_frame(self._frame, self.items)
        inputs = pd.DataFrame.from_records(self._rows, columns=self._input_columns) if self._rows else None
        if inputs is None:
            inputs = pd.DataFrame({c: pd.Series([], dtype="object") for c in self._input_columns})
        return result_frame(inputs, self.items)

    # -- files ------------------------------------------------------------------------------------
    def save(self, directory: str | Path = ".", *, max_bytes: int | None = None) -> list[Path]:
        """Download the outputs of every `ok` item into `directory` as `<index>-<name>` (streamed, safe
        names), and write `batch.json` there: each item's status, task id, error and files. Returns the
        paths of the output files."""
        from .._loop import run_sync

        return run_sync(self._save(Path(directory).expanduser(), max_bytes))

    async def _save(self, directory: Path, max_bytes: int | None) -> list[Path]:
        import asyncio

        from .._outputs import unique_names

        width = len(str(max(len(self.items) - 1, 0)))
        jobs: list[tuple[BatchItem, Output, str]] = []
        for item in self.ok:
            outputs = list(item.task.outputs)
            names = unique_names([f"{item.index:0{width}d}-{o.name}" for o in outputs])
            jobs += [(item, output, name) for output, name in zip(outputs, names, strict=True)]
        slots = asyncio.Semaphore(4)  # a few downloads at a time: flat memory, a fair share of the pool

        async def one(output: Output, name: str) -> Path:
            async with slots:
                kwargs = {"max_bytes": max_bytes} if max_bytes else {}
                return await output.asave(directory, filename=name, **kwargs)

        paths = await asyncio.gather(*(one(output, name) for _, output, name in jobs))
        saved: dict[int, list[str]] = {}
        for (item, _, _), path in zip(jobs, paths, strict=True):
            saved.setdefault(item.index, []).append(path.name)
        directory.mkdir(parents=True, exist_ok=True)
        manifest = {
            "model": self.model,
            "batch": self.name,
            "items": [
                {
                    "index": item.index,
                    "status": item.status,
                    "task_id": item.task.id if item.task is not None else None,
                    "error": item.error,
                    "files": saved.get(item.index, []),
                }
                for item in self.items
            ],
        }
        (directory / "batch.json").write_text(json.dumps(manifest, indent=1, default=str))
        return list(paths)

    # -- display ----------------------------------------------------------------------------------
    def thumbnails(self, limit: int = GALLERY_LIMIT) -> list[tuple[BatchItem, Output, str]]:
        """(item, image output, data: URL of a small thumbnail or '') for the first `limit` images.

        Fetched by the kernel in parallel, once (kept on the result); '' when an image could not be
        fetched or read (then it is linked). Blocks: call it off the package's event loop."""
        images = [(item, o) for item in self.ok for o in item.task.files if o.kind == "image"][:limit]
        missing = [o for _, o in images if o.url not in self._thumbnails]
        if missing:
            with concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="wiro-thumbs") as pool:
                for output, src in zip(missing, pool.map(thumbnail, missing), strict=True):
                    self._thumbnails[output.url] = src
        return [(item, o, self._thumbnails.get(o.url, "")) for item, o in images]

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())  # IPython would otherwise print the repr only

    def text(self) -> str:
        lines = [self.summary()]
        for item in [i for i in self.items if i.status != "ok"][:TABLE_LIMIT]:
            lines.append(f"  #{item.index} {item.status}: {item.error or ''}".rstrip())
        return "\n".join(lines)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return _render.select(_render.html_bundle(self.html(), self.text()), include, exclude)

    def html(self) -> str:
        e = _render.escape
        counts = " · ".join(f"{n} {e(status)}" for status, n in self.counts().items() if n)
        budget = f" of ${self.budget:g}" if self.budget is not None else ""
        head = (
            f"<div><b>{e(self.model)}</b> · batch <code>{e(self.name)}</code> · {len(self.items)} items: {counts} · "
            f"spent ${self.spent:.4f}{budget}</div>"
        )
        images = self.thumbnails()
        shown = len(images)
        total_images = sum(1 for item in self.ok for o in item.task.files if o.kind == "image")
        figures = "".join(_figure(item, output, src) for item, output, src in images)
        more = f"<div>… and {total_images - shown} more images</div>" if total_images > shown else ""
        gallery = f'<div class="wiro-batch-gallery" style="display:flex;flex-wrap:wrap;gap:6px">{figures}</div>{more}'
        return f'<div class="wiro-batch-result">{head}{gallery if images else ""}{self._table_html()}</div>'

    def _table_html(self) -> str:
        e = _render.escape
        rows = []
        for item in self.items[:TABLE_LIMIT]:
            result = item.error or item.text or ", ".join(o.name for o in (item.task.files if item.task else []))
            cost = f"${item.cost:.4f}" if item.cost is not None else ""
            rows.append(
                f"<tr><td>{item.index}</td><td>{e(_excerpt(item.input))}</td><td>{e(item.status)}</td>"
                f"<td>{e(item.task.id if item.task is not None else '')}</td><td>{e(cost)}</td>"
                f"<td>{e(_excerpt(result, 160))}</td></tr>"
            )
        more = (
            f"<div>… and {len(self.items) - TABLE_LIMIT} more items (to_pandas() has them all)</div>"
            if len(self.items) > TABLE_LIMIT
            else ""
        )
        head = "<tr><th>#</th><th>input</th><th>status</th><th>task</th><th>cost</th><th>result</th></tr>"
        return f"<details><summary>items</summary><table>{head}{''.join(rows)}</table>{more}</details>"


def _figure(item: BatchItem, output: Output, src: str) -> str:
    e = _render.escape
    caption = f"#{item.index} {output.name}"
    if src:
        media = f'<img src="{e(src)}" alt="{e(caption)}" title="{e(caption)}" style="max-width:{THUMBNAIL_PIXELS}px">'
    else:
        url = _render.safe_url(output.url)
        media = f'<a href="{e(url)}" target="_blank">{e(output.name)}</a>' if url else e(output.name)
    return f'<figure style="margin:0"><div>{media}</div><figcaption><small>{e(caption)}</small></figcaption></figure>'


def _excerpt(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def thumbnail(output: Output, pixels: int = THUMBNAIL_PIXELS) -> str:
    """A small PNG/JPEG of an image output as a `data:` URL ('' when it cannot be fetched or read)."""
    from PIL import Image

    if output.size is not None and output.size > THUMBNAIL_SOURCE_LIMIT:
        return ""
    try:
        data = output.read(max_bytes=THUMBNAIL_SOURCE_LIMIT)
        with Image.open(io.BytesIO(data)) as image:  # Pillow's decompression-bomb guard stays on
            image.thumbnail((pixels, pixels))
            picture = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
            buffer = io.BytesIO()
            fmt = "PNG" if picture.mode == "RGBA" else "JPEG"
            picture.save(buffer, format=fmt, quality=80)
    except (WiroError, OSError, ValueError, Image.DecompressionBombError) as exc:
        log.info("no thumbnail for %s: %s", output.name, exc)
        return ""
    return _render.data_url(f"image/{fmt.lower()}", buffer.getvalue())


def result_columns(input_columns: Sequence[str]) -> list[str]:
    """The input columns as `to_pandas()` names them (`input_<name>` when one clashes with a result column)."""
    return [f"input_{c}" if str(c) in RESULT_COLUMNS else str(c) for c in input_columns]


def result_frame(inputs: pandas.DataFrame, items: Sequence[BatchItem]) -> pandas.DataFrame:
    """`inputs` (one row per item, in order) with the result columns appended, in fixed types, so a
    Dask partition and its `meta` agree."""
    import pandas as pd

    frame = inputs.copy()
    frame.columns = pd.Index(result_columns(list(frame.columns)))
    index = frame.index

    def column(values: list[Any], dtype: str) -> pandas.Series:
        return pd.Series(values, index=index, dtype=dtype)

    frame["status"] = column([i.status for i in items], "object")
    frame["task_id"] = column([i.task.id if i.task is not None else None for i in items], "object")
    frame["cost"] = column([i.cost if i.cost is not None else float("nan") for i in items], "float64")
    frame["elapsed"] = column([i.elapsed if i.elapsed is not None else float("nan") for i in items], "float64")
    frame["outputs"] = column([i.outputs for i in items], "object")
    frame["text"] = column([i.text for i in items], "object")
    frame["error"] = column([i.error for i in items], "object")
    return frame
