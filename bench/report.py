"""BENCHMARKS.md and bench/benchmarks.png from the JSON results in bench/results/.

Every number in the report comes from a results file, and every section names the command that reproduces it.
The "what missed and why" notes are derived from the same numbers (they change when the numbers change).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
from pathlib import Path
from typing import Any

from . import common
from .common import fmt_ms

NAMES = (
    "kernel_latency", "before_after", "browser_latency", "throughput", "memory", "scaling", "refit", "batch", "methods",
    "trust",
)
#: Benchmarks whose module renders its own BENCHMARKS.md section: ``bench.<name>.section(results) -> list[str]``
#: (``results``: every loaded results file by name), appended after the built-in sections.
SECTION_MODULES: tuple[str, ...] = ("views", "canvas_latency")
CASE_LABELS = {
    "seed": "seed path (forward + Python loop + matplotlib PNG)",
    "alpha": "alpha change",
    "colormap": "colormap change (seen before)",
    "colormap_first": "colormap change (first time)",
    "class_cached": "class change (seen before)",
    "class_first": "class change (first time; features cached)",
    "layer_first_with_trace": "layer change, first ever (traces the Grad-CAM graph)",
    "layer_first": "layer change, first time for this photo (one gradient pass, batched over the top-k)",
    "layer_cached": "layer change (seen before)",
    "floor": "floor: LUT blend + JPEG encode only (render, no widget)",
}


def _load(results_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for name in (*NAMES, *SECTION_MODULES):
        p = Path(results_dir) / f"{name}.json"
        if p.is_file():
            out[name] = json.loads(p.read_text())
    return out


def _cmd(r: dict[str, Any]) -> str:
    return f"`{r.get('command') or common.command_for(r['benchmark'])}`"


def _x(v: float | None, digits: int = 0) -> str:
    return "n/a" if v is None else f"{v:,.{digits}f}x"


def _n(v: float | None) -> str:
    return "n/a" if v is None else f"{v:g}"


def _yes(met: bool | None) -> str:
    return "n/a" if met is None else ("**met**" if met else "**missed**")


def _load_note(r: dict[str, Any]) -> str:
    b, a = r.get("load_before", {}), r.get("load_after", {})
    lb, la = b.get("loadavg"), a.get("loadavg")
    s = f"ran {r.get('started', '?')}, {r.get('seconds', '?')} s"
    if lb:
        s += f"; load average before {lb[0]:.2f}"
    if la:
        s += f", after {la[0]:.2f}"
    return s


# --------------------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------------------


def _machine(res: dict[str, Any]) -> list[str]:
    m = next((r["machine"] for r in res.values() if "machine" in r), common.machine_info())
    chromium = next(
        (r["machine"].get("chromium") for r in res.values() if r["machine"].get("chromium")), None
    )
    v = m.get("versions", {})
    lines = [
        "## The machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {m.get('cpu')} |",
        f"| cores | {m.get('logical_cpus')} logical, {m.get('usable_cpus')} usable by this process; no GPU |",
        f"| RAM | {m.get('ram_gib')} GiB |",
        f"| OS, Python | {m.get('os')}, Python {m.get('python')} |",
        "| versions | " + ", ".join(f"{k} {val}" for k, val in v.items()) + " |",
    ]
    if chromium:
        lines.append(f"| browser | {chromium} (headless, driven by Playwright) |")
    commits = [
        f"{n} {r['machine'].get('commit')}" + (f" (+{r['machine']['dirty_files']} modified)" if r["machine"].get("dirty_files") else "")
        for n, r in res.items()
        if "machine" in r
    ]
    lines.append(f"| commit of each result | {'; '.join(commits)} |")
    loads = [
        f"{n}: {r['load_before'].get('loadavg', ['?'])[0]} -> {r['load_after'].get('loadavg', ['?'])[0]}"
        for n, r in res.items()
        if "load_before" in r and "load_after" in r
    ]
    lines += [
        "",
        "**The machine is shared and noisy.** Two cores, and other engineers run test suites, notebooks and "
        "TensorFlow jobs on them while these benchmarks run. Load averages (1 min) before -> after each "
        "benchmark: "
        + ("; ".join(loads) or "not recorded")
        + ". Therefore: every number is a **median** over "
        "repeats, every comparison is a **ratio measured in the same run** with the compared paths interleaved "
        "round by round, and absolute milliseconds should be read as upper bounds (a quiet machine is faster; "
        "ratios move much less).",
        "",
    ]
    return lines


def _summary(res: dict[str, Any]) -> list[str]:
    rows = []
    k = res.get("kernel_latency")
    if k:
        for s in k["sizes"]:
            for case, t in s["targets"].items():
                rows.append(
                    (
                        f"kernel: {CASE_LABELS.get(case, case)} at {s['display']} px vs the seed path",
                        ">= 100x (aim 500x)",
                        f"{_x(t['speedup'])} ({fmt_ms(s['cases'][case]['median_ms'])} vs "
                        f"{fmt_ms(s['cases']['seed']['median_ms'])})",
                        _yes(t["met"]),
                        _cmd(k),
                    )
                )
    b = res.get("browser_latency")
    if b and "configs" in b:
        for cfg in b["configs"]:
            for case, key in (("alpha", "floor_slider"), ("class_cached", "floor_dropdown")):
                r = cfg["ratios_vs_floor"].get(case)
                rs = cfg["ratios_vs_floor"].get(f"{case}_sync")
                c = cfg["cases"]
                sync = ""
                if rs is not None:
                    sync = (
                        f"; with `threaded=False` {_x(rs, 2)} ({fmt_ms(c[case + '_sync']['latency_ms_median'])}, "
                        f"{'would meet' if rs <= 1.25 else 'would still miss'})"
                    )
                rows.append(
                    (
                        f"browser: {'alpha' if case == 'alpha' else 'class (seen before)'} keypress -> painted, "
                        f"{cfg['label']}",
                        "<= 1.25x the floor",
                        f"{_x(r, 2)} ({fmt_ms(c[case]['latency_ms_median'])} vs "
                        f"{fmt_ms(c[key]['latency_ms_median'])}){sync}",
                        _yes(None if r is None else r <= 1.25),
                        _cmd(b),
                    )
                )
    t = res.get("throughput")
    if t:
        p = t["paths"]
        peer = t["ratios"]["peer"]
        rows.append(
            (
                f"throughput: engine CAM vs "
                f"{'tf-keras-vis Gradcam (raw maps)' if peer.startswith('tf_keras_vis') else 'the keras.io recipe'}, "
                f"{t['images']} photos",
                ">= 2x",
                f"{_x(t['ratios']['engine_cam_vs_peer_gradcam'], 1)} ({p['engine_cam']['images_per_s']:.1f} vs "
                f"{p[peer]['images_per_s']:.1f} images/s)",
                _yes(t["target"]["met"]),
                _cmd(t),
            )
        )
    m = res.get("memory")
    if m:
        r = m["rss"]
        rows.append(
            (
                f"memory: RSS growth over {r['changes']} control changes (after warm-up)",
                "< 20 MB",
                f"{r['growth_mib']:+.1f} MiB",
                _yes(m["target"]["met"]),
                _cmd(m),
            )
        )
        rows.append(
            (
                "memory: engine cache bound (2 MiB) respected",
                "never above",
                f"peak {m['cache_bound']['peak_bytes']:,} <= {m['cache_bound']['max_bytes']:,} bytes",
                _yes(m["cache_bound"]["respected"]),
                _cmd(m),
            )
        )
    f = res.get("refit")
    if f:
        worst = max(f["layers"], key=lambda r: r["seconds"]["median_ms"])
        rows.append(
            (
                f"refit: `refit_head` on the {f['photos']} sample photos, slowest of {len(f['layers'])} layers",
                f"< {f['target']['seconds']:g} s",
                f"{worst['seconds']['median_ms'] / 1e3:.2f} s (`{worst['layer']}`)",
                _yes(f["target"]["met"]),
                _cmd(f),
            )
        )
        for r in f["layers"]:
            if r["shape"][:2] == [14, 14]:
                rows.append(
                    (
                        f"refit: top-1 agreement with the model at `{r['layer']}` (14x14), held out",
                        f"aim >= {f['target']['aim_top1_at_14x14']:g}",
                        f"{r['top1_agreement']:.2f}; {r['top1_agreement_stable']:.2f} where the model's own top-1 "
                        f"survives a 2% shift (it does on {r['model_self_agreement']:.0%})",
                        _yes(r["top1_agreement"] >= f["target"]["aim_top1_at_14x14"]),
                        _cmd(f),
                    )
                )
    tr = res.get("trust")
    if tr:
        from .trust import summary_rows  # the trust checks: rows live with their benchmark

        rows += [(a, b_, c, _yes(met), _cmd(tr)) for a, b_, c, met in summary_rows(tr)]
    ba = res.get("batch")
    if ba:
        from .batch import summary_rows as batch_rows  # dataset jobs: rows live with their benchmark

        rows += [(a, b_, c, _yes(met), _cmd(ba)) for a, b_, c, met in batch_rows(ba)]
    me = res.get("methods")
    if me:
        from .methods import summary_rows as methods_rows  # CAM methods: rows live with their benchmark

        rows += [(a, b_, c, _yes(met), _cmd(me)) for a, b_, c, met in methods_rows(me)]
    lines = [
        "## Targets at a glance",
        "",
        "| what | target | measured (median, same run) | | reproduce |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b_} | {c} | {d} | {e} |" for a, b_, c, d, e in rows]
    return [*lines, ""]


def _kernel(k: dict[str, Any]) -> list[str]:
    lines = [
        "## 1. Interaction latency in the kernel",
        "",
        f"Reproduce: {_cmd(k)} ({_load_note(k)}). Photo: `{k['photo']}` (skimage's Chelsea), resized so its "
        f"longest side is the display size. {k['method']} {k['rounds']} rounds.",
        "",
    ]
    for s in k["sizes"]:
        f = s["frame"]
        c = s["cases"]
        lines += [
            f"### {s['display']} px display ({f['width']}x{f['height']}, the widget sends {f['format'].upper()}, "
            f"{f['bytes'] / 1024:.0f} KB)",
            "",
            "| change | median | p25 - p75 | n | faster than the seed |",
            "|---|---|---|---|---|",
        ]
        for case in ("seed", "class_first", "class_cached", "alpha", "colormap", "colormap_first",
                     "layer_first_with_trace", "layer_first", "layer_cached", "floor"):  # fmt: skip
            if case not in c:
                continue
            st = c[case]
            sp = s["speedup_vs_seed"].get(case)
            lines.append(
                f"| {CASE_LABELS[case]} | {fmt_ms(st['median_ms'])} | {fmt_ms(st.get('p25_ms'))} - "
                f"{fmt_ms(st.get('p75_ms'))} | {st['n']} | {'' if case == 'seed' else _x(sp, 1)} |"
            )
        sb = s["seed_breakdown"]
        lines += [
            "",
            f"Seed path, step by step (medians): forward pass {fmt_ms(sb['forward']['median_ms'])}, per-channel "
            f"loop {fmt_ms(sb['loop']['median_ms'])}, matplotlib figure -> PNG {fmt_ms(sb['figure']['median_ms'])}. "
            f"Without its forward pass the seed would still take {fmt_ms(s['seed_without_forward_ms'])}.",
        ]
        wb = s.get("widget_breakdown", {})
        if wb:
            lines += ["", "Inside the widget (its own `last_timings`, medians in ms):", ""]
            lines += ["| change | map | blend | encode | total |", "|---|---|---|---|---|"]
            for case in ("class_first", "class_cached", "alpha", "colormap", "colormap_first"):
                t = wb.get(case)
                if t:
                    lines.append(
                        f"| {case.replace('_', ' ')} | {fmt_ms(t.get('map'))} | {fmt_ms(t.get('blend'))} | "
                        f"{fmt_ms(t.get('encode'))} | {fmt_ms(t.get('total'))} |"
                    )
        lay = s.get("layer", {})
        if lay.get("layers"):
            lines += [
                "",
                f"Layer changes use Grad-CAM (only `top_activation` has a CAM head) at: {', '.join(lay['layers'])}.",
            ]
        prof = s.get("profile")
        if prof:
            lines += ["", "cProfile, top functions by own time per change:", ""]
            for case, rows in prof.items():
                top = "; ".join(f"`{r['function']}` {r['own_ms_per_op']:.2f} ms" for r in rows[:4])
                lines.append(f"- {case.replace('_', ' ')}: {top}")
        lines.append("")
    return lines


def _before_after(ba: dict[str, Any]) -> list[str]:
    lines = [
        "### Before / after the fixes that landed",
        "",
        f"Reproduce: {_cmd(ba)} ({_load_note(ba)}). The same kernel benchmark on `cam_widget` as of "
        f"`{ba['ref']}` ({ba['before_commit']}, before {ba['fix_commit']}: "
        f"{ba.get('fix_description') or '`render.blend` with `cv2.LUT` instead of numpy fancy indexing, PNG with the RLE strategy, the engine remembering the hash of read-only photos'}"
        f") and on the current tree ({ba['after_commit']}); {ba['runs_per_side']} runs per side of {ba['repeats_per_run']} "
        "rounds each, alternating; medians of the per-run medians.",
        "",
        "| display | change | before | after | faster | vs the seed: before -> after |",
        "|---|---|---|---|---|---|",
    ]
    for r in ba["table"]:
        vs = "" if r["case"] == "seed" else f"{_x(r['vs_seed_before'])} -> {_x(r['vs_seed_after'])}"
        lines.append(
            f"| {r['display']} px | {CASE_LABELS.get(r['case'], r['case'])} | {fmt_ms(r['before_ms'])} | "
            f"{fmt_ms(r['after_ms'])} | {_x(r['speedup'], 2)} | {vs} |"
        )
    return [*lines, ""]


#: Results saved just before the second round of fixes (db4cf93 + d7fb494 render, 6a48d08 widget), for the
#: before/after table.
BEFORE_DIR = "before_fixes"


def _encode_change(before: dict[str, Any] | None, after: dict[str, Any] | None, display: int = 1024) -> str:
    """", the JPEG encode of a WxH frame A -> B ms" from two scaling results (empty when either lacks it)."""
    rows = [next((r for r in (x or {}).get("vs_display", []) if r["display"] == display), None) for x in (before, after)]
    if None in rows:
        return ""
    a, b = rows
    return f", the JPEG encode of a {b['width']}x{b['height']} frame {fmt_ms(a['encode_jpeg90_ms'])} -> {fmt_ms(b['encode_jpeg90_ms'])}"


def _round2(res: dict[str, Any], results_dir: Path) -> list[str]:
    """Before/after of the second round of fixes: the saved results of the run before them vs this run."""
    old = _load(Path(results_dir) / BEFORE_DIR)
    ob, nb = old.get("browser_latency"), res.get("browser_latency")
    ok_, nk = old.get("kernel_latency"), res.get("kernel_latency")
    if not ((ob and nb) or (ok_ and nk)):
        return []
    lines = [
        "## Before / after the second round of fixes (JPEG frames, OpenCV blend, image first, short class list)",
        "",
        "db4cf93 (render: `blend` colours the one-channel index with `cv2.applyColorMap`, `to_index` quantises with "
        "`cv2.convertScaleAbs`, both byte-identical to before, tests/test_render.py) and 6a48d08 (widget: `png_max=0`, "
        "JPEG live frames at every size; the image's state flushed first; one HTML widget for the legend; no timings "
        "in the status line, so an alpha change sends the image alone; `class_control` lists the top-k plus classes "
        "picked by search or by index instead of all 1,000) and d7fb494 (`render.encode` swaps RGB -> BGR with "
        "`cv2.cvtColor` instead of handing OpenCV the strided view `img[..., ::-1]`: same bytes"
        + _encode_change(old.get("scaling"), res.get("scaling"))
        + "). \"Before\" is the previous full run "
        f"(`bench/results/{BEFORE_DIR}/`, commit {(ob or ok_).get('machine', {}).get('commit', '?') if isinstance((ob or ok_).get('machine'), dict) else '?'}), "
        "\"after\" this one (which also has the third round's changes, above): different runs, so compare the **ratios** (each measured within its own run: vs the "
        "seed, vs the floor); section 1's before/after table measures the kernel side both ways in one run.",
        "",
    ]
    if ok_ and nk:
        lines += ["| kernel, vs the seed (>= 100x) | before | after |", "|---|---|---|"]
        for so, sn in zip(ok_["sizes"], nk["sizes"], strict=False):
            for case in ("class_first", "class_cached", "alpha", "colormap"):
                a, b_ = so["speedup_vs_seed"].get(case), sn["speedup_vs_seed"].get(case)
                ma, mb = so["cases"][case]["median_ms"], sn["cases"][case]["median_ms"]
                lines.append(
                    f"| {sn['display']} px, {CASE_LABELS.get(case, case)} | {_x(a)} ({fmt_ms(ma)}, "
                    f"{so['frame']['format'].upper()}) | {_x(b_)} ({fmt_ms(mb)}, {sn['frame']['format'].upper()}) |"
                )
        lines.append("")
    if ob and nb:
        lines += _browser_before_after(ob, nb)
    return lines


def _browser_before_after(ob: dict[str, Any], nb: dict[str, Any]) -> list[str]:
    """Browser latency ratios vs the floor, messages per key and keydown -> sent: two runs side by side."""
    lines: list[str] = []
    if "configs" not in ob or "configs" not in nb:
        return lines
    lines += [
        "| browser, vs the floor (<= 1.25x) | before | after | messages per key (image #): before -> after | "
        "keydown -> update sent: before -> after |",
        "|---|---|---|---|---|",
    ]
    olds = {c["label"]: c for c in ob["configs"]}
    for cn in nb["configs"]:
        co = olds.get(cn["label"])
        if not co:
            continue
        for case in ("alpha", "class_cached", "class_first"):
            if case not in cn["cases"] or case not in co["cases"]:
                continue
            o, n = co["cases"][case], cn["cases"][case]

            def msgs(v: dict[str, Any]) -> str:
                return f"{_n(v.get('comm_msgs_median'))} ({_n(v.get('image_message_position_median'))})"

            def sent(v: dict[str, Any]) -> str:
                t = v.get("timeline", {}).get("keydown_to_sent")
                return "n/a" if t is None else f"{t:.1f} ms"

            lines.append(
                f"| {cn['label'].split(':')[0]}, {case.replace('_cached', ' (seen before)').replace('_first', ' (first time)')} | "
                f"{_x(co['ratios_vs_floor'].get(case), 2)} ({fmt_ms(o['latency_ms_median'])}) | "
                f"{_x(cn['ratios_vs_floor'].get(case), 2)} ({fmt_ms(n['latency_ms_median'])}) | "
                f"{msgs(o)} -> {msgs(n)} | {sent(o)} -> {sent(n)} |"
            )
    lines.append("")
    return lines


#: Browser results saved just before the caption change (legend + status line in one HTML widget) and the
#: Grad-CAM top-k prefetch.
BEFORE_CAPTION_DIR = "before_caption"


def _round3(res: dict[str, Any], results_dir: Path) -> list[str]:
    """Before/after of the third round: one caption widget for legend + status line (browser side)."""
    old = _load(Path(results_dir) / BEFORE_CAPTION_DIR)
    ob, nb = old.get("browser_latency"), res.get("browser_latency")
    if not (ob and nb):
        return []
    commit = ob.get("machine", {}).get("commit", "?") if isinstance(ob.get("machine"), dict) else "?"
    lines = [
        "## Before / after the third round (legend + status line in one widget; Grad-CAM top-k prefetch)",
        "",
        "The widget's legend and status line are now ONE `ipywidgets.HTML` (`caption`, DOM class `cam-caption`, "
        "with `.cam-legend` and `.cam-status` inside): a class change, which changes both, sends the image and one "
        "caption message after it instead of two (3 messages per key with the control's echo, vs 4). And with "
        "Grad-CAM the worker computes the whole top-k in one batched gradient pass when Grad-CAM is first shown for "
        "an (image, layer), so stepping through the top-k runs no network (tests/ui/test_widget.py). \"Before\" is "
        f"the previous browser run (`bench/results/{BEFORE_CAPTION_DIR}/`, commit {commit}), \"after\" this one: "
        "different runs on a shared machine, so compare the **ratios** (each vs the floor of its own run).",
        "",
    ]
    lines += _browser_before_after(ob, nb)
    ok_, nk = old.get("kernel_latency"), res.get("kernel_latency")
    if ok_ and nk:
        parts = []
        for so, sn in zip(ok_["sizes"], nk["sizes"], strict=False):
            a, b_ = so["cases"].get("layer_first"), sn["cases"].get("layer_first")
            if a and b_:
                parts.append(f"{fmt_ms(a['median_ms'])} -> {fmt_ms(b_['median_ms'])} at {sn['display']} px")
        if parts:
            lines += [
                "The price of the Grad-CAM prefetch (`.venv/bin/python -m bench.kernel_latency`, before = "
                f"`bench/results/{BEFORE_CAPTION_DIR}/kernel_latency.json`): the first Grad-CAM frame for a photo at a "
                "layer now runs one gradient pass over the top-k (5 copies of the photo) instead of over one: "
                + ", ".join(parts)
                + ". In exchange the other top-k classes cost a cached class change instead of a gradient pass each; "
                "a class beyond the top-k still costs one pass of its own. (The \"layer change (seen before)\" row "
                "is measured properly since this round: before, one of its two timed switches went back to a layer "
                "whose map had just been cleared, so it mixed in a gradient pass.)",
                "",
            ]
    over = []
    for cn in nb.get("configs", []):
        for case in ("class_first", "class_first_sync"):
            v, r = cn["cases"].get(case), cn.get("ratios_vs_floor", {}).get(case)
            if v and r and r > 1.25:
                samples = [round(s["latency_ms"]) for s in v.get("samples", [])]
                floor = [round(s["latency_ms"]) for s in cn["cases"].get("floor_dropdown", {}).get("samples", [])]
                fast_cut = min(floor) + 8 if floor else None
                fast = sum(x < fast_cut for x in floor) if fast_cut else 0
                over.append(
                    f"{cn['label'].split(':')[0]}, {case.replace('_first', ' (first time)').replace('_sync', ', `threaded=False`')}"
                    f" at {_x(r, 2)}: only {len(samples)} samples ({', '.join(map(str, samples))} ms), in the same "
                    f"two display-frame modes as everything else (the floor's dropdown had {fast}/{len(floor)} samples "
                    f"in the fast one); in the kernel, control -> image took "
                    f"{fmt_ms(cn.get('kernel', {}).get(case, {}).get('control_to_image_ms'))} (a seen class: "
                    f"{fmt_ms(cn.get('kernel', {}).get(case.replace('first', 'cached'), {}).get('control_to_image_ms'))})"
                )
    if over:
        lines += [
            "Not a target, but over 1.25x in this run: " + "; ".join(over) + ". A first-time class change does the "
            "same as a seen one plus one matrix-vector product on cached features and one `to_index`; those extra "
            "kernel milliseconds can push a paint into the next display frame, and 5 samples are too few to tell "
            "that from the mode mix. Not investigated further in this round.",
            "",
        ]
    return lines


def _browser(b: dict[str, Any]) -> list[str]:
    lines = ["## 2. Browser latency: keypress -> painted (JupyterLab, headless Chromium)", ""]
    if "skipped" in b:
        return [*lines, f"Skipped: {b['skipped']}", ""]
    lines += [
        f"Reproduce: {_cmd(b)} ({_load_note(b)}). {b['method']} {b['samples_per_case']} samples per case.",
        "",
    ]
    for e in b.get("errors", []):
        lines += [f"> Configuration **{e['label']}** failed in this run: `{e['error'][:300]}`", ""]
    floor_of = {"alpha": "floor_slider", "class_cached": "floor_dropdown", "class_first": "floor_dropdown"}
    order = ("alpha", "alpha_sync", "class_cached", "class_cached_sync", "class_first", "class_first_sync",
             "floor_slider", "floor_dropdown")  # fmt: skip
    labels = {
        "alpha": "alpha, as shipped (render thread)",
        "alpha_sync": "alpha, `threaded=False`",
        "class_cached": "class (seen before), as shipped",
        "class_cached_sync": "class (seen before), `threaded=False`",
        "class_first": "class (first time), as shipped",
        "class_first_sync": "class (first time), `threaded=False`",
        "floor_slider": "floor: bare Image + IntSlider",
        "floor_dropdown": "floor: bare Image + Dropdown",
    }
    for cfg in b["configs"]:
        f = cfg.get("frame", {})
        c = cfg["cases"]
        shape = f.get("shape", ["?", "?"])
        lines += [
            f"### {cfg['label']}",
            "",
            f"Frame {shape[1]}x{shape[0]} {str(f.get('format', '?')).upper()}, {f.get('bytes', 0) / 1024:.0f} KB.",
            "",
            "| case | median | p90 | vs its floor | kernel -> browser widget messages per key (image is #) |",
            "|---|---|---|---|---|",
        ]
        for case in order:
            if case not in c:
                continue
            st = c[case]
            fl = floor_of.get(case.replace("_sync", ""))
            r = common.ratio(st["latency_ms_median"], c[fl]["latency_ms_median"]) if fl else None
            lines.append(
                f"| {labels[case]} | {fmt_ms(st['latency_ms_median'])} | {fmt_ms(st['latency_ms_p90'])} | "
                f"{'' if r is None else _x(r, 2)} | {_n(st.get('comm_msgs_median'))} ({_n(st.get('image_message_position_median'))}) |"
            )
        lines += [
            "",
            "Where the time goes (medians of each step, ms; kernel times from the kernel's message timestamps, "
            "same clock):",
            "",
            "| case | keydown -> update sent | -> kernel busy | kernel busy -> image sent | -> received | -> src set | -> decoded | -> painted |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for case in order:
            if case not in c:
                continue
            t = c[case]["timeline"]
            vals = [t.get(k) for k in ("keydown_to_sent", "sent_to_kernel_busy", "kernel_busy_to_image_sent",
                                       "image_sent_to_received", "received_to_src_set", "src_set_to_decoded",
                                       "decoded_to_painted")]  # fmt: skip
            lines.append(
                f"| {labels[case]} | " + " | ".join("" if v is None else f"{v:.1f}" for v in vals) + " |"
            )
        kern = cfg.get("kernel", {})
        if kern:
            lines += [
                "",
                "Inside the kernel (benchmark-only timers around `render.*` and `engine.cam`; from the browser's update "
                "being applied to the control to the image trait being set):",
                "",
                "| case | control -> image | compute (engine.cam + to_index + blend) | encode | frames |",
                "|---|---|---|---|---|",
            ]
            for case in order:
                kb = kern.get(case)
                if kb:
                    lines.append(
                        f"| {labels[case]} | {fmt_ms(kb['control_to_image_ms'])} | {fmt_ms(kb['compute_ms'])} | "
                        f"{fmt_ms(kb['encode_ms'])} | {kb['frames']} |"
                    )
        if cfg.get("screenshot"):
            lines += ["", f"Screenshot: `{cfg['screenshot']}` (artifacts/ is not committed)."]
        lines.append("")
    return lines


def _throughput(t: dict[str, Any]) -> list[str]:
    p = t["paths"]
    peer = t["peer"]
    lines = [
        f"## 3. Batch throughput, {t['images']} photos, default model ({t['input_size'][0]}x{t['input_size'][1]}, "
        f"layer `{t['layer']}`)",
        "",
        f"Reproduce: {_cmd(t)} ({_load_note(t)}). Cold caches every repeat, {t['repeats']} repeats, interleaved; "
        "every path starts from the same RGB photos and includes the same resize + preprocessing.",
        "",
        "| path | images/s | median per batch | images |",
        "|---|---|---|---|",
    ]
    labels = {
        "engine_cam": "engine CAM (`engine.cam(images, classes)`)",
        "engine_gradcam": 'engine Grad-CAM (`method="gradcam"`)',
        "engine_cam_upsampled_224": "engine CAM + `render.to_index` to 224x224",
        "tf_keras_vis_gradcam_raw": f"tf-keras-vis {peer.get('version', '')} `Gradcam`, raw maps (`expand_cam=False`)",
        "tf_keras_vis_gradcam_default": f"tf-keras-vis {peer.get('version', '')} `Gradcam`, default (upsampled, normalised)",
        "keras_io_recipe": "keras.io Grad-CAM recipe (one photo per call, as written)",
    }
    for k, v in p.items():
        lines.append(
            f"| {labels.get(k, k)} | {v['images_per_s']:.1f} | {fmt_ms(v['median_ms'])} | {v['images']} |"
        )
    r = t["ratios"]
    lines += [
        "",
        f"Engine CAM is {_x(r['engine_cam_vs_peer_gradcam'], 1)} the peer's Grad-CAM throughput (target >= 2x); "
        f"engine Grad-CAM is {_x(r['engine_gradcam_vs_peer_gradcam'], 1)}; engine CAM vs the keras.io recipe "
        f"{_x(r['engine_cam_vs_keras_io_recipe'], 1)}.",
        "",
    ]
    if peer.get("runs_on_keras3"):
        lines.append(
            f"tf-keras-vis {peer.get('version')} runs on Keras {common._version('keras')} here (its `Gradcam` with "
            f"`ReplaceToLinear`, model cloned once in {peer.get('construct_ms')} ms, not timed). Two things to know "
            "for a fair comparison: it rebuilds a `keras.Model` for the penultimate layer on every call and runs "
            "eagerly; and by default (`seek_penultimate_conv_layer=True`) it silently walks back from an activation "
            "layer such as `top_activation` to the convolution before it (`top_conv`), i.e. it maps a different "
            "layer. The benchmark passes `seek_penultimate_conv_layer=False` so that all paths map the same layer."
        )
    else:
        lines.append(f"tf-keras-vis cannot run here: `{peer.get('error')}`; the keras.io recipe is the peer.")
    a = t["agreement_after_relu_max_norm"]
    lines += [
        "",
        "Same maps: after ReLU and per-map max normalisation, the largest absolute difference is "
        + ", ".join(f"{k.replace('_max_abs', '').replace('_', ' ')} {v:g}" for k, v in a.items())
        + " (CAM equals Grad-CAM up to scale at a GAP -> Dense head).",
        "",
    ]
    return lines


def _memory(m: dict[str, Any]) -> list[str]:
    ci, cl, cb = m["cache_vs_images"], m["cache_vs_layers"], m["cache_bound"]
    rows = ci["rows"]
    lines = [
        "## 4. Memory",
        "",
        f"Reproduce: {_cmd(m)} ({_load_note(m)}).",
        "",
        f"**Engine cache vs images** (layer `{ci['layer']}`): {ci['measured_bytes_per_image']:,.0f} bytes per photo "
        f"(expected 7x7x1280 float32 features + 1000 float32 logits = {ci['expected_bytes_per_image']:,}); "
        f"{rows[-1]['images']} photos -> {rows[-1]['bytes'] / 2**20:.2f} MiB, so the default 256 MiB bound holds "
        f"~{256 * 2**20 // max(1, ci['expected_bytes_per_image']):,} photos at the CAM layer.",
        "",
        "**Engine cache vs layers** (one photo; each row adds one layer's feature map):",
        "",
        "| layer | shape | bytes added | expected h*w*c*4 |",
        "|---|---|---|---|",
    ]
    for r in cl["rows"]:
        lines.append(
            f"| `{r['layer']}` | {'x'.join(map(str, r['shape']))} | {r['delta_bytes']:,} | {r['feature_bytes_expected']:,} |"
        )
    lines += [
        "",
        f"All {cl['spatial_layers']} spatial layers of one photo would take {cl['all_layers_bytes_one_image'] / 2**20:.1f} MiB.",
        "",
        f"**The bound**: an engine with `cache_bytes={cb['max_bytes']:,}` fed {len(cb['bytes_after_each_call'])} "
        f"photos one by one, then 16 in one batch: peak {cb['peak_bytes']:,} bytes ({'within' if cb['respected'] else 'ABOVE'} "
        f"the bound), {cb['final']['evictions']} evictions; asking again for an evicted photo costs a forward pass: "
        f"{cb['evicted_image_recomputed']}. The widget's own index-map cache under a 1 MiB bound peaked at "
        f"{m['widget_map_cache_bound']['peak_bytes']:,} bytes ({'within' if m['widget_map_cache_bound']['respected'] else 'ABOVE'}).",
        "",
    ]
    for key in ("rss", "rss_worst_case"):
        r = m.get(key)
        if not r:
            continue
        wm = r.get("widget_map_cache") or {}
        lines.append(
            f"**RSS, {r['scenario']}**: {r['changes']} control changes ({', '.join(f'{k} {v}' for k, v in r['kinds'].items())}) "
            f"after {r['warmup_changes']} warm-up changes on the 8 sample photos: {r['rss_after_warmup_mib']} -> "
            f"{r['rss_end_mib']} MiB (**{r['growth_mib']:+.2f} MiB**; {r['growth_incl_warmup_mib']:+.1f} MiB including "
            f"the widget's creation and warm-up). Engine cache {r['engine_cache']['bytes'] / 2**20:.1f} MiB"
            + (
                f", widget map cache {wm.get('bytes', 0) / 2**20:.1f} of {wm.get('max_bytes', 0) / 2**20:.0f} MiB "
                f"({wm.get('evictions', 0)} evictions)"
                if wm
                else ""
            )
            + "."
        )
        if key == "rss_worst_case" and wm and wm.get("evictions", 0) > 0:
            lines[-1] += (
                f" This growth is the widget's index-map cache filling up to its bound (`map_cache_bytes`, "
                f"{wm.get('max_bytes', 0) / 2**20:.0f} MiB by default) and then evicting; RSS along the run "
                f"(every 200 changes): {', '.join(f'{v:.0f}' for _, v in r['samples_mib'][::4])} MiB."
            )
        lines.append("")
    return lines


def _scaling(s: dict[str, Any]) -> list[str]:
    lines = [
        "## 5. Scaling",
        "",
        f"Reproduce: {_cmd(s)} ({_load_note(s)}). Medians of {s['repeats']} repeats.",
        "",
        "**vs display size** (the photo resized to the display size; one CAMExplorer per size):",
        "",
        "| display | MP | sent as | alpha change | class change (first) | to_index | to_index, one OpenCV pass | "
        "blend | LUT by numpy `lut[idx]` | LUT by `cv2.applyColorMap` | JPEG q90 | PNG |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in s["vs_display"]:
        lines.append(
            f"| {r['width']}x{r['height']} | {r['megapixels']:.2f} | {r['widget_format'].upper()} | "
            f"{fmt_ms(r['alpha_change_ms'])} | {fmt_ms(r['class_first_ms'])} | {fmt_ms(r['to_index_ms'])} | "
            f"{fmt_ms(r.get('to_index_convertscaleabs_ms'))} | "
            f"{fmt_ms(r['blend_ms'])} | {fmt_ms(r['lut_fancy_index_ms'])} | {fmt_ms(r['lut_cv2_applycolormap_ms'])} | "
            f"{fmt_ms(r['encode_jpeg90_ms'])} | {fmt_ms(r['encode_png_ms'])} |"
        )
    f = s.get("fits", {})
    if f:
        lines += [
            "",
            "Linear fits, ms per megapixel of display: "
            + ", ".join(
                f"{k.replace('_ms', '').replace('_', ' ')} {v['ms_per_megapixel']:.1f}" for k, v in f.items()
            )
            + ".",
        ]
    lines += [
        "",
        "**vs source resolution** (display fixed at 768 px; a first-time class change calls `engine.cam` on the "
        "full-resolution photo):",
        "",
        "| source longest side | MP | class change (first) | alpha change | `engine.prepare` (hash) |",
        "|---|---|---|---|---|",
    ]
    for r in s["vs_source"]:
        lines.append(
            f"| {r['source_longest']} | {r['source_megapixels']:.1f} | {fmt_ms(r['class_first_ms'])} | "
            f"{fmt_ms(r['alpha_change_ms'])} | {fmt_ms(r['engine_prepare_hash_ms'])} |"
        )
    ci = s["vs_cached_images"]
    lines += [
        "",
        "**vs number of cached photos** (all 512 px; the widget holds N photos, each visited once):",
        "",
        "| photos in the widget | alpha change | switch to a photo seen before | engine cache (all photos, filled first) |",
        "|---|---|---|---|",
    ]
    for r in ci["widget"]:
        lines.append(
            f"| {r['images']} | {fmt_ms(r['alpha_change_ms'])} | {fmt_ms(r['image_revisit_ms'])} | "
            f"{r['engine_cache_bytes'] / 2**20:.1f} MiB |"
        )
    lines += [
        "",
        "Engine with a bound that holds 16 photos' features, N photos requested in turn:",
        "",
        "| N photos cycling | fits | per `engine.cam` call | forward passes / calls |",
        "|---|---|---|---|",
    ]
    for r in ci["engine_bound_16_images"]:
        lines.append(
            f"| {r['images_cycled']} | {'yes' if r['fits_in_cache'] else 'no'} | {fmt_ms(r['per_call_ms'])} | "
            f"{r['forward_passes']} / {r['calls']} |"
        )
    lines.append("")
    return lines


# --------------------------------------------------------------------------------------------------------------
# What grows, what missed and why (derived from the numbers)
# --------------------------------------------------------------------------------------------------------------


def _findings(res: dict[str, Any]) -> list[str]:
    out: list[str] = []
    k, s, b, t = (
        res.get("kernel_latency"),
        res.get("scaling"),
        res.get("browser_latency"),
        res.get("throughput"),
    )
    disp = {r["display"]: r for r in s["vs_display"]} if s else {}
    cmd_s = _cmd(s) if s else ""
    cmd_k = _cmd(k) if k else ""

    if s and len(disp) >= 2:
        big = disp[max(disp)]
        out.append(
            f"- **What grows with display size** ({cmd_s}): everything after the map is per pixel. The map itself "
            f"(a 7x7 matrix-vector product) is constant; `to_index` (bilinear upsampling), `blend` and the encode "
            f"grow linearly with the displayed pixels. At {big['width']}x{big['height']} a change costs "
            f"{fmt_ms(big['alpha_change_ms'])} (alpha), of which blend {fmt_ms(big['blend_ms'])} and JPEG "
            f"{fmt_ms(big['encode_jpeg90_ms'])}; PNG would cost {fmt_ms(big['encode_png_ms'])}."
        )
    if s and s.get("vs_source"):
        lo, hi = s["vs_source"][0], s["vs_source"][-1]
        flat = hi["class_first_ms"] < 1.5 * lo["class_first_ms"]
        head = (
            f"- **What grows with the photo's own resolution** ({cmd_s}): `engine.prepare` hashes the whole photo "
            f"(blake2b) to find its cached features: {fmt_ms(lo['engine_prepare_hash_ms'])} at "
            f"{lo['source_megapixels']:.1f} MP, {fmt_ms(hi['engine_prepare_hash_ms'])} at {hi['source_megapixels']:.1f} "
            "MP (a writable array, hashed on every call). "
        )
        if flat:
            out.append(
                head + "The widget does not pay it per interaction: a first-time class change costs "
                f"{fmt_ms(lo['class_first_ms'])} with the {lo['source_longest']} px photo and "
                f"{fmt_ms(hi['class_first_ms'])} with the {hi['source_longest']} px one, because the widget keeps its "
                "photos read-only and the engine remembers the hash of read-only arrays (the fix of 57cace0). "
                f"Alpha/colormap changes never touch the engine ({fmt_ms(lo['alpha_change_ms'])} -> "
                f"{fmt_ms(hi['alpha_change_ms'])})."
            )
        else:
            out.append(
                head + "A first-time class change pays it: "
                f"{fmt_ms(lo['class_first_ms'])} -> {fmt_ms(hi['class_first_ms'])}. Suggested fix (engine/widget): "
                "remember the key of a photo the widget holds (e.g. hash read-only arrays once), so a class change "
                "costs the matrix-vector product only."
            )
    if s:
        ci = s["vs_cached_images"]
        w = ci["widget"]
        eb = ci["engine_bound_16_images"]
        fit = [r for r in eb if r["fits_in_cache"]]
        thrash = [r for r in eb if not r["fits_in_cache"]]
        line = (
            f"- **What grows with the number of cached photos** ({cmd_s}): nothing per interaction while they fit: "
            f"alpha change {fmt_ms(w[0]['alpha_change_ms'])} with {w[0]['images']} photo(s), "
            f"{fmt_ms(w[-1]['alpha_change_ms'])} with {w[-1]['images']} (dict lookups). Memory grows linearly "
            "(section 4). "
        )
        if fit and thrash:
            line += (
                f"Past the bound, a cyclic walk over more photos than fit thrashes the LRU: "
                f"{fmt_ms(fit[-1]['per_call_ms'])} per call with {fit[-1]['images_cycled']} photos (all hits) vs "
                f"{fmt_ms(thrash[0]['per_call_ms'])} with {thrash[0]['images_cycled']} (a forward pass every call). "
                + (
                    f"The default 256 MiB engine bound holds ~{256 * 2**20 // per_image:,} photos at the CAM layer, "
                    "so this needs a very large set."
                    if (per_image := (res.get("memory") or {}).get("cache_vs_images", {}).get("expected_bytes_per_image"))
                    else ""
                )
            )
        out.append(line)

    # misses
    if k:
        for sz in k["sizes"]:
            missed = [c for c, v in sz["targets"].items() if not v["met"]]
            if not missed:
                continue
            wb = sz.get("widget_breakdown", {}).get("alpha", {})
            d = disp.get(sz["display"]) or {}  # the scaling benchmark's row for this display size
            fl = sz["speedup_vs_seed"].get("floor")
            msg = (
                f"- **Missed: {', '.join(c.replace('_', ' ') for c in missed)} at {sz['display']} px** ({cmd_k}; "
                f"best {_x(max(sz['speedup_vs_seed'][c] or 0 for c in missed), 0)}, worst "
                f"{_x(min(sz['speedup_vs_seed'][c] or 0 for c in missed), 0)} vs the 100x target). "
            )
            parts = []
            for c in missed:
                wt = sz.get("widget_breakdown", {}).get(c, {})
                if wt:
                    parts.append(
                        f"{c.replace('_', ' ')} {fmt_ms(wt.get('total'))} = map {fmt_ms(wt.get('map'))} + blend "
                        f"{fmt_ms(wt.get('blend'))} + {sz['frame']['format'].upper()} encode {fmt_ms(wt.get('encode'))}"
                    )
            if parts:
                msg += "The widget's own timings (medians): " + "; ".join(parts) + ". "
            enc = [sz.get("widget_breakdown", {}).get(c, {}) for c in missed]
            if sz["frame"]["format"] == "jpeg" and all(
                t and t.get("encode", 0) > 0.5 * t.get("total", 1) for t in enc
            ):
                msg += (
                    f"Cause: the JPEG encode of the {sz['frame']['width']}x{sz['frame']['height']} frame is more than "
                    "half of every change (libjpeg-turbo through OpenCV, quality 90); everything else is below a "
                    "millisecond. At this size the floor row (one blend + one JPEG, no widget) is "
                    f"{_x(fl)} faster than the seed, so the target is met only with little to spare and noise decides. "
                    "`to_index` (one OpenCV pass) and `blend` (`cv2.applyColorMap`) are already at their floor; what "
                    "is left is the encoder. Options: keep the default display cap (768 px); encode at a lower "
                    "quality while a control is being moved. "
                )
            if sz["frame"]["format"] == "png" and d:
                msg += (
                    f"Cause: frames up to `png_max=256` px are sent as PNG; encoding this frame as PNG costs "
                    f"{fmt_ms(d.get('encode_png_ms'))} vs {fmt_ms(d.get('encode_jpeg90_ms'))} as JPEG ({cmd_s}). "
                    "Fix (widget): `png_max=0` by default (JPEG for every live frame; PNG only for Save and the static "
                    "fallback), which brings the change down to about blend + JPEG, the floor row "
                    f"({fmt_ms(sz['cases']['floor']['median_ms'])}, {_x(fl)} vs the seed). "
                )
            if d and d.get("blend_ms") and d.get("lut_cv2_applycolormap_ms"):
                best = d["lut_cv2_applycolormap_ms"] + d.get("add_weighted_ms", 0.0)
                if d["blend_ms"] > 3 * best and d["blend_ms"] > 1.0:
                    msg += (
                        f"Cause: `render.blend` takes {fmt_ms(d['blend_ms'])} here, while colouring with "
                        f"`cv2.applyColorMap(idx, lut.reshape(256, 1, 3))` ({fmt_ms(d['lut_cv2_applycolormap_ms'])}, "
                        f"byte-identical, asserted in {cmd_s}) plus `cv2.addWeighted` ({fmt_ms(d.get('add_weighted_ms'))}) "
                        "would take a fraction of that. Fix (render): use it in `blend`. "
                    )
            if fl is not None and fl < 100:
                msg += (
                    f"Note: even the floor (one LUT blend + one JPEG encode of the frame, no widget) is only {_x(fl)} "
                    f"faster than the seed at this size: JPEG-encoding {sz['frame']['width']}x{sz['frame']['height']} "
                    f"pixels costs {fmt_ms(d.get('encode_jpeg90_ms') if d else wb.get('encode'))} on this CPU, so 100x at "
                    f"{sz['display']} px needs a smaller frame (the widget's default caps the display at 768 px) or "
                    "a cheaper encoder setting."
                )
            out.append(msg)
    if b and "configs" in b:
        for cfg in b["configs"]:
            rr = cfg["ratios_vs_floor"]
            if all(rr.get(c) is not None and rr[c] <= 1.25 for c in ("alpha", "class_cached")):
                continue
            c, kern = cfg["cases"], cfg.get("kernel", {})

            def tl(case: str, key: str, c: dict = c) -> str:
                v = c[case]["timeline"].get(key)
                return "n/a" if v is None else f"{v:.1f} ms"

            def ratio_s(case: str, rr: dict = rr) -> str:
                return _x(rr.get(case), 2)

            missed = [x for x in ("alpha", "class_cached") if rr.get(x) is None or rr[x] > 1.25]
            lat = {k: v["latency_ms_median"] for k, v in c.items()}
            text = (
                f"- **Missed: browser latency within 1.25x of the floor for "
                f"{' and '.join(x.replace('_cached', ' (seen before)') for x in missed)}, {cfg['label']}** "
                f"({_cmd(b)}): alpha {ratio_s('alpha')}, class {ratio_s('class_cached')} as shipped. From the same run: "
                f"(a) from the browser's update being applied to the control to the new image trait the kernel spends "
                f"{fmt_ms(kern.get('alpha', {}).get('control_to_image_ms'))} (alpha) and "
                f"{fmt_ms(kern.get('class_cached', {}).get('control_to_image_ms'))} (class), of which compute (map + "
                f"blend) {fmt_ms(kern.get('class_cached', {}).get('compute_ms'))} and encode "
                f"{fmt_ms(kern.get('class_cached', {}).get('encode_ms'))} for class"
            )
            kc = kern.get("class_cached", {})
            if (kc.get("control_to_image_ms") or 0) > 0.2 * lat["class_cached"]:
                text += (
                    f" -- a real share of the {fmt_ms(lat['class_cached'])}: the JPEG encode of the frame (in the kernel, "
                    "slower than in the kernel benchmark, likely because Chromium and the server share the 2 cores) is most of it. "
                )
            else:
                text += f" -- a small share of the {fmt_ms(lat['class_cached'])}. "
            fixes = []
            helps = [x for x in missed if f"{x}_sync" in lat and lat[f"{x}_sync"] < 0.85 * lat[x]]
            if helps:
                text += (
                    "(b) The render thread costs time: the same panel with `threaded=False` (rendering in the comm "
                    "handler) paints "
                    + ", ".join(
                        f"{x.replace('_cached', '')} in {fmt_ms(lat[x + '_sync'])} vs {fmt_ms(lat[x])}"
                        for x in helps
                    )
                    + f"; in the kernel, control -> image {fmt_ms(kern.get('alpha_sync', {}).get('control_to_image_ms'))} "
                    f"vs {fmt_ms(kern.get('alpha', {}).get('control_to_image_ms'))} for alpha (our reading: the woken "
                    "worker must take the GIL from the main thread, which is still answering the browser; CPython "
                    "switches threads at most every 5 ms). "
                )
                fixes.append(
                    "render cache hits (alpha, colormap, seen classes) synchronously in the comm handler and keep the "
                    "thread for forward/gradient passes"
                )
            elif any(f"{x}_sync" in lat for x in missed):
                text += (
                    "(b) The render thread is not the cause: the same panel with `threaded=False` paints "
                    + ", ".join(
                        f"{x.replace('_cached', '')} in {fmt_ms(lat[x + '_sync'])} vs {fmt_ms(lat[x])} threaded"
                        for x in missed
                        if f"{x}_sync" in lat
                    )
                    + ". "
                )
            cm, fm = c["class_cached"].get("comm_msgs_median"), c["floor_dropdown"].get("comm_msgs_median")
            if "class_cached" in missed and cm and fm and cm > fm:
                pos = c["class_cached"].get("image_message_position_median")
                text += (
                    f"(c) A class change makes the kernel send {_n(cm)} widget messages (image #{_n(pos)}), vs {_n(fm)} "
                    "for the floor (echo + image): a new class changes what the legend (value range) and the status "
                    "line (class, probability) say, so one caption message (legend and status line are one HTML "
                    "widget) must follow the image; image sent -> received "
                    f"{tl('class_cached', 'image_sent_to_received')} vs {tl('floor_dropdown', 'image_sent_to_received')} "
                    "for the floor. Class `<select>`, keydown -> update sent: "
                    f"{tl('class_cached', 'keydown_to_sent')} vs {tl('floor_dropdown', 'keydown_to_sent')} for the "
                    "floor's dropdown. "
                )
                if pos and pos > 2.5:  # #1 is the control's own echo
                    fixes.append("flush the image first (enter its `hold_sync()` last)")
                elif cm > fm + 1:
                    text += (
                        "The image already goes first (after the control's echo), yet more than one message follows "
                        "it: check that the legend and status line still share one caption widget. "
                    )
                else:
                    text += (
                        "The image already goes first (after the control's echo) and one caption message follows "
                        "it; the only way to fewer messages would be to leave the legend and status line stale. "
                    )
            fl_case = "floor_dropdown" if "class_cached" in missed else "floor_slider"
            mine = "class_cached" if "class_cached" in missed else "alpha"
            lat_s = {x: [sm["latency_ms"] for sm in c[x].get("samples", [])] for x in (mine, fl_case)}
            if all(lat_s.values()):
                cut = min(lat_s[fl_case]) + 8.0
                fast = {x: sum(v < cut for v in vals) for x, vals in lat_s.items()}
                text += (
                    f"(d) The latencies are bimodal: the page paints on display frames (~16 ms apart), so a keypress "
                    f"is painted either in the next frame or the one after. Samples under {cut:.0f} ms: "
                    f"{fast[mine]}/{len(lat_s[mine])} for the panel ({mine.replace('_cached', ' (seen before)')}) vs "
                    f"{fast[fl_case]}/{len(lat_s[fl_case])} for the floor; the median lands in one mode or the other, "
                    "so a ratio near the threshold moves with the mode mix more than with our milliseconds. What the "
                    "panel adds (kernel busy -> image sent "
                    f"{tl(mine, 'kernel_busy_to_image_sent')} vs {tl(fl_case, 'kernel_busy_to_image_sent')}, plus the "
                    "caption's re-layout after a class change) decides how often it misses the earlier "
                    "frame. "
                )
            if fixes:
                text += "Fixes (widget): " + "; ".join(fixes) + "."
            out.append(text)
    if t and not t["target"]["met"]:
        out.append(
            f"- **Missed: throughput** ({_cmd(t)}): engine CAM {_x(t['ratios']['engine_cam_vs_peer_gradcam'], 2)} the peer."
        )
    m = res.get("memory")
    if m and not m["target"]["met"]:
        out.append(
            f"- **Missed: RSS growth** ({_cmd(m)}): {m['rss']['growth_mib']:+.1f} MiB over {m['rss']['changes']} changes."
        )
    if not out:
        return []
    return ["## What grows, what missed, and why", "", *out, ""]


# --------------------------------------------------------------------------------------------------------------
# The plot
# --------------------------------------------------------------------------------------------------------------


def plot(res: dict[str, Any], png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    axes = axes.ravel()
    k = res.get("kernel_latency")
    ax = axes[0]
    if k:
        cases = ["seed", "class_first", "class_cached", "alpha", "colormap", "floor"]
        xs = np.arange(len(cases))
        for j, sz in enumerate(k["sizes"]):
            vals = [sz["cases"][c]["median_ms"] for c in cases]
            ax.bar(xs + (j - 0.5) * 0.4, vals, 0.4, label=f"{sz['display']} px")
        ax.set_yscale("log")
        ax.set_xticks(xs, [c.replace("_", "\n") for c in cases], fontsize=8)
        ax.set_ylabel("ms (median, log)")
        ax.set_title("1. kernel: control change -> overlay bytes")
        ax.legend(fontsize=8)
    b = res.get("browser_latency")
    ax = axes[1]
    if b and "configs" in b:
        cases = ["alpha", "floor_slider", "class_cached", "floor_dropdown"]
        xs = np.arange(len(cases))
        n = len(b["configs"])
        for j, cfg in enumerate(b["configs"]):
            vals = [cfg["cases"][c]["latency_ms_median"] for c in cases]
            ax.bar(xs + (j - (n - 1) / 2) * (0.8 / n), vals, 0.8 / n, label=cfg["label"][:38])
        ax.set_xticks(xs, [c.replace("_", "\n") for c in cases], fontsize=8)
        ax.set_ylabel("ms keypress -> painted (median)")
        ax.set_title("2. browser: CAMExplorer vs bare ipywidgets.Image")
        ax.legend(fontsize=6)
    t = res.get("throughput")
    ax = axes[2]
    if t:
        names = list(t["paths"])
        vals = [t["paths"][n]["images_per_s"] for n in names]
        ax.barh(np.arange(len(names)), vals, color=["C0", "C0", "C0", "C3", "C3", "C1"][: len(names)])
        ax.set_yticks(np.arange(len(names)), [n.replace("_", " ") for n in names], fontsize=8)
        ax.set_xlabel("images / s")
        ax.set_title(f"3. throughput, {t['images']} photos, cold cache")
    m = res.get("memory")
    ax = axes[3]
    if m:
        for key in ("rss", "rss_worst_case"):
            r = m.get(key)
            if r:
                xs_, ys_ = zip(*r["samples_mib"], strict=True)
                ax.plot(xs_, ys_, marker=".", label=r["scenario"])
        ax.set_xlabel("control changes after warm-up")
        ax.set_ylabel("RSS, MiB")
        ax.set_title("4. memory: RSS over control changes")
        ax.legend(fontsize=8)
    s = res.get("scaling")
    ax = axes[4]
    if s:
        rows = s["vs_display"]
        mp = [r["megapixels"] for r in rows]
        for key, lab in (("alpha_change_ms", "alpha change (widget)"), ("class_first_ms", "class change, first (widget)"),
                         ("blend_ms", "render.blend"), ("lut_cv2_applycolormap_ms", "LUT via cv2.applyColorMap"),
                         ("encode_jpeg90_ms", "JPEG q90"), ("encode_png_ms", "PNG")):  # fmt: skip
            ax.plot(mp, [r[key] for r in rows], marker="o", label=lab)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("display megapixels (224 -> 2048 px)")
        ax.set_ylabel("ms (median)")
        ax.set_title("5. scaling vs display size")
        ax.legend(fontsize=7)
        ax = axes[5]
        eb = s["vs_cached_images"]["engine_bound_16_images"]
        ax.plot(
            [r["images_cycled"] for r in eb],
            [r["per_call_ms"] for r in eb],
            marker="o",
            label="engine.cam, bound = 16 photos",
        )
        w = s["vs_cached_images"]["widget"]
        ax.plot(
            [r["images"] for r in w],
            [r["alpha_change_ms"] for r in w],
            marker="s",
            label="widget alpha change",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("photos cached / cycling")
        ax.set_ylabel("ms (median)")
        ax.set_title("5. scaling vs number of photos")
        ax.legend(fontsize=8)
    for a in axes:
        if not a.has_data():
            a.set_axis_off()
    fig.suptitle(
        "cam-widget benchmarks (medians; shared, noisy 2-core machine) -- see BENCHMARKS.md", fontsize=11
    )
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return png


# --------------------------------------------------------------------------------------------------------------


def _refit(f: dict[str, Any]) -> list[str]:
    lines = [
        f"## 6. Refit heads, {f['photos']} sample photos, default model ({f['input_size'][0]}x{f['input_size'][1]})",
        "",
        f"Reproduce: {_cmd(f)} ({_load_note(f)}). `engine.refit_head(layer, sample_images(), seed=s)` with the "
        f"default settings, seeds 0-{f['repeats'] - 1}, on an engine whose forward functions are traced (the "
        "trace call is listed separately). Fidelity: mean over the seeds of the fit reports, each on "
        f"{f['layers'][0]['n_heldout']} held-out crops and flips; *stable*: on the crops where the model's own "
        "top-1 survives moving the crop by 2% of its size; *model vs itself*: how often it does; *fitting samples*: "
        "agreement on the whole views the head was fitted on. docs/CONV_CUTOFF.md has these on 256 held-out crops "
        "and what the maps localize.",
        "",
        "| layer | features | median time | trace call | top-1 | stable | model vs itself | fitting samples | top-5 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in f["layers"]:
        h, w, k = r["shape"]
        lines.append(
            f"| `{r['layer']}` | {h}x{w}x{k} | {r['seconds']['median_ms'] / 1e3:.2f} s | {r['trace_call_s']:.2f} s | "
            f"{r['top1_agreement']:.2f} | {r['top1_agreement_stable']:.2f} | {r['model_self_agreement']:.2f} | "
            f"{r['fit_top1_agreement']:.2f} | {r['top5_overlap']:.2f} |"
        )
    return [*lines, ""]


def write_report(results_dir: Path, md: Path, png: Path, runs: list[dict[str, Any]] | None = None) -> Path:
    res = _load(Path(results_dir))
    quick = any(r.get("quick") for r in res.values())
    try:
        rel_png = Path(png).resolve().relative_to(Path(md).resolve().parent)
    except ValueError:
        rel_png = Path(png)
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (= `.venv/bin/python -m bench.run_all`; regenerate this file alone from the "
        "saved results with `.venv/bin/python -m bench.run_all --report-only`) on "
        f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}. Raw results: `bench/results/*.json`. Each benchmark "
        "also runs alone: `.venv/bin/python -m bench.<name>`, with `--quick` for a smoke run "
        "(`tests/test_bench_smoke.py` runs the kernel-side ones in quick mode in the test suite).",
        "",
    ]
    if quick:
        lines += ["> **Quick (smoke) run: too few repeats to quote.**", ""]
    if runs:
        bad = [r for r in runs if r["returncode"] != 0]
        if bad:
            lines += [
                f"> Failed in this run: {', '.join(r['name'] for r in bad)} (their sections are from older results or missing).",
                "",
            ]
    lines += [f"![benchmarks]({rel_png})", ""]
    lines += _machine(res)
    lines += _summary(res)
    lines += _findings(res)
    lines += _round3(res, Path(results_dir))
    lines += _round2(res, Path(results_dir))
    if "kernel_latency" in res:
        lines += _kernel(res["kernel_latency"])
    if "before_after" in res:
        lines += _before_after(res["before_after"])
    if "browser_latency" in res:
        lines += _browser(res["browser_latency"])
    if "throughput" in res:
        lines += _throughput(res["throughput"])
    if "memory" in res:
        lines += _memory(res["memory"])
    if "scaling" in res:
        lines += _scaling(res["scaling"])
    if "refit" in res:
        lines += _refit(res["refit"])
    if "methods" in res:
        from .methods import report_lines

        lines += report_lines(res["methods"])
    if "batch" in res:
        from .batch import report_lines as batch_lines  # dataset jobs: the section lives with its benchmark

        lines += batch_lines(res["batch"])
    if "trust" in res:
        from .trust import report_lines as trust_lines

        lines += trust_lines(res["trust"], _cmd(res["trust"]))
    for name in SECTION_MODULES:
        lines += importlib.import_module(f"bench.{name}").section(res)
    plot(res, Path(png))
    md = Path(md)
    md.write_text("\n".join(lines).rstrip() + "\n")
    return md
