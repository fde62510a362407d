"""The method picker groups the registry's methods by family under visible headings and acts as one control."""

from __future__ import annotations

import pytest

from cam_widget.methods import methods
from cam_widget.ui.catalog import available_methods
from cam_widget.ui.method_picker import MethodPicker


def test_one_headed_group_per_family_in_registry_order_and_one_choice_across_groups():
    picker = MethodPicker(available_methods(), "cam")
    heads = [g.children[0] for g in picker.children]
    assert [h.value for h in heads] == ["<b>head</b>", "<b>gradient</b>", "<b>activation</b>", "<b>perturbation</b>"]
    assert all("cam-method-heading" in h._dom_classes for h in heads)
    by_family = {f: [m.name for m in methods() if m.family == f] for f in picker.families}
    assert {f: [v for _, v in g.children[1].options] for f, g in zip(picker.families, picker.children, strict=True)} \
        == by_family
    assert [v for _, v in picker.options] == [m.name for m in methods()]  # the flat view the panel reads
    assert all(m.description in t for m, t in zip(methods(), picker.tooltips, strict=True))
    seen = []
    picker.observe(lambda ch: seen.append(ch["new"]), "value")
    picker.children[1].children[1].value = "layercam"  # a click in the gradient group
    assert picker.value == "layercam" and seen == ["layercam"]
    assert [g.children[1].value for g in picker.children] == [None, "layercam", None, None]  # one button down
    picker.value = "scorecam"  # set from the kernel
    assert [g.children[1].value for g in picker.children] == [None, None, None, "scorecam"]
    with pytest.raises(Exception, match="Unknown method 'nope'"):
        picker.value = "nope"
    assert picker.value == "scorecam"
