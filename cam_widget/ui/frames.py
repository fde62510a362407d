"""From a :class:`~cam_widget.ui.state.Request` to a :class:`~cam_widget.ui.state.Frame`: the pipeline the render
loop runs.  It asks the view for its cells, the map store for their maps, the scope for their colours, composes the
grid and lets the output paint it.  No widget is touched here (the panel publishes the frame).

The composed grid is kept for the last request's *content* (everything but alpha and colormap), so an alpha or
colormap change re-blends one picture and encodes it: nothing else (and with an output that paints in the browser,
not even that: it records the colours and blends the kernel's copy only when something reads it).
"""

from __future__ import annotations

import dataclasses
import html
import time
from typing import Any

from .. import render
from ..methods.base import is_uninformative
from .caption import error_html, legend_html, ok_html
from .catalog import MethodInfo, method_label
from .controls import class_options
from .maps import MapStore
from .output import Output
from .photos import PhotoStore
from .scope import apply_scope, signed_colormap
from .state import Cell, Frame, Photo, Request
from .views import View, ViewContext
from .views import grid as grids

__all__ = ["FrameBuilder"]

LABEL_HEIGHT = 22  # px, at display size


class FrameBuilder:
    """Builds frames for one panel (its photos, maps, views and output)."""

    def __init__(
        self, engine: Any, photos: PhotoStore, maps: MapStore, views: dict[str, View], output: Output, *,
        layer_infos: dict[str, Any], methods: list[MethodInfo], refit_reports: dict[str, Any], top_k: int,
        normalize: Any, relu: bool,
    ) -> None:
        self.engine, self.photos, self.maps, self.views, self.output = engine, photos, maps, views, output
        self.layer_infos, self.methods, self.refit_reports = layer_infos, methods, refit_reports
        self.top_k, self.normalize, self.relu = top_k, normalize, relu
        self.class_names = [str(n) for n in engine.class_names]
        self._last: tuple[Any, list[Cell], grids.Mosaic] | None = None

    def context(self, photo: Photo) -> ViewContext:
        return ViewContext(photo, self.layer_infos, self.class_names, self.methods,
                           getattr(self.engine, "cam_layer", None), self.refit_reports, self.top_k)

    # ------------------------------------------------------------------ the pipeline
    def build(self, req: Request, generation: int, epoch: int, class_image: str | None) -> Frame:
        t0 = time.perf_counter()
        if req.image is None:
            return Frame(generation, req, ok=False, status="No image yet: upload one with the Upload button.",
                         legend=legend_html(None, None), epoch=epoch)
        photo = self.photos.get(req.image)
        t_load = time.perf_counter()
        warm = req.layer if self.maps.needs_head(req.method) and self.maps.has_cam(req.layer) else None
        self.photos.classify(photo, self.engine, self.top_k, warm)
        class_update = None
        if req.image != class_image or req.class_index is None:
            top = [i for i, _, _ in photo.top or []]
            cls = top[0] if top else 0
            req = dataclasses.replace(req, class_index=cls, contrast=top[1] if len(top) > 1 else None)
            class_update = (class_options(photo), cls, req.contrast)
        t_top = time.perf_counter()
        cells, mosaic = self._content(req, photo, epoch)
        t_map = time.perf_counter()
        colours = (req.colormap, req.alpha, signed_colormap(req.colormap))
        paint_cells = getattr(self.output, "paint_cells", None)  # an output that wants the raw maps (the canvas)
        painted = paint_cells(cells, mosaic, *colours) if paint_cells else self.output.paint(mosaic, *colours)
        t_enc = time.perf_counter()
        blend = float(getattr(painted, "blend_seconds", 0.0))
        timings = {"load": t_load - t0, "classify": t_top - t_load, "map": t_map - t_top,
                   "blend": blend, "encode": t_enc - t_map - blend, "total": t_enc - t0}
        frame = Frame(generation, req, ok=True, data=getattr(painted, "data", b""), fmt=getattr(painted, "fmt", ""),
                      cells=cells, epoch=epoch, class_update=class_update, timings=timings, painted=painted)
        frame.legend = self._legend(req, cells)
        frame.status = self._status(req, photo, cells)
        return frame

    def error_frame(self, req: Request, generation: int, epoch: int, exc: BaseException) -> Frame:
        frame = Frame(generation, req, ok=False, status=error_html(exc), legend=legend_html(None, None), epoch=epoch)
        photo = self.photos.photos.get(req.image) if req.image is not None else None
        if photo is not None:  # show the plain photo: no stale heat map under a new setting
            frame.status += " <small style='color:#666'>(showing the photo without a map)</small>"
            frame.painted = self.output.plain(photo.display)
            frame.fmt, frame.data = getattr(frame.painted, "fmt", ""), getattr(frame.painted, "data", b"")
        return frame

    def forget_content(self) -> None:
        """Drop the kept composition (heads or caches changed)."""
        self._last = None

    def _content(self, req: Request, photo: Photo, epoch: int) -> tuple[list[Cell], grids.Mosaic]:
        key = (req.content(), epoch)
        if self._last is not None and self._last[0] == key:
            return self._last[1], self._last[2]
        cells = self.cells(req, photo)
        mosaic = self.compose(req, photo, cells)
        self._last = (key, cells, mosaic)
        return cells, mosaic

    # ------------------------------------------------------------------ cells and their composition
    def cells(self, req: Request, photo: Photo) -> list[Cell]:
        """The view's cells with their raw maps and colour scales (no index maps yet)."""
        view, ctx = self.views[req.view], self.context(photo)
        specs = [  # smoothing and "only on request" are the panel's settings, not the view's
            dataclasses.replace(s, smooth=req.smooth,
                                expensive=self.maps.is_long(self.maps.resolve(s.layer, s.method)[0], req.smooth))
            for s in view.cells(req, ctx)
        ]
        self._warm_features(photo, specs)
        cells = []
        for spec in specs:
            method, note = self.maps.resolve(spec.layer, spec.method)
            cell = Cell(spec, None, method, note=note)
            if spec.expensive and self.maps.cached_raw(photo, spec) is None:
                info = ctx.method_info(method)
                cost = info.estimate(self.engine, spec.layer, spec.smooth) if info else "a long run"
                smooth = " with aug smoothing" if spec.smooth == "aug" else ""
                cell.note = f"{method_label(method)}{smooth} at {spec.layer} costs {cost}: press Run to compute it"
            elif req.view == "single":
                cell.cam, cell.method, cell.note = self.maps.raw(photo, spec)  # an error is the frame's error
            else:
                try:
                    cell.cam, cell.method, cell.note = self.maps.raw(photo, spec)
                except Exception as exc:  # one failing cell does not blank the grid
                    cell.error = error_html(exc)
            if cell.cam is not None and is_uninformative(cell.cam):
                cell.note = (f"{method_label(cell.method)} at {spec.layer}: uninformative map (no finite variation, "
                             "e.g. all-zero gradients behind a dead ReLU)")
            cell.label = view.label(cell, ctx)
            cells.append(cell)
        apply_scope(cells, req.scope, self.normalize, self.relu)
        return cells

    def _warm_features(self, photo: Photo, specs: list) -> None:
        """Exact-CAM cells at several layers need those layers' features: fetch the ones not cached yet in ONE
        forward pass (one per not-yet-seen layer set), not one per layer."""
        many = getattr(self.engine, "features_many", None)
        if many is None or len(specs) < 2:
            return
        layers = [s.layer for s in specs
                  if self.maps.resolve(s.layer, s.method)[0] == "cam" and self.maps.cached_raw(photo, s) is None]
        if len(set(layers)) > 1:
            many([photo.rgb], list(dict.fromkeys(layers)))

    def cell_size(self, photo: Photo, n: int, longest: int) -> tuple[int, int]:
        if n == 1:
            return render.fit_within(photo.rgb.shape, longest)
        cols = grids.grid_shape(n)[1]  # the grid, gaps included, as wide as a single frame
        return render.fit_within(photo.rgb.shape, max(64, (longest - grids.GAP * (cols - 1)) // cols))

    def compose(self, req: Request, photo: Photo, cells: list[Cell], full: bool = False) -> grids.Mosaic:
        """The cells laid out at display size, or (``full``) with every cell at the photo's full resolution."""
        if full:
            size, label_height = photo.rgb.shape[:2], max(LABEL_HEIGHT, round(max(photo.rgb.shape[:2]) / 24))
        else:
            size = self.cell_size(photo, len(cells), self.photos.display_size)
            label_height = LABEL_HEIGHT
        picture = photo.rgb if full else self.photos.sized(photo, size)
        parts = []
        for c in cells:
            index = None
            if c.cam is not None:
                if full:
                    index = render.to_index(c.cam, size, normalize=c.normalize, relu=c.relu)
                else:
                    index = self.maps.index(photo, c.spec, c.cam, size, c.normalize, c.relu)
                c.index = index
            parts.append(grids.MosaicCell(picture, index, c.label, c.signed))
        if req.view == "single":
            return grids.single(picture, parts[0].index, parts[0].signed)
        return grids.compose(parts, label_height=label_height, gap=grids.GAP)

    # ------------------------------------------------------------------ caption
    def _legend(self, req: Request, cells: list[Cell]) -> str:
        mapped = [c for c in cells if c.cam is not None]
        if not mapped:
            return legend_html(None, None)
        signed = all(c.signed for c in mapped)
        cmap = signed_colormap(req.colormap) if signed else req.colormap
        if req.view == "single":
            c = mapped[0]
            return legend_html(cmap, c.scale, c.raw, c.relu, None if req.scope == "map" else req.scope)
        shared = req.scope == "shared" and len({c.scale for c in mapped if not c.signed}) == 1
        scale = next(c.scale for c in mapped if not c.signed) if shared else None
        return legend_html(cmap, scale, None, True, req.scope)

    def status_line(self, req: Request, photo: Photo, cells: list[Cell]) -> str:
        """The status line of a frame of ``cells`` for ``req`` (HTML)."""
        return self._status(req, photo, cells)

    def _status(self, req: Request, photo: Photo, cells: list[Cell]) -> str:
        cls = req.class_index
        assert cls is not None
        p = float(photo.probs[cls]) if photo.probs is not None else float("nan")
        head = f"<b>{html.escape(self.class_names[cls])}</b> (#{cls}, p = {p:.3f})"
        notes = [c.note for c in cells if c.note]
        errors = [c.error for c in cells if c.error]
        if req.view == "single":
            c = cells[0]
            text = f"{head} · layer <code>{html.escape(req.layer)}</code> {self._res(req.layer)} · "
            text += html.escape(self._method_text(c))
        else:
            text = f"<b>{req.view.capitalize()}</b> view · {head} · {len(cells)} maps"
            if req.view != "methods":
                text += f" · {html.escape(method_label(req.method))}"
            if req.view != "layers":
                text += f" at <code>{html.escape(req.layer)}</code> {self._res(req.layer)}"
        extra = "".join(f"<br><small class='cam-note'>{html.escape(n)}</small>" for n in dict.fromkeys(notes))
        extra += "".join(f"<br>{e}" for e in errors)
        return ok_html(text, extra)

    def _method_text(self, c: Cell) -> str:
        text = method_label(c.method)
        layer = c.spec.layer
        if c.method == "cam":
            text += " (exact)"
            report = self.refit_reports.get(layer)
            if report is not None:
                text += f" with a refit head ({report.summary()})"
        elif c.method != c.spec.method:
            text += f" (fall-back for {method_label(c.spec.method)})"
        elif not self.maps.has_cam(layer):
            text += " (no exact-CAM head on this layer)"
        return text

    def _res(self, layer: str) -> str:
        info = self.layer_infos.get(layer)
        return f"{info.shape[0]}x{info.shape[1]}" if info is not None else "?"
