"""Small models for the method tests: the SAME layer objects wired flat, nested in a Sequential and nested in
a Functional model, so an independent computation on the flat graph (``tf.GradientTape``, numpy) is the
reference for the engine on all three."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from methods_reference import Net, build_net  # noqa: E402

from cam_widget import CAMEngine  # noqa: E402

KINDS = ("flat", "sequential", "functional")


def close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-3) -> None:
    """``got`` (an engine map: float32) equals ``want`` to ``rtol``, absolute tolerance relative to want's scale."""
    assert got.shape == want.shape and got.dtype == np.float32, (got.shape, got.dtype, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * (float(np.abs(want).max()) or 1.0))


def photo(seed: int = 1, size: int = 32) -> np.ndarray:
    """A random RGB photo at the models' input size (the engine's resize is then the identity)."""
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def net() -> Net:
    return build_net(skip=True)


@pytest.fixture(scope="module", params=KINDS)
def case(request: pytest.FixtureRequest, net: Net) -> tuple[CAMEngine, str, Net]:
    """(engine, layer-name prefix, net) for each way of wiring the same layers."""
    model = {"flat": net.flat, "sequential": net.sequential, "functional": net.functional}[request.param]
    prefix = "" if request.param == "flat" else "backbone/"
    return CAMEngine(model, class_names=net.class_names), prefix, net
