"""Every explainer by name: ``make_explainer(name, model, **kwargs)`` builds RLD (given ``vae=``) or any baseline.

:func:`baseline_maps` runs a list of baselines on one image and collects what could not run (a missing optional
package): the comparison the relabel dashboard, the tutorial and the benchmark all draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from workbench.explainers.base import Explainer, ForwardFunc
from workbench.explainers.baselines import BASELINE_CLASSES, BASELINES, SAMPLING_BASELINES

#: the baselines the relabel dashboard and tutorial compare with by default
DEFAULT_BASELINES: tuple[str, ...] = ("saliency", "integrated_gradients", "occlusion", "gradcam", "lime")


def _relabel(forward_func: ForwardFunc, vae: torch.nn.Module | None = None, **kwargs: Any) -> Explainer:
    if vae is None:
        raise ValueError("the 'relabel' explainer needs a VAE: make_explainer('relabel', model, vae=<encode/decode "
                         "model trained on the same images>, ...)")
    from workbench.relabel import RelabelDistillation  # the relabel package imports this one: import it late

    return RelabelDistillation(forward_func, vae, **kwargs)


#: every explainer by name: re-label distillation first, then the baselines (see :mod:`workbench.explainers.baselines`)
EXPLAINERS: dict[str, Callable[..., Explainer]] = {"relabel": _relabel, **BASELINE_CLASSES}


def available_explainers() -> tuple[str, ...]:
    """The names :func:`make_explainer` accepts: ``"relabel"`` and :data:`BASELINES`."""
    return tuple(EXPLAINERS)


def make_explainer(name: str, model: ForwardFunc, **kwargs: Any) -> Explainer:
    """Build the explainer ``name`` around ``model`` (``(B, C, H, W) -> logits (B, K)``); ``kwargs`` go to its class.

    ``relabel`` needs ``vae=`` (and takes :class:`~workbench.relabel.RelabelDistillation`'s settings). Sampling
    baselines (``captum_lime``, ``kernel_shap``, ``lime``) take ``n_samples`` (give them RLD's budget),
    ``segmentation`` (``"grid"``/``"quickshift"``/``"slic"``), ``cell``, ``baseline``, ``seed``; ``gradcam`` takes
    ``layer``; ``occlusion`` ``window``/``stride``; ``integrated_gradients`` ``n_steps``; ``random`` ``seed``.
    """
    if name not in EXPLAINERS:
        raise ValueError(f"unknown explainer {name!r}; valid names: {', '.join(EXPLAINERS)}")
    return EXPLAINERS[name](model, **kwargs)


def baseline_kwargs(name: str, n_samples: int) -> dict[str, Any]:
    """The settings a comparison gives baseline ``name``: the sample budget ``n_samples`` where it samples."""
    return {"n_samples": n_samples} if name in SAMPLING_BASELINES else {}


def baseline_maps(model: ForwardFunc, image: torch.Tensor, target: int, names: Sequence[str] = DEFAULT_BASELINES,
                  n_samples: int = 1000) -> tuple[dict[str, torch.Tensor], str]:
    """The baselines' (C, H, W) maps of one image ((C, H, W) or (1, C, H, W)) for class ``target``, on the CPU, and
    a message naming the baselines that could not run (captum or lime missing: they are imported lazily and the error
    says which extra to install); the sampling baselines get ``n_samples``."""
    maps, problems = {}, []
    x = image[None] if image.dim() == 3 else image
    for name in names:
        try:
            maps[name] = make_explainer(name, model, **baseline_kwargs(name, n_samples)).attribute(x, [target])[0].cpu()
        except ImportError as exc:
            problems.append(f"{name}: {exc}")
    return maps, "; ".join(problems)


__all__ = ["BASELINES", "DEFAULT_BASELINES", "EXPLAINERS", "SAMPLING_BASELINES", "available_explainers",
           "baseline_kwargs", "baseline_maps", "make_explainer"]
