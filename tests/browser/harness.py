"""Drive JupyterLab in a real Chromium from pytest (see ``conftest.py`` for the fixtures).

Fixtures (defined in ``tests/browser/conftest.py``)
---------------------------------------------------
``lab_env`` (session)
    Extra environment variables for the JupyterLab server, inherited by every kernel it starts.
    Default: ``{"WIRO_HOME": <temp dir>}``.  To point kernels at an emulator, override it **once**, in a
    ``conftest.py`` under ``tests/browser/`` (a session fixture is built once: the first value wins)::

        @pytest.fixture(scope="session")
        def lab_env(lab_env, emulator):          # `lab_env` here is the default one
            return {**lab_env, "WIRO_API_URL": emulator.url, "WIRO_API_KEY": "test-key"}

    A module that needs a server of its own with other variables uses ``jupyter_lab_factory(env)``.
``jupyter_lab`` (session) -> :class:`JupyterLab`
    One JupyterLab server on 127.0.0.1 (free port, token, isolated config/data/runtime/IPython dirs,
    ``--expose-app-in-browser``, a temporary ``workdir`` as root_dir). Shut down at the end of the session.
``jupyter_lab_factory`` (session) -> ``callable(env: dict) -> JupyterLab``, one server per distinct env.
``browser_page`` (function) -> ``playwright.sync_api.Page``
    A fresh Chromium profile (system Chromium, never Playwright's own download). Console messages and page
    errors are recorded (``console_for(page)`` / fixture ``browser_console``); a console error that mentions a
    widget / anywidget / ESM load failure fails the test. A screenshot is written to
    ``test-artifacts/<test-name>.png`` at the end of every test (and the console log on failure).

Typical test
------------
::

    def test_counter(jupyter_lab, browser_page):
        page = browser_page
        jupyter_lab.open_notebook(page, ["from mypkg import W; w = W(); w", "print(w.value)"], name="counter.ipynb")
        jupyter_lab.run_all(page)                               # returns when every cell has executed
        button = jupyter_lab.wait_for(page, ".my-widget-button")  # fails fast on widget console errors
        button.click()
        jupyter_lab.wait_for_idle()
        jupyter_lab.run_cell(page, 1)                           # re-run the 2nd cell in place
        assert "1" in jupyter_lab.output_text(page, 1)
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Error, Locator, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = Path(os.environ.get("WIRO_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts"))

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}

CHROMIUM_MISSING = (
    "Chromium is not installed, and the browser tests need it (Playwright's own browser download is not used).\n"
    "Install Debian's Chromium:   sudo apt-get update && sudo apt-get install -y chromium\n"
    "(or run `bash tests/run-all.sh`, which does it), or set CHROMIUM_PATH to a Chromium/Chrome binary."
)
PLAYWRIGHT_MISSING = "The Python package `playwright` is missing: pip install -e '.[dev]' (never `playwright install`)."

# Console errors that mean a widget could not load or render. Anything else (a 404 for a favicon, ...) is
# recorded but does not fail a test.
WIDGET_ERROR_RE = re.compile(
    r"anywidget|widget|\besm\b|dynamically imported module|model class|could not create (a )?view|"
    r"failed to (load|render|create)|\bblob:",
    re.IGNORECASE,
)

NOTEBOOK_KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


# --------------------------------------------------------------------------------------------------- chromium


def find_chromium() -> str | None:
    """The Chromium binary: ``$CHROMIUM_PATH``, Debian's real binary, its wrapper, or one on PATH."""
    env_path = os.environ.get("CHROMIUM_PATH")
    if env_path:
        return env_path if os.access(env_path, os.X_OK) else None
    # /usr/lib/chromium/chromium is the real binary; the /usr/bin wrapper prints a harmless shell warning.
    for candidate in ("/usr/lib/chromium/chromium", "/usr/bin/chromium"):
        if os.access(candidate, os.X_OK):
            return candidate
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


# ---------------------------------------------------------------------------------------------- console log


class BrowserConsole:
    """Console messages and uncaught page errors of one page."""

    def __init__(self) -> None:
        self.entries: list[str] = []  # "[type] text", in order
        self.errors: list[str] = []  # console errors and page errors
        self.allow_widget_errors = False

    def attach(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_pageerror)

    def _on_console(self, msg: ConsoleMessage) -> None:
        text = f"[{msg.type}] {msg.text}"
        self.entries.append(text)
        if msg.type == "error":
            self.errors.append(text)

    def _on_pageerror(self, err: Error) -> None:
        text = f"[pageerror] {err.name}: {err.message}\n{err.stack or ''}".rstrip()
        self.entries.append(text)
        self.errors.append(text)

    @property
    def widget_errors(self) -> list[str]:
        return [e for e in self.errors if WIDGET_ERROR_RE.search(e)]

    def check(self) -> None:
        """Raise AssertionError if a widget-related error has been logged (unless allowed)."""
        errors = self.widget_errors
        if errors and not self.allow_widget_errors:
            raise AssertionError("widget errors in the browser console:\n" + "\n".join(errors))

    def text(self, noisy: bool = True) -> str:
        """The log; without ``noisy``, only warnings, errors and page errors."""
        keep = self.entries if noisy else [e for e in self.entries if not e.startswith(("[debug]", "[info]", "[log]"))]
        return "\n".join(keep)


class PageState:
    """What the harness knows about one page: its console, the notebook last opened, cleanups."""

    def __init__(self) -> None:
        self.console = BrowserConsole()
        self.notebook: str | None = None
        self.cleanups: list[Callable[[], None]] = []


_PAGES: dict[int, PageState] = {}


def page_state(page: Page) -> PageState:
    return _PAGES.setdefault(id(page), PageState())


def console_for(page: Page) -> BrowserConsole:
    """The console recorder of a page opened by the ``browser_page`` fixture."""
    return page_state(page).console


def close_page_state(page: Page) -> None:
    """Run the page's cleanups (kernel shutdowns) and forget it."""
    state = _PAGES.pop(id(page), None)
    for fn in reversed(state.cleanups if state else []):
        with contextlib.suppress(Exception):
            fn()


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:150] or "test"


# ------------------------------------------------------------------------------------------------- notebooks


def make_notebook(cells: Any) -> Any:
    """An nbformat v4 notebook from a notebook (returned as is, kernelspec added) or a list of cells.

    Each cell is a source string (a code cell) or an nbformat cell node (e.g. ``new_markdown_cell``).
    """
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    if isinstance(cells, Mapping) and "cells" in cells:
        nb = nbformat.from_dict(cells)
    else:
        nb = new_notebook(cells=[new_code_cell(c) if isinstance(c, str) else nbformat.from_dict(c) for c in cells])
    nb.metadata.setdefault("kernelspec", dict(NOTEBOOK_KERNELSPEC))
    nb.metadata.setdefault("language_info", {"name": "python"})
    return nb


# --------------------------------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child_pids(pid: int) -> list[int]:
    """All descendants of ``pid`` (Linux /proc; empty elsewhere)."""
    found: list[int] = []
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except (OSError, ValueError):
                continue
            for kid in kids:
                if kid not in found:
                    found.append(kid)
                    stack.append(kid)
    return found


_USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    # Every cell stays in the DOM, so locators are deterministic.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

# JS run in the page: execute a JupyterLab command on the notebook at `path` (or the current widget) without
# blocking Playwright; the result lands in window.__harness[key].
_JS_START_COMMAND = """
([key, path, command, cellIndex]) => {
  const app = window.jupyterapp;
  window.__harness = window.__harness || {};
  window.__harness[key] = {done: false};
  let panel = null;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path === path) { panel = w; break; }
  }
  if (!panel) { window.__harness[key] = {done: true, ok: false, error: 'no open notebook ' + path}; return; }
  app.shell.activateById(panel.id);
  if (cellIndex !== null) {
    const nb = panel.content;
    if (cellIndex < 0 || cellIndex >= nb.widgets.length) {
      window.__harness[key] = {done: true, ok: false, error: 'no cell ' + cellIndex}; return;
    }
    nb.activeCellIndex = cellIndex;
    nb.deselectAll();
  }
  Promise.resolve(app.commands.execute(command)).then(
    (r) => { window.__harness[key] = {done: true, ok: r !== false, result: String(r)}; },
    (e) => { window.__harness[key] = {done: true, ok: false, error: String(e && e.stack || e)}; },
  );
}
"""


class JupyterLab:
    """A JupyterLab server process plus helpers to drive notebooks in a Playwright page."""

    def __init__(self, env: Mapping[str, str] | None = None, *, startup_timeout: float = 60.0) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="wiro-lab-"))
        self.workdir = self.base / "work"
        self.workdir.mkdir()
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = dict(env or {})
        self.env = self._make_env()
        self.log_path = self.base / "jupyter-lab.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._nb_counter = 0
        self._start(startup_timeout)

    # ---------------------------------------------------------------- process

    def _make_env(self) -> dict[str, str]:
        env = dict(os.environ)
        dirs = {
            "JUPYTER_CONFIG_DIR": self.base / "config",
            "JUPYTER_DATA_DIR": self.base / "data",
            "JUPYTER_RUNTIME_DIR": self.base / "runtime",
            "IPYTHONDIR": self.base / "ipython",
        }
        for key, path in dirs.items():
            path.mkdir(parents=True, exist_ok=True)
            env[key] = str(path)
        settings_dir = dirs["JUPYTER_CONFIG_DIR"] / "lab" / "user-settings"
        for rel, value in _USER_SETTINGS.items():
            target = settings_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(value))
        # Kernels started by the server use this interpreter's environment first.
        bindir = str(Path(sys.executable).parent)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        env.pop("JUPYTER_PATH", None)
        env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        env.update({k: str(v) for k, v in self.extra_env.items()})
        return env

    def _start(self, timeout: float) -> None:
        cmd = [
            sys.executable, "-m", "jupyter", "lab",
            "--no-browser", "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.workdir}",
            "--expose-app-in-browser", "--allow-root",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]  # fmt: skip
        log = open(self.log_path, "wb")  # noqa: SIM115 - owned by the child for its lifetime
        try:
            self.proc = subprocess.Popen(
                cmd, cwd=self.workdir, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            log.close()
        atexit.register(self.shutdown)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                status, _ = self._request("GET", "/api/status", timeout=2)
                if status == 200:
                    return
            if time.monotonic() > deadline:
                self.shutdown()
                raise RuntimeError(f"jupyter lab not ready after {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the server and its kernels (REST first, then SIGTERM/SIGKILL by PID); remove temp dirs."""
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        with contextlib.suppress(Exception):
            atexit.unregister(self.shutdown)
        children = _child_pids(proc.pid)
        if proc.poll() is None:
            with contextlib.suppress(Exception):
                self._request("POST", "/api/shutdown", timeout=5)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        for pid in children:  # leftover kernels, by the PIDs recorded above
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.log_path, ARTIFACTS_DIR / f"jupyter-lab-{self.port}.log")
        shutil.rmtree(self.base, ignore_errors=True)

    # ---------------------------------------------------------------- REST

    def _request(self, method: str, path: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        return status, (json.loads(raw) if raw else None)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the server's REST API (``path`` like ``/api/sessions``); raise on a non-2xx answer."""
        status, payload = self._request(method, path, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path} -> {status}: {payload}")
        return payload

    def sessions(self) -> list[dict[str, Any]]:
        return list(self.api("GET", "/api/sessions") or [])

    def delete_sessions(self, path: str) -> None:
        """Shut down the kernels of the sessions of the notebook at ``path``."""
        for s in self.sessions():
            if s.get("path") == path:
                with contextlib.suppress(Exception):
                    self.api("DELETE", f"/api/sessions/{s['id']}")

    def wait_for_idle(self, name: str | None = None, timeout: float = 60.0, settle: float = 0.3) -> None:
        """Wait until the kernel(s) of ``name`` (or of every session) are idle and connected.

        Idle must hold for ``settle`` seconds, so a message just sent from the browser gets handled first.
        """
        deadline = time.monotonic() + timeout
        idle_since: float | None = None
        last: Any = None
        while True:
            sessions = [s for s in self.sessions() if name is None or s.get("path") == name]
            last = [(s.get("path"), s.get("kernel", {}).get("execution_state"),
                     s.get("kernel", {}).get("connections")) for s in sessions]  # fmt: skip
            ok = bool(sessions) and all(
                s.get("kernel", {}).get("execution_state") == "idle" and s.get("kernel", {}).get("connections", 0) >= 1
                for s in sessions
            )
            now = time.monotonic()
            if ok:
                idle_since = idle_since if idle_since is not None else now
                if now - idle_since >= settle:
                    return
            else:
                idle_since = None
            if now > deadline:
                raise TimeoutError(f"kernel not idle after {timeout:.0f} s: {last}\n{self.log_tail(20)}")
            time.sleep(0.1)

    # ---------------------------------------------------------------- notebooks in the browser

    def write_notebook(self, cells: Any, name: str) -> Path:
        import nbformat

        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(make_notebook(cells), str(path))
        return path

    def read_notebook(self, name: str) -> Any:
        import nbformat

        return nbformat.read(str(self.workdir / name), as_version=4)

    def open_notebook(self, page: Page, cells: Any, name: str | None = None, timeout: float = 60.0) -> str:
        """Write ``cells`` (a list of sources / cells, or a notebook) to ``workdir/name`` and open it in ``page``.

        Returns once the cells are rendered and the notebook's kernel is idle. Returns the notebook name.
        The kernel is shut down when the page's test ends.
        """
        if name is None:
            self._nb_counter += 1
            name = f"notebook-{self._nb_counter}.ipynb"
        self.delete_sessions(name)  # never reuse a kernel from an earlier test
        nb = make_notebook(cells)
        self.write_notebook(nb, name)
        state = page_state(page)
        state.cleanups.append(lambda: self.delete_sessions(name))
        state.notebook = name
        # A fresh workspace name: no notebook of an earlier test is restored next to this one.
        workspace = f"t{uuid.uuid4().hex[:12]}"
        page.goto(f"{self.url}/lab/workspaces/{workspace}/tree/{name}?token={self.token}", timeout=timeout * 1000)
        ms = timeout * 1000
        page.wait_for_function(
            """([path, n]) => {
                const app = window.jupyterapp;
                if (!app || !app.shell) return false;
                for (const w of app.shell.widgets('main')) {
                  if (w.context && w.context.path === path && w.content && w.content.widgets)
                    return w.content.widgets.length === n && w.node.querySelectorAll('.jp-Cell').length === n;
                }
                return false;
            }""",
            arg=[name, len(nb.cells)],
            timeout=ms,
        )
        self.wait_for_idle(name, timeout=timeout)
        console_for(page).check()
        return name

    def _notebook_name(self, page: Page, name: str | None) -> str:
        name = name or page_state(page).notebook
        if not name:
            raise RuntimeError("no notebook opened in this page: call open_notebook() first")
        return name

    def execute_command(
        self, page: Page, command: str, name: str | None = None, cell: int | None = None, timeout: float = 120.0
    ) -> bool:
        """Run a JupyterLab command on the notebook ``name`` (after selecting ``cell``) and await its promise.

        Fails early on widget console errors. Returns the command's truthiness (False: e.g. a cell raised).
        """
        name = self._notebook_name(page, name)
        key = uuid.uuid4().hex
        page.evaluate(_JS_START_COMMAND, [key, name, command, cell])
        deadline = time.monotonic() + timeout
        console = console_for(page)
        while True:
            state = page.evaluate("(k) => window.__harness && window.__harness[k]", key)
            if state and state.get("done"):
                if state.get("error"):
                    raise RuntimeError(f"{command} failed: {state['error']}")
                return bool(state.get("ok"))
            console.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{command} still running after {timeout:.0f} s")
            page.wait_for_timeout(100)

    def start_run_all(self, page: Page, name: str | None = None) -> None:
        """Start running all cells and return at once (for a test that acts while a cell still runs)."""
        page.evaluate(_JS_START_COMMAND, [uuid.uuid4().hex, self._notebook_name(page, name), "notebook:run-all-cells", None])

    def run_all(self, page: Page, name: str | None = None, timeout: float = 120.0, check: bool = True) -> bool:
        """Run all cells; return when all have executed and the kernel is idle.

        With ``check`` (default), a cell that raised fails with the notebook's error outputs.
        """
        name = self._notebook_name(page, name)
        ok = self.execute_command(page, "notebook:run-all-cells", name, timeout=timeout)
        self.wait_for_idle(name, timeout=timeout)
        if check and not ok:
            raise AssertionError(f"a cell raised while running {name}:\n{self.error_outputs(page)}")
        return ok

    def run_cell(self, page: Page, index: int, name: str | None = None, timeout: float = 120.0, check: bool = True) -> bool:
        """Run the cell ``index`` (0-based) in place (no new cell, no move) and wait for it to finish."""
        name = self._notebook_name(page, name)
        ok = self.execute_command(page, "notebook:run-cell", name, cell=index, timeout=timeout)
        self.wait_for_idle(name, timeout=timeout)
        if check and not ok:
            raise AssertionError(f"cell {index} of {name} raised:\n{self.output_text(page, index)}")
        return ok

    def save(self, page: Page, name: str | None = None) -> None:
        self.execute_command(page, "docmanager:save", name)

    # ---------------------------------------------------------------- locators

    def cells(self, page: Page) -> Locator:
        return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")

    def cell(self, page: Page, index: int) -> Locator:
        return self.cells(page).nth(index)

    def output(self, page: Page, index: int) -> Locator:
        """The output area of the cell ``index``; widgets render inside ``.jp-OutputArea-output``."""
        return self.cell(page, index).locator(".jp-OutputArea")

    def output_text(self, page: Page, index: int) -> str:
        out = self.output(page, index)
        return out.inner_text() if out.count() else ""

    def error_outputs(self, page: Page) -> str:
        loc = page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], .jp-OutputArea-output.jp-mod-error"
        )
        texts = [loc.nth(i).inner_text() for i in range(loc.count())]
        return "\n---\n".join(texts) or "(no error output rendered)"

    def wait_for(self, page: Page, selector: str, timeout: float = 30.0, state: str = "visible") -> Locator:
        """Wait for the first element matching ``selector``; fail at once on a widget console error."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        loc = page.locator(selector).first
        deadline = time.monotonic() + timeout
        console = console_for(page)
        while True:
            console.check()
            try:
                loc.wait_for(state=state, timeout=250)  # type: ignore[arg-type]
                return loc
            except PlaywrightTimeout:
                pass
            if time.monotonic() > deadline:
                console.check()
                raise TimeoutError(f"{selector!r} not {state} after {timeout:.0f} s")


def iter_widget_views(nb: Any) -> Iterable[dict[str, Any]]:
    """The widget-view outputs (``application/vnd.jupyter.widget-view+json``) of a saved notebook."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view:
                yield view


def shot(page: Any, name: str, focus: Any = None) -> None:
    """A screenshot kept as a test artifact (test-artifacts/<name>.png), `focus` scrolled into view first."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    if focus is not None:
        focus.scroll_into_view_if_needed(timeout=5_000)
    page.screenshot(path=str(ARTIFACTS_DIR / f"{name}.png"))
