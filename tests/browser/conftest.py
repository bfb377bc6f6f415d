"""Fixtures for the browser tests: ``lab_env``, ``jupyter_lab``, ``jupyter_lab_factory``, ``browser_page``,
``browser_console``. Their API is described in ``harness.py``.

Every test under ``tests/browser`` is marked ``browser`` (``pytest -m "not browser"`` skips them).
``@pytest.mark.allow_widget_errors`` lets a test (a negative control) log widget errors without failing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    ARTIFACTS_DIR,
    CHROMIUM_ARGS,
    CHROMIUM_MISSING,
    PLAYWRIGHT_MISSING,
    VIEWPORT,
    BrowserConsole,
    JupyterLab,
    close_page_state,
    console_for,
    find_chromium,
    safe_name,
)

HERE = Path(__file__).resolve().parent
PAGE_KEY = pytest.StashKey[Any]()
SHOT_TAKEN_KEY = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives JupyterLab in Chromium with Playwright")
    config.addinivalue_line("markers", "allow_widget_errors: widget errors in the browser console do not fail the test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)


def _artifact(item: pytest.Item, suffix: str) -> Path:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR / f"{safe_name(item.name)}{suffix}"


def _screenshot(item: pytest.Item, page: Any) -> None:
    try:
        page.screenshot(path=str(_artifact(item, ".png")), timeout=10_000)
        item.stash[SHOT_TAKEN_KEY] = True
    except Exception as exc:  # a crashed page must not hide the test's own result
        print(f"screenshot of {item.name} failed: {exc}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    page = item.stash.get(PAGE_KEY, None)
    if page is None or report.when != "call":
        return
    console = console_for(page)
    if report.passed and console.widget_errors and not console.allow_widget_errors:
        report.outcome = "failed"
        report.longrepr = "widget errors in the browser console:\n" + "\n".join(console.widget_errors)
    if report.failed:
        _screenshot(item, page)
        _artifact(item, ".console.log").write_text(console.text())
        report.sections.append(("browser console (warnings, errors)", console.text(noisy=False)[-20_000:] or "(none)"))


# ------------------------------------------------------------------------------------------------- server


@pytest.fixture(scope="session")
def lab_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Extra environment for the JupyterLab server and so for its kernels. Override to add WIRO_* variables."""
    return {"WIRO_HOME": str(tmp_path_factory.mktemp("wiro-home"))}


@pytest.fixture(scope="session")
def jupyter_lab_factory() -> Iterator[Callable[[Mapping[str, str]], JupyterLab]]:
    """``factory(env) -> JupyterLab``: one server per distinct env, all shut down at the end of the session."""
    servers: dict[tuple[tuple[str, str], ...], JupyterLab] = {}

    def factory(env: Mapping[str, str]) -> JupyterLab:
        key = tuple(sorted((str(k), str(v)) for k, v in env.items()))
        if key not in servers:
            servers[key] = JupyterLab(dict(key))
        return servers[key]

    yield factory
    for server in servers.values():
        server.shutdown()


@pytest.fixture(scope="session")
def jupyter_lab(jupyter_lab_factory: Callable[[Mapping[str, str]], JupyterLab], lab_env: Mapping[str, str]) -> JupyterLab:
    """The session's JupyterLab server, started with ``lab_env``."""
    return jupyter_lab_factory(lab_env)


# ------------------------------------------------------------------------------------------------ browser


@pytest.fixture
def chromium_args() -> list[str]:
    """Extra Chromium flags for ``browser_page``; a test module overrides this fixture (e.g. a fake microphone)."""
    return []


@pytest.fixture
def browser_page(request: pytest.FixtureRequest, chromium_args: list[str]) -> Iterator[Any]:
    """A Playwright page in a fresh headless Chromium profile; screenshot at the end of the test."""
    chromium = find_chromium()
    if chromium is None:
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(PLAYWRIGHT_MISSING, pytrace=False)

    item = request.node
    with tempfile.TemporaryDirectory(prefix="wiro-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=[*CHROMIUM_ARGS, *chromium_args],
            viewport=VIEWPORT,  # type: ignore[arg-type]
        )
        page = context.pages[0] if context.pages else context.new_page()
        console = console_for(page)
        console.attach(page)
        console.allow_widget_errors = item.get_closest_marker("allow_widget_errors") is not None
        item.stash[PAGE_KEY] = page
        try:
            yield page
        finally:
            if not item.stash.get(SHOT_TAKEN_KEY, False):
                _screenshot(item, page)
            del item.stash[PAGE_KEY]
            close_page_state(page)  # shuts the kernels of the notebooks this page opened
            context.close()


@pytest.fixture
def browser_console(browser_page: Any) -> BrowserConsole:
    """The console messages and page errors recorded for ``browser_page``."""
    return console_for(browser_page)


@pytest.fixture(scope="module")
def lab(jupyter_lab_factory: Callable[[Mapping[str, str]], JupyterLab], lab_env: Mapping[str, str]) -> JupyterLab:
    """The session's server, with the source tree importable by its kernels (also when not pip-installed)."""
    repo = Path(__file__).resolve().parents[2]
    path = os.pathsep.join(p for p in (str(repo), os.environ.get("PYTHONPATH", "")) if p)
    return jupyter_lab_factory({**lab_env, "PYTHONPATH": path})
