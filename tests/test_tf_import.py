"""TensorFlow's start-up log lines stay out of stderr when cam-widget imports Keras; real ones do not.

* The filter: the lines TF 2.21 really prints at import (copied from this machine) are recognised; warnings
  and errors written by TF after import, or by anything else, are not.
* The descriptor-level capture re-emits every line that is not a start-up notice, in order.
* Processes: ``import cam_widget`` + the default engine in a fresh interpreter writes nothing to stderr, but a
  real TensorFlow warning after the import still reaches it; a user who set ``TF_CPP_MIN_LOG_LEVEL`` gets
  TensorFlow's own output unchanged.
* A fresh Jupyter kernel running the tour's first cells produces no stderr output at all (no red boxes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cam_widget import tf_import
from cam_widget.tf_import import is_startup_line, startup_lines_filtered

REPO = Path(__file__).resolve().parents[1]

# Verbatim from `python -c "import keras"` with tensorflow-cpu 2.21 on the project's machines (and the CUDA
# notices of the `tensorflow` wheel on a machine without a GPU).
STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796158692.514186    6182 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To "
    "turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796158692.572744    6182 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX512_FP16 AVX_VNNI AMX_TILE "
    "AMX_INT8 AMX_BF16 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.",
    "I0000 00:00:1700000000.000000    1234 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.",
    "E0000 00:00:1700000000.000000    1234 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to "
    "register factory for plugin cuDNN when one has already been registered",
]
REAL = [
    "W0000 00:00:1796158849.047276    7204 local_rendezvous.cc:412] Local rendezvous is aborting with status: "
    "INVALID_ARGUMENT: Unknown image file format. One of JPEG, JPEG XL, PNG, GIF, BMP, WebP required",
    "E0000 00:00:1700000000.000000    1234 port.cc:153] oneDNN failed to create a primitive",
    "W0000 00:00:1700000000.000000    1234 cpu_feature_guard.cc:227] Your CPU lacks AVX; this binary will crash",
    "/x/keras/src/models/model.py:1: UserWarning: something a user should see",
    "Traceback (most recent call last):",
    "To enable the following instructions: nothing",  # only the whole cpu_feature_guard continuation matches
    "",
]


@pytest.mark.parametrize("line", STARTUP)
def test_the_start_up_notices_are_recognised(line: str) -> None:
    assert is_startup_line(line)
    assert is_startup_line(line + "\n")


@pytest.mark.parametrize("line", REAL)
def test_real_warnings_and_errors_are_not(line: str) -> None:
    assert not is_startup_line(line)


def test_the_capture_re_emits_everything_but_the_notices_in_order(capfd: pytest.CaptureFixture[str]) -> None:
    lines = [STARTUP[0], REAL[0], STARTUP[1], STARTUP[2], STARTUP[3], REAL[3], "no newline at the end"]
    with startup_lines_filtered():
        for line in lines:
            os.write(2, (line + "\n").encode() if line != lines[-1] else line.encode())
    err = capfd.readouterr().err
    assert err == f"{REAL[0]}\n{REAL[3]}\nno newline at the end"


def test_the_capture_restores_stderr_when_the_import_fails(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), startup_lines_filtered():
        os.write(2, f"{STARTUP[0]}\nE0000 real error before the failure\n".encode())
        raise RuntimeError("import failed")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "E0000 real error before the failure\nafter\n"


def test_keras_already_imported_is_returned_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert tf_import.import_keras() is keras
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ  # the user's TensorFlow, as they configured it
    assert tf_import.keras is keras


# ------------------------------------------------------------------------------------------ processes


def _python(code: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", tf_import.MARKER)}
    full.update({k: v for k, v in env.items() if v is not None})
    full["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full, timeout=300
    )


@pytest.mark.slow
def test_a_fresh_process_prints_no_start_up_lines_but_real_warnings() -> None:
    proc = _python(
        """
        import os, cam_widget
        engine = cam_widget.default_engine()
        print(engine.top_k(cam_widget.sample_images()["coffee"], 1)[0][1])
        print(os.environ["TF_CPP_MIN_LOG_LEVEL"])
        import tensorflow as tf
        try:
            tf.io.decode_png(b"not a png")  # TensorFlow's C++ logs a W-line for the failed op
        except tf.errors.InvalidArgumentError:
            print("raised")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["espresso", "1", "raised"]
    lines = proc.stderr.splitlines()
    assert not [line for line in lines if is_startup_line(line)], proc.stderr
    assert len(lines) == 1 and "Unknown image file format" in lines[0], proc.stderr


@pytest.mark.slow
def test_a_child_process_inherits_the_quiet_not_a_user_setting() -> None:
    """A Dask worker started from a notebook inherits the kernel's environment and its stderr."""
    proc = _python(
        """
        import os, subprocess, sys
        import cam_widget.tf_import
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1" and os.environ[cam_widget.tf_import.MARKER] == "1"
        child = "import cam_widget.tf_import, tensorflow as tf; print(tf.constant(2.0).numpy())"
        sys.exit(subprocess.run([sys.executable, "-c", child]).returncode)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2.0"
    assert proc.stderr == ""


@pytest.mark.slow
def test_a_user_who_set_the_log_level_gets_tensorflow_unchanged() -> None:
    proc = _python("import cam_widget.tf_import, os; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])",
                   TF_CPP_MIN_LOG_LEVEL="0")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"
    assert any("oneDNN custom operations are on" in line for line in proc.stderr.splitlines()), proc.stderr
    # "1" is also what cam-widget sets: without cam-widget's marker it is the user's, and respected
    proc = _python("import cam_widget.tf_import", TF_CPP_MIN_LOG_LEVEL="1")
    assert "oneDNN custom operations are on" in proc.stderr, proc.stderr


# ------------------------------------------------------------------------------------------ Jupyter kernel


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_the_tours_first_cells_write_nothing_to_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No red boxes: a fresh kernel, the user's environment without TF_CPP_MIN_LOG_LEVEL, the tour's cells up to
    the first output of the model."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient
    from test_notebooks import CELL_SECONDS, TOUR, kernel_env, use_kernel_env

    env = kernel_env(tmp_path, sys.executable)  # this checkout's cam_widget; no TF_CPP_MIN_LOG_LEVEL
    assert "TF_CPP_MIN_LOG_LEVEL" not in env
    use_kernel_env(monkeypatch, env)
    nb = nbformat.read(TOUR, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    first_model_output = next(i for i in code if "top_k(" in nb.cells[i].source)
    nb.cells = nb.cells[: first_model_output + 1]
    NotebookClient(nb, timeout=CELL_SECONDS, kernel_name="python3",
                   resources={"metadata": {"path": str(TOUR.parent)}}).execute()  # fmt: skip
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    stderr = [o.get("text", "") for o in outputs if o.get("name") == "stderr"]
    assert not stderr, "stderr in the tour's first cells:\n" + "".join(stderr)
    assert any("espresso" in o.get("text", "") for o in outputs), outputs  # the cells really ran
