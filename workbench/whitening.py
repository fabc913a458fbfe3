"""Interpretable face-manipulation detection via feature whitening (Hua, Zhang, Wang, Ge, arXiv:2106.10834).

The paper (only its abstract is public) embeds a feature-whitening module that decorrelates a detector's channels
(feature decorrelation) and aligns them with concepts (feature constraint). Our reconstruction follows the group's
public follow-up code (IFFD), which uses Concept Whitening's IterNormRotation (Chen, Bei & Rudin, Nat. Mach. Intell.
2020):

* ``IterNormWhitening``: grouped ZCA whitening by Newton–Schulz iteration (IterNorm, Huang et al. CVPR 2019), with
  running mean / whitening matrix for eval; gradients flow by autograd through the ``T`` iterations.
* ``ConceptRotation``: an orthogonal matrix R applied after whitening, updated *outside* back-propagation by a
  Cayley transform with a curvilinear line search (Wen & Yin 2013), so that rotated channel k fires maximally on
  concept k. Concepts are names: facial regions of ``workbench.data.faces.FACE_REGIONS`` (on real faces),
  ``"manipulated"`` (fakes, weighted by their true mask), ``"real"`` or ``"fake"`` (whole images of one class).
* ``WhiteningBlock`` = whitening + rotation (+ optional affine), a drop-in for a ``BatchNorm2d``
  (``replace_batchnorm``); ``WhiteningDetector`` = ``SmallCNN`` with the block at a configurable depth, or with
  its plain BatchNorm as the baseline. Channel maps and the layer's input/output are reachable without hooks.

Ours, not the paper's: the small grey 32x32 backbone, AdamW, the concept set (default: the "manipulated" concept on
channel 0 plus eyes / nose / mouth), aligning every ``align_every`` steps on one batch per concept, and after
training a recalibration of the whitening on the whole training set (T = 20) with a refit of the linear head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

from workbench.data.faces import FACE_REGIONS, ForgerySet, load_forgery_faces, region_mask
from workbench.models.classifier import SmallCNN
from workbench.train import cached_model, fit, training_throughput
from workbench.validation import check_images

#: Default concepts of the rotation: channel 0 answers to manipulated pixels, 1..3 to facial regions.
DEFAULT_CONCEPTS: tuple[str, ...] = ("manipulated", "eyes", "nose", "mouth")
CLASS_CONCEPTS: dict[str, int] = {"real": 0, "fake": 1}


# --------------------------------------------------------------------------------------------------- whitening
class IterNormWhitening(nn.Module):
    """Grouped ZCA whitening by Newton–Schulz iteration (IterNorm); output shaped like the input.

    Per group of ``num_features // num_groups`` channels, with m = B*H*W positions: xc = x - mean; S = eps*I +
    xc xc^T / m; S_N = S / tr(S); P_0 = I; P_{k+1} = 1.5 P_k - 0.5 P_k^3 S_N; W = P_T / sqrt(tr S); out = W xc.
    Training updates ``running_mean`` / ``running_wm`` with ``momentum``; eval uses them. Computed in float32.
    ``T`` = 5 (IterNorm's choice) whitens only the directions whose share of the variance is above about 1/50 (a
    partial whitening that keeps training stable); the detector trains with T = 5 and, once trained, recalibrates
    its running whitening matrix on the whole training set with T = 20 (``calibrate``), a full whitening.
    """

    def __init__(self, num_features: int, num_groups: int = 1, T: int = 5, eps: float = 1e-5,
                 momentum: float = 0.1, affine: bool = False) -> None:
        super().__init__()
        if num_features % num_groups:
            raise ValueError(f"num_features ({num_features}) must be divisible by num_groups ({num_groups})")
        if T < 1:
            raise ValueError(f"T (Newton–Schulz iterations) must be at least 1; got {T}")
        self.num_features, self.num_groups, self.T, self.eps, self.momentum = num_features, num_groups, T, eps, momentum
        d = num_features // num_groups
        self.register_buffer("running_mean", torch.zeros(num_groups, d, 1))
        self.register_buffer("running_wm", torch.eye(d).expand(num_groups, d, d).clone())
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))

    def whitening_matrix(self, xc: torch.Tensor) -> torch.Tensor:
        """W (g, d, d) of centred grouped features ``xc`` (g, d, m) by ``T`` Newton–Schulz steps."""
        g, d, m = xc.shape
        eye = torch.eye(d, device=xc.device, dtype=xc.dtype).expand(g, d, d)
        cov = torch.baddbmm(eye, xc, xc.transpose(1, 2), beta=self.eps, alpha=1.0 / m)
        trace = cov.diagonal(dim1=1, dim2=2).sum(-1).reshape(g, 1, 1)
        # The coupled form (Y_0 = S_N, Z_0 = I, M = (3I - Z Y)/2, Y <- Y M, Z <- M Z) has Z_k = P_k in exact
        # arithmetic but stays stable in float32 for the many iterations an ill-conditioned S_N needs, where the
        # uncoupled P^3 S_N form diverges (Higham, Functions of Matrices, sec. 6.7).
        y = cov / trace
        z = eye
        for _ in range(self.T):
            m = torch.baddbmm(eye, z, y, beta=1.5, alpha=-0.5)
            y, z = torch.bmm(y, m), torch.bmm(m, z)
        return z / trace.sqrt()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"expected (B, {self.num_features}, H, W) features; got {tuple(x.shape)}")
        b, c, h, w = x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            xg = x.float().transpose(0, 1).reshape(self.num_groups, c // self.num_groups, -1)
            if self.training:
                if xg.shape[-1] < 2:
                    raise ValueError("whitening in training mode needs more than one value per channel")
                mean = xg.mean(-1, keepdim=True)
                xc = xg - mean
                wm = self.whitening_matrix(xc)
                with torch.no_grad():
                    self.running_mean.lerp_(mean.detach(), self.momentum)
                    self.running_wm.lerp_(wm.detach(), self.momentum)
            else:
                xc = xg - self.running_mean
                wm = self.running_wm
            out = torch.bmm(wm, xc).reshape(c, b, h, w).transpose(0, 1)
            if self.affine:
                out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out.to(x.dtype)


    @torch.no_grad()
    def calibrate(self, x: torch.Tensor, T: int | None = None) -> None:
        """Set the running mean / whitening matrix from all positions of ``x`` (a whole data set's layer input).

        Ours: the running average of per-batch whitening matrices is not the whitening matrix of the pooled data
        (W is not linear in the covariance), so after training we recompute it once, as BatchNorm recalibration does,
        optionally with more iterations ``T`` than training used (a full whitening of the pooled statistics).
        """
        b, c = x.shape[:2]
        xg = x.float().transpose(0, 1).reshape(self.num_groups, c // self.num_groups, -1)
        mean = xg.mean(-1, keepdim=True)
        train_T = self.T
        self.T = T or train_T
        try:
            self.running_wm.copy_(self.whitening_matrix(xg - mean))
        finally:
            self.T = train_T
        self.running_mean.copy_(mean)


class ConceptRotation(nn.Module):
    """Orthogonal rotation R (per whitening group) after whitening, aligned with concepts outside back-propagation.

    ``accumulate(xhat, k, weights)`` records the (negative) weighted mean whitened feature of concept k's samples as
    row k of the gradient G of F(R) = sum(G * R) = -sum_k mean activation of rotated channel k on concept k;
    ``update()`` minimises F over orthogonal R with Cayley steps Y(tau) = (I + tau/2 A)^-1 (I - tau/2 A) R,
    A = G R^T - R G^T, tau found by bisection until the Armijo and curvature (Wolfe) conditions hold.
    """

    def __init__(self, num_features: int, num_groups: int = 1) -> None:
        super().__init__()
        d = num_features // num_groups
        self.num_features, self.num_groups, self.group_size = num_features, num_groups, d
        self.register_buffer("rotation", torch.eye(d).expand(num_groups, d, d).clone())
        self.register_buffer("grad_sum", torch.zeros(num_groups, d, d))
        self.register_buffer("counts", torch.zeros(num_features))

    def forward(self, xhat: torch.Tensor) -> torch.Tensor:
        b, c, h, w = xhat.shape
        xg = xhat.transpose(0, 1).reshape(self.num_groups, self.group_size, -1)
        return torch.bmm(self.rotation.to(xg.dtype), xg).reshape(c, b, h, w).transpose(0, 1)

    @torch.no_grad()
    def accumulate(self, xhat: torch.Tensor, concept: int, weights: torch.Tensor | None = None) -> None:
        """Add concept ``concept``'s mean whitened (un-rotated) feature, weighted over positions by ``weights``."""
        if not 0 <= concept < self.num_features:
            raise ValueError(f"concept index must lie in [0, {self.num_features - 1}]; got {concept}")
        xhat = xhat.float()
        if weights is None:
            vec = xhat.mean(dim=(0, 2, 3))
        else:
            wts = weights.float().to(xhat.device)
            if wts.shape[-2:] != xhat.shape[-2:]:
                wts = F.adaptive_avg_pool2d(wts, xhat.shape[-2:])
            total = wts.sum()
            if total <= 0:
                return
            vec = (xhat * wts).sum(dim=(0, 2, 3)) / total
        g, r = divmod(concept, self.group_size)
        self.grad_sum[g, r] -= vec[g * self.group_size:(g + 1) * self.group_size]
        self.counts[concept] += 1

    @torch.no_grad()
    def update(self, outer_steps: int = 2, max_search: int = 60) -> None:
        """Cayley-transform steps on R with a curvilinear line search; resets the accumulated gradient."""
        counts = self.counts.clamp(min=1).reshape(self.num_groups, self.group_size, 1)
        grad = (self.grad_sum / counts).double()
        rot = self.rotation.double()
        eye = torch.eye(self.group_size, dtype=rot.dtype, device=rot.device).expand_as(rot)
        c1, c2 = 1e-4, 0.9
        for _ in range(outer_steps):
            skew = grad @ rot.transpose(1, 2) - rot @ grad.transpose(1, 2)
            slope0 = -0.5 * (skew**2).sum()
            if slope0.abs() < 1e-18:
                break
            f_rot = (grad * rot).sum()
            tau, low, high = 1.0, 0.0, float("inf")
            for _ in range(max_search):
                inv = torch.linalg.inv(eye + 0.5 * tau * skew)
                cand = inv @ (eye - 0.5 * tau * skew) @ rot
                f_cand = (grad * cand).sum()
                slope = -(grad * (inv @ skew @ (0.5 * (rot + cand)))).sum()
                if f_cand > f_rot + c1 * tau * slope0:  # not enough decrease: shorter step
                    high = tau
                elif slope < c2 * slope0:  # still steep: longer step
                    low = tau
                else:
                    break
                tau = 0.5 * (low + high) if high < float("inf") else 2.0 * tau
            rot = torch.linalg.inv(eye + 0.5 * tau * skew) @ (eye - 0.5 * tau * skew) @ rot
        # re-orthogonalise against round-off (QR with positive diagonal keeps the rotation)
        q, r = torch.linalg.qr(rot)
        q = q * torch.sign(r.diagonal(dim1=1, dim2=2)).unsqueeze(1)
        self.rotation.copy_(q.to(self.rotation.dtype))
        self.grad_sum.zero_()
        self.counts.zero_()


class WhiteningBlock(nn.Module):
    """Drop-in for ``BatchNorm2d``: IterNorm whitening, then the concept rotation, then an optional affine."""

    def __init__(self, num_features: int, num_groups: int = 1, T: int = 5, eps: float = 1e-5,
                 momentum: float = 0.1, affine: bool = False, rotation: bool = True) -> None:
        super().__init__()
        self.num_features = num_features
        self.whiten = IterNormWhitening(num_features, num_groups, T, eps, momentum, affine=False)
        self.rotation = ConceptRotation(num_features, num_groups) if rotation else None
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.whiten(x)
        if self.rotation is not None:
            out = self.rotation(out)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out

    @torch.no_grad()
    def accumulate_concept(self, x: torch.Tensor, concept: int, weights: torch.Tensor | None = None) -> None:
        """Whiten ``x`` (the block's input) with the running statistics and record it for concept ``concept``."""
        if self.rotation is None:
            raise RuntimeError("this WhiteningBlock was built with rotation=False")
        was_training = self.whiten.training
        self.whiten.eval()
        try:
            self.rotation.accumulate(self.whiten(x), concept, weights)
        finally:
            self.whiten.train(was_training)


def batchnorm_or_whitening_layers(model: nn.Module) -> list[str]:
    """Module paths of the ``BatchNorm2d`` and ``WhiteningBlock`` layers of ``model``, in order."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d | WhiteningBlock)]


def batchnorm_layers(model: nn.Module) -> list[str]:
    """Module paths of the ``BatchNorm2d`` layers of ``model`` (candidates for ``replace_batchnorm``)."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]


def replace_batchnorm(model: nn.Module, layer_name: str, **block_kwargs: Any) -> WhiteningBlock:
    """Swap the ``BatchNorm2d`` at ``layer_name`` (e.g. ``"features.2.4"``) for a ``WhiteningBlock``; return it."""
    try:
        old = model.get_submodule(layer_name)
    except AttributeError as exc:
        raise ValueError(f"{layer_name!r} is not a module of the model; BatchNorm2d layers: "
                         f"{batchnorm_layers(model)}") from exc
    if not isinstance(old, nn.BatchNorm2d):
        raise ValueError(f"{layer_name!r} is a {type(old).__name__}, not a BatchNorm2d; BatchNorm2d layers: "
                         f"{batchnorm_layers(model)}")
    block = WhiteningBlock(old.num_features, **block_kwargs)
    parent_name, _, child = layer_name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, block)
    return block


# ----------------------------------------------------------------------------------------------------- detector
def _run_capturing(seq: nn.Module, x: torch.Tensor, parts: Sequence[str]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run a chain of nested ``nn.Sequential``; return (output, input of, output of) the module at ``parts``."""
    pre = post = None
    for name, child in seq.named_children():
        if name == parts[0]:
            if len(parts) > 1:
                x, pre, post = _run_capturing(child, x, parts[1:])
            else:
                pre = x
                x = child(x)
                post = x
        else:
            x = child(x)
    if pre is None or post is None:
        raise ValueError(f"module {parts[0]!r} not found in {type(seq).__name__}")
    return x, pre, post


class WhiteningDetector(nn.Module):
    """Real/fake face detector: ``SmallCNN`` with a ``WhiteningBlock`` (``whiten=True``) or its BatchNorm at ``layer``.

    ``forward(x)`` -> logits (B, 2) (index 1 = fake); ``forward_features(x)`` -> last feature map;
    ``forward_intermediates(x)`` -> dict with ``"pre_norm"`` (the layer's input), ``"norm"`` (its output: the
    whitened, rotated channel maps), ``"features"`` and ``"logits"``; ``whitened_features(x)`` -> ``"norm"``.
    ``concepts[k]`` names what channel k of the layer is aligned with (whitened detector only).
    """

    def __init__(self, in_channels: int = 1, width: int = 16, depth: int = 3, whiten: bool = True,
                 layer: str = "features.2.4", num_groups: int = 1, T: int = 5, momentum: float = 0.1,
                 concepts: Sequence[str] = DEFAULT_CONCEPTS, dropout: float = 0.1) -> None:
        super().__init__()
        self.backbone = SmallCNN(in_channels, 2, width, depth, dropout)
        for module in self.backbone.modules():  # captured maps must not be overwritten by an in-place ReLU
            if isinstance(module, nn.ReLU):
                module.inplace = False
        if not layer.startswith("features."):
            raise ValueError(f"layer must be a path inside backbone.features, e.g. 'features.2.4'; got {layer!r}; "
                             f"BatchNorm2d layers: {batchnorm_layers(self.backbone)}")
        self.layer, self.whiten, self.in_channels = layer, whiten, in_channels
        if whiten:
            for name in concepts:
                _check_concept(name)
            self.concepts = tuple(concepts)
            block = replace_batchnorm(self.backbone, layer, num_groups=num_groups, T=T, momentum=momentum)
            if len(self.concepts) > block.num_features:
                raise ValueError(f"{len(self.concepts)} concepts but the layer has {block.num_features} channels")
        else:
            self.concepts = ()
            if not isinstance(self.backbone.get_submodule(layer), nn.BatchNorm2d):
                raise ValueError(f"{layer!r} is not a BatchNorm2d; choose one of {batchnorm_layers(self.backbone)}")

    @property
    def norm_layer(self) -> nn.Module:
        """The layer the dashboards look into (a ``WhiteningBlock`` or the baseline's ``BatchNorm2d``)."""
        return self.backbone.get_submodule(self.layer)

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.backbone.gradcam_layer

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward_intermediates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = self.layer.split(".")[1:]
        features, pre, post = _run_capturing(self.backbone.features, x, parts)
        return {"pre_norm": pre, "norm": post, "features": features,
                "logits": self.backbone.forward_head(features)}

    def whitened_features(self, x: torch.Tensor) -> torch.Tensor:
        """The channel maps (B, C, h, w) at the whitening layer (the BatchNorm output for the baseline)."""
        return self.forward_intermediates(x)["norm"]

    @torch.no_grad()
    def align_concepts(self, images: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor) -> None:
        """One rotation update: accumulate every concept on this batch (its qualifying samples), then update R."""
        if not self.whiten:
            raise RuntimeError("the plain (BatchNorm) detector has no concept rotation")
        block = self.norm_layer
        was_training = self.training
        self.eval()
        try:
            pre = self.forward_intermediates(images)["pre_norm"]
            for k, name in enumerate(self.concepts):
                keep, weights = concept_weights(name, images, labels, masks)
                if keep.any():
                    block.accumulate_concept(pre[keep], k, weights[keep])
            block.rotation.update()
        finally:
            self.train(was_training)


    @torch.no_grad()
    def calibrate(self, images: torch.Tensor, labels: torch.Tensor | None = None, T: int | None = None,
                  batch_size: int = 512) -> None:
        """Recompute the layer's running statistics over ``images`` (whitening: with ``T`` iterations; baseline:
        the BatchNorm's mean / variance), then, given ``labels`` and when the layer is the backbone's last
        normalisation, refit the linear head (a logistic regression on the pooled features). Ours, not the paper's;
        applied to both detectors so that the comparison is fair."""
        dev = next(self.parameters()).device
        self.eval()
        pre = torch.cat([self.forward_intermediates(images[i:i + batch_size].to(dev))["pre_norm"].float()
                         for i in range(0, len(images), batch_size)])
        if self.whiten:
            self.norm_layer.whiten.calibrate(pre, T)
        else:
            bn = self.norm_layer
            bn.running_mean.copy_(pre.mean(dim=(0, 2, 3)))
            bn.running_var.copy_(pre.var(dim=(0, 2, 3)))
        if labels is not None and self.layer == batchnorm_or_whitening_layers(self.backbone)[-1]:
            from sklearn.linear_model import LogisticRegression

            pooled = torch.cat([self.backbone.forward_head(self.forward_features(images[i:i + batch_size].to(dev)),
                                                           pre_logits=True).float().cpu()
                                for i in range(0, len(images), batch_size)]).numpy()
            clf = LogisticRegression(C=1.0, max_iter=2000).fit(pooled, labels.numpy())
            w = torch.as_tensor(clf.coef_[0], dtype=torch.float32)
            b = float(clf.intercept_[0])
            head = self.backbone.head
            head.weight.copy_(torch.stack([-w / 2, w / 2]).to(head.weight))
            head.bias.copy_(torch.tensor([-b / 2, b / 2]).to(head.bias))


def _check_concept(name: str) -> None:
    if name not in FACE_REGIONS and name not in CLASS_CONCEPTS and name != "manipulated":
        raise ValueError(f"unknown concept {name!r}; choose facial regions {sorted(FACE_REGIONS)}, 'manipulated', "
                         "'real' or 'fake'")


def concept_weights(name: str, images: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(samples that show concept ``name``, (B, 1, H, W) position weights) for one batch.

    Facial region: real faces, weighted by the region's mask; ``"manipulated"``: fakes, weighted by their true
    mask; ``"real"`` / ``"fake"``: whole images of that class.
    """
    _check_concept(name)
    b, _, h, w = images.shape
    if name == "manipulated":
        return (labels == 1) & (masks.flatten(1).sum(1) > 0), masks.float()
    if name in CLASS_CONCEPTS:
        return labels == CLASS_CONCEPTS[name], torch.ones(b, 1, h, w, device=images.device)
    region = torch.from_numpy(region_mask(name, h)).to(images.device)
    return labels == 0, region.expand(b, 1, h, w)


# ---------------------------------------------------------------------------------------------- explanations
def _minmax(maps: torch.Tensor) -> torch.Tensor:
    flat = maps.flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp(min=1e-8)).view_as(maps)


def channel_maps(model: WhiteningDetector, images: torch.Tensor, channel: int) -> torch.Tensor:
    """IFFD's explanation: channel ``channel`` of the layer, sigmoid, min-max per image, upsampled -> (B, H, W)."""
    x = check_images(images, "images", channels=model.in_channels, value_range=(0, 1))
    dev = next(model.parameters()).device
    n_channels = model.norm_layer.num_features
    if not 0 <= channel < n_channels:
        raise ValueError(f"channel must lie in [0, {n_channels - 1}]; got {channel}")
    model.eval()
    with torch.no_grad():
        fmap = model.whitened_features(x.to(dev))[:, channel:channel + 1].float()
    up = F.interpolate(torch.sigmoid(fmap), size=x.shape[-2:], mode="bilinear", align_corners=False)
    return _minmax(up[:, 0]).cpu()


def gradcam_maps(model: WhiteningDetector, images: torch.Tensor, target: int = 1) -> torch.Tensor:
    """Grad-CAM (Captum ``LayerGradCam`` on the last conv block) for class ``target``, ReLU, min-max -> (B, H, W)."""
    from captum.attr import LayerAttribution, LayerGradCam

    x = check_images(images, "images", channels=model.in_channels, value_range=(0, 1))
    dev = next(model.parameters()).device
    model.eval()
    cam = LayerGradCam(model, model.gradcam_layer).attribute(x.to(dev), target=target, relu_attributions=True)
    up = LayerAttribution.interpolate(cam.detach(), tuple(x.shape[-2:]), interpolate_mode="bilinear")
    return _minmax(up[:, 0].float()).cpu()


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, threshold: float = 0.3) -> float:
    """Fraction of images whose map maximum lies inside the true mask (soft mask > ``threshold``)."""
    if maps.shape[0] == 0:
        raise ValueError("pointing_game needs at least one map")
    masks = masks.reshape(maps.shape)
    peak = maps.flatten(1).argmax(1)
    return float((masks.flatten(1).gather(1, peak[:, None])[:, 0] > threshold).float().mean())


def channel_correlation(features: torch.Tensor) -> torch.Tensor:
    """Pearson correlation (C, C) of a layer's channels over all positions and images (constant channels: 0)."""
    c = features.shape[1]
    flat = features.detach().float().transpose(0, 1).reshape(c, -1)
    flat = flat - flat.mean(1, keepdim=True)
    std = flat.pow(2).mean(1).sqrt()
    corr = (flat @ flat.T) / flat.shape[1] / (std[:, None] * std[None, :]).clamp(min=1e-12)
    alive = std > 1e-6
    corr = corr * (alive[:, None] & alive[None, :])
    return corr.fill_diagonal_(1.0)


def mean_offdiag_correlation(features: torch.Tensor) -> float:
    """Decorrelation measure: mean |off-diagonal correlation| of a layer's channels (0 = fully decorrelated)."""
    corr = channel_correlation(features)
    c = corr.shape[0]
    return float((corr.abs().sum() - corr.diagonal().abs().sum()) / (c * (c - 1)))


def layer_correlations(model: WhiteningDetector, images: torch.Tensor, batch_size: int = 256
                       ) -> dict[str, torch.Tensor]:
    """Channel correlation of the layer's input (``"before"``) and output (``"after"``), eval mode, over ``images``."""
    x = check_images(images, "images", channels=model.in_channels)
    dev = next(model.parameters()).device
    model.eval()
    pre, post = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out = model.forward_intermediates(x[i:i + batch_size].to(dev))
            pre.append(out["pre_norm"].float().cpu())
            post.append(out["norm"].float().cpu())
    return {"before": channel_correlation(torch.cat(pre)), "after": channel_correlation(torch.cat(post))}


def channel_region_scores(model: WhiteningDetector, images: torch.Tensor,
                          regions: Sequence[str] = ("eyes", "nose", "mouth")) -> torch.Tensor:
    """(C, R) mean activation of each layer channel inside each facial region, z-scored per channel over regions.

    Drawn by the channel gallery: which facial region each channel answers to.
    """
    x = check_images(images, "images", channels=model.in_channels)
    dev = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        fmap = model.whitened_features(x.to(dev)).float().cpu()
    h = fmap.shape[-1]
    scores = []
    for name in regions:
        weights = F.adaptive_avg_pool2d(torch.from_numpy(region_mask(name, x.shape[-1]))[None, None], (h, h))[0, 0]
        scores.append((fmap * weights).sum((2, 3)).mean(0) / weights.sum())
    table = torch.stack(scores, 1)
    return (table - table.mean(1, keepdim=True)) / table.std(1, keepdim=True).clamp(min=1e-8)


# ----------------------------------------------------------------------------------------- training / metrics
def predict_fake_proba(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """P(fake) for each image (eval mode, on the model's device)."""
    dev = next(model.parameters()).device
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            out.append(torch.softmax(model(images[i:i + batch_size].to(dev)).float(), 1)[:, 1].cpu())
    return torch.cat(out)


def evaluate_detector(model: nn.Module, data: ForgerySet) -> dict[str, float]:
    """Frame-level accuracy (threshold 0.5) and ROC AUC of P(fake) on ``data``."""
    proba = predict_fake_proba(model, data.images).numpy()
    labels = data.labels.numpy()
    auc = float(roc_auc_score(labels, proba)) if len(np.unique(labels)) == 2 else float("nan")
    return {"acc": float(((proba > 0.5) == labels).mean()), "auc": auc}


def make_step(align_every: int, align_batch: ForgerySet | None):
    """A ``fit`` step: cross-entropy, and for a whitened detector a concept alignment every ``align_every`` steps."""
    state = {"step": 0}
    gen = torch.Generator().manual_seed(0)

    def step(model: WhiteningDetector, batch: Any, device: torch.device):
        x, y = batch[0].to(device), batch[1].to(device)
        if model.whiten and align_batch is not None and state["step"] % align_every == 0 and state["step"] > 0:
            pick = torch.randperm(len(align_batch), generator=gen)[:128]
            with torch.autocast(device_type=device.type, enabled=False):
                model.align_concepts(align_batch.images[pick].to(device), align_batch.labels[pick].to(device),
                                     align_batch.masks[pick].to(device))
        state["step"] += 1
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        return loss, {"acc": float((logits.argmax(1) == y).float().mean())}

    return step


#: Training settings: ``full`` for the dashboard default (about a minute on a 2-core CPU), ``smoke`` for tests.
SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {"n_per_identity": 6, "epochs": 10, "width": 8, "batch_size": 32},
    "full": {"n_per_identity": 8, "epochs": 12, "width": 16, "batch_size": 32},
}


def detector_config(whiten: bool = True, smoke: bool = False, train_kinds: Sequence[str] | None = None,
                    **overrides: Any) -> dict[str, Any]:
    """The recipe config (cache key) of ``whitening_detector``."""
    setting = dict(SETTINGS["smoke" if smoke else "full"])
    config = {"recipe": "whitening_detector", "whiten": whiten, "size": 32, "depth": 3, "layer": "features.2.4",
              "num_groups": 1, "T": 5, "lr": 5e-3, "weight_decay": 5e-4, "align_every": 20, "seed": 0,
              "calibrate_T": 20, "calibrate": "layer statistics + head refit, both detectors",
              "concepts": list(DEFAULT_CONCEPTS), "train_kinds": list(train_kinds or ("self_blend", "swap", "color",
                                                                                     "warp")), **setting}
    config.update(overrides)
    return config


def build_detector(config: dict[str, Any]) -> WhiteningDetector:
    """The untrained detector of a recipe ``config`` (initial weights seeded by ``config['seed']``)."""
    torch.manual_seed(config["seed"])
    return WhiteningDetector(1, config["width"], config["depth"], config["whiten"], config["layer"],
                             config["num_groups"], config["T"], concepts=config["concepts"])


def train_detector(model: WhiteningDetector, config: dict[str, Any], device: str = "auto", progress: bool = True,
                   max_steps: int | None = None) -> dict[str, Any]:
    """Train ``model`` on the embedded forgery set's train split (``config['train_kinds']``) with ``fit``."""
    kinds = tuple(config["train_kinds"])
    train = load_forgery_faces("train", config["size"], config["n_per_identity"], seed=config["seed"]).with_kinds(kinds)
    val = load_forgery_faces("val", config["size"], config["n_per_identity"], seed=config["seed"])
    hist = fit(model, train.loader(config["batch_size"], seed=config["seed"]),
               make_step(config["align_every"], train if config["whiten"] else None),
               epochs=config["epochs"], lr=config["lr"], weight_decay=config["weight_decay"], device=device,
               progress=progress, max_steps=max_steps, seed=config["seed"],
               desc=f"{'whitened' if config['whiten'] else 'plain'} detector",
               evaluate=lambda m: {f"val_{k}": v for k, v in evaluate_detector(m, val).items()})
    meta = {"history": hist.epochs, **{k: v for k, v in hist.epochs[-1].items() if k.startswith("val_")}}
    if config["calibrate_T"]:
        model.calibrate(train.images, train.labels, T=config["calibrate_T"])
        meta.update({f"val_{k}_calibrated": v for k, v in evaluate_detector(model, val).items()})
    return meta


def whitening_detector(whiten: bool = True, smoke: bool = False, device: str = "auto", retrain: bool = False,
                       progress: bool = True, train_kinds: Sequence[str] | None = None,
                       **overrides: Any) -> WhiteningDetector:
    """The cached detector (whitened or the plain BatchNorm baseline) trained on the embedded forgery faces."""
    config = detector_config(whiten, smoke, train_kinds, **overrides)
    name = f"whitening_detector_{'white' if whiten else 'plain'}{'_smoke' if smoke else ''}"
    return cached_model(name, lambda: build_detector(config),
                        lambda m: train_detector(m, config, device, progress), config, retrain=retrain)


def gpu_check_whitening(device: str = "cuda", max_steps: int = 50) -> dict[str, float]:
    """Train the full whitened setting for ``max_steps`` steps on ``device``; first/last loss and images per second."""
    config = detector_config(True, smoke=False, epochs=10_000)
    train = load_forgery_faces("train", config["size"], config["n_per_identity"])
    return training_throughput(build_detector(config), train.loader(config["batch_size"]),
                               make_step(config["align_every"], train), max_steps=max_steps, lr=config["lr"],
                               device=device)
