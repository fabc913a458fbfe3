"""Shared test setup: a model cache that persists across runs (trained once per machine), quiet threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("WORKBENCH_CACHE", str(REPO / ".cache" / "models"))


@pytest.fixture(scope="module")
def torch_one_thread():
    """Torch on one thread for a module's tests (``workbench.train.one_thread``): small tensors on a shared 2-core
    machine run many times faster than with a contended pool. Use with ``pytest.mark.usefixtures``."""
    from workbench.train import one_thread

    with one_thread():
        yield


@pytest.fixture(scope="session")
def digits_models():
    """The default digits teacher and VAE (trained on first use, ~30 s on a CPU, then cached)."""
    from workbench.models.pretrained import digits_classifier, digits_vae

    return digits_classifier(progress=False), digits_vae(progress=False)


@pytest.fixture(scope="session")
def digits_test():
    from workbench.data import load_digits

    return load_digits(16, "test")
