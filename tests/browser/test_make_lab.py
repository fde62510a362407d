"""``make lab`` as a new user meets it: the printed URL opens the tour (not the Launcher) and JupyterLab does not
ask "Would you like to get notified about official Jupyter news?".

The server is started by ``scripts/lab.sh`` (what ``make lab`` runs after the warm-up) with a fresh, empty Jupyter
config/data/runtime dir and no display, exactly as on a headless machine; the URL is read from its own output and
opened in headless Chromium.  The screenshot is ``artifacts/browser/make_lab_tour.png``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .jlab import HarnessError, LabServer, _free_port, _set_pdeathsig, artifacts_dir

REPO = Path(__file__).resolve().parents[2]
TOUR_URL = re.compile(r"http://127\.0\.0\.1:(\d+)/lab/tree/notebooks/01_tour\.ipynb\?token=([0-9a-f]+)")
NEWS_PROMPT = "get notified about official Jupyter news"



class MakeLabServer(LabServer):
    """``scripts/lab.sh`` in an isolated Jupyter home: none of the test harness's own quieting settings."""

    def _prepare_dirs(self) -> dict[str, str]:
        dirs = super()._prepare_dirs()
        user_settings = Path(dirs["JUPYTER_CONFIG_DIR"]) / "lab" / "user-settings"
        for f in user_settings.rglob("*.jupyterlab-settings"):
            f.unlink()  # a new user has no saved settings: the project's defaults must do the work
        return dirs

    def start(self) -> MakeLabServer:
        env = self._env(self._prepare_dirs())
        for key in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
            env.pop(key, None)
        env["VENV"] = sys.prefix
        self.port = _free_port()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                ["bash", str(REPO / "scripts" / "lab.sh"), f"--port={self.port}", "--ServerApp.port_retries=0"],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_set_pdeathsig,
            )  # fmt: skip
        finally:
            log.close()
        self._known_pids.add(self.proc.pid)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"scripts/lab.sh exited with {self.proc.returncode}:\n{self.log_tail()}")
            match = TOUR_URL.search(self.log_path.read_text(errors="replace"))
            if match:
                self.printed_url = match.group(0)
                self.token = match.group(2)
                assert int(match.group(1)) == self.port
                self._wait_ready()
                return self
            time.sleep(0.2)
        raise HarnessError(f"no tour URL printed within {self.startup_timeout:.0f} s:\n{self.log_tail()}")


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_make_lab_prints_and_opens_the_tour_without_the_news_prompt(tmp_path: Path, browser_context) -> None:
    server = MakeLabServer(base_dir=tmp_path / "lab")
    server.start()
    page = browser_context.new_page()
    try:
        notification = server.api("GET", "lab/api/settings/@jupyterlab/apputils-extension:notification")
        defaults = {k: v.get("default") for k, v in notification["schema"]["properties"].items()}
        assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False, json.dumps(defaults)

        page.goto(server.printed_url, wait_until="domcontentloaded", timeout=60_000)
        tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current")
        tab.filter(has_text="01_tour.ipynb").wait_for(timeout=90_000)
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
        assert page.locator(".jp-Launcher:visible").count() == 0, "the Launcher is showing"
        # Without the overrides the prompt appears as soon as the app has restored (about 1 s after the
        # notebook is visible on these machines); give it several times that.
        page.wait_for_timeout(6000)
        assert page.get_by_text(NEWS_PROMPT).count() == 0, "JupyterLab asks about Jupyter news"
        page.screenshot(path=str(artifacts_dir() / "make_lab_tour.png"))
    finally:
        page.close()
        server.stop()
        log = artifacts_dir() / "make_lab.log"
        if server.log_path.exists():
            log.write_bytes(server.log_path.read_bytes())


def test_lab_script_opens_no_browser_only_on_a_headless_linux(tmp_path: Path) -> None:
    """Where a display exists Jupyter opens the tour in the browser itself (its default_url is the tour)."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "jupyter").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (fake_bin / "jupyter").chmod(0o755)

    def args(**env: str) -> list[str]:
        full = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        full.update(env, VENV=str(tmp_path))
        out = subprocess.run(["bash", str(REPO / "scripts" / "lab.sh"), "--port=1"], env=full,
                             capture_output=True, text=True, check=True)  # fmt: skip
        return out.stdout.split()

    headless = args()
    assert headless[0] == "lab" and "--no-browser" in headless and headless[-1] == "--port=1"
    assert "--LabApp.default_url=/lab/tree/notebooks/01_tour.ipynb" in headless
    assert f"--LabApp.app_settings_dir={REPO}/jupyter/settings" in headless
    assert "--no-browser" not in args(DISPLAY=":0")
    assert (REPO / "jupyter" / "settings" / "overrides.json").is_file()
