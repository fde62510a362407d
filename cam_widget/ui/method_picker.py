"""The panel's method picker: one labelled group of toggle buttons per method family (head, gradient,
activation, perturbation), each button's tooltip the method's description and cost.

It behaves like one ``ToggleButtons`` to the rest of the panel: ``value`` is the chosen method's name
(observable), ``options`` lists every ``(label, name)`` in display order and ``tooltips`` their tooltips.
Exactly one button across the groups is down; setting ``value`` moves it.  Nothing here computes a map.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
from traitlets import TraitError, Unicode, observe, validate

from .catalog import FAMILIES, MethodInfo

__all__ = ["MethodPicker"]


class MethodPicker(widgets.HBox):
    """Toggle buttons grouped by family under visible headings; ``value`` = the chosen method's name.

    DOM classes: ``cam-method-family`` on each group (plus ``cam-family-<family>``), ``cam-method-heading``
    on its heading."""

    value = Unicode(allow_none=True)

    def __init__(self, methods: Sequence[MethodInfo], value: str, button_width: str = "auto", **kwargs: Any) -> None:
        order = {f: i for i, f in enumerate(FAMILIES)}
        families = sorted(dict.fromkeys(m.family for m in methods), key=lambda f: order.get(f, len(order)))
        self._buttons: dict[str, widgets.ToggleButtons] = {}
        groups = []
        for family in families:
            members = [m for m in methods if m.family == family]
            buttons = widgets.ToggleButtons(
                options=[(m.label, m.name) for m in members], value=None, tooltips=[m.tooltip for m in members],
                style={"button_width": button_width})
            buttons.observe(self._on_group, "value")
            heading = widgets.HTML(f"<b>{family}</b>", layout=widgets.Layout(margin="0 0 0 4px"))
            heading.add_class("cam-method-heading")
            group = widgets.VBox([heading, buttons], layout=widgets.Layout(margin="0 12px 0 0"))
            group.add_class("cam-method-family")
            group.add_class(f"cam-family-{family}")
            groups.append(group)
            for m in members:
                self._buttons[m.name] = buttons
        self._families = families
        self._syncing = False
        kwargs.setdefault("layout", widgets.Layout(flex_flow="row wrap", align_items="flex-end"))
        super().__init__(groups, **kwargs)
        self.value = value

    @property
    def families(self) -> list[str]:
        """The family of each group, in display order."""
        return list(self._families)

    @property
    def options(self) -> tuple[tuple[str, str], ...]:
        """Every ``(label, name)``, family by family."""
        return tuple(o for g in self.children for o in g.children[1].options)

    @property
    def tooltips(self) -> list[str]:
        """The tooltip of each option, in the order of :attr:`options`."""
        return [t for g in self.children for t in g.children[1].tooltips]

    @validate("value")
    def _check_value(self, proposal: Any) -> Any:
        if proposal.value is not None and proposal.value not in self._buttons:
            raise TraitError(f"Unknown method {proposal.value!r}; the picker offers {[v for _, v in self.options]}.")
        return proposal.value

    @observe("value")
    def _on_value(self, change: Any) -> None:
        self._syncing = True
        try:
            for buttons in dict.fromkeys(self._buttons.values()):
                mine = change["new"] is not None and self._buttons[change["new"]] is buttons
                buttons.value = change["new"] if mine else None
        finally:
            self._syncing = False

    def _on_group(self, change: Any) -> None:
        if self._syncing:
            return
        if change["new"] is None:  # a click on the button already down: it stays the choice
            if change["old"] == self.value:
                self._syncing = True
                try:
                    change["owner"].value = change["old"]
                finally:
                    self._syncing = False
            return
        self.value = change["new"]
