"""Helpers of the evaluation tests: a gradient explainer (as an explain_fn and as a Captum-shaped object), the bridge
to Quantus (numpy in, numpy out), and the models and inputs the tests share (``digits``, ``tiny``)."""

from __future__ import annotations

import numpy as np
import torch

from workbench.evaluation import input_gradient

gradient = input_gradient  # the explain_fn every test uses


class Gradient:
    """The same explainer shaped like Captum's ``Saliency(model).attribute(inputs, target=...)``."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.forward_func = model

    def attribute(self, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return gradient(self.forward_func, inputs, target)


def quantus_explain(model, inputs, targets, **_kwargs) -> np.ndarray:
    """Quantus's explain_func convention: numpy in, numpy out."""
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    return gradient(model, x, torch.as_tensor(np.asarray(targets))).numpy()


def load_digits_case():
    """(model, inputs (6, 1, 16, 16), labels (6,), signed gradient maps) on the smoke digits classifier."""
    from workbench.data import load_digits
    from workbench.models.pretrained import digits_classifier

    model = digits_classifier(smoke=True, device="cpu", progress=False).eval()
    data = load_digits(16, "test")
    x, y = data.images[:6].float(), data.labels[:6].long()
    return model, x, y, gradient(model, x, y)


def tiny_case():
    """A tiny random CNN on 8x8 single-channel inputs (fast enough for Quantus's per-step loops)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3, padding=1, stride=2),
        torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(64, 3)).eval()
    x = torch.rand(5, 1, 8, 8)
    y = model(x).argmax(1)
    return model, x, y, gradient(model, x, y)
