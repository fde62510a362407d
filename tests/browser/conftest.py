"""Fixtures for the browser tests: one JupyterLab server and one headless Chromium per session, a fresh tab
(and clean kernels) per test.

Environment knobs:
  CHROMIUM=/path/to/chromium     browser binary (default /usr/bin/chromium; installed on demand when missing)
  CAM_WIDGET_REQUIRE_BROWSER=1   fail instead of skipping when no browser can be had (set it in CI)
  CAM_WIDGET_ARTIFACTS=dir       where screenshots/latency JSON go (default artifacts/, under it browser/)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .jlab import LabPage, LabServer, artifacts_dir, ensure_chromium, launch_chromium


def _unavailable(reason: str) -> None:
    if os.environ.get("CAM_WIDGET_REQUIRE_BROWSER", "") not in ("", "0"):
        pytest.fail(f"browser tests required but unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    path, reason = ensure_chromium(install=True)
    if not path:
        _unavailable(reason)
    return path


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory, chromium_executable: str) -> Iterator[LabServer]:
    """A JupyterLab server for the whole session; its root is an empty tmp dir (tests copy notebooks in)."""
    pytest.importorskip("jupyterlab", reason="jupyterlab is not installed")
    server = LabServer(base_dir=tmp_path_factory.mktemp("jlab"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        log = artifacts_dir() / "jupyterlab.log"
        if server.log_path.exists():
            log.write_bytes(server.log_path.read_bytes())


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory, chromium_executable: str) -> Iterator[object]:
    """Headless Debian chromium with a fresh --user-data-dir (a persistent Playwright context)."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        ctx = launch_chromium(pw, tmp_path_factory.mktemp("chromium-profile"), executable=chromium_executable)
        try:
            yield ctx
        finally:
            ctx.close()
    finally:
        pw.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture
def lab(request: pytest.FixtureRequest, lab_server: LabServer, browser_context: object) -> Iterator[LabPage]:
    """A new JupyterLab tab.  At teardown: a screenshot if the test failed, the browser console saved, the tab
    closed and every kernel shut down."""
    name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    (artifacts_dir() / f"FAILED-{name}.png").unlink(missing_ok=True)  # stale from an earlier run
    page = LabPage(browser_context, lab_server)
    try:
        yield page
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            with contextlib.suppress(Exception):
                page.screenshot(f"FAILED-{name}")
        if page.console:
            (artifacts_dir() / f"{name}.console.txt").write_text("\n".join(page.console) + "\n")
        page.close()
        lab_server.shutdown_kernels()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
