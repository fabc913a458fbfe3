"""Baseline explainers: the explainers every workbench method is compared with, behind the one explainer contract.

Each is an :class:`~workbench.explainers.base.Explainer`: ``make_explainer(name, forward_func, **kwargs)
.attribute(inputs, target=None)`` returns a tensor shaped like ``inputs`` (batch first, on the inputs' device),
exactly like ``RelabelDistillation.attribute``; ``target=None`` explains the class ``forward_func`` predicts. The
baselines (names in :data:`BASELINES`):

* ``integrated_gradients``, ``saliency``, ``occlusion``: Captum's IntegratedGradients (Sundararajan et al. 2017),
  Saliency (Simonyan et al. 2014; Captum's default absolute gradient) and Occlusion (Zeiler & Fergus 2014).
* ``gradcam``: Captum's LayerGradCam (Selvaraju et al. 2017) on ``forward_func.gradcam_layer`` (or ``layer=``), with
  the paper's ReLU, up-sampled to the input size with ``LayerAttribution.interpolate`` and broadcast over channels.
* ``captum_lime``, ``kernel_shap``: Captum's Lime (Ribeiro et al. 2016) and KernelShap (Lundberg & Lee 2017) over
  superpixels (a feature mask), ``n_samples`` perturbations (give them the same budget as RLD).
* ``lime``: the ``lime`` package's ``LimeImageExplainer`` with ``num_samples = n_samples`` on the same superpixels;
  the per-segment weights of the explained label are painted back onto the pixels, signed.
* ``random``: a seeded uniform noise map, the floor every explainer has to beat.

Removed features: an input feature that is "removed" is set to ``baseline`` (Captum's word for the reference value;
default 0, which is black / "no ink" for the workbench's [0, 1] images and the fill of ``RegionOnlyClassifier``):
IG's baseline, Occlusion's fill, Captum Lime / KernelShap's ``baselines`` and lime's ``hide_color`` all use it
(lime's own default, the superpixel's mean colour, would leave the evidence of a thin stroke in place).

Superpixels (shared by ``captum_lime``, ``kernel_shap`` and ``lime``, see :func:`superpixels`): a regular grid by
default (``cell`` pixels square, ``min(H, W) // 8`` so 2x2 cells and 64 segments at 16x16), since quickshift/SLIC
find few useful segments on tiny images; ``"quickshift"`` and ``"slic"`` (scikit-image) are selectable.

Black boxes (:class:`~workbench.explainers.BlackBox`, or any callable that is not an ``nn.Module``):
``occlusion``, ``captum_lime``, ``kernel_shap``, ``lime`` and ``random`` only query the model and explain one;
``integrated_gradients``, ``saliency`` and ``gradcam`` need its gradients and refuse it when they are built, naming
the explainers that work.

Captum and lime are optional (``pip install distill-workbench[baselines]``) and imported inside the functions that
use them. ``forward_func`` maps ``(B, C, H, W)`` to logits ``(B, K)``; the Captum baselines explain the raw output of
the target class (Captum's convention), the lime package gets softmax probabilities (what it expects).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.explainers.base import Explainer, ForwardFunc, require
from workbench.explainers.blackbox import refuse_black_box

BASELINES: tuple[str, ...] = ("integrated_gradients", "saliency", "occlusion", "gradcam", "captum_lime",
                              "kernel_shap", "lime", "random")
#: the baselines that sample perturbations (give them the same budget ``n_samples`` as RLD)
SAMPLING_BASELINES: tuple[str, ...] = ("captum_lime", "kernel_shap", "lime")
SEGMENTATIONS: tuple[str, ...] = ("grid", "quickshift", "slic")


def default_cell(height: int, width: int) -> int:
    """Side of a grid superpixel: an 8x8 grid of cells (2x2-pixel cells at 16x16), at least one pixel."""
    return max(1, min(height, width) // 8)


def superpixels(image: np.ndarray | torch.Tensor, method: str = "grid", cell: int | None = None,
                **params: Any) -> np.ndarray:
    """Segment one image into superpixels: an (H, W) int array with labels 0..K-1.

    ``image`` is (H, W), (H, W, C) numpy (lime's layout) or a (C, H, W) tensor; gray images are fine.
    ``method``: ``"grid"`` (``cell``-pixel squares, content-independent), ``"quickshift"`` (scikit-image, on the
    image as RGB; defaults ``kernel_size=1, max_dist=4, ratio=0.5`` for tiny images) or ``"slic"`` (defaults
    ``n_segments=64, compactness=0.1``); ``params`` override the scikit-image defaults.
    """
    if method not in SEGMENTATIONS:
        raise ValueError(f"segmentation must be one of {SEGMENTATIONS}; got {method!r}")
    arr = image.detach().cpu().permute(1, 2, 0).numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"image must be (H, W), (H, W, C) or a (C, H, W) tensor; got shape {arr.shape}")
    h, w = arr.shape[:2]
    if method == "grid":
        side = cell or default_cell(h, w)
        cols = (w + side - 1) // side
        labels = (np.arange(h)[:, None] // side) * cols + np.arange(w)[None, :] // side
    else:
        from skimage.segmentation import quickshift, slic

        rgb = np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr
        rgb = rgb.astype(np.float64)
        if method == "quickshift":
            settings = {"kernel_size": 1, "max_dist": 4, "ratio": 0.5, **params}
            labels = quickshift(rgb, **settings)
        else:
            settings = {"n_segments": 64, "compactness": 0.1, "start_label": 0, **params}
            labels = slic(rgb, channel_axis=-1, **settings)
    return np.unique(labels, return_inverse=True)[1].reshape(h, w).astype(np.int64)


class CaptumIntegratedGradients(Explainer):
    """Captum IntegratedGradients from a constant ``baseline`` image (default zeros), ``n_steps`` points."""

    name = "integrated_gradients"
    needs_gradients = True

    def __init__(self, forward_func: ForwardFunc, n_steps: int = 50, baseline: float = 0.0,
                 internal_batch_size: int | None = None) -> None:
        super().__init__(forward_func)
        self.n_steps, self.baseline, self.internal_batch_size = n_steps, baseline, internal_batch_size

    def _attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        attr = require("captum.attr", self.name)
        return attr.IntegratedGradients(self.forward_func).attribute(
            x, baselines=self.baseline, target=target, n_steps=self.n_steps,
            internal_batch_size=self.internal_batch_size)


class CaptumSaliency(Explainer):
    """Captum Saliency: the gradient of the target output, absolute by default (Captum's default)."""

    name = "saliency"
    needs_gradients = True

    def __init__(self, forward_func: ForwardFunc, abs: bool = True) -> None:
        super().__init__(forward_func)
        self.abs = abs

    def _attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        attr = require("captum.attr", self.name)
        return attr.Saliency(self.forward_func).attribute(x.clone().requires_grad_(True), target=target,
                                                           abs=self.abs)


class CaptumOcclusion(Explainer):
    """Captum Occlusion: a ``window``-pixel square set to ``baseline`` every ``stride`` pixels.

    Defaults: ``window = 2 * cell`` and ``stride = cell`` with ``cell = min(H, W) // 8`` (4x4 windows every 2 pixels
    at 16x16), all channels at once.
    """

    name = "occlusion"

    def __init__(self, forward_func: ForwardFunc, window: int | None = None, stride: int | None = None,
                 baseline: float = 0.0, perturbations_per_eval: int = 64) -> None:
        super().__init__(forward_func)
        self.window, self.stride, self.baseline = window, stride, baseline
        self.perturbations_per_eval = perturbations_per_eval

    def _attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        attr = require("captum.attr", self.name)
        c, h, w = x.shape[1:]
        cell = default_cell(h, w)
        window = min(self.window or 2 * cell, h, w)
        stride = self.stride or max(1, window // 2)
        return attr.Occlusion(self.forward_func).attribute(
            x, sliding_window_shapes=(c, window, window), strides=(c, stride, stride), baselines=self.baseline,
            target=target, perturbations_per_eval=self.perturbations_per_eval)


class CaptumGradCam(Explainer):
    """Captum LayerGradCam on ``layer`` (default ``forward_func.gradcam_layer``), up-sampled to the input size.

    ``relu=True`` is the Grad-CAM paper's ReLU (Captum's own default is off); ``interpolate_mode`` is passed to
    ``LayerAttribution.interpolate``; the (H, W) map is broadcast over the input channels.
    """

    name = "gradcam"
    needs_gradients = True

    def __init__(self, forward_func: ForwardFunc, layer: nn.Module | None = None, relu: bool = True,
                 interpolate_mode: str = "bilinear") -> None:
        if getattr(forward_func, "gradient_free", False):
            refuse_black_box(self.name, forward_func)  # before asking a BlackBox for a layer it cannot have
        layer = layer if layer is not None else getattr(forward_func, "gradcam_layer", None)
        if not isinstance(layer, nn.Module):
            raise ValueError("gradcam needs a layer: pass layer=<nn.Module inside forward_func> or give the model a "
                             "`gradcam_layer` attribute (SmallCNN and RegionOnlyClassifier have one)")
        super().__init__(forward_func)
        self.layer, self.relu, self.interpolate_mode = layer, relu, interpolate_mode

    def _attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        attr = require("captum.attr", self.name)
        cam = attr.LayerGradCam(self.forward_func, self.layer).attribute(
            x, target=target, relu_attributions=self.relu)
        cam = attr.LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode=self.interpolate_mode)
        return cam.expand_as(x)


class _SuperpixelExplainer(Explainer):
    """Shared settings of the sampling baselines: budget, superpixels, baseline, seed; one image at a time."""

    def __init__(self, forward_func: ForwardFunc, n_samples: int = 1000, segmentation: str = "grid",
                 cell: int | None = None, segmentation_params: dict[str, Any] | None = None, baseline: float = 0.0,
                 seed: int = 0, batch_size: int = 100) -> None:
        super().__init__(forward_func)
        if n_samples < 2:
            raise ValueError(f"n_samples must be at least 2; got {n_samples}")
        if segmentation not in SEGMENTATIONS:
            raise ValueError(f"segmentation must be one of {SEGMENTATIONS}; got {segmentation!r}")
        self.n_samples, self.segmentation, self.cell = n_samples, segmentation, cell
        self.segmentation_params = dict(segmentation_params or {})
        self.baseline, self.seed, self.batch_size = baseline, seed, batch_size

    def segments(self, image: np.ndarray | torch.Tensor) -> np.ndarray:
        """The superpixels of one image ((H, W) labels), as every sampling baseline sees them."""
        return superpixels(image, self.segmentation, self.cell, **self.segmentation_params)

    def _attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._explain_one(x[i:i + 1], int(target[i])) for i in range(x.shape[0])])

    def _explain_one(self, x: torch.Tensor, target: int) -> torch.Tensor:
        raise NotImplementedError


class _CaptumSampling(_SuperpixelExplainer):
    """Captum Lime / KernelShap over superpixels (Captum's default surrogate, kernel and sampling)."""

    captum_class = ""

    def _explain_one(self, x: torch.Tensor, target: int) -> torch.Tensor:
        attr = require("captum.attr", self.name)
        mask = torch.from_numpy(self.segments(x[0])).to(x.device)[None, None]
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            explainer = getattr(attr, self.captum_class)(self.forward_func)
            return explainer.attribute(x, baselines=self.baseline, target=target, feature_mask=mask,
                                       n_samples=self.n_samples, perturbations_per_eval=self.batch_size)


class CaptumLime(_CaptumSampling):
    """Captum Lime (Lasso surrogate, exponential cosine kernel) with ``n_samples`` superpixel perturbations."""

    name = "captum_lime"
    captum_class = "Lime"


class CaptumKernelShap(_CaptumSampling):
    """Captum KernelShap with ``n_samples`` superpixel coalitions."""

    name = "kernel_shap"
    captum_class = "KernelShap"


class LimeImage(_SuperpixelExplainer):
    """The ``lime`` package's ``LimeImageExplainer`` (Ridge surrogate, cosine kernel of width 0.25: its defaults).

    ``num_samples = n_samples``; ``hide_color = baseline``; the same superpixels as ``captum_lime``; the
    classifier sees softmax probabilities; gray images go in as (H, W) (lime makes them RGB, the classifier gets the
    first channel back). The explained label's per-segment weights are painted back onto the pixels, signed.
    """

    name = "lime"

    def _explain_one(self, x: torch.Tensor, target: int) -> torch.Tensor:
        lime_image = require("lime.lime_image", self.name)
        c = x.shape[1]
        if c not in (1, 3):
            raise ValueError(f"the lime package explains gray or RGB images; got {c} channels")
        image = x[0].detach().cpu().permute(1, 2, 0).double().numpy()
        image = image[..., 0] if c == 1 else image

        def classifier_fn(batch: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(np.ascontiguousarray(batch[..., :c])).permute(0, 3, 1, 2).to(x)
            with torch.no_grad():
                return self.forward_func(t).float().softmax(-1).cpu().double().numpy()

        explainer = lime_image.LimeImageExplainer(random_state=self.seed)
        with contextlib.redirect_stderr(io.StringIO()):  # lime 0.2 draws a tqdm bar it offers no switch for
            explanation = explainer.explain_instance(
                image, classifier_fn, labels=(target,), hide_color=self.baseline, top_labels=None,
                num_samples=self.n_samples, batch_size=self.batch_size, segmentation_fn=self.segments,
                random_seed=self.seed)
        segments = explanation.segments
        weights = np.zeros(int(segments.max()) + 1)
        for segment, weight in explanation.local_exp[target]:
            weights[segment] = weight
        painted = torch.from_numpy(weights[segments]).float().to(x.device)
        return painted.expand_as(x[0])[None]


class RandomMap(Explainer):
    """Uniform noise in [0, 1) from a generator seeded with ``seed``: the floor of every score."""

    name = "random"

    def __init__(self, forward_func: ForwardFunc, seed: int = 0) -> None:
        super().__init__(forward_func)
        self.seed = seed

    def _attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed)
        return torch.rand(x.shape, generator=gen).to(x.device)


#: the baseline explainers by name, in the order the benchmark reports them
BASELINE_CLASSES: dict[str, type[Explainer]] = {cls.name: cls for cls in (
    CaptumIntegratedGradients, CaptumSaliency, CaptumOcclusion, CaptumGradCam, CaptumLime, CaptumKernelShap,
    LimeImage, RandomMap)}
