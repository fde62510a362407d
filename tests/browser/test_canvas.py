"""CAMCanvas (cam_widget/ui/canvas.js) in JupyterLab/Chromium: the browser's composite read back from the
<canvas> and compared with render.overlay computed here; linked controls repaint with no kernel message for the
canvas; hover reads the raw map; the panel survives a kernel restart; Voila renders the tour's panel."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from cam_widget import render, samples
from cam_widget.imaging import resize_to
from cam_widget.ui.canvas import CanvasCell, normalize_args

from .jlab import LabPage, _free_port, _set_pdeathsig, artifacts_dir, write_notebook

pytest.importorskip("anywidget", reason="the anywidget package ([canvas] extra) is not installed")

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

REPO = Path(__file__).resolve().parents[2]
MAX_LEVELS, MAX_MEAN = 2, 0.5

# name -> (size, normalisation, colormap, alpha); every canvas shows every sample photo unless noted
CANVASES = {
    "A224": (224, "minmax", "jet", 0.5),
    "B451": (451, "shared", "viridis", 0.35),
    "C1024": (1024, "signed", "turbo", 0.7),
    "D224": (224, "fixed", "magma", 0.6),
    "E451": (451, "none", "inferno", 0.45),
}
SHAPES = ((7, 7), (14, 14), (10, 13), (7, 7), (14, 14), (5, 9), (7, 7), (14, 14))


def _sized(image: np.ndarray, longest: int) -> np.ndarray:
    """The photo with its longest side exactly ``longest`` (shrunk or grown)."""
    h, w = image.shape[:2]
    s = longest / max(h, w)
    return resize_to(image, (max(1, round(h * s)), max(1, round(w * s))))


def _maps(seed: int, n: int, kind: str) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = SHAPES[i % len(SHAPES)]
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        m = 3.0 * np.exp(-((yy - rng.random()) ** 2 + (xx - rng.random()) ** 2) * 6) + rng.normal(
            0, 0.6, (h, w)
        )
        if kind == "none":
            m = m / 3.0  # mostly within [0, 1], some values outside (clipped)
        m = m.astype(np.float32)
        if i == 2:
            m[0, 0], m[1, 1] = np.nan, np.inf  # become 0, as in render
        if i == 5 and kind != "none":
            m[:] = 0.25  # a constant map: all zeros after min-max
        out.append(m)
    return out


def _spec(tmp: Path) -> dict:
    """Write the photos and maps the notebook shows (npz) and return what each canvas must look like."""
    photos = samples.sample_images()
    arrays, spec = {}, {}
    for ci, (name, (size, mode, cmap, alpha)) in enumerate(CANVASES.items()):
        names = list(photos) if name[0] in "ABC" else list(photos)[:4]
        maps = _maps(ci, len(names), mode)
        cells = []
        for j, (pname, cam) in enumerate(zip(names, maps, strict=True)):
            pk, mk = f"{name}_photo{j}", f"{name}_map{j}"
            arrays[pk], arrays[mk] = _sized(photos[pname], size), cam
            vrange, relu = None, True
            if mode == "fixed":
                vrange, relu = [(0.0, 2.5), (-1.0, 4.0), (0.5, 1.5), None][j], j != 1
            cells.append({"photo": pk, "map": mk, "label": f"{name} {pname}", "vrange": vrange, "relu": relu})
        spec[name] = {"mode": mode, "colormap": cmap, "alpha": alpha, "cells": cells}
    np.savez(tmp / "canvas_data.npz", **arrays)
    (tmp / "canvas_spec.json").write_text(json.dumps(spec))
    return spec


def _expected(spec: dict, data: dict, name: str, alpha: float, cmap: str, mode: str) -> list[np.ndarray]:
    cells = [
        CanvasCell(data[c["photo"]], data[c["map"]], vrange=None if c["vrange"] is None else tuple(c["vrange"]),
                   relu=c["relu"])
        for c in spec[name]["cells"]
    ]  # fmt: skip
    maps = [c.cam for c in cells]
    return [
        render.overlay(c.image, c.cam, alpha=alpha, colormap=cmap, **normalize_args(mode, c.cam, maps, c))
        for c in cells
    ]


SETUP = """\
import json
import numpy as np
import ipywidgets as widgets
from cam_widget import render
from cam_widget.ui.canvas import CAMCanvas, CanvasCell, NORMALIZATIONS

data = np.load("canvas_data.npz")
spec = json.load(open("canvas_spec.json"))
canvases = {}
for name, s in spec.items():
    cv = CAMCanvas(alpha=s["alpha"], colormap=s["colormap"], normalize=s["mode"], columns=4)
    cv.set_cells([
        CanvasCell(data[c["photo"]], data[c["map"]], c["label"],
                   vrange=None if c["vrange"] is None else tuple(c["vrange"]), relu=c["relu"])
        for c in s["cells"]
    ])
    cv.add_class(f"cam-test-{name}")
    canvases[name] = cv
    print("canvas", name, cv.model_id)

alpha = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.01, description="Opacity")
alpha.add_class("cam-test-alpha")
cmap = widgets.Dropdown(options=render.CURATED_COLORMAPS, value="jet", description="Colormap")
cmap.add_class("cam-test-cmap")
norm = widgets.Dropdown(options=[(n.replace("minmax", "min-max"), n) for n in NORMALIZATIONS], value="minmax")
norm.add_class("cam-test-norm")
canvases["A224"].link_controls(alpha=alpha, colormap=cmap, normalize=norm)
"""

SHOW = """\
widgets.VBox([widgets.HBox([alpha, cmap, norm]), *canvases.values()])
"""

READ_CANVAS = """(el) => {
    const d = el.getContext('2d').getImageData(0, 0, el.width, el.height).data;
    const rgb = new Uint8Array((d.length / 4) * 3);
    for (let i = 0, j = 0; i < d.length; i += 4, j += 3) { rgb[j] = d[i]; rgb[j + 1] = d[i + 1]; rgb[j + 2] = d[i + 2]; }
    let s = '';
    for (let i = 0; i < rgb.length; i += 0x8000) s += String.fromCharCode.apply(null, rgb.subarray(i, i + 0x8000));
    return {w: el.width, h: el.height, b64: btoa(s), frame: el.dataset.frame, alpha: el.dataset.alpha,
            colormap: el.dataset.colormap, normalize: el.dataset.normalize};
}"""


def _cells(lab: LabPage, name: str):
    return lab.page.locator(f".cam-test-{name} canvas.cam-canvas-cell")


def _wait_painted(lab: LabPage, name: str, n: int, timeout: float = 60, **state: object) -> None:
    cond = " && ".join(f"c.dataset.{k} === {json.dumps(str(v))}" for k, v in state.items()) or "true"
    sel = f".cam-test-{name} canvas.cam-canvas-cell"
    try:
        lab.page.wait_for_function(
            f"""([sel, n]) => {{
                const cs = [...document.querySelectorAll(sel)];
                return cs.length === n && cs.every((c) => Number(c.dataset.frame) > 0 && {cond});
            }}""",
            arg=[sel, n], timeout=timeout * 1000, polling=50,
        )  # fmt: skip
    except Exception as exc:
        seen = lab.page.evaluate(
            "(sel) => [...document.querySelectorAll(sel)].map((c) => ({...c.dataset}))", sel
        )
        notes = lab.page.evaluate(
            "() => [...document.querySelectorAll('.cam-canvas-note')].map((e) => e.textContent)"
        )
        raise AssertionError(
            f"{name}: wanted {n} cells painted with {state}; saw {seen}; notes {notes}"
        ) from exc


def _read(lab: LabPage, name: str) -> list[tuple[np.ndarray, dict]]:
    out = []
    cells = _cells(lab, name)
    for i in range(cells.count()):
        r = cells.nth(i).evaluate(READ_CANVAS)
        rgb = np.frombuffer(base64.b64decode(r["b64"]), np.uint8).reshape(r["h"], r["w"], 3)
        out.append((rgb, r))
    return out


def _compare(
    lab: LabPage, spec: dict, data: dict, name: str, alpha: float, cmap: str, mode: str
) -> list[dict]:
    got = _read(lab, name)
    want = _expected(spec, data, name, alpha, cmap, mode)
    assert len(got) == len(want)
    rows = []
    for i, ((rgb, _meta), ref) in enumerate(zip(got, want, strict=True)):
        assert rgb.shape == ref.shape, (name, i, rgb.shape, ref.shape)
        d = np.abs(rgb.astype(np.int16) - ref.astype(np.int16))
        rows.append({"canvas": name, "cell": i, "shape": list(ref.shape[:2]), "map": list(data[spec[name]["cells"][i]["map"]].shape),
                     "alpha": alpha, "colormap": cmap, "normalize": mode, "max": int(d.max()),
                     "mean": float(d.mean()), "differing": int((d > 0).any(axis=2).sum())})  # fmt: skip
    return rows


def _model_ids(lab: LabPage) -> dict[str, str]:
    ids = {}
    for line in lab.text_outputs().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "canvas":
            ids[parts[1]] = parts[2]
    return ids


def test_canvas_matches_render_overlay_and_links_controls(lab: LabPage, tmp_path: Path) -> None:
    root = lab.server.root_dir
    spec = _spec(root)
    data = dict(np.load(root / "canvas_data.npz"))
    write_notebook(root / "canvas_pixels.ipynb", [SETUP, SHOW])
    lab.page.set_viewport_size({"width": 1400, "height": 1200})
    lab.open_notebook("canvas_pixels.ipynb")
    lab.run_all_cells(timeout=120)
    assert lab.errors() == []

    rows = []
    for name, (_size, mode, cmap, alpha) in CANVASES.items():
        _wait_painted(lab, name, len(spec[name]["cells"]))
        rows += _compare(lab, spec, data, name, alpha, cmap, mode)
    lab.screenshot("canvas_grids")

    # The linked stock controls repaint A224 in the browser: opacity +3 steps, next colormap, next normalisation.
    slider, cmap_ctl, norm_ctl = (lab.control(f".cam-test-{k}") for k in ("alpha", "cmap", "norm"))
    for _ in range(3):
        lab.press(slider, "ArrowRight")
    lab.press(
        cmap_ctl, "PageDown"
    )  # Chromium moves a collapsed <select> by a few options: read where it went
    lab.press(norm_ctl, "PageDown")
    selected = "el => el.options[el.selectedIndex].textContent"
    new_cmap = cmap_ctl.evaluate(selected)
    new_norm = norm_ctl.evaluate(selected).replace("min-max", "minmax")
    assert new_cmap != "jet" and new_norm != "minmax"
    _wait_painted(lab, "A224", 8, alpha=0.53, colormap=new_cmap, normalize=new_norm)
    rows += _compare(lab, spec, data, "A224", 0.53, new_cmap, new_norm)

    (artifacts_dir() / "canvas_pixels.json").write_text(json.dumps(rows, indent=1))
    bad = [r for r in rows if r["max"] > MAX_LEVELS or r["mean"] > MAX_MEAN]
    print(f"\ncanvas vs render.overlay: {len(rows)} cells, worst max {max(r['max'] for r in rows)}, "
          f"worst mean {max(r['mean'] for r in rows):.4f}")  # fmt: skip
    assert not bad, bad
    assert {r["shape"][0] if r["shape"][0] >= r["shape"][1] else r["shape"][1] for r in rows} >= {
        224,
        451,
        1024,
    }
    assert lab.errors() == []


DRAG = """\
import numpy as np
import ipywidgets as widgets
from cam_widget import samples
from cam_widget.ui.canvas import CAMCanvas

photo = samples.sample_image("chelsea")
cam = np.random.default_rng(3).normal(size=(7, 7)).astype(np.float32)
np.save("drag_cam.npy", cam)
cv = CAMCanvas(alpha=0.2)
cv.show(photo, cam, "drag")
cv.add_class("cam-test-drag")
alpha = widgets.FloatSlider(value=0.2, min=0, max=1, step=0.01, description="Opacity",
                            layout=widgets.Layout(width="600px"))
alpha.add_class("cam-test-dragslider")
cv.link_controls(alpha=alpha)
print("canvas drag", cv.model_id)
widgets.VBox([alpha, cv])
"""


def test_opacity_drag_paints_without_kernel_messages(lab: LabPage) -> None:
    write_notebook(lab.server.root_dir / "canvas_drag.ipynb", [DRAG])
    lab.open_notebook("canvas_drag.ipynb")
    lab.run_all_cells(timeout=90)
    assert lab.errors() == []
    _wait_painted(lab, "drag", 1, alpha=0.2)
    canvas_id = _model_ids(lab)["drag"]
    handle = lab.control(".cam-test-dragslider")
    box = handle.bounding_box()
    track = lab.page.locator(".cam-test-dragslider .noUi-target").first.bounding_box()
    x0, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    frames0 = int(_cells(lab, "drag").first.get_attribute("data-frame"))

    lab.page.evaluate("() => { window.__jlab.wsLog = []; window.__jlab.recording = true; }")
    lab.page.mouse.move(x0, y)
    lab.page.mouse.down()
    lab.page.mouse.move(x0 + 0.5 * track["width"], y, steps=50)  # 50 mouse-move steps: a drag to ~0.7
    lab.page.mouse.up()
    final = float(handle.get_attribute("aria-valuenow"))
    _wait_painted(lab, "drag", 1, alpha=final)
    time.sleep(1.0)  # let the kernel's answers to the slider's own updates arrive, so they are counted
    log = lab.page.evaluate("() => { window.__jlab.recording = false; return window.__jlab.wsLog; }")
    frames1 = int(_cells(lab, "drag").first.get_attribute("data-frame"))

    assert 0.5 < final < 0.9, final
    # the right frame: what render.overlay draws at the slider's final value
    rgb, _meta = _read(lab, "drag")[0]
    cam = np.load(lab.server.root_dir / "drag_cam.npy")
    ref = render.overlay(samples.sample_image("chelsea"), cam, alpha=final)
    d = np.abs(rgb.astype(np.int16) - ref.astype(np.int16))
    assert d.max() <= MAX_LEVELS and d.mean() <= MAX_MEAN, (d.max(), d.mean())

    canvas_msgs = [m for m in log if m["comm_id"] == canvas_id]
    sent = [m for m in log if m["dir"] == "send"]
    recv = [m for m in log if m["dir"] == "recv"]
    summary = {
        "paints": frames1 - frames0, "final_alpha": final, "sent": len(sent), "received": len(recv),
        "sent_bytes": sum(m["size"] for m in sent), "received_bytes": sum(m["size"] for m in recv),
        "canvas_messages": len(canvas_msgs), "received_with_buffers": sum(m["nbuffers"] > 0 for m in recv),
    }  # fmt: skip
    (artifacts_dir() / "canvas_drag.json").write_text(json.dumps(summary, indent=1))
    print("\nopacity drag:", summary)
    assert frames1 - frames0 >= 20, summary  # it repainted along the drag, not only at the end
    assert canvas_msgs == [], canvas_msgs  # nothing to or from the canvas model: painting needs no kernel
    assert summary["received_with_buffers"] == 0, summary  # no image came from the kernel
    assert lab.errors() == []


HOVER_SETUP = """\
import numpy as np
import cam_widget
from cam_widget.ui.canvas import CAMCanvas

engine = cam_widget.default_engine()
photo = cam_widget.sample_images()["chelsea"]
top = engine.top_k(photo, 1)[0][0]
inner = [i for i in engine.layers() if i.shape[:2] == (14, 14)][-1].name
"""
HOVER_SHOW = """\
maps = {"cam": engine.cam(photo, top), "gradcam14": engine.cam(photo, top, layer=inner, method="gradcam")}
np.savez("hover_maps.npz", **maps)
cv = CAMCanvas(columns=2)
cv.set_cells([(photo, maps["cam"], "CAM 7x7"), (photo, maps["gradcam14"], "Grad-CAM 14x14")])
cv.add_class("cam-test-hover")
cv
"""


def _hover_checks(lab: LabPage, maps: dict[str, np.ndarray]) -> list[dict]:
    out = []
    cells = _cells(lab, "hover")
    for i, key in enumerate(("cam", "gradcam14")):
        cam = maps[key]
        canvas = cells.nth(i)
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        h, w = cam.shape
        # the centres of a few cells (corners, middle, near an edge): away from cell borders, where the
        # browser's rounding of mouse coordinates would decide
        for r, c in ((0, 0), (h // 2, w // 2), (1, w - 2), (h - 1, 0), (h - 1, w - 1)):
            fy, fx = (r + 0.5) / h, (c + 0.5) / w
            lab.page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            readout = lab.page.locator(".cam-test-hover .cam-canvas-readout").nth(i)
            lab.page.wait_for_function("(el) => el.dataset.row !== undefined", arg=readout.element_handle())
            ds = readout.evaluate("el => ({...el.dataset, text: el.textContent})")
            row, col = int(ds["row"]), int(ds["col"])
            assert (row, col) == (r, c), (key, ds)
            value = float(ds["value"])
            assert value == float(cam[row, col]), (key, row, col, value, cam[row, col])
            frac = float(ds["fraction"])
            assert frac == pytest.approx(float(cam[row, col]) / float(cam.max()), rel=1e-6)
            assert f"(row {row}, col {col})" in ds["text"] and "% of max" in ds["text"]
            out.append({"map": key, "row": row, "col": col, "value": value, "text": ds["text"]})
        fy, fx = (h // 2 + 0.5) / h, (w // 2 + 0.5) / w
        lab.page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        pinned = lab.page.locator(".cam-test-hover .cam-canvas-pinned").nth(i)
        assert f"(row {h // 2}, col {w // 2})" in pinned.inner_text()
    return out


def test_hover_matches_engine_cam_and_survives_restart(lab: LabPage) -> None:
    root = lab.server.root_dir
    write_notebook(root / "canvas_hover.ipynb", [HOVER_SETUP, HOVER_SHOW])
    lab.open_notebook("canvas_hover.ipynb")
    lab.run_all_cells(timeout=240)
    assert lab.errors() == []
    _wait_painted(lab, "hover", 2)
    maps = dict(np.load(root / "hover_maps.npz"))
    assert maps["cam"].shape == (7, 7) and maps["gradcam14"].shape == (14, 14)
    first = _hover_checks(lab, maps)

    # Restart the kernel and run everything again: a new canvas model paints and answers the mouse.
    lab.page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    lab.page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
        timeout=60_000, polling=200,
    )  # fmt: skip
    lab.run_all_cells(timeout=240)
    assert lab.errors() == []
    _wait_painted(lab, "hover", 2)
    second = _hover_checks(lab, dict(np.load(root / "hover_maps.npz")))
    assert [r["value"] for r in first] == [r["value"] for r in second]
    lab.screenshot("canvas_hover", scroll_to=_cells(lab, "hover").first)
    (artifacts_dir() / "canvas_hover.json").write_text(json.dumps(first, indent=1))


# ---------------------------------------------------------------------------------------------------------------
# Voila
# ---------------------------------------------------------------------------------------------------------------

TOUR = REPO / "notebooks" / "01_tour.ipynb"


@pytest.mark.skipif(not TOUR.is_file(), reason="no tour notebook")
def test_voila_renders_the_tour_panel(lab: LabPage, tmp_path: Path) -> None:
    pytest.importorskip("voila", reason="voila is not installed")
    base = lab.server.base_dir
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
    # the Lab server's isolated dirs: the same python3 kernelspec (this interpreter), no user config
    for key, sub in (("JUPYTER_CONFIG_DIR", "jupyter_config"), ("JUPYTER_DATA_DIR", "jupyter_data"),
                     ("JUPYTER_RUNTIME_DIR", "jupyter_runtime"), ("IPYTHONDIR", "ipython")):  # fmt: skip
        env[key] = str(base / sub)
    env.update({"JUPYTER_PLATFORM_DIRS": "1", "JUPYTER_PREFER_ENV_PATH": "0", "TF_CPP_MIN_LOG_LEVEL": "2"})
    nb_dir = tmp_path / "voila"
    nb_dir.mkdir()
    (nb_dir / TOUR.name).write_bytes(TOUR.read_bytes())
    port = _free_port()
    log = open(tmp_path / "voila.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "voila", TOUR.name, "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
         "--Voila.tornado_settings={'allow_origin': ''}", "--ServerApp.port_retries=0"],
        cwd=nb_dir, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        preexec_fn=_set_pdeathsig,
    )  # fmt: skip
    log.close()
    page = lab.page
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError((tmp_path / "voila.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        page.set_viewport_size({"width": 1280, "height": 1400})
        page.goto(url, timeout=300_000, wait_until="domcontentloaded")
        panel = page.locator(".cam-explorer").first
        panel.wait_for(state="visible", timeout=300_000)
        # anywidget is installed where Voila runs: the panel's picture is the in-browser canvas, painted
        picture = page.locator(".cam-explorer canvas.cam-canvas-cell").first
        picture.wait_for(state="visible", timeout=120_000)
        page.wait_for_function(
            "(el) => Number(el.dataset.frame) > 0", arg=picture.element_handle(), timeout=120_000, polling=100
        )
        # the Image-path fall-back (note + <img>) is in the page but hidden by the canvas's front end
        shown = page.evaluate(
            "() => [...document.querySelectorAll('.cam-explorer .cam-canvas-fallback')]"
            ".filter((el) => getComputedStyle(el).display !== 'none').length"
        )
        assert shown == 0
        panel.scroll_into_view_if_needed()
        panel.screenshot(path=str(artifacts_dir() / "voila_tour.png"))
        status = page.locator(".cam-explorer .cam-status").first.inner_text()
        assert "error" not in status.lower(), status
        assert page.locator(".cam-explorer .cam-error").count() == 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if (tmp_path / "voila.log").exists():
            (artifacts_dir() / "voila.log").write_bytes((tmp_path / "voila.log").read_bytes())


# ---------------------------------------------------------------------------------------------------------------
# The normalisation scope in the browser, and the panel's class change from the prefetched choices
# ---------------------------------------------------------------------------------------------------------------

SCOPE_SIZES = {"S224": 224, "S451": 451, "S1024": 1024}
SCOPE_SETUP = """\
import json
import numpy as np
import ipywidgets as widgets
from cam_widget import render
from cam_widget.ui.canvas import CAMCanvas, CanvasCell
from cam_widget.ui.controls import SCOPES

data = np.load("scope_data.npz")
spec = json.load(open("scope_spec.json"))
scope = widgets.ToggleButtons(options=SCOPES, value="map")
scope.add_class("cam-test-scope")
canvases = {}
for name, s in spec.items():
    cv = CAMCanvas(alpha=0.5, colormap="jet", normalize="fixed", columns=4)  # as the panel's canvas
    cv.set_signed_colormaps({"jet": "RdBu_r"})
    cv.set_cells([
        CanvasCell(data[c["photo"]], data[c["map"]], c["label"], vrange=tuple(c["vrange"]), relu=c["relu"],
                   signed=c["contrast"], contrast=c["contrast"])
        for c in s["cells"]
    ])
    cv.link_controls(scope=scope)
    cv.add_class(f"cam-test-{name}")
    canvases[name] = cv
    print("canvas", name, cv.model_id)
widgets.VBox([scope, *canvases.values()])
"""


def _scope_spec(root: Path) -> tuple[dict, dict]:
    """Four photos per size, maps as the panel sends them (the per-map scale as ``vrange``), the last a contrast."""
    from cam_widget.ui.scope import symmetric_scale

    photos = list(samples.sample_images().items())[:4]
    arrays, spec = {}, {}
    for ci, (name, size) in enumerate(SCOPE_SIZES.items()):
        maps = _maps(10 + ci, len(photos), "scope")
        maps[-1] = maps[-1] - maps[0][: maps[-1].shape[0], : maps[-1].shape[1]].mean()  # signed: a difference
        cells = []
        for j, ((pname, photo), cam) in enumerate(zip(photos, maps, strict=True)):
            pk, mk = f"{name}_photo{j}", f"{name}_map{j}"
            arrays[pk], arrays[mk] = _sized(photo, size), cam
            contrast = j == len(photos) - 1
            lo, hi = symmetric_scale([cam]) if contrast else render.value_range(cam, "minmax", True)
            cells.append({"photo": pk, "map": mk, "label": f"{name} {pname}", "vrange": [lo, hi],
                          "relu": not contrast, "contrast": contrast})  # fmt: skip
        spec[name] = {"cells": cells}
    np.savez(root / "scope_data.npz", **arrays)
    (root / "scope_spec.json").write_text(json.dumps(spec))
    return spec, dict(np.load(root / "scope_data.npz"))


def _scope_expected(spec: dict, data: dict, name: str, scope: str) -> list[np.ndarray]:
    from cam_widget.ui.canvas import scope_args

    cells = [CanvasCell(data[c["photo"]], data[c["map"]], vrange=tuple(c["vrange"]), relu=c["relu"],
                        signed=c["contrast"], contrast=c["contrast"]) for c in spec[name]["cells"]]  # fmt: skip
    out = []
    for c in cells:
        args, signed = scope_args(scope, "fixed", c, cells)
        out.append(render.overlay(c.image, c.cam, alpha=0.5, colormap="RdBu_r" if signed else "jet", **args))
    return out


def _record(lab: LabPage) -> None:
    lab.page.evaluate("() => { window.__jlab.wsLog = []; window.__jlab.recording = true; }")


def _recorded(lab: LabPage) -> list[dict]:
    return lab.page.evaluate("() => { window.__jlab.recording = false; return window.__jlab.wsLog; }")


def test_scopes_match_render_overlay_with_no_kernel_message(lab: LabPage) -> None:
    root = lab.server.root_dir
    spec, data = _scope_spec(root)
    write_notebook(root / "canvas_scope.ipynb", [SCOPE_SETUP])
    lab.page.set_viewport_size({"width": 1400, "height": 1200})
    lab.open_notebook("canvas_scope.ipynb")
    lab.run_all_cells(timeout=120)
    assert lab.errors() == []
    ids = set(_model_ids(lab).values())
    rows, logs = [], {}
    for label, scope in (("Per map", "map"), ("Shared", "shared"), ("Signed", "signed"), ("Per map", "map")):
        if rows:  # the first round checks the initial picture
            _record(lab)
            lab.page.locator(".cam-test-scope button", has_text=re.compile(rf"^\s*{label}\s*$")).first.click()
        for name in SCOPE_SIZES:
            _wait_painted(lab, name, 4, scope=scope)
        if rows:
            time.sleep(1.0)  # the kernel's answers to the buttons' own update arrive and are counted
            logs[scope] = _recorded(lab)
        for name in SCOPE_SIZES:
            got = _read(lab, name)
            for i, ((rgb, _meta), ref) in enumerate(zip(got, _scope_expected(spec, data, name, scope), strict=True)):
                d = np.abs(rgb.astype(np.int16) - ref.astype(np.int16))
                rows.append({"canvas": name, "cell": i, "scope": scope, "shape": list(ref.shape[:2]),
                             "max": int(d.max()), "mean": float(d.mean())})  # fmt: skip
    (artifacts_dir() / "canvas_scope_pixels.json").write_text(json.dumps({"rows": rows, "ws": logs}, indent=1))
    lab.screenshot("canvas_scopes")
    bad = [r for r in rows if r["max"] > MAX_LEVELS or r["mean"] > MAX_MEAN]
    assert not bad, bad
    assert {r["scope"] for r in rows} == {"map", "shared", "signed"} and len(rows) == 4 * 3 * 4
    assert {max(r["shape"]) for r in rows} == {224, 451, 1024}
    for scope, log in logs.items():
        assert [m for m in log if m["comm_id"] in ids] == [], scope  # nothing to or from any canvas
        assert not any(m["nbuffers"] for m in log if m["dir"] == "recv"), scope
        assert any(m["dir"] == "send" for m in log), scope  # the buttons' own update did go up (off the path)
    assert lab.errors() == []


PANEL_SETUP = """\
import numpy as np
import cam_widget
engine = cam_widget.default_engine()
explorer = cam_widget.CAMExplorer(engine, {"chelsea": cam_widget.sample_images()["chelsea"]}, display_size=451)
print("canvas panel", explorer.output.canvas.model_id, explorer.caption.model_id)
explorer"""

DUMP = """\
explorer.wait()
np.save("panel_rgb.npy", explorer.overlay_rgb)
print(explorer.state["class_name"], explorer.state["scope"])
"""


def _panel_pixels(lab: LabPage, canvas) -> tuple[int, float]:
    from bench.browser_latency import kernel_exec

    kernel_exec(lab, DUMP)
    want = np.load(lab.server.root_dir / "panel_rgb.npy")
    r = canvas.evaluate(READ_CANVAS)
    got = np.frombuffer(base64.b64decode(r["b64"]), np.uint8).reshape(r["h"], r["w"], 3)
    assert got.shape == want.shape
    d = np.abs(got.astype(np.int16) - want.astype(np.int16))
    return int(d.max()), float(d.mean())


def test_panel_scope_and_class_change_need_no_kernel_round_trip(lab: LabPage) -> None:
    """The panel: the scope buttons repaint (and re-legend) in the browser; a class change among the top-k paints the
    prefetched map, and the kernel's only answer is its busy/idle status (no echo, no canvas, no caption)."""
    write_notebook(lab.server.root_dir / "canvas_panel.ipynb", [PANEL_SETUP])
    lab.page.set_viewport_size({"width": 1280, "height": 1600})
    lab.open_notebook("canvas_panel.ipynb")
    lab.run_all_cells(timeout=240)
    assert lab.errors() == []
    line = next(ln for ln in lab.text_outputs().splitlines() if ln.startswith("canvas panel"))
    canvas_id, caption_id = line.split()[2:4]
    explorer = lab.page.locator(".jp-OutputArea-output .cam-explorer").first
    canvas = lab.wait_for_widget("canvas.cam-canvas-cell", timeout=120)
    lab.page.wait_for_function("(el) => Number(el.dataset.frame) > 0", arg=canvas.element_handle(), timeout=60_000)
    status = explorer.locator(".cam-status").first
    lab.page.wait_for_function("(el) => el.innerText.trim().length > 0", arg=status.element_handle(), timeout=60_000)
    assert explorer.locator(".cam-caption").first.is_hidden()  # the canvas draws the caption
    results = {"initial": _panel_pixels(lab, canvas)}

    # the scope: Shared, then Signed, by mouse
    for label, scope in (("Shared", "shared"), ("Signed", "signed")):
        _record(lab)
        explorer.locator(".cam-scope button", has_text=re.compile(rf"^\s*{label}\s*$")).first.click()
        lab.page.wait_for_function(f"(el) => el.dataset.scope === '{scope}'", arg=canvas.element_handle(),
                                   timeout=30_000, polling=20)  # fmt: skip
        legend = explorer.locator(".cam-legend").first.inner_text()
        assert scope in legend, legend
        time.sleep(1.5)  # the kernel re-renders its own copy (Save, static PNG): off the path, and sends nothing
        log = _recorded(lab)
        assert [m for m in log if m["comm_id"] in (canvas_id, caption_id)] == [], log
        results[scope] = _panel_pixels(lab, canvas)

    # a class change among the top-k: ArrowDown on the dropdown
    explorer.locator(".cam-scope button", has_text=re.compile(r"^\s*Per map\s*$")).first.click()
    lab.page.wait_for_function("(el) => el.dataset.scope === 'map'", arg=canvas.element_handle(), timeout=30_000)
    time.sleep(1.0)
    text0 = status.inner_text()
    select = lab.control(".cam-explorer .cam-class")
    _record(lab)
    frame0 = int(canvas.get_attribute("data-frame"))
    lab.press(select, lab.step_key(select))
    lab.page.wait_for_function(f"(el) => Number(el.dataset.frame) > {frame0}", arg=canvas.element_handle(),
                               timeout=30_000, polling=10)  # fmt: skip
    time.sleep(1.5)
    log = _recorded(lab)
    text1 = status.inner_text()
    assert text1 != text0 and "error" not in text1.lower(), (text0, text1)
    recv = [m for m in log if m["dir"] == "recv"]
    assert {m["msg_type"] for m in recv} == {"status"}, recv  # busy/idle only: no echo, no map, no caption
    results["class"] = _panel_pixels(lab, canvas)
    summary = {"pixels (max, mean) vs overlay_rgb": results, "class change frames": log,
               "class change bytes down": sum(m["size"] for m in recv),
               "class change bytes both ways": sum(m["size"] for m in log)}  # fmt: skip
    (artifacts_dir() / "canvas_panel.json").write_text(json.dumps(summary, indent=1))
    print("\npanel:", {k: v for k, v in summary.items() if k != "class change frames"})
    for what, (mx, mean) in results.items():
        assert mx <= MAX_LEVELS and mean <= MAX_MEAN, (what, mx, mean)
    lab.screenshot("canvas_panel_class", scroll_to=canvas)
    assert lab.errors() == []
