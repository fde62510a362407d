"""The trust runner (metrics.trust) and `cam-widget evaluate --metrics`, on the analytic square model."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from square_model import square_engine, square_photo

from cam_widget import cli
from cam_widget.metrics.scoring import MetricInputError
from cam_widget.metrics.trust import (
    RANDOM,
    TrustResult,
    available_methods,
    parse_metrics,
    summarize,
    summary_table,
    trust_checks,
)


@pytest.fixture(scope="module")
def engine():
    return square_engine()


def test_parse_metrics():
    assert parse_metrics("sanity,deletion") == ("deletion", "sanity")
    assert parse_metrics(["road"]) == ("road",)
    with pytest.raises(MetricInputError, match=r"Unknown metric.*'auc'.*deletion,insertion,road,drop,sanity"):
        parse_metrics("deletion,auc")
    with pytest.raises(MetricInputError):
        parse_metrics("")


def test_trust_checks_share_one_map_and_report_headline_scores(engine):
    r = trust_checks(engine, square_photo(), 0, method="gradcam", metrics="deletion,insertion,drop,road", steps=4)
    assert set(r.scores) == {"deletion_auc", "insertion_auc", "average_drop", "increase_in_confidence", "road_combined"}
    assert r.scores["deletion_auc"] == r.deletion.deletion_auc
    assert r.scores["average_drop"] == pytest.approx(100 * r.confidence.drop)
    assert set(r.random_scores) == set(r.scores)
    doc = json.loads(json.dumps(r.to_dict()))
    assert doc["reports"]["deletion"]["steps"] == 4 and doc["errors"] == {}
    rnd = trust_checks(engine, square_photo(), 0, method=RANDOM, metrics="deletion,sanity", steps=4)
    assert rnd.sanity is None and rnd.deletion.random is None
    assert rnd.deletion.settings["method"] == "given"


def test_summary_means_intervals_and_best_marked():
    def res(method, d):
        r = TrustResult(method, None, 0)
        r.deletion = type("D", (), {"deletion_auc": d, "insertion_auc": 1 - d, "random": None})()
        return r

    results = [res("a", 0.1), res("a", 0.3), res("b", 0.5), res("b", 0.5), res(RANDOM, 0.4), res(RANDOM, 0.4)]
    s = summarize(results)
    assert s["a"]["deletion_auc"]["mean"] == pytest.approx(0.2) and s["a"]["deletion_auc"]["n"] == 2
    assert s["a"]["deletion_auc"]["low"] >= 0.1 and s["a"]["deletion_auc"]["high"] <= 0.3
    table = summary_table(s)
    lines = table.splitlines()
    assert lines[2].startswith("a ") and "0.200 [" in lines[2] and lines[2].count("*") == 2
    assert lines[-1].startswith("random") and "*" not in lines[-1]
    assert summary_table(s, markdown=True).startswith("| method |")


def test_available_methods_drop_cam_without_a_head(engine):
    names = available_methods(engine)
    assert "gradcam" in names and ("cam" in names) == engine.has_cam(engine.cam_layer or "")


def _case_file(tmp_path):
    _ok, png = cv2.imencode(".png", cv2.cvtColor(square_photo(), cv2.COLOR_RGB2BGR))
    (tmp_path / "sq.png").write_bytes(png.tobytes())
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": [{"image": "sq.png", "class": 0, "box": [8, 6, 20, 18]},
                                          {"image": "sq.png", "class": 1, "box": [8, 6, 20, 18], "name": "other"}]}))  # fmt: skip
    return path


def test_cli_evaluate_metrics_prints_the_table_and_writes_json(tmp_path, capsys, monkeypatch, engine):
    monkeypatch.setattr(cli, "_make_engine", lambda size: engine)
    out = tmp_path / "trust.json"
    rc = cli.main(["evaluate", str(_case_file(tmp_path)), "--metrics", "deletion,insertion,drop", "--methods", "gradcam",
                   "--steps", "4", "--json", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "deletion AUC" in text and "gradcam" in text and "random" in text and "avg drop %" in text
    doc = json.loads(out.read_text())
    assert doc["settings"]["methods"] == ["gradcam", RANDOM] and doc["settings"]["n_cases"] == 2
    assert len(doc["cases"]) == 4 and doc["summary"]["gradcam"]["deletion_auc"]["n"] == 2
    assert np.isfinite(doc["summary"][RANDOM]["insertion_auc"]["mean"])


def test_cli_evaluate_progress_bar(tmp_path, capsys, monkeypatch, engine):
    monkeypatch.setattr(cli, "_make_engine", lambda size: engine)
    rc = cli.main(["evaluate", str(_case_file(tmp_path)), "--metrics", "drop", "--methods", "gradcam"])
    assert rc == 0
    assert "4/4" in capsys.readouterr().err


def test_cli_bad_metric_fails_before_the_engine(tmp_path, capsys, monkeypatch):
    def boom(size):
        raise AssertionError("the engine must not be built")

    monkeypatch.setattr(cli, "_make_engine", boom)
    rc = cli.main(["evaluate", str(_case_file(tmp_path)), "--metrics", "deletion,auc"])
    assert rc == 2
    assert "Unknown metric(s) 'auc'" in capsys.readouterr().err
