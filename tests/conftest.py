"""Shared test setup: a model cache that persists across runs (trained once per machine), quiet threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("WORKBENCH_CACHE", str(REPO / ".cache" / "models"))


@pytest.fixture(scope="session")
def digits_models():
    """The default digits teacher and VAE (trained on first use, ~30 s on a CPU, then cached)."""
    from workbench.models.pretrained import digits_classifier, digits_vae

    return digits_classifier(progress=False), digits_vae(progress=False)


@pytest.fixture(scope="session")
def digits_test():
    from workbench.data import load_digits

    return load_digits(16, "test")
