"""Every notebook in notebooks/ runs headless (nbclient) against the emulator, and
the saved result carries no credential.

The kernels get the emulator's *signature* project (key and secret), so the
notebooks exercise HMAC signing, and the check below proves that neither the
key nor the secret reaches any saved output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from wiro_jupyter._emulated import emulator_chat_env
from wiro_jupyter.cli import run_notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_and_leaks_nothing(path: Path, emulator: Any, tmp_path: Path) -> None:
    env = {
        "WIRO_API_URL": emulator.api_url,
        "WIRO_SOCKET_URL": emulator.socket_url,
        "WIRO_API_KEY": emulator.signature_key,
        "WIRO_API_SECRET": emulator.signature_secret,
        "WIRO_HOME": str(tmp_path / "home"),
        **emulator_chat_env(emulator),
    }
    executed, html = run_notebook(path, tmp_path / "out", env=env)
    nb = nbformat.read(executed, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    saved = executed.read_text() + html.read_text()
    for secret in (emulator.signature_key, emulator.signature_secret):
        assert secret not in saved
    assert json.loads(executed.read_text())["cells"]
