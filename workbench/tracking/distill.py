"""Channel distillation (CD): choose the informative feature channels of a correlation-filter tracker on the fly.

From the paper (Ge, Luo, Zhang, Hua, Tao, "Distilling Channels for Efficient Deep Tracking", IEEE TIP 2020; only its
abstract is public): one energy couples feature compression, response-map generation and model update, channels
are selected adaptively during tracking, and the framework applies to DCF and ECO.

Our reconstruction (closest public design: GFS-DCF, Xu et al., ICCV 2019):

    E(f, w) = sum_j a_j || sum_d w_d (x_j^d * f^d) - y ||^2 + lambda sum_d ||f^d||^2 + mu sum_d |w_d|
              + eta ||f - f_{t-1}||^2,        w >= 0

solved by alternation. The f-step (filters given w) is the tracker's own solver: per-frequency closed form for the
DCF (:class:`~workbench.tracking.dcf.DCFTracker`), conjugate gradient for the ECO-style tracker. The w-step (this
module) is a non-negative lasso in w solved by projected proximal gradient (soft-thresholding then clipping at 0),
followed by keeping the top-k weights; one w-step then one f-step per selection (not iterated to convergence).
Our choices beyond the abstract: the w-step scores the single-sample closed-form filters of all channels, fitted
to the current frame (dropped channels have no model filter), on held-out views (the target patch re-sampled at
slightly different scales) rather than on the sample the filters were fitted to, where every channel fits
perfectly; ``mu`` is relative to the largest channel-label correlation so that it does not
depend on feature scale or map size; the top-k weights are re-fitted on their own (undoing the bias of the cut);
selection is due every ``period`` frames but skipped while the response peak stays near its level after the last
selection (nothing changed, so the scoring's extra extractions are not spent; at most ``max_skips`` in a row); with an
extractor whose channels share work in blocks (hand-crafted: gradients, colour), ``cost_tolerance`` trades a little
fit for leaving whole blocks uncomputed; a new channel set replaces the kept one only if it reaches a lower
energy on the held-out views (hysteresis against flip-flopping); weights are rescaled so that the kept, weighted
channels carry the energy all channels had, keeping ``lambda`` meaningful; ``eta`` defaults to 0 (the trackers'
own model update, a learning rate or a sample space, carries the history; a positive ``eta`` did not help on our
development sequences). Channels with ``w_d = 0`` are neither extracted nor correlated until the next selection.

Ours, not the paper's: a quality check (:class:`QualityCheck`, off unless given) so that the selection checks itself
on the frames it has. The distilled response's peak-to-sidelobe ratio (PSR, MOSSE's confidence) is compared with its
running median over the last ``window`` distilled frames; when it falls below ``drop`` x that median, the kept
channels have stopped explaining the target, and the tracker falls back to all channels (the full-channel tracker)
for ``hold`` frames, locating the failed frame again with them; the channels it adds start from the held-back
sample of the last selection (a frame the tracker was sure of), not from the frame that failed. Then the unified
energy selects afresh (the all-channel set is not offered as the previous set: it would always fit best).
:class:`QualityMonitor` is that state machine, apart from any tracker.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from workbench.recipes import optional_field


@dataclass(frozen=True)
class QualityCheck:
    """Settings of CD's quality check (module docstring): fire when the distilled response's PSR falls below ``drop``
    x its median over the last ``window`` distilled frames (checked once ``window // 2`` frames, at least 3, are
    there), then track with all channels for ``hold`` frames before selecting afresh."""

    drop: float = 0.7
    window: int = 20
    hold: int = 20

    def __post_init__(self) -> None:
        if not 0.0 < self.drop < 1.0:
            raise ValueError(f"drop must lie in (0, 1), got {self.drop}")
        if self.window < 2 or self.hold < 1:
            raise ValueError(f"window must be >= 2 and hold >= 1, got {self.window}, {self.hold}")


@dataclass(frozen=True)
class QualityReading:
    """What the quality check read on one tracked frame (:attr:`QualityMonitor.last_reading`, handed on in
    :attr:`~workbench.tracking.base.FrameTelemetry.quality`).

    ``psr`` the distilled response's PSR it was given (None where the tracker had none); ``median`` the median of
    its history then (None while empty); ``threshold`` what ``psr`` was compared with, ``drop`` x ``median`` (None
    where it compared nothing); ``history`` how many distilled frames that median spans and ``needed`` how many it
    waits for; ``state`` one of :data:`QUALITY_STATES`; ``hold_left`` the frames of fallback left after this one."""

    psr: float | None
    median: float | None
    threshold: float | None
    history: int
    needed: int
    state: str
    hold_left: int = 0


#: :attr:`QualityReading.state`: compared and passed, compared and fired, too little history to compare, no PSR to
#: compare, on the fallback channels (not compared), the fallback's last frame (select afresh)
QUALITY_STATES = ("passed", "fired", "warming up", "no PSR", "fallback", "restore")


class QualityMonitor:
    """The quality check's state: the distilled frames' PSR history and the frames of fallback left.

    :meth:`observe` takes each tracked frame's PSR and says what the tracker does next: ``"fire"`` (fall back now),
    ``"restore"`` (the fallback is over: select afresh) or ``""`` (carry on); :attr:`last_reading` says what it
    compared on that frame."""

    def __init__(self, check: QualityCheck) -> None:
        self.check = check
        self.history: deque[float] = deque(maxlen=check.window)
        self.fallback_left = 0
        self.last_reading: QualityReading | None = None

    @property
    def in_fallback(self) -> bool:
        """Whether the tracker is tracking with the fallback channels."""
        return self.fallback_left > 0

    def observe(self, psr: float | None) -> str:
        """Record ``psr`` (the frame's peak-to-sidelobe ratio; None or NaN are not evidence) and decide."""
        value = float(psr) if psr is not None and np.isfinite(psr) else None
        median, spans = (float(np.median(self.history)) if self.history else None), len(self.history)
        needed = max(3, self.check.window // 2)
        action, state, threshold = "", "", None
        if self.fallback_left > 0:
            self.fallback_left -= 1
            state = "fallback"
            if self.fallback_left == 0:
                self.history.clear()  # the new selection's PSR level is its own
                action, state = "restore", "restore"
        elif value is None:
            state = "no PSR"
        elif spans < needed:
            state = "warming up"
        else:
            threshold = self.check.drop * median  # type: ignore[operator]
            state = "fired" if value < threshold else "passed"
        if state == "fired":
            self.fallback_left, action = self.check.hold, "fire"
        elif state in ("warming up", "passed"):
            self.history.append(value)  # type: ignore[arg-type]
        self.last_reading = QualityReading(value, median, threshold, spans, needed, state, self.fallback_left)
        return action


@dataclass(frozen=True)
class ChannelDistillation:
    """Settings of channel distillation (see the module docstring for the energy).

    ``keep`` (a count) or ``keep_ratio`` (a fraction of the extractor's channels) sets k, the most channels kept;
    ``mu`` is the L1 weight as a fraction of the largest channel-label correlation (at 1 every channel is dropped);
    ``eta`` the temporal term's weight relative to the mean sample energy; ``period`` the frames between selections;
    ``iterations`` the proximal-gradient steps of one w-step; ``views`` the scale factors of the held-out views.
    ``stable``: a scheduled selection is skipped while the response peak stays at ``stable`` x or more of its mean
    over the ``period`` frames after the last selection (nothing changed; 0 re-scores every ``period`` frames), at
    most ``max_skips`` times in a row. ``cost_tolerance``: with an extractor that names its channel blocks and
    their cost (``channel_blocks``), the cheapest blocks whose best channels reach at least ``1 - cost_tolerance``
    of the best energy reduction are chosen (0, the default: cost-blind; 0.1 is the benchmark's "fast" variant).
    ``quality``: the :class:`QualityCheck` that falls back to more channels when the kept ones stop working (None:
    no check, as the paper).
    """

    keep_ratio: float = 0.25
    keep: int | None = None
    mu: float = 0.05
    eta: float = 0.0
    period: int = 10
    iterations: int = 60
    views: tuple[float, ...] = (0.95, 1.05)
    stable: float = 0.9
    max_skips: int = 3
    cost_tolerance: float = 0.0
    quality: QualityCheck | None = optional_field()

    def __post_init__(self) -> None:
        if self.keep is None and not 0.0 < self.keep_ratio <= 1.0:
            raise ValueError(f"keep_ratio must lie in (0, 1], got {self.keep_ratio}")
        if self.keep is not None and self.keep < 1:
            raise ValueError(f"keep must be at least 1, got {self.keep}")
        if not 0.0 <= self.mu < 1.0:
            raise ValueError(f"mu must lie in [0, 1), got {self.mu}")
        if self.eta < 0:
            raise ValueError(f"eta must be non-negative, got {self.eta}")
        if self.period < 1 or self.iterations < 1:
            raise ValueError("period and iterations must be at least 1")
        if not 0.0 <= self.stable <= 1.0 or self.max_skips < 0 or not 0.0 <= self.cost_tolerance < 1.0:
            raise ValueError("stable must lie in [0, 1], max_skips be >= 0 and cost_tolerance lie in [0, 1)")
        if not self.views or any(v <= 0 for v in self.views):
            raise ValueError(f"views must be positive scale factors, got {self.views}")

    def n_keep(self, channels: int) -> int:
        """k for an extractor with ``channels`` channels."""
        k = self.keep if self.keep is not None else int(round(self.keep_ratio * channels))
        return int(np.clip(k, 1, channels))


def spectrum_weights(width: int, half_width: int) -> np.ndarray:
    """Parseval weights of the columns of an ``rfft2`` spectrum of a map ``width`` wide (2 for mirrored columns)."""
    weights = np.full(half_width, 2.0)
    weights[0] = 1.0
    if width % 2 == 0:
        weights[-1] = 1.0
    return weights


def nonnegative_lasso(gram: np.ndarray, corr: np.ndarray, mu: float, w0: np.ndarray, iterations: int) -> np.ndarray:
    """Minimise ``0.5 w'Gw - corr'w + mu |w|_1`` over ``w >= 0`` by accelerated projected proximal gradient (FISTA).

    The proximal step of ``mu |w|_1`` restricted to ``w >= 0`` is ``max(v - step * mu, 0)``.
    """
    lipschitz = float(np.linalg.eigvalsh(gram)[-1]) if gram.size else 0.0
    if lipschitz <= 0:
        return np.zeros_like(w0)
    step = 1.0 / lipschitz
    w = np.maximum(w0, 0.0)
    momentum, t = w.copy(), 1.0
    for _ in range(iterations):
        w_next = np.maximum(momentum - step * (gram @ momentum - corr + mu), 0.0)
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        momentum = w_next + ((t - 1.0) / t_next) * (w_next - w)
        w, t = w_next, t_next
    return w


def select_channels(
    responses: np.ndarray,
    label: np.ndarray,
    column_weights: np.ndarray,
    energy: np.ndarray,
    settings: ChannelDistillation,
    previous: np.ndarray | None = None,
    blocks: list[tuple[np.ndarray, float]] | None = None,
) -> np.ndarray:
    """The w-step: channel weights ``(D,)``, zero for dropped channels, at most k non-zero.

    ``responses`` ``(S, D, h, w')``: each channel's response spectrum (sample spectrum times that channel's filter)
    on S held-out views; ``label`` ``(h, w')`` the label spectrum; ``column_weights`` the Parseval weights of the
    columns; ``energy`` ``(D,)`` each channel's sample energy, used to rescale the kept weights; ``previous`` the
    channels kept so far, which stay unless the new top-k set reaches a lower energy on these views; ``blocks``
    ``[(channels, cost), ...]`` the extractor's groups of channels that share work (computing any channel of a
    block costs the block's cost): the top-k set is found within every union of blocks, and the cheapest one within
    ``settings.cost_tolerance`` of the best energy is kept.
    """
    n_views, n_channels = responses.shape[:2]
    root_q = np.sqrt(np.broadcast_to(column_weights, responses.shape[2:])).ravel()
    # Re(a^H b) of complex vectors is the real dot product of their stacked real and imaginary parts
    per_view = (responses.reshape(n_views, n_channels, -1) * root_q).transpose(1, 0, 2).reshape(n_channels, -1)
    design = np.concatenate([per_view.real, per_view.imag], axis=1).astype(np.float64)
    target = np.tile(label.ravel() * root_q, n_views)
    gram = design @ design.T
    corr = design @ np.concatenate([target.real, target.imag])
    mu_abs = settings.mu * max(float(corr.max()), 1e-12)
    k = settings.n_keep(n_channels)

    def refit(support: np.ndarray) -> tuple[np.ndarray, float]:
        """Lasso restricted to ``support`` (undoes the bias of the top-k cut) and its energy."""
        sub = np.ix_(support, support)
        v = nonnegative_lasso(gram[sub], corr[support], mu_abs, np.ones(support.size), settings.iterations)
        if not v.any():
            v[int(np.argmax(corr[support]))] = 1.0
        value = 0.5 * v @ gram[sub] @ v - corr[support] @ v + mu_abs * v.sum()
        return v, float(value)

    def top_k(allowed: np.ndarray) -> np.ndarray:
        w = nonnegative_lasso(gram[np.ix_(allowed, allowed)], corr[allowed], mu_abs, np.ones(allowed.size),
                              settings.iterations)
        order = np.argsort(-w, kind="stable")
        keep = allowed[order[:k][w[order[:k]] > 0]]
        # mu removed everything: keep the channel that correlates best with the label
        return keep if keep.size else allowed[[int(np.argmax(corr[allowed]))]]

    # candidates: (cost, preference, channels, weights, energy); the previous set is preferred at equal cost
    block_list = blocks or [(np.arange(n_channels), 1.0)]
    cost_of = np.zeros(n_channels, dtype=int)
    for b, (members, _) in enumerate(block_list):
        cost_of[np.asarray(members)] = b

    def cost(channels: np.ndarray) -> float:
        return float(sum(block_list[b][1] for b in set(cost_of[channels].tolist())))

    candidates = []
    for mask in range(1, 2 ** len(block_list)):
        allowed = np.concatenate([np.asarray(m) for b, (m, _) in enumerate(block_list) if mask >> b & 1])
        keep = top_k(np.sort(allowed))
        candidates.append((cost(keep), 1, keep, *refit(keep)))
    if previous is not None and previous.size:
        candidates.append((cost(previous), 0, previous, *refit(previous)))
    best = min(c[4] for c in candidates)
    tolerance = settings.cost_tolerance if blocks else 0.0
    good = [c for c in candidates if c[4] <= best + tolerance * abs(best)]
    _, _, keep, w_keep, _ = min(good, key=lambda c: (c[0], c[1], c[4]))
    w = np.zeros(n_channels)
    w[keep] = w_keep
    keep = keep[w_keep > 0]
    weights = np.zeros(n_channels)
    weights[keep] = w[keep] / w[keep].max()
    kept_energy = float(np.sum(weights**2 * energy))
    if kept_energy > 0:
        weights *= np.sqrt(float(energy.sum()) / kept_energy)
    return weights
