"""Fixtures of the evaluation tests (helpers in ``evaluation_helpers``)."""

from __future__ import annotations

import pytest
from evaluation_helpers import load_digits_case, tiny_case


@pytest.fixture(scope="module")
def digits():
    """(model, inputs (6, 1, 16, 16), labels (6,), signed gradient maps) on the smoke digits classifier."""
    return load_digits_case()


@pytest.fixture(scope="module")
def tiny():
    """A tiny random CNN on 8x8 single-channel inputs with 3 classes, its inputs, predictions and gradient maps."""
    return tiny_case()
