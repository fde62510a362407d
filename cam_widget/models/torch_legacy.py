"""Read PyTorch's LEGACY ``.pth`` state dicts with the standard library and numpy only.

The legacy format (``torch.save(..., _use_new_zipfile_serialization=False)`` and every file written
by torch < 1.6) is a concatenation of five streams::

    pickle(MAGIC_NUMBER) pickle(PROTOCOL_VERSION) pickle(sys_info)
    pickle(obj)                      # tensors reference storages through persistent ids
    pickle([storage_key, ...])       # the order in which storage bytes follow
    for each key: int64 numel, numel * itemsize raw little-endian bytes

Unpickling runs code, so every pickle here goes through :class:`_RestrictedUnpickler`, which
accepts only the handful of globals a tensor state dict needs (``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2`` and the ``torch.*Storage`` types) and replaces the torch ones
with inert stand-ins.  Any other global (``os.system``, ``builtins.eval``, a ``torch.nn`` module,
...) raises :class:`UnsafePickleError` naming it, before anything is called.  PyTorch's newer
zip format is refused with :class:`UnsupportedFormatError`.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from ..errors import CAMError

__all__ = [
    "LEGACY_MAGIC_NUMBER",
    "UnsafePickleError",
    "UnsupportedFormatError",
    "WeightsFileError",
    "load_legacy_state_dict",
]

#: First pickled value of every legacy ``.pth`` file.
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL_VERSION = 1001
_ZIP_MAGIC = b"PK\x03\x04"


class WeightsFileError(CAMError):
    """A weights file is damaged, truncated or not a PyTorch legacy state dict."""


class UnsafePickleError(WeightsFileError):
    """The pickle asks for a global that a plain tensor state dict never needs."""


class UnsupportedFormatError(WeightsFileError):
    """The file is a PyTorch checkpoint in a format this reader does not handle (e.g. zip)."""


# ----------------------------------------------------------------------------------------------
# Inert stand-ins for the torch globals a state dict references.


def _refuse_build(self: Any, state: Any) -> None:
    """``__setstate__`` of the stand-ins: a pickle's BUILD opcode may not change them.

    (A frozen, slotted dataclass alone does not stop BUILD: its generated ``__setstate__`` writes
    the fields with ``object.__setattr__``, and the storage types are shared by every load.)"""
    raise UnsafePickleError(f"refusing to set the state of a torch stand-in ({type(self).__name__})")


@dataclass(frozen=True, slots=True)
class _StorageType:
    """Stand-in for ``torch.FloatStorage`` & co.: only remembers the element dtype."""

    name: str
    dtype: np.dtype
    __setstate__ = _refuse_build


_STORAGE_TYPES: dict[str, _StorageType] = {
    name: _StorageType(name, np.dtype(code))
    for name, code in {
        "DoubleStorage": "<f8",
        "FloatStorage": "<f4",
        "HalfStorage": "<f2",
        "LongStorage": "<i8",
        "IntStorage": "<i4",
        "ShortStorage": "<i2",
        "CharStorage": "i1",
        "ByteStorage": "u1",
        "BoolStorage": "?",
    }.items()
}


@dataclass(frozen=True, slots=True)
class _StorageRef:
    """A storage named by a persistent id; its bytes follow the pickled object in the file."""

    key: str
    dtype: np.dtype
    numel: int
    view_offset: int = 0  # legacy storage views: element offset into the root storage
    view_numel: int | None = None
    __setstate__ = _refuse_build


@dataclass(frozen=True, slots=True)
class _TensorRef:
    """What ``_rebuild_tensor_v2`` returned: a strided view of a storage, resolved later."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    __setstate__ = _refuse_build


def _check_int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise WeightsFileError(f"tensor {what} must be a tuple of non-negative ints, got {value!r}")
    return value


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: validates and records a tensor view."""
    del requires_grad, backward_hooks, metadata  # irrelevant for weights
    if not isinstance(storage, _StorageRef):
        raise WeightsFileError(f"tensor storage must be a persistent storage id, got {type(storage).__name__}")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise WeightsFileError(f"tensor storage offset must be a non-negative int, got {storage_offset!r}")
    size = _check_int_tuple(size, "size")
    stride = _check_int_tuple(stride, "stride")
    if len(size) != len(stride):
        raise WeightsFileError(f"tensor size {size} and stride {stride} differ in length")
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> _TensorRef:
    """Stand-in for the older ``torch._utils._rebuild_tensor`` (same meaning, fewer arguments)."""
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


class _Callable:
    """Wraps a stand-in function in an object with no attributes a pickle's BUILD could set."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        object.__setattr__(self, "_fn", fn)

    def __setattr__(self, name: str, value: Any) -> None:
        raise UnsafePickleError(f"refusing to set attribute {name!r} on a torch stand-in")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._fn(*args, **kwargs)
        except TypeError as exc:
            raise WeightsFileError(f"malformed tensor record: {exc}") from exc


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _Callable(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_tensor"): _Callable(_rebuild_tensor),
    **{("torch", name): st for name, st in _STORAGE_TYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed globals and storage persistent ids."""

    def __init__(self, file: IO[bytes], storages: dict[str, _StorageRef] | None = None) -> None:
        super().__init__(file, encoding="utf-8")
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to unpickle the global '{module}.{name}': a PyTorch state dict of tensors "
                "needs only collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch.*Storage. "
                "The file may be a whole pickled model or a malicious file; load it with torch and save "
                "model.state_dict() instead."
            ) from None

    def persistent_load(self, pid: Any) -> _StorageRef:
        if self._storages is None:
            raise UnsafePickleError(f"unexpected persistent id {pid!r} outside the state-dict pickle")
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise UnsafePickleError(f"unsupported persistent id {pid!r}; only tensor storages are accepted")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not isinstance(storage_type, _StorageType):
            raise UnsafePickleError(f"persistent id names {storage_type!r}, not a torch storage type")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise WeightsFileError(f"malformed storage id {pid!r}")
        root = self._storages.get(key)
        if root is None:
            root = _StorageRef(key, storage_type.dtype, numel)
            self._storages[key] = root
        elif root.dtype != storage_type.dtype or root.numel != numel:
            raise WeightsFileError(f"storage {key!r} is declared twice with different types or sizes")
        if view_metadata is None:
            return root
        if not (isinstance(view_metadata, tuple) and len(view_metadata) == 3):
            raise WeightsFileError(f"malformed storage view {view_metadata!r}")
        _view_key, view_offset, view_numel = view_metadata
        if not (isinstance(view_offset, int) and isinstance(view_numel, int)):
            raise WeightsFileError(f"malformed storage view {view_metadata!r}")
        if view_offset < 0 or view_numel < 0 or view_offset + view_numel > numel:
            raise WeightsFileError(f"storage view {view_metadata!r} lies outside storage {key!r}")
        return _StorageRef(key, root.dtype, numel, view_offset, view_numel)


# ----------------------------------------------------------------------------------------------
# Reading.


def _load_pickle(f: IO[bytes], what: str, storages: dict[str, _StorageRef] | None = None) -> Any:
    try:
        return _RestrictedUnpickler(f, storages).load()
    except WeightsFileError:
        raise
    except Exception as exc:  # EOFError, UnpicklingError, struct errors, TypeErrors from REDUCE ...
        raise WeightsFileError(f"cannot read the {what} of the legacy .pth file: {exc}") from exc


def _read_exact(f: IO[bytes], n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise WeightsFileError(f"file is truncated while reading {what} ({len(data)} of {n} bytes)")
    return data


def _materialize(ref: _TensorRef, roots: dict[str, np.ndarray]) -> np.ndarray:
    """Copy a strided tensor view out of its (flat) storage, checking every bound."""
    flat = roots[ref.storage.key]
    start = ref.storage.view_offset + ref.offset
    limit = ref.storage.view_offset + (
        ref.storage.view_numel if ref.storage.view_numel is not None else ref.storage.numel
    )
    if any(s == 0 for s in ref.size):
        return np.zeros(ref.size, dtype=flat.dtype)
    last = start + sum((n - 1) * st for n, st in zip(ref.size, ref.stride, strict=True))
    if start >= limit or last >= limit:
        raise WeightsFileError(
            f"tensor of size {ref.size} and stride {ref.stride} at offset {ref.offset} "
            f"reads past the end of storage {ref.storage.key!r}"
        )
    itemsize = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[start:],
        shape=ref.size,
        strides=tuple(st * itemsize for st in ref.stride),
        writeable=False,
    )
    return np.array(view, dtype=flat.dtype.newbyteorder("="), order="C", copy=True)


def _read_stream(f: IO[bytes]) -> collections.OrderedDict[str, np.ndarray]:
    head = f.read(4)
    if head == _ZIP_MAGIC:
        raise UnsupportedFormatError(
            "this is a PyTorch zip-format checkpoint (the default since torch 1.6); only the legacy "
            "format is supported. Re-save it with torch.save(state_dict, path, "
            "_use_new_zipfile_serialization=False)."
        )
    f.seek(-len(head), io.SEEK_CUR)

    magic = _load_pickle(f, "magic number")
    if magic != LEGACY_MAGIC_NUMBER:
        raise UnsupportedFormatError(
            "not a PyTorch legacy .pth file (wrong magic number); expected a state dict saved by torch.save"
        )
    protocol = _load_pickle(f, "protocol version")
    if protocol != _LEGACY_PROTOCOL_VERSION:
        raise UnsupportedFormatError(f"unsupported legacy protocol version {protocol!r}")
    sys_info = _load_pickle(f, "system info")
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise UnsupportedFormatError("big-endian .pth files are not supported")

    storages: dict[str, _StorageRef] = {}
    obj = _load_pickle(f, "state dict", storages)
    if not isinstance(obj, dict):
        raise WeightsFileError(f"expected a state dict (a mapping), the file holds a {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, _TensorRef)]
    if bad:
        raise WeightsFileError(f"state dict entries {bad[:5]!r} are not name -> tensor pairs")
    keys = _load_pickle(f, "storage key list")
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise WeightsFileError(f"malformed storage key list of type {type(keys).__name__}")

    roots: dict[str, np.ndarray] = {}
    for key in keys:
        ref = storages.get(key)
        if ref is None:
            raise WeightsFileError(f"storage {key!r} has data but no tensor refers to it")
        (numel,) = struct.unpack("<q", _read_exact(f, 8, f"the size of storage {key!r}"))
        if numel != ref.numel:
            raise WeightsFileError(f"storage {key!r} holds {numel} elements, {ref.numel} were declared")
        nbytes = numel * ref.dtype.itemsize
        roots[key] = np.frombuffer(_read_exact(f, nbytes, f"storage {key!r}"), dtype=ref.dtype)
    missing = set(storages) - set(roots)
    if missing:
        raise WeightsFileError(f"no data for storage(s) {sorted(missing)[:5]}")

    return collections.OrderedDict((name, _materialize(ref, roots)) for name, ref in obj.items())


def load_legacy_state_dict(
    source: str | os.PathLike[str] | bytes | IO[bytes],
) -> collections.OrderedDict[str, np.ndarray]:
    """Read a PyTorch legacy-format state dict into ``{name: numpy array}`` without torch.

    ``source`` is a path, the file's bytes, or a binary file object.  Arrays come back C-contiguous
    in native byte order with PyTorch's layout (e.g. conv weights OIHW).  Raises
    :class:`UnsafePickleError` for any global other than those a tensor state dict needs,
    :class:`UnsupportedFormatError` for zip-format or non-PyTorch files and
    :class:`WeightsFileError` for truncated or inconsistent ones.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _read_stream(io.BytesIO(bytes(source)))
    if hasattr(source, "read"):
        return _read_stream(source)  # type: ignore[arg-type]
    with open(os.fspath(source), "rb") as f:
        return _read_stream(f)
