"""Where the ES modules of the widgets live: `js/` in a source checkout, `wiro_jupyter/_static/` in a wheel."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent


def static_file(name: str) -> Path:
    """The path of `js/<name>` (the wheel force-includes `js/` as `wiro_jupyter/_static/`)."""
    # The wheel's copy first: a bare `site-packages/js/` of some other distribution must never win.
    for candidate in (_PACKAGE / "_static" / name, _PACKAGE.parent / "js" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{name} is not bundled with this installation of wiro-jupyter (looked in _static/ and js/)")


@cache
def es_module(name: str) -> str:
    """A widget's ES module as anywidget gets it: `js/_common.js` (the shared helpers), then `js/<name>`.

    anywidget loads each module from its own blob URL, so one module cannot import another.
    """
    return static_file("_common.js").read_text() + "\n" + static_file(name).read_text()
