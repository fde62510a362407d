"""Where every control of the panel is built: the widgets, their options and labels, their DOM classes and the
layout rows.  Nothing here observes a control or computes a map (the panel wires them up).

The class dropdown (:class:`ClassDropdown`) is a short list -- the top-k, plus any other class picked with the
search box or by index -- because a 1,000-option ``<select>`` alone costs several ms per keypress in the browser.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import ipywidgets as widgets
from traitlets import Int, observe, validate

from .catalog import MethodInfo
from .method_picker import MethodPicker
from .state import Photo

__all__ = ["ClassDropdown", "Controls", "build_controls", "class_options", "layer_options", "sorted_class_options"]

#: The views of :attr:`Controls.view_control` (label, value).
VIEWS = (("Single", "single"), ("Layers", "layers"), ("Methods", "methods"), ("Classes", "classes"))
#: The normalisation scopes of :attr:`Controls.scope_control` (label, value).
SCOPES = (("Per map", "map"), ("Shared", "shared"), ("Signed", "signed"))
#: The smoothing options of :attr:`Controls.smooth_control` (label, value), passed to every method.
SMOOTHING = (("No smoothing", ""), ("Aug smooth", "aug"), ("Eigen smooth", "eigen"))


class ClassDropdown(widgets.Dropdown):
    """A stock Dropdown (same front end) whose ``value`` may be set to any class index: a class that is not
    among the options yet is appended first (labelled by ``label_for``), so the list stays short."""

    # No echo of the browser's own selection (ipywidgets 8 sends every front-end update back as ``echo_update``
    # so that OTHER front ends of the kernel, e.g. a second browser tab on the notebook, learn it).  This panel is
    # one view in one page, and the echo is 650 bytes and a message on every class change, a third of what the
    # whole change may cost.  The trade-off: a second tab's dropdown does not follow a class picked in the first
    # (the picture there does not either); changes made by the kernel (a search, a new image) reach every tab.
    index = Int(None, help="Selected index", allow_none=True).tag(sync=True, echo_update=False)

    def __init__(self, label_for: Callable[[Any], str | None], **kwargs: Any) -> None:
        self._label_for = label_for
        self._appending = False
        super().__init__(**kwargs)

    @validate("value")
    def _validate_value(self, proposal: Any) -> Any:
        value = proposal.value
        if value is not None and not self._initializing_traits_ and value not in self._options_values:
            label = self._label_for(value)
            if label is not None:
                self._appending = True
                try:
                    self.options = (*self._options_full, (label, int(value)))
                finally:
                    self._appending = False
        return super()._validate_value(proposal)

    @observe("options")
    def _propagate_options(self, change: Any) -> None:
        if self._appending:  # keep the selection: only the labels and values grow
            options = self._options_full
            self.set_trait("_options_labels", tuple(i[0] for i in options))
            self._options_values = tuple(i[1] for i in options)
            return
        super()._propagate_options(change)


def sorted_class_options(class_names: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """Every class as (label, index), A-Z; repeated names carry their index."""
    counts: dict[str, int] = {}
    for n in class_names:
        counts[n] = counts.get(n, 0) + 1
    labelled = [(n if counts[n] == 1 else f"{n} (#{i})", i) for i, n in enumerate(class_names)]
    return tuple(sorted(labelled, key=lambda t: (t[0].casefold(), t[1])))


def class_options(photo: Photo) -> tuple[tuple[str, int], ...]:
    """The top-k of ``photo``, labelled with rank and probability."""
    return tuple((f"{r}. {name} — {p:.1%}", int(i)) for r, (i, name, p) in enumerate(photo.top or [], 1))


def layer_options(layer_infos: dict[str, Any], own_head: str | None, heads: Any) -> list[tuple[str, str]]:
    """Every spatial layer as (label, name): resolution and channels, ★ the model's CAM head, ✓ a refit head."""
    out = []
    for name, info in layer_infos.items():
        h, w, c = info.shape
        label = f"{name} · {h}x{w}x{c}"
        if name == own_head:
            label = f"★ {label} · CAM head"
        elif name in heads:
            label = f"✓ {label} · refit CAM head"
        out.append((label, name))
    return out


@dataclass
class Controls:
    """The panel's controls under the names :class:`~cam_widget.CAMExplorer` exposes them by."""

    image_control: widgets.Dropdown
    upload_control: widgets.FileUpload
    class_control: ClassDropdown
    class_search: widgets.Combobox
    layer_control: widgets.Dropdown
    method_control: MethodPicker
    refit_button: widgets.Button
    alpha_control: widgets.FloatSlider
    colormap_control: widgets.Dropdown
    save_button: widgets.Button
    view_control: widgets.ToggleButtons
    scope_control: widgets.ToggleButtons
    smooth_control: widgets.Dropdown
    layers_control: widgets.SelectMultiple
    methods_control: widgets.SelectMultiple
    contrast_control: ClassDropdown
    run_button: widgets.Button
    progress_bar: widgets.FloatProgress
    cancel_button: widgets.Button

    def items(self) -> list[tuple[str, widgets.Widget]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


#: DOM class of each control (what the browser tests locate).
DOM_CLASSES = {
    "image_control": "cam-image-select", "upload_control": "cam-upload", "class_control": "cam-class",
    "class_search": "cam-class-search", "layer_control": "cam-layer", "method_control": "cam-method",
    "refit_button": "cam-refit", "alpha_control": "cam-alpha", "colormap_control": "cam-colormap",
    "save_button": "cam-save", "view_control": "cam-view", "scope_control": "cam-scope", "smooth_control": "cam-smooth",
    "layers_control": "cam-layers", "methods_control": "cam-methods", "contrast_control": "cam-contrast",
    "run_button": "cam-run", "progress_bar": "cam-progress", "cancel_button": "cam-cancel",
}


def _width(px: int) -> widgets.Layout:
    return widgets.Layout(width=f"{px}px")


def build_controls(
    *,
    image_names: list[str],
    class_label: Callable[[Any], str | None],
    class_names: Sequence[str],
    layers: list[tuple[str, str]],
    layer: str,
    methods: list[MethodInfo],
    method: str,
    alpha: float,
    colormap: str,
    colormaps: list[str],
    view: str = "single",
    scope: str = "map",
) -> Controls:
    """Every control, with its initial value and DOM class."""
    names = sorted(dict.fromkeys(str(n) for n in class_names), key=str.casefold)
    grid_methods = [(m.label + (" (on request)" if m.expensive else ""), m.name) for m in methods]
    c = Controls(
        image_control=widgets.Dropdown(
            options=image_names, value=image_names[0] if image_names else None, description="Image",
            layout=_width(280)),
        upload_control=widgets.FileUpload(accept="image/*", multiple=True, description="Upload", layout=_width(110)),
        class_control=ClassDropdown(class_label, options=(), description="Class", layout=_width(340)),
        class_search=widgets.Combobox(
            options=names, ensure_option=True, placeholder=f"search {len(class_names)} classes…", layout=_width(220)),
        layer_control=widgets.Dropdown(options=layers, value=layer, description="Layer", layout=_width(460)),
        method_control=MethodPicker(methods, method),
        refit_button=widgets.Button(
            description="Refit CAM head here", icon="wrench",
            tooltip="Fit a GAP -> linear head on this layer that reproduces the model's logits (no labels)"),
        alpha_control=widgets.FloatSlider(
            value=float(alpha), min=0.0, max=1.0, step=0.01, description="Opacity", readout_format=".2f",
            layout=_width(300)),
        colormap_control=widgets.Dropdown(options=colormaps, value=colormap, description="Colormap", layout=_width(220)),
        save_button=widgets.Button(
            description="Save PNG", icon="download", tooltip="Write the current view at full resolution as PNG"),
        view_control=widgets.ToggleButtons(
            options=VIEWS, value=view, style={"button_width": "84px"},
            tooltips=["One map", "The same class and method at several layers", "Several methods at one layer",
                      "The top-k classes and a contrast map A - B"]),
        scope_control=widgets.ToggleButtons(
            options=SCOPES, value=scope, style={"button_width": "76px"},
            tooltips=["Each map on its own range", "One scale for every map shown: a weaker map looks weaker",
                      "No ReLU, diverging colormap centred on zero: negative evidence shows"]),
        smooth_control=widgets.Dropdown(
            options=SMOOTHING, value="", layout=_width(140),
            tooltip="Test-time augmentation (flip + scales, averaged; runs on request) or the first principal "
                    "component of the weighted activations"),
        layers_control=widgets.SelectMultiple(
            options=layers, description="Layers", rows=4, layout=widgets.Layout(width="460px", display="none")),
        methods_control=widgets.SelectMultiple(
            options=grid_methods, value=[m.name for m in methods if not m.expensive], description="Methods", rows=4,
            layout=widgets.Layout(width="340px", display="none")),
        contrast_control=ClassDropdown(
            class_label, options=(), description="minus", layout=widgets.Layout(width="340px", display="none")),
        run_button=widgets.Button(
            description="Run", icon="play", layout=widgets.Layout(display="none"),
            tooltip="Compute the expensive method(s) shown: the cost is in the status line"),
        progress_bar=widgets.FloatProgress(
            value=0.0, min=0.0, max=1.0, description="", layout=widgets.Layout(width="200px", display="none")),
        cancel_button=widgets.Button(description="Cancel", icon="stop", layout=widgets.Layout(display="none")),
    )
    for name, w in c.items():
        w.add_class(DOM_CLASSES[name])
    return c


def layout_rows(c: Controls, output: widgets.Widget, caption: widgets.Widget) -> list[widgets.Widget]:
    """The panel's rows, top to bottom."""
    return [
        widgets.HBox([c.image_control, c.upload_control, c.view_control]),
        widgets.HBox([c.class_control, c.class_search, c.contrast_control]),
        widgets.HBox([c.layer_control, c.smooth_control, c.refit_button]),
        c.method_control,
        widgets.HBox([c.layers_control, c.methods_control, c.run_button, c.progress_bar, c.cancel_button]),
        widgets.HBox([c.alpha_control, c.colormap_control, c.scope_control, c.save_button]),
        output,
        caption,
    ]


def show(widget: widgets.Widget, visible: bool) -> None:
    """Show or hide a control (``layout.display``); an unchanged value sends nothing."""
    widget.layout.display = None if visible else "none"
