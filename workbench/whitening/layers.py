"""Feature-whitening layers: IterNorm whitening, the concept rotation, and the block that replaces a BatchNorm.

``IterNormWhitening`` follows IterNorm (Huang et al., CVPR 2019) and ``ConceptRotation`` Concept Whitening's
IterNormRotation (Chen, Bei & Rudin, Nat. Mach. Intell. 2020); see :mod:`workbench.whitening` for the paper.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


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
                 momentum: float = 0.1) -> None:
        super().__init__()
        if num_features % num_groups:
            raise ValueError(f"num_features ({num_features}) must be divisible by num_groups ({num_groups})")
        if T < 1:
            raise ValueError(f"T (Newton–Schulz iterations) must be at least 1; got {T}")
        self.num_features, self.num_groups, self.T, self.eps, self.momentum = num_features, num_groups, T, eps, momentum
        d = num_features // num_groups
        self.register_buffer("running_mean", torch.zeros(num_groups, d, 1))
        self.register_buffer("running_wm", torch.eye(d).expand(num_groups, d, d).clone())

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
        self.whiten = IterNormWhitening(num_features, num_groups, T, eps, momentum)
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

