"""Drive JupyterLab in headless Chromium: a small, reusable harness.

Used by the browser tests (``tests/browser/``) and by the browser-latency benchmark (``bench/``).  It depends only
on the standard library, ``nbformat`` and the ``playwright`` package, never on pytest, so ``bench/`` can import it
with ``sys.path.insert(0, "<repo>/tests/browser"); import jlab``.

Pieces:

* :class:`LabServer` starts ``python -m jupyterlab`` on 127.0.0.1 (free port, random token, ``--allow-root``, an
  isolated Jupyter config/data/runtime dir and IPython dir, the kernelspec ``python3`` pinned to *this*
  interpreter, ``expose_app_in_browser`` so tests can call JupyterLab commands) and stops every process it
  started.
* :func:`launch_chromium` starts Debian's ``chromium`` through Playwright (``executable_path``; Playwright's own
  browser download does not work on our machines) with a fresh ``--user-data-dir``.
* :class:`LabPage` wraps one tab: open a notebook, run all cells, wait for widget output, focus a control and
  press keys, wait for an ``<img>`` to change, collect errors, save screenshots.
* :class:`LatencyProbe` measures keypress -> new image painted *inside the page* (``performance.now()``), with a
  breakdown from the kernel websocket (browser send, kernel busy/reply wall-clock, browser receive, DOM mutation,
  decode, paint).
* :func:`write_floor_notebook` writes the reference notebook: a bare ``IntSlider`` swapping pre-encoded frames in an
  ``ipywidgets.Image``, the floor of this stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
KERNEL_NAME = "python3"


class HarnessError(RuntimeError):
    """Something in the JupyterLab/Chromium harness did not happen in time or went wrong."""


# --------------------------------------------------------------------------------------------------------------
# Paths and the browser binary
# --------------------------------------------------------------------------------------------------------------


def artifacts_dir() -> Path:
    """``artifacts/browser/`` in the repository (or ``$CAM_WIDGET_ARTIFACTS/browser``), created if missing."""
    base = Path(os.environ.get("CAM_WIDGET_ARTIFACTS", REPO_ROOT / "artifacts"))
    out = base / "browser"
    out.mkdir(parents=True, exist_ok=True)
    return out


def chromium_path() -> str | None:
    """The Chromium binary to drive: ``$CHROMIUM`` or ``/usr/bin/chromium``; ``None`` when not executable."""
    path = os.environ.get("CHROMIUM", DEFAULT_CHROMIUM)
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def ensure_chromium(install: bool = True, timeout: float = 600) -> tuple[str | None, str]:
    """Return ``(path, reason)``: the browser binary, installing it with ``scripts/install_browser_deps.sh``
    when missing and ``install`` is true.  ``path`` is ``None`` (and ``reason`` says why) when unavailable."""
    path = chromium_path()
    if path:
        return path, ""
    script = REPO_ROOT / "scripts" / "install_browser_deps.sh"
    if not install or not script.exists():
        return (
            None,
            f"{os.environ.get('CHROMIUM', DEFAULT_CHROMIUM)} not found (run scripts/install_browser_deps.sh)",
        )
    try:
        proc = subprocess.run(
            ["bash", str(script)], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"chromium missing and scripts/install_browser_deps.sh failed: {exc}"
    path = chromium_path()
    if path:
        return path, ""
    detail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return None, "chromium missing and could not be installed: " + (
        " | ".join(detail) or f"rc={proc.returncode}"
    )


# --------------------------------------------------------------------------------------------------------------
# Notebooks
# --------------------------------------------------------------------------------------------------------------


def kernelspec_metadata(python: str | None = None) -> dict[str, Any]:
    """Notebook metadata that makes JupyterLab start our ``python3`` kernel without a kernel-picker dialog."""
    return {
        "kernelspec": {"name": KERNEL_NAME, "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
    }


def write_notebook(path: str | os.PathLike[str], cells: Iterable[str | tuple[str, str]]) -> Path:
    """Write a notebook of ``cells`` (code strings, or ``("markdown", text)`` pairs) with kernelspec metadata."""
    import nbformat
    from nbformat import v4

    nb = v4.new_notebook(metadata=kernelspec_metadata())
    for cell in cells:
        if isinstance(cell, tuple):
            kind, text = cell
            nb.cells.append(v4.new_markdown_cell(text) if kind == "markdown" else v4.new_code_cell(text))
        else:
            nb.cells.append(v4.new_code_cell(cell))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


FLOOR_SLIDER_CLASS = "jlab-floor-slider"
FLOOR_IMAGE_CLASS = "jlab-floor-image"
FLOOR_DROPDOWN_CLASS = "jlab-floor-dropdown"


def write_floor_notebook(
    path: str | os.PathLike[str],
    size: int = 224,
    fmt: str = "jpeg",
    n_frames: int = 24,
    quality: int = 90,
    grain: float = 12.0,
    frames_code: str | None = None,
) -> Path:
    """The floor of the stack: an ``IntSlider`` (and a ``Dropdown``) whose changes swap pre-encoded frames into an
    ``ipywidgets.Image``.

    Frames are ``size`` x ``size`` colour fields with a frame number and Gaussian grain (std ``grain``, so they
    compress roughly like photos rather than like flat gradients), encoded once up front with OpenCV (``fmt``
    "jpeg" or "png"), so a handler costs a list lookup.  ``frames_code`` replaces them: a cell that defines
    ``frames``, a list of encoded images in format ``fmt`` (e.g. the very bytes CAMExplorer sends, for a floor of
    the same size and content).  CSS classes: slider ``jlab-floor-slider``, dropdown ``jlab-floor-dropdown``,
    image ``jlab-floor-image``.
    """
    if fmt not in ("jpeg", "png"):
        raise ValueError(f"fmt must be 'jpeg' or 'png', not {fmt!r}")
    head = f"""\
import sys
import numpy as np
import ipywidgets as widgets

SIZE, FMT, N = {int(size)}, {fmt!r}, {int(n_frames)}
"""
    synthetic = f"""\
import cv2

yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
rng = np.random.default_rng(0)
frames = []
for i in range(N):
    phase = 2 * np.pi * i / N
    rgb = np.stack([127 + 110 * np.sin(6 * xx + phase),
                    127 + 110 * np.cos(5 * yy - phase),
                    np.full_like(xx, 20 + 215.0 * i / N)], axis=-1)
    rgb = np.clip(rgb + rng.normal(0, {float(grain)}, rgb.shape), 0, 255).astype(np.uint8)
    cv2.putText(rgb, str(i), (SIZE // 8, SIZE // 2), cv2.FONT_HERSHEY_SIMPLEX, SIZE / 100, (255, 255, 255),
                max(1, SIZE // 60))
    ext, params = ('.jpg', [cv2.IMWRITE_JPEG_QUALITY, {int(quality)}]) if FMT == 'jpeg' else ('.png', [])
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]), params)
    assert ok
    frames.append(buf.tobytes())
"""
    tail = """\
N = len(frames)
print("kernel python:", sys.executable)
print("frames:", N, FMT, "median", sorted(map(len, frames))[N // 2], "bytes")
"""
    size_kw = "" if frames_code else ", width=SIZE, height=SIZE"
    view = f"""\
slider = widgets.IntSlider(value=0, min=0, max=N - 1, description="frame")
slider.add_class({FLOOR_SLIDER_CLASS!r})
image = widgets.Image(value=frames[0], format=FMT{size_kw})
image.add_class({FLOOR_IMAGE_CLASS!r})

def _show(change):
    image.value = frames[change["new"]]

slider.observe(_show, names="value")
dropdown = widgets.Dropdown(options=[(f"frame {{i}}", i) for i in range(N)], value=0, description="frame")
dropdown.add_class({FLOOR_DROPDOWN_CLASS!r})
dropdown.observe(_show, names="value")
widgets.VBox([slider, dropdown, image])
"""
    title = f"# Floor: bare ipywidgets.Image swap ({'custom frames' if frames_code else f'{size} px'} {fmt})"
    setup = head + (frames_code.rstrip() + "\n" if frames_code else synthetic) + tail
    return write_notebook(path, [("markdown", title), setup, view])


# --------------------------------------------------------------------------------------------------------------
# The JupyterLab server
# --------------------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """PIDs of all live descendants of ``pid`` (kernels run in their own session, so a process-group kill
    alone would miss them)."""
    try:
        import psutil  # a dependency of ipykernel

        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except Exception:
        return []


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM the server if the process that started it dies (e.g. a killed pytest)."""
    os.setsid()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LabServer:
    """A JupyterLab server on 127.0.0.1 with everything Jupyter/IPython reads isolated under ``base_dir``.

    ``root_dir`` is what the file browser shows (copy notebooks there; :meth:`add` helps).  Use as a context
    manager or call :meth:`start` / :meth:`stop`.  :meth:`stop` shuts kernels down through the REST API, then
    stops the server, then signals whatever is left of the processes it started (by PID).
    """

    def __init__(
        self,
        base_dir: str | os.PathLike[str] | None = None,
        python: str | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        self._owns_base = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="jlab-"))
        self.root_dir = self.base_dir / "root"
        self.python = python or sys.executable
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.token = secrets.token_hex(24)
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.base_dir / "jupyterlab.log"
        self._known_pids: set[int] = set()

    # -- layout ------------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def url(self, path: str = "lab", **query: str) -> str:
        """A browser URL under the server, with the token."""
        from urllib.parse import quote, urlencode

        q = urlencode({"token": self.token, **query})
        return f"{self.base_url}{quote(path.lstrip('/'))}?{q}"

    def add(self, src: str | os.PathLike[str], dest: str | None = None) -> Path:
        """Copy a file or directory into ``root_dir`` (at ``dest``, default its name); return the copy's path."""
        src = Path(src)
        target = self.root_dir / (dest or src.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(
                src, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".ipynb_checkpoints")
            )
        else:
            shutil.copy2(src, target)
        return target

    def _prepare_dirs(self) -> dict[str, str]:
        d = {
            "JUPYTER_CONFIG_DIR": self.base_dir / "jupyter_config",
            "JUPYTER_DATA_DIR": self.base_dir / "jupyter_data",
            "JUPYTER_RUNTIME_DIR": self.base_dir / "jupyter_runtime",
            "IPYTHONDIR": self.base_dir / "ipython",
            "MPLCONFIGDIR": self.base_dir / "matplotlib",
        }
        for p in [self.root_dir, *d.values()]:
            p.mkdir(parents=True, exist_ok=True)
        # The python3 kernelspec, pinned to this interpreter (the user data dir wins over sys.prefix and system).
        spec_dir = d["JUPYTER_DATA_DIR"] / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True, exist_ok=True)
        (spec_dir / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [self.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "Python 3 (ipykernel)",
                    "language": "python",
                    "metadata": {"debugger": True},
                },
                indent=1,
            )
        )
        # Quiet, deterministic JupyterLab: no news/update toasts, every cell rendered (no windowing).
        settings = d["JUPYTER_CONFIG_DIR"] / "lab" / "user-settings" / "@jupyterlab"
        for rel, value in {
            "apputils-extension/notification.jupyterlab-settings": {
                "fetchNews": "false",
                "checkForUpdates": False,
            },
            "notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        }.items():
            f = settings / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(value))
        return {k: str(v) for k, v in d.items()}

    def _env(self, dirs: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
        env.pop("IPYTHONDIR", None)
        env.update(dirs)
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        # In a virtualenv jupyter_core ranks sys.prefix above the user dirs; put our isolated (pinned) dirs first.
        env["JUPYTER_PREFER_ENV_PATH"] = "0"
        env["PYTHONUNBUFFERED"] = "1"
        # Kernels see what a user's would: cam_widget keeps TensorFlow's start-up lines out by itself (a set
        # TF_CPP_MIN_LOG_LEVEL would switch that off), and they import this checkout's cam_widget, not whichever
        # one the virtualenv's editable install points at.
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
        env.update(self.extra_env)
        return env

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> LabServer:
        dirs = self._prepare_dirs()
        env = self._env(dirs)
        last_error = ""
        for _attempt in range(3):
            self.port = _free_port()
            cmd = [
                self.python, "-m", "jupyterlab",
                "--no-browser", "--allow-root",
                "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root_dir}",
                "--ServerApp.terminals_enabled=False",
                "--LabApp.expose_app_in_browser=True",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                # Safety nets if the harness itself is killed: idle kernels are culled, then the server exits.
                "--MappingKernelManager.cull_idle_timeout=1200", "--MappingKernelManager.cull_interval=120",
                "--ServerApp.shutdown_no_activity_timeout=1800",
                *self.extra_args,
            ]  # fmt: skip
            log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
            try:
                self.proc = subprocess.Popen(
                    cmd, cwd=self.root_dir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    preexec_fn=_set_pdeathsig,  # also setsid(): the server leads its own process group
                )  # fmt: skip
            finally:
                log.close()
            self._known_pids.add(self.proc.pid)
            try:
                self._wait_ready()
                return self
            except HarnessError as exc:
                last_error = str(exc)
                self._terminate_processes()
                if "address already in use" not in self.log_tail().lower():
                    break
        raise HarnessError(f"JupyterLab did not start: {last_error}\n--- server log ---\n{self.log_tail()}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise HarnessError(f"server exited with code {self.proc.returncode}")
            try:
                status = self.api("GET", "api/status", timeout=2)
                if isinstance(status, dict) and "started" in status:
                    return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.2)
        raise HarnessError(f"server did not answer within {self.startup_timeout:.0f} s")

    def api(self, method: str, path: str, body: Any = None, timeout: float = 10) -> Any:
        """Call the server's REST API (token auth); return the decoded JSON or ``None``."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path.lstrip("/"), data=data, method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def kernelspecs(self) -> dict[str, Any]:
        return self.api("GET", "api/kernelspecs")

    def shutdown_kernels(self) -> None:
        """Delete every session and kernel (tests call this between notebooks so TF kernels don't pile up)."""
        self._remember_children()
        with contextlib.suppress(Exception):
            for s in self.api("GET", "api/sessions") or []:
                with contextlib.suppress(Exception):
                    self.api("DELETE", f"api/sessions/{s['id']}", timeout=30)
        with contextlib.suppress(Exception):
            for k in self.api("GET", "api/kernels") or []:
                with contextlib.suppress(Exception):
                    self.api("DELETE", f"api/kernels/{k['id']}", timeout=30)

    def _remember_children(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._known_pids.update(_descendants(self.proc.pid))

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.shutdown_kernels()
            self._remember_children()
            with contextlib.suppress(Exception):
                self.api("POST", "api/shutdown", timeout=5)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        self._terminate_processes()
        self.proc = None
        if self._owns_base:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def _terminate_processes(self) -> None:
        """SIGTERM, then SIGKILL, the server's process group and every PID it is known to have started."""
        if self.proc is None:
            return
        self._remember_children()
        pgid = self.proc.pid  # setsid() made the server its own process-group leader

        def signal_all(sig: int) -> None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
            for pid in self._known_pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)

        def alive() -> list[int]:
            out = []
            for pid in self._known_pids:
                try:
                    os.kill(pid, 0)
                except (ProcessLookupError, PermissionError):
                    continue
                # a zombie of ours: reap it
                if pid == self.proc.pid and self.proc.poll() is not None:
                    continue
                with contextlib.suppress(ChildProcessError, OSError):
                    if os.waitpid(pid, os.WNOHANG) != (0, 0):
                        continue
                out.append(pid)
            return out

        if alive():
            signal_all(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive():
                signal_all(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------------------------
# Chromium through Playwright
# --------------------------------------------------------------------------------------------------------------


def launch_chromium(
    playwright: Any,
    user_data_dir: str | os.PathLike[str],
    executable: str | None = None,
    viewport: tuple[int, int] = (1280, 1000),
    extra_flags: Sequence[str] = (),
) -> Any:
    """Start Debian's chromium headless with a fresh profile in ``user_data_dir``; return a Playwright
    ``BrowserContext`` (persistent, so the profile directory is ours; close it to stop the browser)."""
    executable = executable or chromium_path()
    if not executable:
        raise HarnessError("chromium not found; run scripts/install_browser_deps.sh")
    Path(user_data_dir).mkdir(parents=True, exist_ok=True)
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=executable,
        headless=True,
        args=[*CHROMIUM_FLAGS, *extra_flags],
        viewport={"width": viewport[0], "height": viewport[1]},
        device_scale_factor=1,
        timeout=60_000,
    )


# --------------------------------------------------------------------------------------------------------------
# In-page instrumentation (installed before JupyterLab's own scripts run)
# --------------------------------------------------------------------------------------------------------------

PAGE_JS = r"""
(() => {
  if (window.__jlab) return;
  const J = window.__jlab = {errors: [], wsLog: [], recording: false, runAll: null, probe: null};
  const now = () => performance.now();
  const dec = new TextDecoder();

  // Kernel websocket frames -> {channel, msg_type, msg_id, parent_id, date, content?, nbuffers, size}.
  // Handles the v1 binary protocol (the default with JupyterLab 4) and the legacy JSON protocol.
  function parseFrame(data, protocol) {
    if (typeof data === 'string') {
      const m = JSON.parse(data);
      return {channel: m.channel, header: m.header, parent: m.parent_header, content: m.content,
              nbuffers: (m.buffers || []).length, size: data.length, contentText: null};
    }
    const dv = new DataView(data);
    if (protocol === 'v1.kernel.websocket.jupyter.org') {
      const n = Number(dv.getBigUint64(0, true));
      const off = [];
      for (let i = 0; i < n; i++) off.push(Number(dv.getBigUint64(8 * (i + 1), true)));
      const part = (i) => dec.decode(new Uint8Array(data, off[i], off[i + 1] - off[i]));
      return {channel: part(0), header: JSON.parse(part(1)), parent: JSON.parse(part(2)),
              contentText: (off[5] - off[4]) < 200000 ? part(4) : null, nbuffers: Math.max(0, n - 6),
              size: data.byteLength};
    }
    // legacy binary: uint32 count, uint32 offsets; part 0 is the JSON message, the rest buffers
    const n = dv.getUint32(0);
    const o0 = dv.getUint32(4), o1 = n > 1 ? dv.getUint32(8) : data.byteLength;
    const m = JSON.parse(dec.decode(new Uint8Array(data, o0, o1 - o0)));
    return {channel: m.channel, header: m.header, parent: m.parent_header, content: m.content,
            nbuffers: n - 1, size: data.byteLength, contentText: null};
  }

  function note(dir, ev, ws) {
    const t = now();
    let f;
    try { f = parseFrame(ev, ws.protocol); } catch (e) { return; }
    const h = f.header || {};
    const type = h.msg_type;
    if (dir === 'recv' && (type === 'error' || type === 'stream')) {
      let c = f.content;
      if (!c && f.contentText) { try { c = JSON.parse(f.contentText); } catch (e) { c = null; } }
      if (c && type === 'error') {
        J.errors.push({kind: 'error', ename: c.ename, evalue: c.evalue, traceback: (c.traceback || []).join('\n')});
      } else if (c && c.name === 'stderr' && /Traceback \(most recent call last\)/.test(c.text || '')) {
        J.errors.push({kind: 'stderr', text: c.text});
      }
    }
    if (!J.recording) return;
    let method = null, comm_id = null;
    if (type === 'comm_msg') {
      let c = f.content;
      if (!c && f.contentText) { try { c = JSON.parse(f.contentText); } catch (e) { c = null; } }
      method = c && c.data ? c.data.method : null;
      comm_id = c ? c.comm_id || null : null;
    }
    J.wsLog.push({dir, t, channel: f.channel, msg_type: type, msg_id: h.msg_id, date: h.date || null,
                  parent_id: (f.parent || {}).msg_id || null, method, comm_id, nbuffers: f.nbuffers, size: f.size});
  }

  const Orig = window.WebSocket;
  class JlabWebSocket extends Orig {
    constructor(url, protocols) {
      super(url, protocols);
      this.__kernel = String(url).includes('/channels');
      if (this.__kernel) this.addEventListener('message', (ev) => note('recv', ev.data, this));
    }
    send(data) {
      if (this.__kernel) note('send', data, this);
      return super.send(data);
    }
  }
  window.WebSocket = JlabWebSocket;

  // Kernel ISO date (UTC, microseconds) -> performance.now() time base.
  J.toPerf = (iso) => {
    if (!iso) return null;
    const m = /\.(\d+)/.exec(iso);
    const ms = Date.parse(iso.replace(/\.\d+/, ''));
    const frac = m ? Number('0.' + m[1]) * 1000 : 0;
    return ms + frac - performance.timeOrigin;
  };

  J.describe = (el) => {
    if (!el || !el.tagName) return String(el);
    return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\s+/).join('.') : '');
  };

  // --- latency probe: keydown (capture) -> img src mutation -> decoded -> painted (rAF + task) --------------
  J.arm = (img) => {
    J.disarm();
    const st = {srcBefore: img.currentSrc || img.src, tArm: now(), tKey: null, key: null, target: null,
                changes: [], painted: null, lastChange: null};
    const onKey = (e) => {
      if (st.tKey === null) { st.tKey = e.timeStamp; st.tKeyListener = now(); st.key = e.key;
                              st.target = J.describe(e.target); }
    };
    window.addEventListener('keydown', onKey, true);
    // An <img> is painted when its new src is decoded; a <canvas> (cam-widget's canvas view) bumps its
    // data-frame attribute right after putImageData, so it counts as decoded at once.
    const isImg = img.tagName === 'IMG';
    const attr = isImg ? 'src' : 'data-frame';
    const obs = new MutationObserver((recs) => {
      for (const r of recs) {
        if (r.attributeName !== attr) continue;
        const ch = {tMut: now(), src: (img.getAttribute(attr) || '').slice(0, 80), superseded: false};
        if (st.lastChange) st.lastChange.superseded = true;
        st.changes.push(ch);
        st.lastChange = ch;
        (isImg ? img.decode() : Promise.resolve()).then(() => {
          ch.tDecoded = now();
          requestAnimationFrame((ts) => {
            ch.tRaf = now();
            setTimeout(() => {
              ch.tPaint = now();
              if (!ch.superseded) st.painted = ch;
            }, 0);
          });
        }, (err) => { ch.decodeError = String(err); });
      }
    });
    obs.observe(img, {attributes: true, attributeFilter: [attr]});
    st.dispose = () => { window.removeEventListener('keydown', onKey, true); obs.disconnect(); };
    J.probe = st;
    J.wsLog = [];
    J.recording = true;
    return st.srcBefore;
  };

  J.disarm = () => {
    const st = J.probe;
    if (st && st.dispose) st.dispose();
    J.recording = false;
    J.probe = null;
    if (!st) return null;
    const out = Object.assign({}, st);
    delete out.dispose; delete out.lastChange;
    out.ws = J.wsLog.map((m) => Object.assign({}, m, {tKernel: J.toPerf(m.date)}));
    J.wsLog = [];
    return out;
  };

  // Has the newest src change been painted, with no further change for settleMs?
  J.settled = (settleMs) => {
    const st = J.probe;
    if (!st || !st.painted || st.painted !== st.lastChange) return false;
    return now() - st.painted.tPaint >= settleMs;
  };
})();
"""


# --------------------------------------------------------------------------------------------------------------
# One JupyterLab tab
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One keypress -> painted measurement; all times in ms relative to the keydown event."""

    latency_ms: float  # keydown -> new image painted (the number that matters)
    mutation_ms: float  # keydown -> <img src> changed
    decoded_ms: float  # keydown -> new image decoded
    send_ms: float | None  # keydown -> browser sent the widget update to the kernel
    kernel_busy_ms: float | None  # keydown -> kernel started handling it (kernel clock)
    kernel_reply_ms: float | None  # keydown -> kernel sent the new image (kernel clock)
    recv_ms: float | None  # keydown -> browser received the new image
    n_changes: int  # how many src changes this keypress caused
    key: str | None
    target: str | None  # element that received the keydown
    image_bytes: int | None  # size of the websocket frame that carried the image
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def kernel_ms(self) -> float | None:
        """Time inside the kernel (busy -> image sent): handler compute + encode + serialisation."""
        if self.kernel_busy_ms is None or self.kernel_reply_ms is None:
            return None
        return self.kernel_reply_ms - self.kernel_busy_ms

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "raw"}
        d["kernel_ms"] = self.kernel_ms
        return d


def _measurement_from(raw: dict[str, Any]) -> Measurement:
    t0 = raw["tKey"]
    painted = raw["painted"]
    rel = lambda t: None if t is None else t - t0  # noqa: E731
    ws = raw.get("ws", [])
    sent = [m for m in ws if m["dir"] == "send" and m["msg_type"] == "comm_msg" and m["t"] >= t0]
    send = sent[0] if sent else None
    sent_ids = {m["msg_id"] for m in sent}
    replies = [m for m in ws if m["dir"] == "recv" and m["parent_id"] in sent_ids]
    busy = next((m for m in replies if m["msg_type"] == "status"), None)
    # the frame that carried the image: the last reply with binary buffers received before the src changed
    carriers = [
        m for m in replies if m["msg_type"] == "comm_msg" and m["nbuffers"] > 0 and m["t"] <= painted["tMut"]
    ]
    if (
        not carriers
    ):  # sent from a worker thread, the frame may carry another parent header: take the last one
        carriers = [
            m for m in ws
            if m["dir"] == "recv" and m["msg_type"] == "comm_msg" and m["nbuffers"] > 0 and t0 <= m["t"] <= painted["tMut"]
        ]  # fmt: skip
    img = carriers[-1] if carriers else None
    return Measurement(
        latency_ms=painted["tPaint"] - t0,
        mutation_ms=painted["tMut"] - t0,
        decoded_ms=painted["tDecoded"] - t0,
        send_ms=rel(send["t"]) if send else None,
        kernel_busy_ms=rel(busy["tKernel"]) if busy else None,
        kernel_reply_ms=rel(img["tKernel"]) if img else None,
        recv_ms=rel(img["t"]) if img else None,
        n_changes=len(raw["changes"]),
        key=raw.get("key"),
        target=raw.get("target"),
        image_bytes=img["size"] if img else None,
        raw=raw,
    )


def summarize(samples: Sequence[Measurement]) -> dict[str, Any]:
    """Medians (and min/max of the latency) over a list of measurements."""

    def med(name: str) -> float | None:
        vals = [v for v in (getattr(s, name) for s in samples) if v is not None]
        return round(statistics.median(vals), 2) if vals else None

    lat = [s.latency_ms for s in samples]
    return {
        "n": len(samples),
        "latency_ms_median": round(statistics.median(lat), 2) if lat else None,
        "latency_ms_min": round(min(lat), 2) if lat else None,
        "latency_ms_max": round(max(lat), 2) if lat else None,
        "latency_ms_p90": round(sorted(lat)[int(0.9 * (len(lat) - 1))], 2) if lat else None,
        **{f"{k}_median": med(k) for k in
           ("mutation_ms", "decoded_ms", "send_ms", "kernel_busy_ms", "kernel_reply_ms", "kernel_ms", "recv_ms",
            "image_bytes")},
    }  # fmt: skip


class LabPage:
    """A Playwright page showing JupyterLab, with helpers for notebooks, widgets, keys and latency."""

    def __init__(self, context: Any, server: LabServer) -> None:
        self.server = server
        self.page = context.new_page()
        self.page.add_init_script(script=PAGE_JS)
        self.console: list[str] = []
        self.page.on(
            "console",
            lambda m: self.console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None,
        )
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.notebook_path: str | None = None

    # -- notebooks ---------------------------------------------------------------------------------------------
    def open_notebook(self, rel_path: str, timeout: float = 90) -> dict[str, Any]:
        """Open ``rel_path`` (relative to the server root) in a fresh workspace; wait until its kernel answers.
        Returns the kernel's name and the notebook path."""
        rel_path = rel_path.replace(os.sep, "/")
        workspace = "t" + secrets.token_hex(4)
        self.page.goto(self.server.url(f"lab/workspaces/{workspace}/tree/{rel_path}", reset=""),
                       timeout=timeout * 1000, wait_until="domcontentloaded")  # fmt: skip
        self.page.wait_for_function("() => window.jupyterapp && window.__jlab", timeout=timeout * 1000)
        self.page.wait_for_function(
            """(path) => {
                const w = window.jupyterapp.shell.currentWidget;
                return !!(w && w.context && w.context.path === path && w.sessionContext && w.content);
            }""",
            arg=rel_path, timeout=timeout * 1000, polling=100,
        )  # fmt: skip
        self.page.evaluate(
            """async () => {
                const w = window.jupyterapp.shell.currentWidget;
                await w.context.ready;
                await w.sessionContext.ready;
            }"""
        )
        self.page.wait_for_function(
            """() => {
                const k = window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel;
                return !!(k && k.connectionStatus === 'connected' && k.status === 'idle');
            }""",
            timeout=timeout * 1000, polling=100,
        )  # fmt: skip
        self.notebook_path = rel_path
        # More room for outputs: fold the left sidebar (file browser) away.
        self.page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
        return self.page.evaluate(
            """() => {
                const w = window.jupyterapp.shell.currentWidget;
                const k = w.sessionContext.session.kernel;
                return {path: w.context.path, kernel: k.name, kernel_id: k.id};
            }"""
        )

    def run_all_cells(self, timeout: float = 150) -> list[dict[str, Any]]:
        """Run every cell (``notebook:run-all-cells``) and wait until the run finished and the kernel is idle.
        Returns :meth:`cells`.  A cell error does not raise here; see :meth:`errors`."""
        self.page.evaluate(
            """() => {
                const J = window.__jlab;
                J.runAll = {done: false, result: null, error: null};
                window.jupyterapp.commands.execute('notebook:run-all-cells').then(
                    (r) => { J.runAll.done = true; J.runAll.result = r; },
                    (e) => { J.runAll.done = true; J.runAll.error = String(e); });
            }"""
        )
        try:
            self.page.wait_for_function(
                """() => {
                    const J = window.__jlab, w = window.jupyterapp.shell.currentWidget;
                    const k = w.sessionContext.session?.kernel;
                    return J.runAll.done && k && k.status === 'idle';
                }""",
                timeout=timeout * 1000, polling=200,
            )  # fmt: skip
        except Exception as exc:
            raise HarnessError(
                f"run-all-cells did not finish within {timeout:.0f} s; cells: {self.cell_summary()}"
            ) from exc
        err = self.page.evaluate("() => window.__jlab.runAll.error")
        if err:
            raise HarnessError(f"notebook:run-all-cells failed: {err}")
        return self.cells()

    def cells(self) -> list[dict[str, Any]]:
        """Every code cell of the current notebook: index, execution count and outputs (nbformat JSON)."""
        return self.page.evaluate(
            """() => {
                const w = window.jupyterapp.shell.currentWidget;
                const out = [];
                w.content.widgets.forEach((cell, i) => {
                    if (cell.model.type !== 'code') return;
                    out.push({index: i, execution_count: cell.model.executionCount,
                              source: cell.model.sharedModel.getSource(), outputs: cell.model.outputs.toJSON()});
                });
                return out;
            }"""
        )

    def cell_summary(self) -> str:
        with contextlib.suppress(Exception):
            return ", ".join(f"[{c['index']}]={c['execution_count']}" for c in self.cells())
        return "?"

    def errors(self) -> list[str]:
        """Python errors seen: error outputs and tracebacks on stderr in any cell, plus any error or traceback the
        kernel published on the websocket since the page loaded (e.g. from widget callbacks, which JupyterLab
        routes to the log console rather than to a cell)."""
        found: list[str] = []
        for c in self.cells():
            for o in c["outputs"]:
                if o.get("output_type") == "error":
                    found.append(f"cell {c['index']}: {o.get('ename')}: {o.get('evalue')}")
                elif o.get("output_type") == "stream" and "Traceback (most recent call last)" in _text(
                    o.get("text")
                ):
                    found.append(f"cell {c['index']} stderr: {_text(o.get('text'))[-2000:]}")
        for e in self.page.evaluate("() => window.__jlab.errors"):
            msg = (
                f"kernel: {e.get('ename')}: {e.get('evalue')}"
                if e["kind"] == "error"
                else f"kernel stderr: {e['text'][-2000:]}"
            )
            if not any(msg.split(": ", 1)[-1] in f for f in found):
                found.append(msg)
        return found

    def text_outputs(self) -> str:
        """All text/plain and stream text of the notebook's outputs, concatenated."""
        parts = []
        for c in self.cells():
            for o in c["outputs"]:
                if o.get("output_type") == "stream":
                    parts.append(_text(o.get("text")))
                elif "data" in o:
                    parts.append(_text(o["data"].get("text/plain")))
        return "\n".join(parts)

    # -- widgets -----------------------------------------------------------------------------------------------
    def wait_for_widget(self, selector: str = "img.widget-image", timeout: float = 150) -> Any:
        """Wait until ``selector`` is visible inside a rendered widget view (for an ``<img>``: loaded, non-empty);
        return its Playwright locator (the first match)."""
        loc = self.page.locator(
            f".jp-OutputArea-output .jupyter-widgets {selector}, .jp-OutputArea-output {selector}.jupyter-widgets"
        ).first
        loc.wait_for(state="visible", timeout=timeout * 1000)
        tag = loc.evaluate("el => el.tagName")
        if tag == "CANVAS":  # cam-widget's canvas view: painted once it bumped data-frame
            self.page.wait_for_function(
                "(el) => Number(el.dataset.frame || 0) > 0", arg=loc.element_handle(), timeout=timeout * 1000
            )
        if tag == "IMG":
            loc.evaluate(
                """(img) => new Promise((resolve, reject) => {
                    if (img.complete && img.naturalWidth > 0) return resolve(true);
                    img.addEventListener('load', () => resolve(true), {once: true});
                    img.addEventListener('error', () => reject(new Error('image failed to load')), {once: true});
                })"""
            )
        return loc

    def control(self, selector: str) -> Any:
        """The keyboard-focusable part of the widget matching ``selector`` (a class on the widget, e.g.
        ``.cam-alpha``): a slider's handle, a dropdown's ``<select>``, a text/number ``<input>``, or the element."""
        base = self.page.locator(selector).first
        base.wait_for(state="attached", timeout=30_000)
        for inner in (".noUi-handle", "select", "input", "button", "[tabindex]"):
            cand = base.locator(inner)
            if cand.count():
                return cand.first
        return base

    def press(self, control: Any, key: str) -> None:
        """Focus ``control`` (a locator) and press ``key`` on it, like a user with the keyboard."""
        control.focus()
        focused = control.evaluate("el => document.activeElement === el")
        if not focused:
            raise HarnessError(f"could not focus {control}")
        self.page.keyboard.press(key)

    def step_key(self, control: Any, forward: bool = True) -> str:
        """A key that moves ``control`` (from :meth:`control`) one notch and really changes its value.

        Sliders (noUiSlider handles): ArrowRight / ArrowLeft, reversed at the ends.  ``<select>`` (Dropdown, Select):
        PageDown / PageUp, or Home / End at the ends -- *not* the arrows: with the notebook in command mode,
        JupyterLab 4 takes ArrowUp/ArrowDown for its own cell navigation before a collapsed ``<select>`` sees them
        (ipywidgets issue #3912).  Number inputs: ArrowUp / ArrowDown.
        """
        info = control.evaluate(
            """el => ({tag: el.tagName, cls: String(el.className), now: el.getAttribute('aria-valuenow'),
                       min: el.getAttribute('aria-valuemin'), max: el.getAttribute('aria-valuemax'),
                       index: el.selectedIndex, n: el.options ? el.options.length : null,
                       type: el.type, value: el.value, vmin: el.min, vmax: el.max})"""
        )
        if "noUi-handle" in info["cls"]:
            now, lo, hi = (float(info[k]) for k in ("now", "min", "max"))
            at_end = now >= hi if forward else now <= lo
            return "ArrowRight" if forward != at_end else "ArrowLeft"
        if info["tag"] == "SELECT":
            last = (info["n"] or 1) - 1
            if forward:
                return "PageDown" if info["index"] < last else "Home"
            return "PageUp" if info["index"] > 0 else "End"
        if info["tag"] == "INPUT":
            value = float(info["value"] or 0)
            at_end = (
                (info["vmax"] not in ("", None) and value >= float(info["vmax"]))
                if forward
                else (info["vmin"] not in ("", None) and value <= float(info["vmin"]))
            )
            return "ArrowUp" if forward != at_end else "ArrowDown"
        raise HarnessError(f"do not know how to step {info['tag']}.{info['cls']} with the keyboard")

    def img_src(self, img: Any) -> str:
        """An ``<img>``'s src, or a ``<canvas>``'s frame counter (``data-frame``, bumped at every paint)."""
        return img.evaluate("el => el.tagName === 'IMG' ? (el.getAttribute('src') || '') : (el.dataset.frame || '')")

    def wait_src_change(self, img: Any, old_src: str, timeout: float = 60) -> str:
        """Wait until ``img``'s src differs from ``old_src`` and the new image is loaded; return the new src."""
        self.page.wait_for_function(
            """([el, old]) => el.tagName === 'IMG'
                ? (el.getAttribute('src') || '') !== old && el.complete && el.naturalWidth > 0
                : (el.dataset.frame || '') !== old""",
            arg=[img.element_handle(), old_src], timeout=timeout * 1000, polling=50,
        )  # fmt: skip
        return self.img_src(img)

    def press_and_wait_change(self, control: Any, key: str, img: Any, timeout: float = 60) -> str:
        """Press ``key`` on ``control`` and wait for ``img`` to show a new picture; return the new src."""
        old = self.img_src(img)
        self.press(control, key)
        try:
            return self.wait_src_change(img, old, timeout)
        except Exception as exc:
            raise HarnessError(
                f"<img> did not change within {timeout:.0f} s after {key} on {control}; "
                f"focused: {self.page.evaluate('() => window.__jlab.describe(document.activeElement)')}; "
                f"errors: {self.errors()}"
            ) from exc

    # -- artifacts ---------------------------------------------------------------------------------------------
    def screenshot(self, name: str, locator: Any = None, scroll_to: Any = None) -> Path:
        """Save a PNG under ``artifacts/browser/``: the whole viewport (scrolled so ``scroll_to`` is in view), or
        just ``locator``."""
        path = artifacts_dir() / (name if name.endswith(".png") else name + ".png")
        if scroll_to is not None:
            scroll_to.evaluate("el => el.scrollIntoView({block: 'center'})")
        if locator is not None:
            locator.screenshot(path=str(path), timeout=30_000)
        else:
            self.page.screenshot(path=str(path), timeout=30_000)
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.page.close()


def _text(v: Any) -> str:
    if v is None:
        return ""
    return "".join(v) if isinstance(v, list) else str(v)


class LatencyProbe:
    """Measure keypress -> new ``<img>`` painted, timed inside the page.

    ``t0`` is the keydown event's timestamp (a capturing listener on ``window``); the new image counts as painted
    at the first task after the animation frame that follows its decode (``img.decode()`` -> ``rAF`` ->
    ``setTimeout(0)``).  The kernel websocket is recorded while armed for the breakdown in :class:`Measurement`.
    """

    def __init__(self, lab: LabPage, img: Any) -> None:
        self.lab = lab
        self.page = lab.page
        self.img = img

    def measure(self, control: Any, key: str, timeout: float = 60, settle_ms: float = 150) -> Measurement:
        """Focus ``control``, press ``key``, wait until the newest frame is painted and nothing changed for
        ``settle_ms``; return the measurement (its ``latency_ms`` is to the *last* src change)."""
        control.focus()
        self.img.scroll_into_view_if_needed(timeout=10_000)  # an off-screen image would not really be painted
        self.img.evaluate("(img) => window.__jlab.arm(img)")
        try:
            self.page.keyboard.press(key)
            self.page.wait_for_function(
                "(s) => window.__jlab.settled(s)", arg=settle_ms, timeout=timeout * 1000, polling=20
            )
        except Exception as exc:
            raw = self.page.evaluate("() => window.__jlab.disarm()")
            raise HarnessError(
                f"no new frame painted within {timeout:.0f} s after {key} "
                f"(keydown on {raw and raw.get('target')}, {raw and len(raw.get('changes', []))} src changes); "
                f"errors: {self.lab.errors()}"
            ) from exc
        raw = self.page.evaluate("() => window.__jlab.disarm()")
        if raw.get("tKey") is None:
            raise HarnessError("the keydown was not seen by the page")
        return _measurement_from(raw)

    def series(
        self, control: Any, keys: Sequence[str], warmup: int = 2, gap_s: float = 0.1, **kw: Any
    ) -> list[Measurement]:
        """Measure each key of ``keys`` in turn (the first ``warmup`` are run but not returned)."""
        out = []
        for i, key in enumerate(keys):
            m = self.measure(control, key, **kw)
            if i >= warmup:
                out.append(m)
            time.sleep(gap_s)
        return out


# --------------------------------------------------------------------------------------------------------------
# Outside pytest (bench/, a shell)
# --------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def lab_session(
    base_dir: str | os.PathLike[str] | None = None, executable: str | None = None, **server_kw: Any
) -> Any:
    """``with lab_session() as (server, context):`` a running :class:`LabServer` and a Chromium context, both
    stopped at exit.  Add notebooks with ``server.add(...)`` or write them into ``server.root_dir``."""
    from playwright.sync_api import sync_playwright

    with LabServer(base_dir, **server_kw) as server, sync_playwright() as pw:
        ctx = launch_chromium(pw, server.base_dir / "chromium-profile", executable=executable)
        try:
            yield server, ctx
        finally:
            ctx.close()


def measure_floor(
    server: LabServer, context: Any, size: int = 224, fmt: str = "jpeg", samples: int = 20, warmup: int = 3
) -> dict[str, Any]:
    """Keypress -> painted for the bare ``ipywidgets.Image`` swap (the floor), ``samples`` ArrowRight steps on
    the slider; returns :func:`summarize` plus the raw samples.  Shuts the notebook's kernel down after."""
    name = f"floor_{size}_{fmt}.ipynb"
    write_floor_notebook(server.root_dir / name, size=size, fmt=fmt, n_frames=samples + warmup + 2)
    lab = LabPage(context, server)
    try:
        lab.open_notebook(name)
        lab.run_all_cells()
        if lab.errors():
            raise HarnessError(f"floor notebook failed: {lab.errors()}")
        img = lab.wait_for_widget(f"img.{FLOOR_IMAGE_CLASS}")
        slider = lab.control(f".{FLOOR_SLIDER_CLASS}")
        got = LatencyProbe(lab, img).series(slider, ["ArrowRight"] * (samples + warmup), warmup=warmup)
    finally:
        lab.close()
        server.shutdown_kernels()
    return {
        "case": f"bare ipywidgets.Image {size} px {fmt}",
        **summarize(got),
        "samples": [m.as_dict() for m in got],
    }


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        description="Browser floor latency: bare ipywidgets.Image swap in JupyterLab"
    )
    ap.add_argument("--size", type=int, action="append", help="frame side in px (repeatable; default 224)")
    ap.add_argument(
        "--fmt", choices=["jpeg", "png"], action="append", help="encoding (repeatable; default jpeg)"
    )
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--raw", action="store_true", help="include every sample in the JSON")
    args = ap.parse_args(argv)
    path, reason = ensure_chromium()
    if not path:
        print(reason, file=sys.stderr)
        return 2
    results = []
    with lab_session(executable=path) as (server, ctx):
        for size in args.size or [224]:
            for fmt in args.fmt or ["jpeg"]:
                r = measure_floor(server, ctx, size=size, fmt=fmt, samples=args.samples)
                if not args.raw:
                    r.pop("samples")
                results.append(r)
                print(json.dumps(r), file=sys.stderr)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
