"""The layers stay apart and imports stay cheap (checked in fresh interpreters)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from imports import first_cycle, package_imports

REPO = Path(__file__).resolve().parent.parent
PROTOCOL = sorted(p.stem for p in (REPO / "wiro_jupyter").glob("_*.py") if p.stem != "__init__")


def loaded_after(statement: str, watched: tuple[str, ...]) -> list[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps([m for m in {list(watched)!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def test_bare_import_loads_nothing_heavy() -> None:
    heavy = ("httpx", "websockets", "PIL", "IPython", "ipywidgets", "anywidget", "starlette", "uvicorn", "sqlite3")
    assert loaded_after("import wiro_jupyter", heavy) == []


@pytest.mark.parametrize("module", PROTOCOL)
def test_protocol_modules_import_no_notebook_layer(module: str) -> None:
    notebook = ("IPython", "ipywidgets", "anywidget", "wiro_jupyter.widgets", "wiro_jupyter.magics")
    assert loaded_after(f"import wiro_jupyter.{module}", notebook) == []


def test_emulator_shares_no_parsing_code_with_the_client() -> None:
    client_side = tuple(f"wiro_jupyter.{m}" for m in PROTOCOL)
    started = "from wiro_jupyter.emulator import Emulator\nEmulator(stage_delay=0).start().stop()"
    assert loaded_after(started, client_side) == []


def test_no_import_cycle_in_the_package() -> None:
    """Counting every import, lazy and typing-only ones too: arrows point one way."""
    imports = package_imports(REPO / "wiro_jupyter")
    cycle = first_cycle(imports)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
    assert "wiro_jupyter._tasks" in imports and "wiro_jupyter.widgets._chat" in imports  # the walk saw it all


def test_modules_stay_small_or_say_why() -> None:
    """No module over ~600 lines without a reason written at its top (a line starting "Long because")."""
    long = [
        str(path.relative_to(REPO))
        for path in (REPO / "wiro_jupyter").rglob("*.py")
        if len(path.read_text().splitlines()) > 620 and "Long because" not in path.read_text()[:3000]
    ]
    assert long == []
