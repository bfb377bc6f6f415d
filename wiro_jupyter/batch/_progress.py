"""Showing a batch's progress where the caller is: the live widget in a notebook, a text bar elsewhere.

`show_progress(run)` starts the display and returns the function that ends it once the batch has ended
(the widget's display becomes its static copy, the text bar closes). The text bar is tqdm's, on stderr;
it is also what a kernel without a widget front end shows (`WIRO_JUPYTER_WIDGETS=0`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ._result import RunView, progress_line


def show_progress(run: RunView) -> Callable[[], None]:
    if _widget_frontend():
        from ..widgets._batch import show_batch_progress

        return show_batch_progress(run)
    return _text_progress(run)


def _widget_frontend() -> bool:
    if "IPython" not in sys.modules:  # a plain script: no notebook can be showing it
        return False
    from ..widgets._frontend import has_widget_frontend

    return has_widget_frontend()


def _text_progress(run: RunView) -> Callable[[], None]:
    from tqdm import tqdm

    bar: Any = tqdm(total=len(run.items), desc=run.model, unit="item", file=sys.stderr, dynamic_ncols=True)

    def update(_item: Any) -> None:
        bar.n = run.progress().finished
        bar.set_postfix_str(progress_line(run.progress()), refresh=False)
        bar.update(0)  # redraws at most every `mininterval` (0.1 s), so a burst of items costs nothing

    run.add_listener(update)
    update(None)

    def finish() -> None:
        run.remove_listener(update)
        bar.n = run.progress().finished
        bar.set_postfix_str(progress_line(run.progress()), refresh=False)
        bar.close()

    return finish
