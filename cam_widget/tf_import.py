"""Import Keras (and with it TensorFlow) without TensorFlow's start-up log lines.

TensorFlow 2.21 writes these from C++ while its shared libraries load, before any Python code can
configure logging::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:...  port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:...  cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use ...
    To enable the following instructions: AVX2 ..., in other operations, rebuild TensorFlow ...

In a Jupyter kernel each lands in a red stderr box.  ``TF_CPP_MIN_LOG_LEVEL`` alone removes only the
cpu_feature_guard notice (the others are written before absl's log level applies), so when
cam-widget is the first to import Keras and the user has not set ``TF_CPP_MIN_LOG_LEVEL``:

1. ``TF_CPP_MIN_LOG_LEVEL=1`` is set for the process: C++ INFO lines (also later ones such as XLA's
   "Compiled cluster using XLA!") are off; warnings and errors still print;
2. file descriptor 2 is redirected to a temporary file for the import only; afterwards every
   captured line that is not one of the known start-up notices (:data:`STARTUP_PATTERNS`) is
   written back to ``sys.stderr``, so a real warning or error written during the import still shows.

A user who set ``TF_CPP_MIN_LOG_LEVEL`` (to any value), or who imported Keras or TensorFlow first,
gets TensorFlow exactly as it behaves without cam-widget.  A value cam-widget set itself is marked
(:data:`MARKER`), so child processes that inherit it (Dask workers started from a notebook, whose
stderr is the notebook's) are quieted the same way instead of taking it for the user's choice.

Every cam-widget module that needs Keras imports it from here: ``from .tf_import import keras``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType

from .errors import MissingPackageError
from .optional import install_line

__all__ = ["MARKER", "STARTUP_PATTERNS", "import_keras", "is_startup_line", "keras", "startup_lines_filtered"]

#: Environment variable saying "TF_CPP_MIN_LOG_LEVEL was set by cam-widget, not by the user".
MARKER = "CAM_WIDGET_SET_TF_CPP_MIN_LOG_LEVEL"
_LEVEL = "1"

#: Lines TensorFlow prints at import on every machine (CPU builds) or on every machine without CUDA
#: (the ``tensorflow`` wheel): notices, not problems.  Matched against each captured line.
STARTUP_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
        # glog-style lines: "I0000 00:00:1796158692.514186    6182 port.cc:153] message"
        r"^[IW]\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are on\.",
        r"^[IW]\d{4} [\d:. ]+\d+ cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
        r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$",
        r"^[IW]\d{4} [\d:. ]+\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine",
        r"^[EW]\d{4} [\d:. ]+\d+ cuda_(?:dnn|fft|blas)\.cc:\d+\] Unable to register cu(?:DNN|FFT|BLAS) factory",
        r"^[EW]\d{4} [\d:. ]+\d+ [\w.]+:\d+\] computation placer already registered\.",
        r"^[IW]\d{4} [\d:. ]+\d+ [\w.]+:\d+\] TF-TRT Warning: Could not find TensorRT$",
    )
)


def is_startup_line(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's known start-up notices (never a real warning or error)."""
    text = line.rstrip("\r\n")
    return any(p.search(text) for p in STARTUP_PATTERNS)


def _flush_stderr() -> None:
    with contextlib.suppress(Exception):  # a replaced or closed sys.stderr must not break an import
        sys.stderr.flush()


@contextlib.contextmanager
def startup_lines_filtered() -> Iterator[None]:
    """Capture file descriptor 2 for the block; then re-emit every line but TF's start-up notices.

    C++ code writes to the descriptor, not to ``sys.stderr``, so only a descriptor-level redirect
    catches it.  In a Jupyter kernel fd 2 is ipykernel's capture pipe; it is restored untouched and
    kept lines go to ``sys.stderr`` (the notebook's stderr stream), where they would have appeared.
    """
    _flush_stderr()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (a detached process): nothing would have been printed anyway
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            _flush_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            kept = "".join(line for line in text.splitlines(keepends=True) if not is_startup_line(line))
            if kept:
                _write_stderr(kept)


def _write_stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except Exception:  # no usable sys.stderr: write to the descriptor the text came from
        with contextlib.suppress(OSError):
            os.write(2, text.encode("utf-8", "replace"))


#: The Keras backends and how to install each (TensorFlow: the CPU wheel, no CUDA download).
_BACKEND_INSTALL = {
    "tensorflow": f'pip install tensorflow-cpu  (or {install_line("tf-cpu")}; the GPU build: pip install tensorflow)',
    "jax": "pip install jax  (or choose TensorFlow: KERAS_BACKEND=tensorflow and pip install tensorflow-cpu)",
    "torch": "pip install torch  (or choose TensorFlow: KERAS_BACKEND=tensorflow and pip install tensorflow-cpu)",
}


def _import_keras_module() -> ModuleType:
    try:
        return importlib.import_module("keras")
    except ImportError as err:
        missing = (getattr(err, "name", None) or "").partition(".")[0]
        if missing == "keras":
            raise MissingPackageError(
                f"cam-widget needs Keras 3, which is not installed. Install it with: {install_line('tf-cpu')}"
            ) from err
        if missing in _BACKEND_INSTALL:
            raise MissingPackageError(
                f"Keras needs its backend {missing!r}, which is not installed "
                f"(KERAS_BACKEND={os.environ.get('KERAS_BACKEND', 'tensorflow')}). "
                f"Install it with: {_BACKEND_INSTALL[missing]}"
            ) from err
        raise


def import_keras() -> ModuleType:
    """The ``keras`` module; TensorFlow's start-up notices are kept out of stderr when cam-widget
    is the first to import it and ``TF_CPP_MIN_LOG_LEVEL`` is unset (see the module docstring).

    Raises :class:`~cam_widget.errors.MissingPackageError` naming the ``pip install`` line when
    Keras or its backend is not installed.
    """
    if "keras" in sys.modules or "tensorflow" in sys.modules or _users_log_level():
        return _import_keras_module()
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = _LEVEL  # INFO off for the process; warnings and errors print
    os.environ[MARKER] = _LEVEL
    with startup_lines_filtered():
        return _import_keras_module()


def _users_log_level() -> bool:
    """Whether ``TF_CPP_MIN_LOG_LEVEL`` is set, and not by cam-widget (in this or a parent process)."""
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    return level is not None and not (level == _LEVEL and os.environ.get(MARKER) == _LEVEL)


keras = import_keras()
