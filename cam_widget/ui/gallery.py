"""Gallery: browse a batch job's results, find where the model looks wrong, open one in a CAMExplorer.

``Gallery(results)`` takes an output folder of :func:`cam_widget.batch.run` (or its DataFrame plus
``out=``) and shows one page of thumbnails with their overlays.  Filtering and sorting work on the
DataFrame (vectorised, milliseconds for 50,000 rows); only the visible page is decoded and drawn,
and drawn thumbnails are kept in a byte-bounded cache.  Clicking a thumbnail's button opens the
image in a :class:`cam_widget.CAMExplorer` beside the grid, on the job's own model (built once, on
the first click, from ``job.json``, unless an engine is given).  :meth:`Gallery.show_mean_cam`
shows a class's mean CAM: every map of the class min-max normalised in the image frame (each map
covers its whole image) and averaged, over the mean of those photos.

Stock ipywidgets only; all state is in the controls' values (``filter_control``, ``class_control``,
``pair_control``, ``sort_control``, ``method_control``, ``page_control``), so tests drive it in the
kernel without a browser.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import ipywidgets as widgets
import numpy as np

from .. import render
from ..cache import ByteLRU
from ..errors import CAMError
from ..imaging import load_image, resize_to

__all__ = ["Gallery"]

FILTERS = (
    ("all images", "all"),
    ("wrong predictions", "wrong"),
    ("correct predictions", "correct"),
    ("true class…", "class"),
    ("predicted class…", "predicted"),
    ("confusion pair…", "pair"),
    ("unreadable files", "unreadable"),
)
#: Sort keys: (label, key, column template, ascending).  ``{m}`` is the method shown.
SORTS = (
    ("file order", "order", None, True),
    ("lowest IoU", "iou", "{m}_iou", True),
    ("lowest insertion AUC", "insertion", "{m}_insertion", True),
    ("highest deletion AUC", "deletion", "{m}_deletion", False),
    ("least confident", "confidence", "probability", True),
    ("most confident", "confidence-desc", "probability", False),
)
_PLACEHOLDER = (40, 40, 40)


def _given(value: Any) -> bool:
    """Not None and not NaN (parquet gives either for a missing value)."""
    return value is not None and value == value


def _thumb_placeholder(size: int, text: str) -> np.ndarray:
    img = np.full((size, size, 3), _PLACEHOLDER, np.uint8)
    cv2.putText(img, text[:14], (6, size // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (220, 220, 220), 1, cv2.LINE_AA)
    return img


class Gallery(widgets.HBox):
    """A paged, sortable, filterable grid of a batch job's images with their CAM overlays.

    Args:
        results: an output folder of :func:`cam_widget.batch.run`, or its results DataFrame.
        engine: the engine the explorer uses on click (default: built from the folder's
            ``job.json``, i.e. the job's own model, on the first click).
        out: the output folder when ``results`` is a DataFrame (for the maps and ``job.json``).
        page_size: thumbnails per page.
        columns: thumbnails per row.
        thumb_size: longest side of a thumbnail in pixels.
        alpha, colormap: how overlays are drawn.
        boxes: draw the 20 % box (green) and the true box (white) on thumbnails.
        thumb_cache_bytes: bound of the drawn-thumbnail cache.

    Attributes: ``filter_control``, ``class_control``, ``pair_control``, ``sort_control``,
    ``method_control``, ``page_control``, ``prev_button``, ``next_button``, ``mean_button``, ``status``,
    ``grid`` (the tiles), ``detail`` (the box beside it holding the explorer or the mean CAM),
    ``explorer`` (the :class:`CAMExplorer` once opened), ``selection`` (filtered and sorted rows),
    ``visible`` (this page's rows).
    """

    def __init__(
        self,
        results: Any,
        engine: Any = None,
        *,
        out: str | Path | None = None,
        page_size: int = 24,
        columns: int = 6,
        thumb_size: int = 144,
        alpha: float = 0.5,
        colormap: str = "jet",
        boxes: bool = True,
        thumb_cache_bytes: int = 64 * 2**20,
        **kwargs: Any,
    ) -> None:
        from ..batch.store import JOB_FILE, read_json, read_results

        if isinstance(results, (str, Path)):
            out = Path(results)
            frame = read_results(out)
        elif hasattr(results, "columns") and hasattr(results, "iloc"):
            frame = results
        else:
            raise CAMError(f"Gallery needs an output folder or a results DataFrame; got {type(results).__name__}.")
        missing = [c for c in ("path", "predicted", "label", "error") if c not in frame.columns]
        if missing:
            raise CAMError(f"This table is not a batch results table: it has no column(s) {missing}.")
        if int(page_size) < 1 or int(columns) < 1 or int(thumb_size) < 16:
            raise CAMError("page_size and columns must be >= 1 and thumb_size >= 16 pixels.")
        self.frame = frame.reset_index(drop=True)
        self.out = Path(out) if out is not None else None
        self.job_info = read_json(self.out / JOB_FILE) if self.out is not None else None
        self.page_size, self.columns, self.thumb_size = int(page_size), int(columns), int(thumb_size)
        self.alpha, self.colormap, self.boxes = float(alpha), colormap, bool(boxes)
        render.colormap_lut(colormap)  # a bad name fails now, with the list of names
        self._engine = engine
        self._thumbs = ByteLRU(thumb_cache_bytes)
        self._shards = ByteLRU(32 * 2**20)
        self.thumbnails_drawn = 0  # how many thumbnails were decoded and drawn (the cache saves the rest)
        self.explorer: Any = None
        self.opened: dict[str, Any] | None = None  # the row shown in the explorer
        self.mean_view: dict[str, Any] | None = None  # what the mean-CAM view shows
        self._quiet = False
        self._tiles: list[widgets.VBox] = []
        self._tile_rows: list[int] = []  # the frame row each tile shows
        self._names = self._class_names()

        methods = [c[: -len("_peak_x")] for c in self.frame.columns if c.endswith("_peak_x")]
        self.methods = methods
        self.filter_control = widgets.Dropdown(options=FILTERS, value="all", description="Show")
        counts = self.frame["label"].dropna().astype(int).value_counts()
        if counts.empty:
            counts = self.frame["predicted"].dropna().astype(int).value_counts()
        self.class_control = widgets.Dropdown(
            options=[(f"{self._name(c)} ({n})", int(c)) for c, n in counts.items()], description="Class",
            layout=widgets.Layout(display="none"),
        )  # fmt: skip
        self.pair_control = widgets.Dropdown(
            options=self._pairs(), description="Pair", layout=widgets.Layout(display="none", width="420px")
        )
        sorts = [(label, key) for label, key, col, _ in SORTS if col is None or self._has_column(col)]
        self.sort_control = widgets.Dropdown(options=sorts, value="order", description="Sort")
        self.method_control = widgets.Dropdown(
            options=methods or ["(no maps)"], description="Map", layout=widgets.Layout(width="200px")
        )
        self.page_control = widgets.BoundedIntText(value=1, min=1, max=1, description="Page", layout=widgets.Layout(width="150px"))
        self.prev_button = widgets.Button(description="◀", layout=widgets.Layout(width="40px"))
        self.next_button = widgets.Button(description="▶", layout=widgets.Layout(width="40px"))
        self.mean_button = widgets.Button(description="mean CAM of class", tooltip="average map of the chosen class")
        self.status = widgets.HTML()
        self.grid = widgets.GridBox(
            layout=widgets.Layout(grid_template_columns=f"repeat({self.columns}, {self.thumb_size + 8}px)", grid_gap="4px")
        )
        self.detail = widgets.VBox(layout=widgets.Layout(min_width="0"))
        self.selection = self.frame.iloc[:0]
        self.visible = self.frame.iloc[:0]

        for control in (self.filter_control, self.class_control, self.pair_control, self.sort_control, self.method_control):
            control.observe(self._on_query, names="value")
        self.page_control.observe(lambda _: None if self._quiet else self._draw_page(), names="value")
        self.prev_button.on_click(lambda _: self.go(self.page_control.value - 1))
        self.next_button.on_click(lambda _: self.go(self.page_control.value + 1))
        self.mean_button.on_click(lambda _: self.show_mean_cam())
        bar1 = widgets.HBox([self.filter_control, self.class_control, self.pair_control])
        bar2 = widgets.HBox([self.sort_control, self.method_control, self.prev_button, self.page_control, self.next_button, self.mean_button])
        left = widgets.VBox([bar1, bar2, self.status, self.grid])
        super().__init__([left, self.detail], **kwargs)
        self._on_query()

    # ------------------------------------------------------------------ names and columns
    def _class_names(self) -> list[str] | None:
        if self._engine is not None:
            return list(self._engine.class_names)
        job = (self.job_info or {}).get("job", {})
        if job.get("class_names"):
            return list(job["class_names"])
        if job.get("model") == "default":
            from ..classnames import imagenet_class_names

            return imagenet_class_names()
        return None

    def _name(self, idx: Any) -> str:
        i = int(idx)
        return self._names[i] if self._names is not None and 0 <= i < len(self._names) else f"class {i}"

    def _has_column(self, template: str) -> bool:
        return any(template.format(m=m) in self.frame.columns for m in self._methods_in_frame())

    def _methods_in_frame(self) -> list[str]:
        return [c[: -len("_peak_x")] for c in self.frame.columns if c.endswith("_peak_x")] or [""]

    def _pairs(self) -> list[tuple[str, tuple[int, int]]]:
        f = self.frame
        wrong = f[f["label"].notna() & f["predicted"].notna() & (f["label"] != f["predicted"])]
        if wrong.empty:
            return []
        counts = wrong.groupby([wrong["label"].astype(int), wrong["predicted"].astype(int)]).size()
        counts = counts.sort_values(ascending=False, kind="stable").head(200)
        return [(f"{self._name(t)} → {self._name(p)} ({n})", (int(t), int(p))) for (t, p), n in counts.items()]

    # ------------------------------------------------------------------ query
    @property
    def method(self) -> str | None:
        """The method whose maps and scores are shown."""
        return self.method_control.value if self.methods else None

    def query(self) -> Any:
        """The rows the controls select, in the chosen order (a view of :attr:`frame`)."""
        f = self.frame
        kind = self.filter_control.value
        if kind == "wrong":
            f = f[f["label"].notna() & f["predicted"].notna() & (f["label"] != f["predicted"])]
        elif kind == "correct":
            f = f[f["label"].notna() & (f["label"] == f["predicted"])]
        elif kind == "class" and self.class_control.value is not None:
            f = f[f["label"] == self.class_control.value]
        elif kind == "predicted" and self.class_control.value is not None:
            f = f[f["predicted"] == self.class_control.value]
        elif kind == "pair" and self.pair_control.value is not None:
            t, p = self.pair_control.value
            f = f[(f["label"] == t) & (f["predicted"] == p)]
        elif kind == "unreadable":
            f = f[f["error"].notna()]
        spec = next(s for s in SORTS if s[1] == self.sort_control.value)
        if spec[2] is not None:
            col = spec[2].format(m=self.method or "")
            if col in f.columns:
                f = f.sort_values(col, ascending=spec[3], kind="stable", na_position="last")
        return f

    def _on_query(self, change: Any = None) -> None:
        if self._quiet:
            return
        kind = self.filter_control.value
        self.class_control.layout.display = None if kind in ("class", "predicted") else "none"
        self.pair_control.layout.display = None if kind == "pair" else "none"
        self.selection = self.query()
        pages = max(1, -(-len(self.selection) // self.page_size))
        self.page_control.max = pages
        if self.page_control.value != 1:
            self.page_control.value = 1  # redraws
        else:
            self._draw_page()

    @property
    def pages(self) -> int:
        """Number of pages of the current selection."""
        return int(self.page_control.max)

    def go(self, page: int) -> None:
        """Show page ``page`` (1-based; clamped)."""
        self.page_control.value = min(max(1, int(page)), self.pages)

    # ------------------------------------------------------------------ drawing
    def _draw_page(self) -> None:
        start = (self.page_control.value - 1) * self.page_size
        self.visible = self.selection.iloc[start : start + self.page_size]
        # dict rows: column names such as "gradcam++_iou" are not attribute names
        rows = self.visible.to_dict("records")
        for n, (index, row) in enumerate(zip(self.visible.index, rows, strict=True)):
            self._fill(n, int(index), row)
        self.grid.children = tuple(self._tiles[: len(rows)])
        n, total = len(self.selection), len(self.frame)
        self.status.value = (
            f"<b>{n:,}</b> of {total:,} images &middot; page {self.page_control.value} / {self.pages}"
            + ("" if n else " &middot; nothing matches")
        )

    def _tile(self, n: int) -> widgets.VBox:
        """Tile ``n`` of the page: made once, refilled for every page (no widgets pile up in the kernel)."""
        while len(self._tiles) <= n:
            k = len(self._tiles)
            width = widgets.Layout(width=f"{self.thumb_size}px")
            image = widgets.Image(format="jpeg", layout=width)
            button = widgets.Button(layout=widgets.Layout(width=f"{self.thumb_size}px"))
            button.on_click(lambda _b, k=k: self.open_row(self._tile_rows[k]))
            self._tiles.append(widgets.VBox([image, widgets.HTML(), button], layout=widgets.Layout(width=f"{self.thumb_size + 8}px")))
            self._tile_rows.append(-1)
        return self._tiles[n]

    def _fill(self, n: int, index: int, row: dict[str, Any]) -> None:
        image, caption, button = self._tile(n).children
        self._tile_rows[n] = index
        image.value = self.thumbnail(row)
        caption.value = self._caption(row)
        button.description = Path(str(row["path"])).name[:22]
        button.tooltip = str(row["path"])

    def _caption(self, row: dict[str, Any]) -> str:
        if isinstance(row["error"], str):
            return f"<span style='color:#b00;font-size:11px'>{html.escape(row['error'][:80])}</span>"
        if not _given(row["predicted"]):
            return "<div style='font-size:11px'>?</div>"
        pred = html.escape(self._name(row["predicted"]))
        text = f"{pred} {float(row['probability']):.2f}" if _given(row["probability"]) else pred
        if _given(row["label"]):
            ok = int(row["label"]) == int(row["predicted"])
            truth = html.escape(self._name(row["label"]))
            text = f"{text}" if ok else f"<span style='color:#b00'>{truth} → {text}</span>"
        m = self.method
        score = row.get(f"{m}_iou") if m else None
        if _given(score):
            text += f" &middot; IoU {float(score):.2f}"
        return f"<div style='font-size:11px;line-height:1.2'>{text}</div>"

    def _map(self, row: dict[str, Any]) -> np.ndarray | None:
        m = self.method
        if m is None or self.out is None or isinstance(row["error"], str):
            return None
        shard = int(row["shard"])
        maps = self._shards.get((shard, m))
        if maps is None:
            from ..batch.store import load_maps, shard_path

            if not shard_path(self.out, shard).is_file():
                return None
            maps = load_maps(self.out, shard, m)
            self._shards.put((shard, m), maps)
        cam = maps[int(row["index"])]
        return None if not np.isfinite(cam).all() else cam

    def thumbnail(self, row: Any) -> bytes:
        """The JPEG thumbnail of a row (a dict or a pandas row: photo, overlay of the shown method, boxes); cached."""
        row = dict(row)
        key = (str(row["path"]), self.method, self.alpha, self.colormap, self.boxes, self.thumb_size)
        cached = self._thumbs.get(key)
        if cached is not None:
            return cached
        self.thumbnails_drawn += 1
        try:
            rgb = load_image(str(row["path"]))
        except CAMError:
            picture = _thumb_placeholder(self.thumb_size, "unreadable")
        else:
            h, w = rgb.shape[:2]
            small = resize_to(rgb, render.fit_within(rgb.shape, self.thumb_size))
            cam = self._map(row)
            picture = small if cam is None else render.overlay(small, cam, alpha=self.alpha, colormap=self.colormap)
            if self.boxes:
                picture = self._draw_boxes(np.ascontiguousarray(picture), row, small.shape[1] / w, small.shape[0] / h)
        data = render.encode(picture, "jpeg", quality=85)
        self._thumbs.put(key, data)
        return data

    def _draw_boxes(self, picture: np.ndarray, row: dict[str, Any], sx: float, sy: float) -> np.ndarray:
        """The map's 20 % box in green and the true box in white, scaled to the thumbnail."""
        for prefix, colour in ((f"{self.method}_box_", (0, 255, 0)), ("box_", (255, 255, 255))):
            vals = [row.get(f"{prefix}{k}") for k in ("x0", "y0", "x1", "y1")]
            if all(_given(v) for v in vals):
                x0, y0, x1, y1 = (float(v) for v in vals)
                p0 = (int(x0 * sx), int(y0 * sy))
                p1 = (max(p0[0], int(x1 * sx) - 1), max(p0[1], int(y1 * sy) - 1))
                cv2.rectangle(picture, p0, p1, colour, 1)
        return picture

    # ------------------------------------------------------------------ explorer and mean CAM
    @property
    def engine(self) -> Any:
        """The engine of the job's model (built from ``job.json`` on first use, then kept)."""
        if self._engine is None:
            if self.job_info is None:
                raise CAMError("Gallery needs engine= (no job.json to rebuild the job's model from).")
            from ..batch.engines import engine_for
            from ..batch.job import BatchJob

            self._engine = engine_for(BatchJob.from_dict(self.job_info["job"], items=()))
        return self._engine

    def open_row(self, index: int) -> Any:
        """Open row ``index`` of :attr:`frame` in the explorer beside the grid; returns the explorer."""
        from .. import CAMExplorer  # wherever the panel lives, the public name stays

        row = self.frame.iloc[int(index)]
        path = str(row["path"])
        name = Path(path).name
        layer = (self.job_info or {}).get("layer")
        try:
            if self.explorer is None:
                self.explorer = CAMExplorer(self.engine, {name: path}, layer=layer, method=self.method or None)
            else:
                name = self.explorer.add_image(path, name=name, select=True)
        except CAMError as err:
            self.detail.children = [widgets.HTML(f"<span style='color:#b00'>{html.escape(str(err))}</span>")]
            return self.explorer
        self.opened = {"index": int(index), "path": path, "name": name}
        if _given(row["predicted"]):
            self.explorer.class_control.value = int(row["predicted"])
        self.detail.children = [self.explorer]
        return self.explorer

    def mean_cam(self, class_index: int, by: str = "label", method: str | None = None, limit: int | None = None) -> tuple[np.ndarray, int]:
        """``(mean map, count)``: the maps of the rows whose ``by`` column (``"label"`` or
        ``"predicted"``) is ``class_index``, each min-max normalised (ReLU) at map resolution and
        averaged.  A map covers its whole image, so the grids align in the image frame."""
        method = method or self.method
        if method is None or self.out is None:
            raise CAMError("The mean CAM needs the maps: open the Gallery on an output folder.")
        rows = self.frame[(self.frame[by] == class_index) & self.frame["error"].isna()]
        if limit is not None:
            rows = rows.iloc[: int(limit)]
        from ..batch.store import load_maps

        total, count = None, 0
        for shard, group in rows.groupby("shard", sort=True):
            maps = load_maps(self.out, int(shard), method)[group["index"].astype(int).to_numpy()]
            for cam in maps:
                if not np.isfinite(cam).all() or float(cam.max()) <= 0:
                    continue
                unit = render.normalize_cam(cam, "minmax", relu=True).astype(np.float64)
                total = unit if total is None else total + unit
                count += 1
        if total is None:
            raise CAMError(f"No usable {method} maps for class {self._name(class_index)!r}.")
        return (total / count).astype(np.float32), count

    def show_mean_cam(self, class_index: int | None = None, by: str | None = None, photos: int = 32) -> np.ndarray:
        """Show the mean CAM of a class (default: the class chosen in ``class_control``) in the
        detail pane, over the mean of up to ``photos`` of its images; returns the drawn RGB."""
        if by is None:
            by = "predicted" if self.filter_control.value == "predicted" else "label"
        cls = self.class_control.value if class_index is None else int(class_index)
        if cls is None:
            raise CAMError("Choose a class first (Show: true class… or predicted class…).")
        try:
            mean, count = self.mean_cam(cls, by=by)
        except CAMError as err:
            self.detail.children = [widgets.HTML(f"<span style='color:#b00'>{html.escape(str(err))}</span>")]
            raise
        side = 224
        rows = self.frame[(self.frame[by] == cls) & self.frame["error"].isna()].head(photos)
        acc, n = np.zeros((side, side, 3), np.float64), 0
        for path in rows["path"]:
            try:
                acc += resize_to(load_image(str(path)), (side, side))
                n += 1
            except CAMError:
                continue
        base = (acc / max(n, 1)).astype(np.uint8) if n else np.full((side, side, 3), 128, np.uint8)
        picture = render.overlay(base, mean, alpha=self.alpha, colormap=self.colormap, normalize="none")
        self.mean_view = {"class_index": int(cls), "by": by, "maps": count, "photos": n, "map": mean}
        caption = (
            f"<b>mean {html.escape(self.method or '')} map</b> of {html.escape(self._name(cls))}: {count} maps "
            f"({'true' if by == 'label' else 'predicted'} class), over the mean of {n} photos (each resized to the square)"
        )
        self.detail.children = [widgets.Image(value=render.encode(picture, "png"), format="png"), widgets.HTML(caption)]
        return picture

    def select(self, filter: str = "all", value: Any = None, sort: str | None = None) -> Gallery:
        """Set the filter (one of ``all, wrong, correct, class, predicted, pair, unreadable``), its value
        (a class index or a ``(true, predicted)`` pair) and the sort key at once; returns self."""
        keys = [k for _, k in FILTERS]
        if filter not in keys:
            raise CAMError(f"filter must be one of {keys}; got {filter!r}.")
        self._quiet = True  # one query and one page drawn, not one per control
        try:
            if filter in ("class", "predicted") and value is not None:
                self.class_control.value = int(value)
            if filter == "pair" and value is not None:
                self.pair_control.value = tuple(int(v) for v in value)
            if sort is not None:
                self.sort_control.value = sort
            self.filter_control.value = filter
        finally:
            self._quiet = False
        self._on_query()
        return self

    def page_paths(self) -> Sequence[str]:
        """The paths of the thumbnails on the current page, in order."""
        return [str(p) for p in self.visible["path"]]
