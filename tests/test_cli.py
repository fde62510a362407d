"""Tests for the command line: in-process with a fake engine, and as ``python -m cam_widget`` offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from cam_widget import cli
from cam_widget.errors import ClassIndexError

ROOT = Path(__file__).resolve().parents[1]


class FakeEngine:
    """Three classes; class c's map is a 7x7 grid with one hot cell at (c, c)."""

    class_names = ("cat", "dog", "cup")
    cam_layer = "top"
    input_size = (224, 224)

    def __init__(self):
        self.calls = []

    def predict(self, image):
        return np.array([0.7, 0.2, 0.1], np.float32)

    def cam(self, image, class_index, layer=None, method="cam"):
        if not 0 <= class_index < 3:
            raise ClassIndexError(f"class_index {class_index} is out of range: the model has 3 classes (0 .. 2).")
        self.calls.append((class_index, layer, method))
        m = np.zeros((7, 7), np.float32)
        m[class_index, class_index] = 1.0
        return m

    def layers(self):
        from types import SimpleNamespace

        return [SimpleNamespace(name="block1", shape=(28, 28, 16)), SimpleNamespace(name="top", shape=(7, 7, 1280))]


@pytest.fixture
def fake(monkeypatch):
    engine = FakeEngine()
    sizes = []

    def make(size):
        sizes.append(size)
        return engine

    monkeypatch.setattr(cli, "_make_engine", make)
    engine.sizes = sizes
    return engine


def _read_png(path):
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return img[..., ::-1]


# -------------------------------------------------------------------------------------- demo


def test_demo_writes_overlays_and_prints_one_line_per_image(fake, tmp_path, capsys):
    from cam_widget.samples import sample_images

    samples = sample_images()
    assert cli.main(["demo", "--out", str(tmp_path / "out"), "--image", "chelsea", "coffee"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line, name in zip(lines, ["chelsea", "coffee"], strict=True):
        path = tmp_path / "out" / f"{name}.png"
        assert line.split()[0] == name and "cat (0) 0.700" in line and line.endswith(str(path))
        assert _read_png(path).shape == samples[name].shape
    assert fake.calls == [(0, None, "cam")] * 2 and fake.sizes == [224]


def test_demo_default_runs_every_sample(fake, tmp_path, capsys):
    from cam_widget.samples import sample_images

    assert cli.main(["demo", "--out", str(tmp_path)]) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.png")) == sorted(sample_images())
    assert len(capsys.readouterr().out.strip().splitlines()) == len(sample_images())


def test_demo_options_reach_the_engine_and_the_picture(fake, tmp_path, capsys):
    photo = np.full((64, 96, 3), 200, np.uint8)
    src = tmp_path / "my photo.png"
    cv2.imwrite(str(src), photo)
    args = ["demo", "--out", str(tmp_path / "o"), "--image", str(src), "--class-index", "2", "--layer", "top",
            "--method", "gradcam", "--input-size", "448x320", "--alpha", "1", "--colormap", "gray", "--box"]  # fmt: skip
    assert cli.main(args) == 0
    assert fake.calls == [(2, "top", "gradcam")] and fake.sizes == [(448, 320)]
    out = capsys.readouterr().out
    assert "map: cup (2) 0.100" in out and "cat (0) 0.700" in out
    img = _read_png(tmp_path / "o" / "my_photo.png")
    assert img.shape == (64, 96, 3)
    # alpha=1 with a gray colormap shows only the map: bright at the hot cell (row 2, col 2 of 7), dark far away.
    cy, cx = int(2.5 * 64 / 7), int(2.5 * 96 / 7)
    assert img[cy, cx].min() > 200 and img[60, 5].max() < 60
    # The green localisation box is drawn around the hot cell.
    green = (img[..., 1] == 255) & (img[..., 0] == 0) & (img[..., 2] == 0)
    ys, xs = np.nonzero(green)
    assert ys.size and xs.min() < cx < xs.max() and ys.min() < cy < ys.max()


def test_demo_same_stem_gets_unique_names(fake, tmp_path, capsys):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        cv2.imwrite(str(tmp_path / d / "x.png"), np.zeros((8, 8, 3), np.uint8) + 50)
    assert cli.main(["demo", "--out", str(tmp_path / "o"), "--image", str(tmp_path / "a/x.png"), str(tmp_path / "b/x.png")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["x-2.png", "x.png"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--out", "{tmp}", "--image", "nosuch"], "neither a sample name"),
        (["demo", "--out", "{tmp}", "--image", "chelsea", "--class-index", "7"], "out of range"),
        (["demo", "--out", "{tmp}", "--image", "{tmp}/bad.png"], "{tmp}/bad.png"),
        (["demo", "--out", "{tmp}/file.txt/sub", "--image", "chelsea"], "file.txt"),
    ],
)
def test_demo_bad_input_exits_2_with_one_line(fake, tmp_path, capsys, argv, message):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    (tmp_path / "file.txt").write_text("x")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cam-widget: error: ") and err.count("\n") == 1
    assert message.replace("{tmp}", str(tmp_path)) in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["demo"],  # --out is required
        ["demo", "--out", "x", "--method", "magic"],
        ["demo", "--out", "x", "--input-size", "tiny"],
        ["demo", "--out", "x", "--input-size", "8"],
        ["demo", "--out", "x", "--alpha", "2"],
        ["demo", "--out", "x", "--class-index", "cat"],
        ["demo", "--out", "x", "--colormap", "no-such-map"],
        ["evaluate", "--threshold", "1.5"],
        ["evaluate", "--tolerance", "-3"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(fake, argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "usage: cam-widget" in capsys.readouterr().err


def test_input_size_parsing():
    assert cli._input_size("224") == 224
    assert cli._input_size(" 448x320 ") == (448, 320)
    assert cli._input_size("448X320") == (448, 320)


def test_import_error_becomes_an_install_hint(monkeypatch, tmp_path, capsys):
    def missing(size):
        raise ModuleNotFoundError("No module named 'tensorflow'")

    monkeypatch.setattr(cli, "_make_engine", missing)
    assert cli.main(["demo", "--out", str(tmp_path), "--image", "chelsea"]) == 2
    err = capsys.readouterr().err
    assert "No module named 'tensorflow'" in err and 'pip install "cam-widget[tf-cpu,default-model]"' in err


# ---------------------------------------------------------------------------------- evaluate


def _case_file(tmp_path):
    img = np.zeros((70, 70, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "img.png"), img)
    # 70 px image, 7x7 map: class c's hot cell covers pixels 10c .. 10c + 9.
    doc = {"cases": [
        {"name": "cat-ok", "image": "img.png", "class": "cat", "box": [0, 0, 10, 10]},
        {"name": "cup-far", "image": "img.png", "class": 2, "box": [50, 50, 70, 70]},
    ]}  # fmt: skip
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(doc))
    return path


def test_evaluate_prints_table_and_writes_json(fake, tmp_path, capsys):
    cases = _case_file(tmp_path)
    out = tmp_path / "res.json"
    argv = ["evaluate", str(cases), "--json", str(out), "--method", "gradcam", "--layer", "top", "--input-size", "448"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "cat-ok" in captured.out and "cup-far" in captured.out and "pointing" in captured.out
    assert f"wrote {out}" in captured.out
    doc = json.loads(out.read_text())
    assert doc["summary"]["n"] == 2 and doc["settings"]["method"] == "gradcam" and doc["settings"]["layer"] == "top"
    cat, cup = doc["cases"]
    assert cat["pointing"] and cat["peak_distance"] == 0 and max(cat["peak"]) < 10
    assert not cup["pointing"] and cup["peak_distance"] > 15
    assert fake.calls == [(0, "top", "gradcam"), (2, "top", "gradcam")] and fake.sizes == [448]
    assert "2/2" in captured.err or "100%" in captured.err  # progress on stderr


def test_evaluate_progress_without_tqdm(fake, tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name == "tqdm" or name.startswith("tqdm."):
            raise ImportError("No module named 'tqdm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    assert cli.main(["evaluate", str(_case_file(tmp_path))]) == 0
    err = capsys.readouterr().err
    assert "\revaluating: 1/2" in err and "\revaluating: 2/2\n" in err


def test_evaluate_no_progress(fake, tmp_path, capsys):
    assert cli.main(["evaluate", str(_case_file(tmp_path)), "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_evaluate_bad_case_files_exit_2_before_building_the_engine(fake, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image": "img.png", "class": 0, "box": [0, 0, 5, 5]}]))
    assert cli.main(["evaluate", str(tmp_path / "missing.json")]) == 2
    assert "Case file not found" in capsys.readouterr().err
    assert cli.main(["evaluate", str(bad)]) == 2
    assert "image file not found" in capsys.readouterr().err
    assert fake.sizes == []


def test_evaluate_unknown_class_name_exits_2(fake, tmp_path, capsys):
    path = _case_file(tmp_path)
    doc = json.loads(path.read_text())
    doc["cases"][0]["class"] = "giraffe"
    path.write_text(json.dumps(doc))
    assert cli.main(["evaluate", str(path)]) == 2
    assert "No class is named 'giraffe'" in capsys.readouterr().err


def test_layers(fake, capsys):
    assert cli.main(["layers", "--input-size", "320"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["block1  28x28x16", "top  7x7x1280  <- CAM layer"] and fake.sizes == [320]


# ----------------------------------------------------------------------------- as a subprocess

# Runs ``python -m cam_widget`` with outbound sockets disabled, so the command line provably works offline.
_OFFLINE = textwrap.dedent(
    """
    import runpy, socket, sys
    def _blocked(*args, **kwargs):
        raise OSError("network access is disabled in this test")
    socket.socket.connect = _blocked
    socket.socket.connect_ex = _blocked
    socket.create_connection = _blocked
    socket.getaddrinfo = _blocked
    sys.argv = ["cam_widget", *sys.argv[1:]]
    runpy.run_module("cam_widget", run_name="__main__", alter_sys=True)
    """
)


def _run(*argv, cwd=None, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PROXY") and not k.endswith("_proxy")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return subprocess.run(
        [sys.executable, "-c", _OFFLINE, *argv], capture_output=True, text=True, cwd=cwd or ROOT, env=env, timeout=timeout
    )


def test_module_help_and_version():
    res = _run("--help")
    assert res.returncode == 0 and "demo" in res.stdout and "evaluate" in res.stdout
    res = _run("--version")
    assert res.returncode == 0 and res.stdout.startswith("cam-widget ")


def test_module_bad_input_exits_2_without_traceback(tmp_path):
    res = _run("evaluate", str(tmp_path / "nothing.json"))
    assert res.returncode == 2
    assert res.stderr.strip() == f"cam-widget: error: Case file not found: {tmp_path / 'nothing.json'}"
    res = _run("demo", "--out", str(tmp_path), "--image", "not-a-photo")
    assert res.returncode == 2 and "Traceback" not in res.stderr and "neither a sample name" in res.stderr
    res = _run("demo", "--out", str(tmp_path), "--method", "nope")
    assert res.returncode == 2 and "invalid choice" in res.stderr


def _needs_default_model():
    import importlib.util

    if importlib.util.find_spec("cam_widget.defaults") is None:
        pytest.skip("cam_widget.defaults (the embedded default model) is not available yet")


@pytest.fixture(scope="module")
def real_engine():
    _needs_default_model()
    from cam_widget.defaults import default_engine

    return default_engine(224)


@pytest.mark.slow
def test_module_demo_with_the_default_model_offline(tmp_path):
    _needs_default_model()
    res = _run("demo", "--out", str(tmp_path), "--image", "chelsea", "coffee", "--box")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 2
    # The embedded EfficientNet-Lite0 recognises both photos.
    assert lines[0].startswith("chelsea") and any(c in lines[0] for c in ("Egyptian cat", "tabby", "tiger cat"))
    assert lines[1].startswith("coffee") and "espresso" in lines[1]
    assert _read_png(tmp_path / "chelsea.png").shape == (300, 451, 3)


@pytest.mark.slow
def test_default_model_bad_class_and_layer_exit_2(real_engine, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "_make_engine", lambda size: real_engine)
    assert cli.main(["demo", "--out", str(tmp_path), "--image", "chelsea", "--class-index", "1000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cam-widget: error: ") and "1000" in err and err.count("\n") == 1
    assert cli.main(["demo", "--out", str(tmp_path), "--image", "chelsea", "--layer", "no_such_layer"]) == 2
    assert "no_such_layer" in capsys.readouterr().err
    assert cli.main(["layers"]) == 0
    assert "<- CAM layer" in capsys.readouterr().out


@pytest.mark.slow
def test_default_model_evaluate_in_process(real_engine, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "_make_engine", lambda size: real_engine)
    cases = tmp_path / "c.json"
    cases.write_text(json.dumps([{"sample": "coffee", "class": "espresso", "box": [170, 14, 413, 296]}]))
    assert cli.main(["evaluate", str(cases), "--json", str(tmp_path / "r.json"), "--no-progress"]) == 0
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["summary"]["n"] == 1 and doc["cases"][0]["pointing"] and doc["cases"][0]["top1_name"] == "espresso"
    assert "espresso" in capsys.readouterr().out


class HeadsEngine(FakeEngine):
    """FakeEngine that records the head calls the command line makes."""

    def refit_head(self, layer, images):
        self.calls.append(("refit", layer, sorted(images)))
        if layer not in ("block1", "top"):
            raise cli.CAMError(f"No spatial layer named {layer!r}.")
        return f"refit head at {layer}: top-1 agreement 80%"

    def load_heads(self, path):
        self.calls.append(("load", str(path)))
        return ["block1"]

    def save_heads(self, path):
        self.calls.append(("save", str(path)))


def test_refit_heads_and_save_heads_options(monkeypatch, tmp_path, capsys):
    engine = HeadsEngine()
    monkeypatch.setattr(cli, "_make_engine", lambda size: engine)
    h = str(tmp_path / "h.npz")
    argv = ["demo", "--out", str(tmp_path), "--image", "coffee", "--layer", "block1", "--refit"]
    assert cli.main([*argv, "--save-heads", h, "--heads", h]) == 0
    kinds = [c[0] for c in engine.calls if isinstance(c[0], str)]
    assert kinds == ["load", "refit", "save"]  # saved heads first, then the refit, then saving them all
    assert engine.calls[1] == ("refit", "block1", sorted(__import__("cam_widget").sample_images()))
    captured = capsys.readouterr()
    assert "top-1 agreement 80%" in captured.err and "saved the refit heads" in captured.err
    assert "top-1 agreement" not in captured.out and captured.out.startswith("coffee")  # stdout: one line per image
    assert cli.main(["demo", "--out", str(tmp_path), "--image", "coffee", "--refit"]) == 2
    assert "--refit needs --layer" in capsys.readouterr().err


def test_no_head_error_names_the_refit_option(monkeypatch, tmp_path, capsys):
    from cam_widget.errors import NoCAMHeadError

    engine = FakeEngine()

    def cam(*args, **kwargs):
        raise NoCAMHeadError("Layer 'block1' has no GAP -> Dense head; use method='gradcam'.")

    engine.cam = cam
    monkeypatch.setattr(cli, "_make_engine", lambda size: engine)
    assert cli.main(["demo", "--out", str(tmp_path), "--image", "coffee", "--layer", "block1"]) == 2
    err = capsys.readouterr().err
    assert "add --refit" in err and err.count("\n") == 1


@pytest.mark.slow
def test_default_model_refit_then_saved_heads_give_the_same_evaluation(real_engine, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "_make_engine", lambda size: real_engine)
    heads = tmp_path / "heads.npz"
    base = ["evaluate", "--layer", "block5c_add", "--no-progress"]
    real_engine.remove_head("block5c_add")
    assert cli.main(base) == 2 and "add --refit" in capsys.readouterr().err
    assert cli.main([*base, "--refit", "--save-heads", str(heads), "--json", str(tmp_path / "a.json")]) == 0
    assert "refit head at block5c_add" in capsys.readouterr().err
    real_engine.remove_head("block5c_add")
    assert cli.main([*base, "--heads", str(heads), "--json", str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert a["summary"] == b["summary"] and a["summary"]["n"] > 0
    real_engine.remove_head("block5c_add")
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    assert cli.main([*base, "--heads", str(tmp_path / "bad.npz")]) == 2
    assert "save_heads" in capsys.readouterr().err


def test_package_level_functions_are_not_shadowed_by_submodules():
    import importlib

    import cam_widget

    importlib.import_module("cam_widget.metrics.evaluate")
    importlib.import_module("cam_widget.metrics.localize")
    assert callable(cam_widget.evaluate) and callable(cam_widget.localize)
    assert callable(cam_widget.metrics.evaluate) and callable(cam_widget.metrics.localize)
