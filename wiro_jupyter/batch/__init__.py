"""Batches: one model over many inputs, with bounded concurrency, a budget, resume, and re-runs that
never pay twice. The calls are `Wiro.batch()` / `Wiro.start_batch()` / `Wiro.compare()` (and their
`AsyncWiro` coroutines); this package holds what they return.

    result = wiro.batch("wiro/text-to-image", ["a fox", "a lighthouse"], concurrency=8, max_cost=1.0, width=512)
    result.ok, result.failed, result.spent, result.to_pandas(), result.save("out/")

No IPython or widget import here (the progress widget is loaded only to be shown); pandas and Dask
are imported when an input or a call needs them.
"""

from __future__ import annotations

from ._compare import Comparison
from ._result import BatchItem, BatchProgress, BatchResult
from ._runner import BatchRun

__all__ = ["BatchItem", "BatchProgress", "BatchResult", "BatchRun", "Comparison"]
