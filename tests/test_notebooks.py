"""The tutorial notebooks and the Binder recipe.

* Every notebook in ``notebooks/`` is stored without outputs and names the ``python3`` kernel (a
  notebook without ``metadata.kernelspec`` makes JupyterLab open a kernel-picker dialog).  Fast.
* Every notebook executes top to bottom with nbclient, offline, in a kernel of this virtualenv, within a
  time bound (``@pytest.mark.notebook``).
* The Binder recipe: a fresh virtualenv built only from ``binder/requirements.txt`` plus the
  ``binder/postBuild`` steps executes the tour notebook (``@pytest.mark.binder``; minutes; runs only
  with ``CAM_WIDGET_BINDER_TEST=1``).

The kernels run with outbound network blocked: an IPython startup file (in a private ``IPYTHONDIR``)
installs the same loopback-only guard as ``tests/conftest.py``.  The kernel is pinned through a private
``JUPYTER_PATH`` whose ``python3`` kernelspec runs the intended interpreter, whatever else is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
BINDER = REPO / "binder"
TOUR = REPO / "notebooks" / "01_tour.ipynb"

#: Wall-clock bound per notebook on the 2-core CI machine (executing, including kernel start).
NOTEBOOK_SECONDS = 300
#: Bound per cell (nbclient's own timeout; a hung cell fails fast instead of eating the whole budget).
CELL_SECONDS = 240

# Installed into each kernel as an IPython startup file: refuse every connection that leaves this machine.
OFFLINE_STARTUP = (Path(__file__).parent / "offline.py").read_text() + "\ninstall()\n"


def kernel_env(
    root: Path,
    python: str | os.PathLike[str],
    env: dict[str, str] | None = None,
    code: Path | None = REPO,
) -> dict[str, str]:
    """Environment for a kernel of ``python``: a private python3 kernelspec and an offline IPython profile.

    ``code`` goes first on ``PYTHONPATH``, so the kernel imports the cam_widget under test (this checkout,
    not whichever one the virtualenv's editable install points at); ``None`` keeps the installed package.
    The kernel sees the user's TensorFlow logging (no ``TF_CPP_MIN_LOG_LEVEL``): what a notebook prints
    to stderr is part of what is tested.
    """
    spec = root / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "metadata": {"debugger": False},
            }
        )
    )
    startup = root / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-offline.py").write_text(OFFLINE_STARTUP)
    out = dict(os.environ if env is None else env)
    out.pop("TF_CPP_MIN_LOG_LEVEL", None)  # set by tests/conftest.py for the test process itself
    if code is not None:
        out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), out.get("PYTHONPATH", "")]))
    out.update(
        JUPYTER_PATH=str(root / "jupyter"),
        IPYTHONDIR=str(root / "ipython"),
        KERAS_BACKEND="tensorflow",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    return out


def use_kernel_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Make ``env`` the environment kernels started from this process get (nbclient passes os.environ)."""
    for key in set(os.environ) - set(env):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


# ------------------------------------------------------------------------------------------ (a) storage


def test_there_are_tutorial_notebooks() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert "01_tour.ipynb" in names, names
    assert len(names) >= 3, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_clean_with_a_kernelspec(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    spec = nb.metadata.get("kernelspec", {})
    assert spec.get("name") == "python3", (
        f"{path.name}: metadata.kernelspec must name 'python3' (got {spec!r})"
    )
    assert spec.get("language") == "python" and spec.get("display_name"), (
        f"{path.name}: incomplete kernelspec"
    )
    assert "widgets" not in nb.metadata, f"{path.name}: stored widget state; clear it before committing"
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} are stored with outputs; clear them before committing"
    assert any(c.cell_type == "markdown" for c in nb.cells), f"{path.name}: no prose"
    assert all(c.source.strip() for c in nb.cells), f"{path.name}: empty cells"


def test_the_tour_keeps_the_explorer() -> None:
    nb = nbformat.read(TOUR, as_version=4)
    assert any("CAMExplorer(" in c.source for c in nb.cells if c.cell_type == "code")


# ------------------------------------------------------------------------------------------ (b) execution


@pytest.mark.notebook
@pytest.mark.timeout(120)
def test_notebook_kernel_is_this_venv_and_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness itself: the kernel runs this interpreter and this checkout and cannot reach the internet."""
    from nbclient import NotebookClient

    use_kernel_env(monkeypatch, kernel_env(tmp_path, sys.executable))
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
    )
    nb.cells = [
        nbformat.v4.new_code_cell("import sys; print(sys.executable)"),
        nbformat.v4.new_code_cell(
            "import socket\n"
            "try:\n"
            "    socket.create_connection(('93.184.216.34', 80), timeout=5)\n"
            "except OSError as err:\n"
            "    print('blocked' if 'blocked' in str(err) else f'other error: {err}')\n"
            "else:\n"
            "    print('connected')"
        ),
    ]
    nb.cells.append(nbformat.v4.new_code_cell("import cam_widget; print(cam_widget.__file__)"))
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert nb.cells[0].outputs[0]["text"].strip() == sys.executable
    assert nb.cells[1].outputs[0]["text"].strip() == "blocked"
    assert nb.cells[2].outputs[0]["text"].strip() == str(REPO / "cam_widget" / "__init__.py")


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.timeout(NOTEBOOK_SECONDS + 120)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_offline(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_property: pytest.RecordProperty
) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    use_kernel_env(monkeypatch, kernel_env(tmp_path, sys.executable))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_SECONDS,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        pytest.fail(f"{path.name} failed:\n{err}", pytrace=False)
    finally:
        seconds = time.perf_counter() - start
        record_property("seconds", round(seconds, 1))
        out = REPO / "artifacts" / "notebooks"
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / path.name)  # the executed copy, for inspection
    print(f"\n{path.name}: executed in {seconds:.1f} s")
    assert seconds < NOTEBOOK_SECONDS, f"{path.name} took {seconds:.0f} s (budget {NOTEBOOK_SECONDS} s)"
    tracebacks = [
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and "Traceback (most recent call last)" in out.get("text", "")
    ]
    assert not tracebacks, f"{path.name}: a traceback was printed:\n{tracebacks[0]}"
    stderr = [
        (i, out.get("text", ""))
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == "stderr"
    ]
    assert not stderr, f"{path.name}: cell {stderr[0][0]} wrote to stderr (a red box):\n{stderr[0][1][:3000]}"


# ------------------------------------------------------------------------------------------ (c) Binder


def _run(cmd: list[str], log: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    log.append(f"$ {' '.join(map(str, cmd))}  ({time.perf_counter() - start:.0f} s, exit {proc.returncode})")
    if proc.returncode != 0:
        raise AssertionError(
            "\n".join(log) + f"\n--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


def _copy_checkout(dest: Path) -> None:
    """The files a fresh clone would have (tracked plus new, not ignored), like Binder's checkout."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


_EXECUTE_TOUR = textwrap.dedent(
    """
    import sys, time
    import nbformat
    from nbclient import NotebookClient

    path, out = sys.argv[1], sys.argv[2]
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=int(sys.argv[3]), kernel_name="python3",
                            resources={"metadata": {"path": str(__import__("pathlib").Path(path).parent)}})
    start = time.perf_counter()
    client.execute()
    nbformat.write(nb, out)
    print(f"executed {path} in {time.perf_counter() - start:.1f} s")
    """
)


@pytest.mark.binder
@pytest.mark.timeout(3600)
@pytest.mark.skipif(
    os.environ.get("CAM_WIDGET_BINDER_TEST") != "1",
    reason="builds a fresh virtualenv from PyPI (minutes): set CAM_WIDGET_BINDER_TEST=1",
)
def test_binder_recipe_runs_the_tour(tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-"), runtime
    want = runtime.removeprefix("python-")
    have = f"{sys.version_info.major}.{sys.version_info.minor}"
    if have != want:
        pytest.skip(f"binder/runtime.txt asks for Python {want}; this interpreter is {have}")
    # pip runs in subprocesses: the suite's socket guard (tests/conftest.py) does not reach them.
    pip_cache = subprocess.run(
        [sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True
    ).stdout.strip() or str(Path.home() / ".cache" / "pip")
    log: list[str] = []
    start = time.perf_counter()

    checkout = tmp_path / "repo"
    _copy_checkout(checkout)
    venv = tmp_path / "venv"
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], log)
    python = venv / "bin" / "python"
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.update(
        VIRTUAL_ENV=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PIP_CACHE_DIR=pip_cache,  # reuse downloads; XDG_CACHE_HOME below is for cam-widget's own cache
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        XDG_CACHE_HOME=str(tmp_path / "cache"),  # a fresh user: postBuild must fill the weights cache
        KERAS_HOME=str(tmp_path / "keras"),
        TF_CPP_MIN_LOG_LEVEL="2",
    )

    # 1. what repo2docker does: pip install -r binder/requirements.txt, then run binder/postBuild
    t = time.perf_counter()
    _run([str(python), "-m", "pip", "install", "-q", "-r", str(checkout / "binder" / "requirements.txt")],
         log, env=env, cwd=checkout)  # fmt: skip
    install_seconds = time.perf_counter() - t
    postbuild = checkout / "binder" / "postBuild"
    assert os.access(postbuild, os.X_OK), "binder/postBuild must be executable"
    t = time.perf_counter()
    proc = _run([str(postbuild)], log, env=env, cwd=checkout)
    postbuild_seconds = time.perf_counter() - t
    assert "cam-widget ready" in proc.stdout, proc.stdout
    cached = list((tmp_path / "cache" / "cam-widget").glob("*"))
    assert cached, "postBuild did not leave converted weights in the cache"
    overrides = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert json.loads(overrides.read_text()) == json.loads((REPO / "jupyter" / "settings" / "overrides.json").read_text())

    # 2. the environment has what JupyterLab needs to show the widgets
    labext = _run([str(venv / "bin" / "jupyter"), "labextension", "list"], log, env=env)
    assert "@jupyter-widgets/jupyterlab-manager" in labext.stdout + labext.stderr
    pinned = _run([str(python), "-m", "pip", "check"], log, env=env)
    assert "No broken requirements" in pinned.stdout

    # 3. the tour, executed offline with that environment's own kernel
    kenv = kernel_env(tmp_path / "kernel", python, env, code=None)  # the package postBuild installed
    script = tmp_path / "execute_tour.py"
    script.write_text(_EXECUTE_TOUR)
    t = time.perf_counter()
    tour = checkout / "notebooks" / TOUR.name
    proc = _run([str(python), str(script), str(tour), str(tmp_path / "tour.out.ipynb"), str(CELL_SECONDS)],
                log, env=kenv, cwd=tour.parent, timeout=NOTEBOOK_SECONDS + 120)  # fmt: skip
    tour_seconds = time.perf_counter() - t
    total = time.perf_counter() - start
    for key, value in (("install", install_seconds), ("postBuild", postbuild_seconds), ("tour", tour_seconds),
                       ("total", total)):  # fmt: skip
        record_property(f"{key}_seconds", round(value, 1))
    print(
        f"\nBinder recipe: pip install {install_seconds:.0f} s, postBuild {postbuild_seconds:.0f} s, "
        f"tour {tour_seconds:.0f} s, total {total:.0f} s\n" + "\n".join(log)
    )
