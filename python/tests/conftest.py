"""Shared fixtures: MNIST loaded once, and the GPU (a test that needs one
is skipped without an adapter, and fails instead under GPU_NET_REQUIRE_GPU=1,
as the Rust tests do)."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import gpu_net  # noqa: E402


@pytest.fixture(scope="session")
def mnist():
    return gpu_net.load_mnist(normalize=True, one_hot_label=False)


@pytest.fixture(scope="session")
def gpu():
    """'gpu', once an adapter is known to exist."""
    try:
        gpu_net.TwoLayerNet(4, 3, 2, device="gpu", seed=0)
    except gpu_net.GpuError as e:
        if os.environ.get("GPU_NET_REQUIRE_GPU", "0") != "0":
            raise
        pytest.skip(f"no GPU adapter: {e}")
    return "gpu"


@pytest.fixture
def rng():
    return np.random.default_rng(7)
