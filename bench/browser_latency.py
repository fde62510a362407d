"""Benchmark 2: browser latency, keypress -> new overlay painted, in JupyterLab + headless Debian Chromium.

For CAMExplorer's alpha slider and class dropdown (driven with the keyboard, timed inside the page by the harness
of ``tests/browser/jlab.py``: keydown event -> ``<img src>`` mutation -> decoded -> painted), versus the floor of
this stack in the same run: a bare ``ipywidgets.Image`` whose slider / dropdown swap pre-encoded frames -- the very
frames CAMExplorer produced during the run, so size, format and content are identical.  Explorer and floor blocks
alternate (two tabs, brought to the front in turn) so machine noise hits both.

Breakdown per keypress (medians), from the kernel websocket recorded in the page and from timers wrapped around
``cam_widget.render`` / ``engine.cam`` inside the kernel (benchmark-only instrumentation, set up in the notebook):
keydown -> message sent -> kernel busy -> image sent (kernel: compute + encode + serialisation) -> received ->
painted.

    .venv/bin/python -m bench.browser_latency [--quick]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

from . import common
from .common import log, now

NAME = "browser_latency"
sys.path.insert(0, str(common.REPO_ROOT / "tests" / "browser"))

SETUP = """\
import json, pickle, sys, time
sys.path.insert(0, {repo!r})
import cam_widget
from cam_widget import render
from bench.common import at_longest

engine = cam_widget.default_engine()
from cam_widget.samples import sample_image
photo = sample_image("chelsea")
if {longest!r}:
    photo = at_longest(photo, {longest!r})

# benchmark-only timers around the rendering steps (the widget calls them as render.<name>)
LOG, CTRL, FRAMES = [], [], []
def _timed(fn, tag):
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        out = fn(*a, **k)
        t1 = time.perf_counter()
        if tag == "encode":
            shape, fmt = a[0].shape, (a[1] if len(a) > 1 else k.get("fmt", "png"))
            LOG.append((tag, t0, t1, shape[0], shape[1]))
            if shape[0] > 16 and len(FRAMES) < 200:
                FRAMES.append((fmt, shape, out))
        else:
            LOG.append((tag, t0, t1))
        return out
    return wrapper
for _name in ("to_index", "blend", "encode"):
    setattr(render, _name, _timed(getattr(render, _name), _name))
engine.cam = _timed(engine.cam, "engine.cam")

def _instrument(ex, tag):
    # control time = when the kernel applies the browser's update to the control (before any observer runs)
    for ctl in (ex.alpha_control, ex.class_control):
        def set_state(state, _orig=ctl.set_state):
            CTRL.append(("control", time.perf_counter(), tag))
            return _orig(state)
        ctl.set_state = set_state
    ex.image_widget.observe(lambda ch: CTRL.append(("image", time.perf_counter(), tag)), "value")
    return ex

# the widget on the kernel-rendered Image path (renders in its worker thread inside a kernel), and the same with
# threaded=False; the in-browser canvas output (the default where anywidget is installed) is bench/canvas_latency.py
from cam_widget.ui.output import ImageOutput
explorer = _instrument(cam_widget.CAMExplorer(engine, {{"photo": photo}}, display_size={display!r},
                                              output=ImageOutput()), "threaded")
explorer_sync = _instrument(
    cam_widget.CAMExplorer(engine, {{"photo": photo}}, display_size={display!r}, threaded=False,
                           output=ImageOutput()), "sync")
print("kernel python:", sys.executable)
print("frame:", explorer.overlay_rgb.shape, explorer.image_widget.format, "threaded:", explorer.threaded,
      explorer_sync.threaded)
"""

DUMP = """\
import json as _j
_out = {{"log": LOG[:], "ctrl": CTRL[:], "format": explorer.image_widget.format,
        "shape": list(explorer.overlay_rgb.shape), "bytes": len(explorer.image_widget.value)}}
if {frames_path!r}:  # the frames as sent: same format and size as the one on screen
    _fmt, _shape = explorer.image_widget.format, explorer.overlay_rgb.shape
    with open({frames_path!r}, "wb") as _f:
        _uniq = list(dict.fromkeys(b for f, s, b in FRAMES if f == _fmt and s == _shape))  # distinct frames only
        if len(_uniq) < 48:  # top-k classes x a few alphas give few distinct frames; the floor's slider and
            # dropdown share one image and must never step onto the frame already shown: pad with more overlays
            # of the same photo, size and format (other opacities)
            _disp = explorer._photos["photo"].display
            _idx = render.to_index(explorer.current_map(), _disp.shape[:2])
            for _a in [round(0.05 + 0.015 * _k, 3) for _k in range(60)]:
                _uniq.append(render.encode(render.blend(_disp, _idx, "jet", _a), _fmt, explorer.jpeg_quality))
            _uniq = list(dict.fromkeys(_uniq))
        pickle.dump(_uniq[-64:], _f)
LOG.clear(); CTRL.clear()
print(_j.dumps(_out))
"""

KERNEL_EXEC_JS = """async (code) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const fut = k.requestExecute({code, silent: false, store_history: false});
  const out = [];
  fut.onIOPub = (msg) => {
    const t = msg.header.msg_type;
    if (t === 'stream') out.push(msg.content.text);
    if (t === 'error') out.push('ERROR ' + msg.content.ename + ': ' + msg.content.evalue);
  };
  await fut.done;
  return out.join('');
}"""


def kernel_exec(lab: Any, code: str) -> str:
    """Run ``code`` in the notebook's kernel (not as a cell); return its printed output."""
    out = lab.page.evaluate(KERNEL_EXEC_JS, code)
    if out.startswith("ERROR"):
        raise RuntimeError(out)
    return out


def _kernel_breakdown(dump: dict[str, Any], tag: str) -> dict[str, Any]:
    """Per published frame of explorer ``tag``: browser update applied to the control -> image value set in the
    kernel, and the rendering steps inside that window."""
    ctrl, log_ = [e for e in dump["ctrl"] if e[2] == tag], dump["log"]
    handling, compute, encode = [], [], []
    last_ctrl = None
    for ev in ctrl:
        if ev[0] == "control":
            last_ctrl = ev[1]
        elif ev[0] == "image" and last_ctrl is not None:
            t0, t1 = last_ctrl, ev[1]
            handling.append(t1 - t0)
            steps = [e for e in log_ if e[1] >= t0 and e[2] <= t1]
            compute.append(sum(e[2] - e[1] for e in steps if e[0] != "encode"))
            encode.append(sum(e[2] - e[1] for e in steps if e[0] == "encode"))
            last_ctrl = None

    def med(v: list[float]) -> float | None:
        return round(statistics.median(v) * 1e3, 3) if v else None

    return {
        "frames": len(handling),
        "control_to_image_ms": med(handling),
        "compute_ms": med(compute),
        "encode_ms": med(encode),
    }


def _timeline(summary: dict[str, Any]) -> dict[str, Any]:
    """Where the keypress -> painted time goes (medians of each boundary; differences of medians)."""
    g = summary.get

    def d(a: str | None, b: str) -> float | None:
        va = 0.0 if a is None else g(a)
        vb = g(b)
        return None if va is None or vb is None else round(vb - va, 2)

    return {
        "keydown_to_sent": g("send_ms_median"),
        "sent_to_kernel_busy": d("send_ms_median", "kernel_busy_ms_median"),
        "kernel_busy_to_image_sent": d("kernel_busy_ms_median", "kernel_reply_ms_median"),
        "image_sent_to_received": d("kernel_reply_ms_median", "recv_ms_median"),
        "received_to_src_set": d("recv_ms_median", "mutation_ms_median"),
        "src_set_to_decoded": d("mutation_ms_median", "decoded_ms_median"),
        "decoded_to_painted": d("decoded_ms_median", "latency_ms_median"),
    }


def _series(
    lab: Any, probe: Any, ctl: Any, n: int, alternate: bool, warmup: int, before: Any = None
) -> list[Any]:
    out = []
    for i in range(n + warmup):
        if before is not None:
            before()  # untimed
        key = lab.step_key(ctl, forward=(i % 2 == 0) if alternate else True)
        m = probe.measure(ctl, key, timeout=60, settle_ms=150)
        if i >= warmup:
            out.append(m)
        time.sleep(0.1)
    return out


def _messages(m: Any) -> dict[str, Any]:
    """Kernel -> browser widget messages caused by one keypress, and where the image came among them."""
    sent = {w["msg_id"] for w in m.raw.get("ws", []) if w["dir"] == "send"}
    recv = [
        w
        for w in m.raw.get("ws", [])
        if w["dir"] == "recv" and w["msg_type"] == "comm_msg" and w["parent_id"] in sent
    ]
    pos = next((i for i, w in enumerate(recv) if w["nbuffers"] > 0), None)
    return {"comm_msgs": len(recv), "image_position": None if pos is None else pos + 1}


def _case(samples: list[Any]) -> dict[str, Any]:
    import jlab

    s = jlab.summarize(samples)
    msgs = [_messages(m) for m in samples]
    s["comm_msgs_median"] = statistics.median([x["comm_msgs"] for x in msgs]) if msgs else None
    pos = [x["image_position"] for x in msgs if x["image_position"] is not None]
    s["image_message_position_median"] = statistics.median(pos) if pos else None
    return {
        **s,
        "timeline": _timeline(s),
        "samples": [{**m.as_dict(), **x} for m, x in zip(samples, msgs, strict=True)],
    }


def _control(root: Any, cls: str) -> Any:
    """The keyboard-focusable part of the control with CSS class ``cls`` inside ``root`` (cf. LabPage.control)."""
    base = root.locator(cls).first
    base.wait_for(state="attached", timeout=30_000)
    for inner in (".noUi-handle", "select", "input"):
        cand = base.locator(inner)
        if cand.count():
            return cand.first
    return base


def measure_config(
    server: Any, ctx: Any, label: str, display: int, longest: int | None, n: int, rounds: int
) -> dict:
    """One display configuration: the shipped (threaded) explorer, the same with ``threaded=False`` and the floor,
    measured block by block in turn."""
    import jlab

    tag = f"{display}_{longest or 'native'}"
    frames_path = server.base_dir / f"frames_{tag}.pkl"
    nb = f"explorer_{tag}.ipynb"
    setup = SETUP.format(repo=str(common.REPO_ROOT), longest=longest, display=display)
    jlab.write_notebook(
        server.root_dir / nb,
        [("markdown", f"# CAMExplorer latency: {label}"), setup, "explorer", "explorer_sync"],
    )
    ex_lab = jlab.LabPage(ctx, server)
    fl_lab = None
    res: dict[str, Any] = {"label": label, "display_size": display, "source_longest": longest}
    try:
        t0 = now()
        ex_lab.open_notebook(nb, timeout=180)
        ex_lab.page.set_viewport_size({"width": 1280, "height": 2400})  # both panels in view
        ex_lab.run_all_cells(timeout=240)
        if ex_lab.errors():
            raise jlab.HarnessError(f"explorer notebook failed: {ex_lab.errors()}")
        ex_lab.wait_for_widget("img.cam-image", timeout=120)
        panels = ex_lab.page.locator(".jp-OutputArea-output .cam-explorer")
        ex_lab.page.wait_for_function(
            "() => document.querySelectorAll('.jp-OutputArea-output .cam-explorer .cam-status').length >= 2 && "
            "[...document.querySelectorAll('.jp-OutputArea-output .cam-explorer .cam-status')]"
            ".every((el) => el.innerText.trim().length > 0)",
            timeout=60_000,
            polling=100,
        )
        res["notebook_ready_s"] = round(now() - t0, 1)
        variants: dict[str, dict[str, Any]] = {}
        for suffix, k in (
            ("", 0),
            ("_sync", 1),
        ):  # the notebook's first panel is `explorer`, the second `_sync`
            root = panels.nth(k)
            img = root.locator("img.cam-image").first
            variants[suffix] = {
                "tag": "threaded" if suffix == "" else "sync",
                "img": img,
                "alpha": _control(root, ".cam-alpha"),
                "class": _control(root, ".cam-class"),
                "probe": jlab.LatencyProbe(ex_lab, img),
            }
        kernel_exec(ex_lab, "LOG.clear(); CTRL.clear()")

        cases = [f"{c}{v}" for v in variants for c in ("alpha", "class_first", "class_cached")]
        samples: dict[str, list[Any]] = {k: [] for k in [*cases, "floor_slider", "floor_dropdown"]}
        dumps: list[dict[str, Any]] = []
        kern: dict[str, list[dict[str, Any]]] = {}
        # class, first time: step down the list from the top-1 with the widget's map cache emptied before each step
        # (untimed), so that every step computes a new map from the engine's cached features -- the class list is
        # the top-k only, too short to find a new class at every step -- then warm the two classes the cached
        # series toggles between
        def forget() -> None:
            kernel_exec(ex_lab, "explorer.clear_cache(); explorer_sync.clear_cache()")

        for v, d in variants.items():
            samples[f"class_first{v}"] += _series(
                ex_lab, d["probe"], d["class"], max(3, n // 2), False, 0, before=forget
            )
            kern[f"class_first{v}"] = [json.loads(kernel_exec(ex_lab, DUMP.format(frames_path="")))]
            for fwd in (True, False, True, False):
                ex_lab.press_and_wait_change(d["class"], ex_lab.step_key(d["class"], forward=fwd), d["img"])
        kernel_exec(ex_lab, "LOG.clear(); CTRL.clear()")

        fl_nb = f"floor_{tag}.ipynb"
        for r in range(rounds):
            ex_lab.page.bring_to_front()
            for v, d in variants.items():
                samples[f"alpha{v}"] += _series(ex_lab, d["probe"], d["alpha"], n, True, 2 if r == 0 else 1)
                kern.setdefault(f"alpha{v}", []).append(
                    json.loads(kernel_exec(ex_lab, DUMP.format(frames_path=str(frames_path))))
                )
                samples[f"class_cached{v}"] += _series(ex_lab, d["probe"], d["class"], n, True, 1)
                dump = json.loads(kernel_exec(ex_lab, DUMP.format(frames_path="")))
                kern.setdefault(f"class_cached{v}", []).append(dump)
                dumps.append(dump)
            res["frame"] = {"format": dump["format"], "shape": dump["shape"], "bytes": dump["bytes"]}
            if fl_lab is None:
                # the floor: a bare ipywidgets.Image swapping the explorer's own (distinct) frames
                jlab.write_floor_notebook(
                    server.root_dir / fl_nb, fmt=dump["format"],
                    frames_code=f"import pickle\nframes = pickle.load(open({str(frames_path)!r}, 'rb'))",
                )  # fmt: skip
                fl_lab = jlab.LabPage(ctx, server)
                fl_lab.open_notebook(fl_nb, timeout=120)
                fl_lab.run_all_cells(timeout=120)
                if fl_lab.errors():
                    raise jlab.HarnessError(f"floor notebook failed: {fl_lab.errors()}")
                fl_img = fl_lab.wait_for_widget(f"img.{jlab.FLOOR_IMAGE_CLASS}")
                fl_slider = fl_lab.control(f".{jlab.FLOOR_SLIDER_CLASS}")
                fl_drop = fl_lab.control(f".{jlab.FLOOR_DROPDOWN_CLASS}")
                fl_probe = jlab.LatencyProbe(fl_lab, fl_img)
            fl_lab.page.bring_to_front()
            samples["floor_slider"] += _series(fl_lab, fl_probe, fl_slider, n, alternate=True, warmup=1)
            samples["floor_dropdown"] += _series(fl_lab, fl_probe, fl_drop, n, alternate=True, warmup=1)
            log(
                f"[browser] {label} round {r + 1}/{rounds}: "
                + ", ".join(
                    f"{k} {statistics.median([m.latency_ms for m in v]):.0f} ms"
                    for k, v in samples.items()
                    if v
                )
            )
        ex_lab.page.bring_to_front()
        ex_lab.screenshot(f"bench_explorer_{tag}", scroll_to=variants[""]["img"])
        res["screenshot"] = f"artifacts/browser/bench_explorer_{tag}.png"
        res["cases"] = {k: _case(v) for k, v in samples.items()}
        res["kernel"] = {}
        for k, ds in kern.items():
            merged = {"ctrl": [e for d in ds for e in d["ctrl"]], "log": [e for d in ds for e in d["log"]]}
            res["kernel"][k] = _kernel_breakdown(merged, "sync" if k.endswith("_sync") else "threaded")
        res["errors"] = ex_lab.errors()
        c = res["cases"]
        res["ratios_vs_floor"] = {}
        for v in variants:
            for case, fl in (
                ("alpha", "floor_slider"),
                ("class_cached", "floor_dropdown"),
                ("class_first", "floor_dropdown"),
            ):
                res["ratios_vs_floor"][f"{case}{v}"] = common.ratio(
                    c[f"{case}{v}"]["latency_ms_median"], c[fl]["latency_ms_median"]
                )
    finally:
        for lab in (ex_lab, fl_lab):
            if lab is not None:
                lab.close()
        server.shutdown_kernels()
    return res


GRID_SETUP = """\
import pickle, sys
sys.path.insert(0, {repo!r})
import cam_widget
from cam_widget.samples import sample_image
from cam_widget.ui.views.layers import default_layers

engine = cam_widget.default_engine()
from cam_widget.ui.output import ImageOutput  # the kernel-composed picture (the target's Image path)
grid = cam_widget.CAMExplorer(engine, {{"photo": sample_image("chelsea")}}, display_size={display!r}, view="layers",
                              output=ImageOutput())
grid.layers_control.value = default_layers({{i.name: i for i in engine.layers()}}, engine.cam_layer, resolutions=4)
grid.wait()
_frames = []  # the grid's own frames (other opacities) for the floor: same size, format and content
for _k in range(60):
    grid.alpha_control.value = round(0.05 + 0.015 * _k, 3)
    grid.wait()
    _frames.append(bytes(grid.image_widget.value))
grid.alpha_control.value = 0.5
grid.wait()
pickle.dump(list(dict.fromkeys(_frames))[-64:], open({frames_path!r}, "wb"))
print("grid:", "x".join(map(str, grid.overlay_rgb.shape[1::-1])), grid.image_widget.format,
      len(grid.current_maps()), "cells")
grid"""


def measure_grid(server: Any, ctx: Any, n: int, rounds: int, display: int = 768) -> dict[str, Any]:
    """Issue 13's target: a 4-cell Layers grid, alpha change keypress -> painted, vs a bare ``ipywidgets.Image``
    swapping the grid's own frames (same pixel count), blocks alternating round by round.  Run by ``bench.views``
    (its ``browser_grid`` entry)."""
    import re

    import jlab

    frames_path = server.base_dir / "frames_grid.pkl"
    jlab.write_notebook(server.root_dir / "grid.ipynb", [
        ("markdown", "# CAMExplorer: a 4-cell Layers grid"),
        GRID_SETUP.format(repo=str(common.REPO_ROOT), display=display, frames_path=str(frames_path)),
    ])  # fmt: skip
    gl = jlab.LabPage(ctx, server)
    fl = None
    try:
        gl.open_notebook("grid.ipynb", timeout=180)
        gl.page.set_viewport_size({"width": 1280, "height": 1800})
        gl.run_all_cells(timeout=300)
        if gl.errors():
            raise jlab.HarnessError(f"grid notebook failed: {gl.errors()}")
        frame = re.search(r"grid: (\S+) (\w+) (\d+) cells", gl.text_outputs())
        if frame is None or frame.group(3) != "4":
            raise jlab.HarnessError(f"the grid did not render 4 cells: {gl.text_outputs()[-500:]}")
        img = gl.wait_for_widget("img.cam-image", timeout=120)
        alpha = gl.control(".cam-explorer .cam-alpha")
        probe = jlab.LatencyProbe(gl, img)
        jlab.write_floor_notebook(
            server.root_dir / "floor_grid.ipynb", fmt=frame.group(2),
            frames_code=f"import pickle\nframes = pickle.load(open({str(frames_path)!r}, 'rb'))",
        )  # fmt: skip
        fl = jlab.LabPage(ctx, server)
        fl.open_notebook("floor_grid.ipynb", timeout=120)
        fl.run_all_cells(timeout=120)
        if fl.errors():
            raise jlab.HarnessError(f"floor notebook failed: {fl.errors()}")
        fl_img = fl.wait_for_widget(f"img.{jlab.FLOOR_IMAGE_CLASS}")
        fl_slider = fl.control(f".{jlab.FLOOR_SLIDER_CLASS}")
        fl_probe = jlab.LatencyProbe(fl, fl_img)
        grid_s: list[Any] = []
        floor_s: list[Any] = []
        for r in range(rounds):
            gl.page.bring_to_front()
            grid_s += _series(gl, probe, alpha, n, True, 2 if r == 0 else 1)
            fl.page.bring_to_front()
            floor_s += _series(fl, fl_probe, fl_slider, n, True, 1)
            log(f"[browser] grid round {r + 1}/{rounds}: grid alpha "
                f"{statistics.median([m.latency_ms for m in grid_s]):.0f} ms, floor "
                f"{statistics.median([m.latency_ms for m in floor_s]):.0f} ms")
        gl.page.bring_to_front()
        gl.screenshot("bench_grid", scroll_to=img)
        g, f = _case(grid_s), _case(floor_s)
        ratio = common.ratio(g["latency_ms_median"], f["latency_ms_median"])
        return {
            "grid_alpha_ms": g["latency_ms_median"], "floor_ms": f["latency_ms_median"], "ratio": ratio,
            "target": 1.25, "met": bool(ratio is not None and ratio <= 1.25), "samples": len(grid_s),
            "frame": f"{frame.group(1)} {frame.group(2)}", "display_size": display,
            "cases": {"grid_alpha": g, "floor_slider": f}, "errors": gl.errors(),
            "screenshot": "artifacts/browser/bench_grid.png",
        }
    finally:
        for lab in (gl, fl):
            if lab is not None:
                lab.close()
        server.shutdown_kernels()


def run(quick: bool = False, repeats: int | None = None, engine: Any = None) -> dict[str, Any]:
    import jlab

    path, reason = jlab.ensure_chromium(install=True)
    if not path:
        return {"skipped": reason}
    configs = [("default: display_size=768, the 451x300 photo at its own size", 768, None)]
    if not quick:
        configs += [
            ("1024 px: the photo upscaled to 1024 px first, display_size=1024", 1024, 1024),
            ("224 px: display_size=224", 224, None),
        ]
    n = repeats or (5 if quick else 10)
    rounds = 1 if quick else 3
    out: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    with jlab.lab_session(executable=path) as (server, ctx):
        for label, display, longest in configs:
            log(f"[browser] {label}")
            try:
                out.append(measure_config(server, ctx, label, display, longest, n, rounds))
            except Exception as exc:  # one configuration failing must not lose the others
                log(f"[browser] FAILED {label}: {exc!r}")
                errors.append({"label": label, "error": f"{type(exc).__name__}: {exc}"[:2000]})
    targets = {}
    for cfg in out:
        r = cfg["ratios_vs_floor"]
        targets[cfg["label"]] = {
            k: {"ratio": r[k], "target": 1.25, "met": bool(r[k] is not None and r[k] <= 1.25)}
            for k in ("alpha", "class_cached", "alpha_sync", "class_cached_sync")
        }
    return {
        "chromium": path,
        "samples_per_case": n * rounds,
        "configs": out,
        "errors": errors,
        "targets": targets,
        "method": (
            "Each case: keydown -> new <img> painted, timed in the page (tests/browser/jlab.py LatencyProbe). "
            "One kernel shows two CAMExplorers on the same photo: the widget as shipped (renders in its worker "
            "thread) and the same with threaded=False (renders in the comm handler; *_sync cases). Floor: bare "
            "ipywidgets.Image + IntSlider / Dropdown swapping the explorer's own encoded frames, in another tab. "
            "Blocks of each alternate round by round. Alpha and slider steps alternate ArrowRight/ArrowLeft; "
            "class and dropdown steps PageDown/PageUp (class first: PageDown only, the panels' map caches emptied before each step)."
        ),
    }


def main(argv: list[str] | None = None) -> int:
    body, path = common.run_cli(NAME, __doc__, run, argv)
    if "skipped" in body:
        print("skipped:", body["skipped"])
        return 0
    for cfg in body["configs"]:
        print(cfg["label"], cfg.get("frame"))
        for k, v in cfg["cases"].items():
            print(f"  {k:16s} median {v['latency_ms_median']:7.1f} ms  timeline {v['timeline']}")
        print("  kernel:", cfg["kernel"])
        print("  ratios vs floor:", cfg["ratios_vs_floor"])
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
