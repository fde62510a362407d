"""Benchmark: the in-browser canvas output as Binder users see it -- keypress -> painted, with and without a
network round trip between Chromium and Jupyter.

A fixed one-way delay (``bench/delay_proxy.py``: an asyncio TCP proxy on 127.0.0.1, default 50 ms each way, so a
100 ms round trip; no tc/netem) sits between the browser and the Jupyter server in the "rtt" configuration; the
"localhost" configuration connects directly.  In each, one notebook shows two CAMExplorers on the same photo:
the default output (CanvasOutput: the browser blends; opacity and colormap never wait for the kernel) and the
kernel-rendered Image path (``output=ImageOutput()``), plus the floor in another tab: a bare ``ipywidgets.Image``
swapping pre-encoded JPEG overlays of the same size.  Cases (timed in the page, tests/browser/jlab.py):

* canvas: opacity (slider), colormap (dropdown), normalisation scope (Enter on the Shared / Per map buttons);
  class change among the top-k, whose maps came with the image's first frame ("prefetched": painted in the
  browser), and, with that prefetch switched off (``output.prefetch_classes = False``: what a class outside the
  top-k costs), class cached and first time (map caches emptied before each step, untimed); at the 7x7 CAM layer
  and at a 14x14 layer (Grad-CAM);
* Image path: opacity and class (cached), for comparison;
* floor: slider and dropdown.

Bytes per change: every kernel-websocket frame recorded between the keypress and the settled picture, both ways,
and of them what the kernel sent (kernel -> browser); the protocol's own floor is the bare stock control's sync
measured in the same run (the floor's frames without its picture).

    .venv/bin/python -m bench.canvas_latency [--quick] [--repeats N]
"""

from __future__ import annotations

import copy
import re
import statistics
import sys
from typing import Any

from . import common
from .browser_latency import _control, _series, kernel_exec
from .common import log, now
from .delay_proxy import DelayProxy

NAME = "canvas_latency"
ONE_WAY_MS = 50
sys.path.insert(0, str(common.REPO_ROOT / "tests" / "browser"))

SETUP = """\
import sys
sys.path.insert(0, {repo!r})
import numpy as np
import cam_widget
from cam_widget.samples import sample_image
from cam_widget.ui.canvas_output import CanvasOutput
from cam_widget.ui.output import ImageOutput

engine = cam_widget.default_engine()
photo = sample_image("chelsea")
canvas_panel = cam_widget.CAMExplorer(engine, {{"photo": photo}}, display_size={display!r})
image_panel = cam_widget.CAMExplorer(engine, {{"photo": photo}}, display_size={display!r}, output=ImageOutput())
assert isinstance(canvas_panel.output, CanvasOutput), type(canvas_panel.output)
LAYER14 = [i.name for i in engine.layers() if i.shape[:2] == (14, 14)][-1]
print("kernel python:", sys.executable, "layer14:", LAYER14)
"""

FLOOR_FRAMES = """\
import cv2
from cam_widget import render
from cam_widget.samples import sample_image
_photo = sample_image("chelsea")
_rng = np.random.default_rng(0)
frames = []
for _i in range(48):  # JPEG overlays of the explorer's size and content class (a 7x7 map over the photo)
    _cam = _rng.normal(size=(7, 7)).astype(np.float32)
    frames.append(render.encode(render.overlay(_photo, _cam, alpha=0.3 + 0.01 * _i), "jpeg", 90))
"""


def _bytes(m: Any) -> dict[str, int]:
    ws = m.raw.get("ws", [])
    return {
        "sent": sum(w["size"] for w in ws if w["dir"] == "send"),
        "received": sum(w["size"] for w in ws if w["dir"] == "recv"),
        "protocol": sum(w["size"] for w in ws if w["nbuffers"] == 0),  # all but messages carrying a picture/map
        # the picture itself: kernel messages with binary buffers (the canvas's map update; a JPEG on the Image
        # path and the floor), not the protocol's own status/echo frames, the control's update or the caption
        "picture": sum(w["size"] for w in ws if w["dir"] == "recv" and w["nbuffers"] > 0),
        "frames": len(ws),
    }


def _case(samples: list[Any]) -> dict[str, Any]:
    import jlab

    s = jlab.summarize(samples)
    b = [_bytes(m) for m in samples]
    s["bytes_sent_median"] = statistics.median(x["sent"] for x in b) if b else None
    s["bytes_received_median"] = statistics.median(x["received"] for x in b) if b else None
    s["bytes_total_median"] = statistics.median(x["sent"] + x["received"] for x in b) if b else None
    s["bytes_picture_median"] = statistics.median(x["picture"] for x in b) if b else None
    s["bytes_protocol_median"] = statistics.median(x["protocol"] for x in b) if b else None
    s["ws_frames_median"] = statistics.median(x["frames"] for x in b) if b else None
    s["samples"] = [{**m.as_dict(), **x} for m, x in zip(samples, b, strict=True)]
    if samples:  # what the bytes of one change are: every frame of the first sample
        s["frames_of_first_sample"] = [
            {k: w.get(k) for k in ("dir", "channel", "msg_type", "method", "comm_id", "nbuffers", "size")}
            for w in samples[0].raw.get("ws", [])
        ]
    return s


def measure(server: Any, ctx: Any, label: str, one_way_ms: float, n: int, display: int = 768) -> dict[str, Any]:
    """Every case once through ``label``'s connection (direct, or through a delay proxy)."""
    import jlab

    proxy = DelayProxy(server.port, one_way_ms).start() if one_way_ms > 0 else None
    view = server
    if proxy is not None:  # the same server, reached through the proxy's port
        view = copy.copy(server)
        view.port = proxy.port
    tag = f"{label}"
    nb, fl_nb = f"canvas_{tag}.ipynb", f"canvas_floor_{tag}.ipynb"
    jlab.write_notebook(
        server.root_dir / nb,
        [("markdown", f"# canvas latency: {label}"), SETUP.format(repo=str(common.REPO_ROOT), display=display),
         "canvas_panel", "image_panel"],
    )  # fmt: skip
    jlab.write_floor_notebook(server.root_dir / fl_nb, fmt="jpeg", frames_code=FLOOR_FRAMES)
    ex = jlab.LabPage(ctx, view)
    fl = jlab.LabPage(ctx, view)
    res: dict[str, Any] = {"label": label, "one_way_delay_ms": one_way_ms, "display_size": display}
    samples: dict[str, list[Any]] = {}
    try:
        t0 = now()
        ex.open_notebook(nb, timeout=240)
        ex.page.set_viewport_size({"width": 1280, "height": 2400})
        ex.run_all_cells(timeout=300)
        if ex.errors():
            raise jlab.HarnessError(f"notebook failed: {ex.errors()}")
        panels = ex.page.locator(".jp-OutputArea-output .cam-explorer")
        cv_root, im_root = panels.nth(0), panels.nth(1)
        canvas = ex.wait_for_widget("canvas.cam-canvas-cell", timeout=120)
        img = im_root.locator("img.cam-image").first  # (the canvas panel's own <img> fall-back is hidden)
        img.wait_for(state="visible", timeout=120_000)
        res["notebook_ready_s"] = round(now() - t0, 1)
        cprobe, iprobe = jlab.LatencyProbe(ex, canvas), jlab.LatencyProbe(ex, img)
        c_alpha, c_cmap, c_class = (_control(cv_root, k) for k in (".cam-alpha", ".cam-colormap", ".cam-class"))
        i_alpha, i_class = _control(im_root, ".cam-alpha"), _control(im_root, ".cam-class")

        def forget() -> None:
            kernel_exec(ex, "canvas_panel.clear_cache()")

        def warm(ctl: Any, target: Any) -> None:  # visit the classes the cached series toggles between
            for fwd in (True, False, True, False):
                ex.press_and_wait_change(ctl, ex.step_key(ctl, forward=fwd), target)

        def prefetch(on: bool) -> None:  # the top-k maps in the browser (choices), or none: every class via the kernel
            kernel_exec(ex, f"canvas_panel.output.prefetch_classes = {on!r}; canvas_panel.view_control.value = "
                            "'layers'; canvas_panel.wait(); canvas_panel.view_control.value = 'single'; "
                            "canvas_panel.wait()")  # fmt: skip
            ex.page.wait_for_timeout(500)

        def scope_series(k: int) -> list[Any]:  # Enter on Shared, then on Per map, ...
            out = []
            for i in range(k + 1):
                label = "Shared" if i % 2 == 0 else "Per map"
                button = cv_root.locator(".cam-scope button", has_text=re.compile(rf"^\s*{label}\s*$")).first
                m = cprobe.measure(button, "Enter", timeout=60, settle_ms=150)
                if i >= 1:
                    out.append(m)
                ex.page.wait_for_timeout(100)
            return out

        ex.page.bring_to_front()  # a background tab gets no animation frames: paints would look late
        samples["canvas_opacity"] = _series(ex, cprobe, c_alpha, n, True, 2)
        samples["canvas_colormap"] = _series(ex, cprobe, c_cmap, n, True, 1)
        samples["canvas_scope"] = scope_series(n)
        warm(c_class, canvas)
        samples["canvas_class_prefetched"] = _series(ex, cprobe, c_class, n, True, 1)
        prefetch(False)
        samples["canvas_class_first"] = _series(ex, cprobe, c_class, max(3, n // 2), False, 0, before=forget)
        warm(c_class, canvas)
        samples["canvas_class_cached"] = _series(ex, cprobe, c_class, n, True, 1)
        samples["image_opacity"] = _series(ex, iprobe, i_alpha, n, True, 2)
        warm(i_class, img)
        samples["image_class_cached"] = _series(ex, iprobe, i_class, n, True, 1)
        # the 14x14 layer (Grad-CAM): a map of 784 bytes instead of 196
        kernel_exec(ex, "canvas_panel.output.prefetch_classes = True; canvas_panel.method_control.value = 'gradcam';"
                        " canvas_panel.layer_control.value = LAYER14; canvas_panel.wait()")  # fmt: skip
        ex.page.wait_for_timeout(500)
        warm(c_class, canvas)
        samples["canvas_class_prefetched_14x14"] = _series(ex, cprobe, c_class, n, True, 1)
        prefetch(False)
        samples["canvas_class_first_14x14"] = _series(ex, cprobe, c_class, max(3, n // 2), False, 0, before=forget)
        warm(c_class, canvas)
        samples["canvas_class_cached_14x14"] = _series(ex, cprobe, c_class, n, True, 1)
        ex.screenshot(f"bench_canvas_{tag}", scroll_to=canvas)

        fl.open_notebook(fl_nb, timeout=180)
        fl.run_all_cells(timeout=180)
        if fl.errors():
            raise jlab.HarnessError(f"floor notebook failed: {fl.errors()}")
        fl_img = fl.wait_for_widget(f"img.{jlab.FLOOR_IMAGE_CLASS}")
        fprobe = jlab.LatencyProbe(fl, fl_img)
        fl.page.bring_to_front()
        samples["floor_slider"] = _series(fl, fprobe, fl.control(f".{jlab.FLOOR_SLIDER_CLASS}"), n, True, 2)
        samples["floor_dropdown"] = _series(fl, fprobe, fl.control(f".{jlab.FLOOR_DROPDOWN_CLASS}"), n, True, 1)
        res["errors"] = ex.errors() + fl.errors()
    finally:
        for lab in (ex, fl):
            lab.close()
        server.shutdown_kernels()
        if proxy is not None:
            res["proxy_bytes"] = dict(proxy.bytes)
            proxy.stop()
    res["cases"] = {k: _case(v) for k, v in samples.items()}
    log(f"[canvas] {label}: " + ", ".join(f"{k} {v['latency_ms_median']:.0f} ms" for k, v in res["cases"].items()))
    return res


def kernel_side(n: int = 40) -> dict[str, Any]:
    """Kernel time per change (``last_timings["total"]``, in process, no browser) of the same panel with the canvas
    output and with the Image path: the canvas must not cost the kernel more."""
    import cam_widget
    from cam_widget.samples import sample_image
    from cam_widget.ui.canvas_output import CanvasOutput
    from cam_widget.ui.output import ImageOutput

    engine = cam_widget.default_engine()
    photo = sample_image("chelsea")
    out: dict[str, Any] = {}
    panels = {
        "canvas": cam_widget.CAMExplorer(engine, {"photo": photo}, display_size=768, output=CanvasOutput()),
        "image": cam_widget.CAMExplorer(engine, {"photo": photo}, display_size=768, output=ImageOutput()),
    }
    for name, p in panels.items():
        if name == "canvas":  # as after a browser rendered it: no Image-path frames any more
            p.output.canvas._handle_custom_msg({"event": "ready"}, [])
        classes = [v for _, v in p.class_control.options][:2]
        times: dict[str, list[float]] = {"alpha": [], "class_cached": []}
        for i in range(n):  # interleave alpha and class steps; the first round warms the caches
            p.alpha_control.value = 0.3 + 0.01 * (i % 20)
            times["alpha"].append(p.last_timings["total"])
            p.class_control.value = classes[i % 2]
            times["class_cached"].append(p.last_timings["total"])
        out[name] = {k: round(statistics.median(v[2:]) * 1e3, 3) for k, v in times.items()}
        p.close()
    out["ratio_canvas_vs_image"] = {k: common.ratio(out["canvas"][k], out["image"][k]) for k in out["canvas"]}
    return out


def _targets(configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    def med(cfg: str, case: str) -> float | None:
        c = configs.get(cfg, {}).get("cases", {}).get(case)
        return None if c is None else c["latency_ms_median"]

    def kb(cfg: str, case: str, what: str) -> float | None:
        c = configs.get(cfg, {}).get("cases", {}).get(case)
        return None if c is None else round(c[f"bytes_{what}_median"] / 1024, 2)

    out: dict[str, Any] = {}
    for case in ("canvas_opacity", "canvas_colormap", "canvas_scope"):
        floor = "floor_slider" if case == "canvas_opacity" else "floor_dropdown"
        r = common.ratio(med("localhost", case), med("localhost", floor))
        out[f"{case} localhost vs floor"] = {"value": r, "target": 0.6, "met": r is not None and r <= 0.6}
        v = med("rtt", case)
        out[f"{case} with 100 ms RTT (ms)"] = {"value": v, "target": 40, "met": v is not None and v <= 40}
    for case in CLASS_CASES:
        r = common.ratio(med("rtt", case), med("rtt", "floor_dropdown"))
        out[f"{case} with 100 ms RTT vs floor"] = {"value": r, "target": 1.1, "met": r is not None and r <= 1.1}
    for case in CLASS_CASES:
        v = kb("rtt", case, "received")
        out[f"{case} KB kernel -> browser"] = {"value": v, "target": 2.0, "met": v is not None and v <= 2.0}
        v = kb("rtt", case, "total")
        out[f"{case} KB over the websocket, all frames both ways"] = {
            "value": v, "target": 2.0, "met": v is not None and v <= 2.0,
        }  # fmt: skip
    return out


CLASS_CASES = ("canvas_class_prefetched", "canvas_class_prefetched_14x14", "canvas_class_cached", "canvas_class_first",
               "canvas_class_cached_14x14", "canvas_class_first_14x14")  # fmt: skip


def run(quick: bool = False, repeats: int | None = None, engine: Any = None) -> dict[str, Any]:
    import jlab

    path, reason = jlab.ensure_chromium(install=True)
    if not path:
        return {"skipped": reason}
    n = repeats or (4 if quick else 10)
    configs: dict[str, dict[str, Any]] = {}
    errors = []
    kernel = kernel_side(20 if quick else 40)
    log(f"[canvas] kernel side, ms per change: {kernel}")
    with jlab.lab_session(executable=path) as (server, ctx):
        for label, delay in (("localhost", 0), ("rtt", ONE_WAY_MS)):
            log(f"[canvas] {label}: one-way delay {delay} ms")
            try:
                configs[label] = measure(server, ctx, label, delay, n)
            except Exception as exc:  # one configuration failing must not lose the other
                log(f"[canvas] FAILED {label}: {exc!r}")
                errors.append({"label": label, "error": f"{type(exc).__name__}: {exc}"[:2000]})
    return {
        "chromium": path,
        "samples_per_case": n,
        "one_way_delay_ms": ONE_WAY_MS,
        "configs": configs,
        "errors": errors,
        "targets": _targets(configs),
        "kernel": kernel,
        "method": __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
    }


CASES = (
    ("canvas_opacity", "canvas: opacity step (slider)"),
    ("canvas_colormap", "canvas: colormap step (dropdown)"),
    ("canvas_scope", "canvas: normalisation scope (Shared / Per map buttons)"),
    ("canvas_class_prefetched", "canvas: class change among the prefetched top-k (7x7)"),
    ("canvas_class_prefetched_14x14", "canvas: class change among the prefetched top-k (14x14 Grad-CAM)"),
    ("canvas_class_cached", "canvas, no prefetch: class change, seen before (7x7)"),
    ("canvas_class_first", "canvas, no prefetch: class change, first time (7x7; features cached)"),
    ("canvas_class_cached_14x14", "canvas, no prefetch: class change, seen before (14x14 Grad-CAM)"),
    ("canvas_class_first_14x14", "canvas, no prefetch: class change, first time (14x14 Grad-CAM)"),
    ("image_opacity", "Image path: opacity step"),
    ("image_class_cached", "Image path: class change, seen before"),
    ("floor_slider", "floor: bare Image, slider"),
    ("floor_dropdown", "floor: bare Image, dropdown"),
)


def _v(x: Any, fmt: str = ".0f") -> str:
    return "-" if x is None else format(x, fmt)


def _load_text(b: dict[str, Any]) -> str:
    lb, la = (b.get(k, {}).get("loadavg") for k in ("load_before", "load_after"))
    if not lb or not la:
        return ""
    return (f"  Load average (1 min) {lb[0]:.1f} before, {la[0]:.1f} after, on 2 cores: other jobs shared the machine, "
            "so absolute times are high and noisy; the ratios compare cases of the same run.")  # fmt: skip


def report_lines(b: dict[str, Any]) -> list[str]:
    """The BENCHMARKS.md section of ``bench/results/canvas_latency.json``."""
    cfgs = b.get("configs", {})
    rtt = 2 * b.get("one_way_delay_ms", ONE_WAY_MS)
    lines = [
        "## In-browser canvas, as Binder users see it (`cam_widget.ui.canvas`)",
        "",
        f"`{b.get('command', '.venv/bin/python -m bench.canvas_latency')}`: keypress -> painted in JupyterLab/Chromium "
        f"(medians of {b.get('samples_per_case')} steps per case), directly (localhost) and through a TCP proxy on "
        f"127.0.0.1 that delays every chunk by {rtt // 2} ms each way ({rtt} ms round trip, `bench/delay_proxy.py`). "
        "The canvas (the panel's default output where anywidget is installed) blends in the browser; the Image path "
        "is the same panel with `output=ImageOutput()`; the floor is a bare `ipywidgets.Image` swapping pre-encoded "
        "JPEG overlays of the same size (451x300).  Bytes: every kernel-websocket frame between the keypress and the "
        "settled picture, both directions." + _load_text(b),
        "",
        "| target | value | target | met |",
        "|---|---|---|---|",
    ]
    for name, t in b.get("targets", {}).items():
        lines.append(f"| {name} | {_v(t['value'], '.2f')} | {t['target']} | {'yes' if t['met'] else '**no**'} |")
    lines += [
        "",
        f"| case | localhost: ms | {rtt} ms RTT: ms | bytes per change: all frames | kernel -> browser "
        "| of which the picture/map | protocol only (no picture) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in CASES:
        local, far = (cfgs.get(cfg, {}).get("cases", {}).get(key) for cfg in ("localhost", "rtt"))
        row = [label, _v(local and local["latency_ms_median"]), _v(far and far["latency_ms_median"]),
               _v(far and far["bytes_total_median"]), _v(far and far.get("bytes_received_median")),
               _v(far and far["bytes_picture_median"]), _v(far and far.get("bytes_protocol_median"))]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    floor = cfgs.get("rtt", {}).get("cases", {}).get("floor_dropdown") or {}
    lines += [
        "",
        "* Opacity, colormap and scope steps never wait for the kernel: the canvas's front end follows the stock "
        "slider's, dropdown's and scope buttons' models itself and computes the shared / signed scales from the raw "
        "maps it has.  Their bytes are the stock controls' own sync (update, the kernel's echo, busy/idle), sent and "
        "answered off the critical path; nothing is sent for the canvas (the kernel re-renders its own copy for "
        "Save and the static PNG and finds nothing to send).",
        "* A class change among the top-k paints from the maps that came with the image's first frame (the "
        "`choices`: 196 bytes of float32 each at 7x7, 784 at 14x14, with their status lines): the kernel renders "
        "its copy off the critical path and answers with nothing but its busy/idle status, because the class "
        "dropdown does not echo (`echo_update=False`, see `cam_widget/ui/controls.py`) and the canvas draws the "
        "caption itself (the legend from the scales it computes, the status line from the choice).  What is left "
        "is Jupyter's envelope: the browser's update (~410 bytes) and two status messages (~550 bytes each) -- "
        f"the protocol's own floor; a bare stock-widget change costs {_v(floor.get('bytes_protocol_median'))} bytes "
        "without its picture in this run (the floor row's last column; it has an echo).",
        "* A class outside the prefetched ones (picked by search; rows \"no prefetch\") sends its raw map and status "
        "line in one canvas message; with the two status messages that is over 2 KB kernel -> browser at 7x7.  The "
        "photo goes once per image (lossless PNG: 224 kB for the 451x300 photo here, against 25-30 kB per JPEG "
        "frame on the Image path).",
    ]
    k = b.get("kernel")
    if k:
        lines.append(
            f"* Kernel time per change (in process, `last_timings['total']`): opacity {k['canvas']['alpha']:.2f} ms "
            f"with the canvas vs {k['image']['alpha']:.2f} ms on the Image path, class (cached) "
            f"{k['canvas']['class_cached']:.2f} vs {k['image']['class_cached']:.2f} ms: the canvas output encodes "
            "nothing and blends its own copy of the picture only when something reads it (overlay_rgb, the static "
            "PNG; Save renders at full resolution anyway).  The panel outside a kernel (bench.kernel_latency) "
            "still uses the Image path, so those numbers are unchanged."
        )
    if b.get("errors"):
        lines.append(f"* Failed configurations in this run: {b['errors']}")
    return [*lines, ""]


def section(res: dict[str, Any]) -> list[str]:
    """bench/report.py's hook: this benchmark's BENCHMARKS.md section, if its results exist."""
    return report_lines(res["canvas_latency"]) if "canvas_latency" in res else []


def main(argv: list[str] | None = None) -> int:
    body, path = common.run_cli(NAME, __doc__, run, argv)
    if "skipped" in body:
        print("skipped:", body["skipped"])
        return 0
    for label, cfg in body["configs"].items():
        print(label)
        for k, v in cfg["cases"].items():
            print(f"  {k:28s} median {v['latency_ms_median']:7.1f} ms  bytes/change {v['bytes_total_median']} "
                  f"(picture {v['bytes_picture_median']})")
    for k, v in body["targets"].items():
        print(f"  {k:45s} {v['value']} (target {v['target']}): {'met' if v['met'] else 'MISSED'}")
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
