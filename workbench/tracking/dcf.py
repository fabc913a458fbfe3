"""Multi-channel discriminative correlation filter (DCF) tracker, with optional channel distillation.

The shared machinery (search geometry, scale search, the channel-distillation w-step bookkeeping) lives in
:class:`CorrelationTracker`, which :class:`DCFTracker` and :class:`~workbench.tracking.eco.ECOTracker` extend.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import fft

from workbench.tracking.base import (
    BoxLike,
    FrameTelemetry,
    StageClock,
    check_box,
    check_frame,
    cosine_window,
    gaussian_label,
    peak_to_sidelobe,
    sample_patch,
    subpixel_peak,
)
from workbench.tracking.distill import ChannelDistillation, QualityMonitor, select_channels, spectrum_weights
from workbench.tracking.features import FeatureExtractor, HOGColorFeatures
from workbench.tracking.params import CorrelationParams, DCFCDParams, DCFParams, resolve_params
from workbench.tracking.scale import ScaleFilter


class CorrelationTracker:
    """Base of the correlation-filter trackers: geometry, multi-scale detection and channel-distillation plumbing.

    Subclasses implement the model: ``_init_model``, ``_response_spectra``, ``_update_model``, ``_rebuild_model``
    (after a channel selection) and ``_model_bytes``.

    After each ``track`` call: ``response`` (the best scale's response map, centred), ``confidence`` (its
    peak-to-sidelobe ratio), ``channel_weights`` ``(D,)``, ``kept_channels`` (indices), ``correlations`` (channel
    correlations computed in that frame: correlated channels x scales) and ``feature_bytes`` (features extracted in
    that frame plus the model's stored spectra); :meth:`telemetry` hands them over as one record. With
    ``params.scale_filter`` DSST's :class:`~workbench.tracking.scale.ScaleFilter` sets the scale after the translation
    estimate, before the model update (``scale_response``: its last response over the scales).
    """

    name = "correlation tracker"
    #: the family's parameter preset and its channel-distilled variant (see :mod:`workbench.tracking.params`)
    params_class: type[CorrelationParams] = CorrelationParams
    distilled_params_class: type[CorrelationParams] = CorrelationParams

    def __init__(
        self,
        features: FeatureExtractor | None = None,
        channel_distillation: ChannelDistillation | None = None,
        *,
        params: CorrelationParams | None = None,
        name: str | None = None,
        **overrides: Any,
    ) -> None:
        """``params`` (default: the family's preset) holds the hyper-parameters; the keyword arguments of the same
        names (``padding=...``, ``learning_rate=...``) override single ones, and ``channel_distillation`` moves to the
        channel-distilled preset with those settings."""
        self.params = resolve_params(
            self.params_class, self.distilled_params_class, params, channel_distillation, overrides
        )
        self.features = features if features is not None else HOGColorFeatures()
        self.distillation: ChannelDistillation | None = getattr(self.params, "distillation", None)
        self.eta = self.distillation.eta if self.distillation is not None else 0.0
        self.scale_factors = self.params.scale_step ** (np.arange(self.params.scales) - (self.params.scales - 1) / 2.0)
        if name is not None:
            self.name = name
        elif self.distillation is not None:
            self.name = f"{self.name}-CD"
        self.response: np.ndarray | None = None
        self.confidence: float | None = None
        self.clock = StageClock()
        self.correlations = 0
        self.feature_bytes = 0
        self.scale_filter: ScaleFilter | None = None

    # ------------------------------------------------------------------------------------------------ public API

    def initialize(self, frame: np.ndarray, box: BoxLike) -> None:
        """Learn the target in ``box`` = (x, y, w, h), 0-based pixels, of ``frame`` (H x W x 3 or H x W)."""
        frame = check_frame(frame)
        x, y, w, h = check_box(box, frame.shape)
        self.clock.reset()
        self._frame_shape = frame.shape
        # float frames: 0..1 or 0..255, decided once on the first frame; features expect 0..255
        self._float_scale = 255.0 if frame.dtype != np.uint8 and float(frame.max()) <= 1.0 else 1.0
        frame = self._to_pixels(frame)
        self.pos = np.array([y + h / 2.0, x + w / 2.0])
        self.base_size = np.array([h, w])
        self.scale = 1.0
        self.window_size = self.base_size + self.params.padding * np.sqrt(h * w)
        cell = self.features.cell_size
        resize = self.params.template_size / np.sqrt(np.prod(self.window_size))
        cells = np.maximum(np.round(self.window_size * resize / cell), 4).astype(int)
        self.template = (int(cells[0] * cell), int(cells[1] * cell))
        probe = self.features.extract(self._patch(frame, 1.0), [0])
        self.map_size = probe.shape[:2]
        self.window = cosine_window(self.map_size)
        target_cells = self.base_size * np.array(self.map_size) / self.window_size
        sigma = self.params.sigma_factor * np.sqrt(np.prod(target_cells))
        self.label_spectrum = fft.rfft2(gaussian_label(self.map_size, sigma))
        self.column_weights = spectrum_weights(self.map_size[1], self.label_spectrum.shape[1])
        self.channel_weights = np.ones(self.features.channels)
        self.kept_channels = np.arange(self.features.channels)
        self.frame_index = 0
        self.response, self.confidence, self.correlations = None, None, 0
        self._selected_at, self._peak_reference, self._peaks = 0, None, []
        quality = self.distillation.quality if self.distillation is not None else None
        self._monitor = QualityMonitor(quality) if quality is not None else None
        self._held_back: np.ndarray | None = None
        self.quality_fired, self.quality_reading = False, None
        with self.clock("solve"):
            self._init_model(frame)
        if self.distillation is not None:
            self._distill(frame)
        if self.params.scale_filter is not None:
            self.scale_filter = ScaleFilter(self.params.scale_filter, self.features, self.base_size, frame.shape)
            with self.clock("scale search"):
                self.scale_filter.initialize(frame, self.pos, self.scale)
        self.feature_bytes = self._model_bytes() + self._held_back_bytes() + self._scale_model_bytes()

    def track(self, frame: np.ndarray) -> np.ndarray:
        """Locate the target in ``frame``; returns its box (x, y, w, h)."""
        if not hasattr(self, "pos"):
            raise RuntimeError("call initialize(frame, box) before track(frame)")
        frame = check_frame(frame)
        if frame.shape != self._frame_shape:
            raise ValueError(f"frame shape {frame.shape} differs from the first frame's {self._frame_shape}")
        frame = self._to_pixels(frame)
        self.clock.reset()
        self.frame_index += 1
        before = (self.pos, self.scale)
        extracted, peak = self._locate(frame)
        action = self._monitor.observe(self.confidence) if self._monitor is not None else ""
        self.quality_fired = action == "fire"
        self.quality_reading = self._monitor.last_reading if self._monitor is not None else None
        if action == "fire":  # the distilled response failed: fall back and look at this frame again
            self._fall_back()
            self.pos, self.scale = before
            correlations = self.correlations
            again, peak = self._locate(frame)
            extracted, self.correlations = extracted + again, correlations + self.correlations
        if self.scale_filter is not None:  # DSST: the scale at the translation estimate, not learnt if fired
            with self.clock("scale search"):
                self.scale, scaled = self.scale_filter.step(frame, self.pos, self.scale, learn=action != "fire")
            extracted += scaled
        if action != "fire":  # the frame whose response failed is not learnt
            if action == "restore" or (not self.in_fallback and self._rescore_due(peak)):
                extracted += self._distill(frame, fresh=action == "restore")
            else:
                with self.clock("solve"):
                    extracted += self._update_model(frame)
        self.feature_bytes = extracted + self._model_bytes() + self._held_back_bytes() + self._scale_model_bytes()
        return self.box

    @property
    def scale_response(self) -> np.ndarray | None:
        """The scale filter's last response over its scales (None without a scale filter or before a frame)."""
        return self.scale_filter.response if self.scale_filter is not None else None

    def _scale_model_bytes(self) -> int:
        return self.scale_filter.model_bytes if self.scale_filter is not None else 0

    def _locate(self, frame: np.ndarray) -> tuple[int, float]:
        """The scale search: move ``pos``/``scale`` to the best response's peak, set ``response``, ``confidence``
        and ``correlations``; returns the bytes extracted and the peak's value."""
        with self.clock("scale search"):
            samples = np.stack([self._features(frame, s) for s in self.scale_factors])
            spectra = self._response_spectra(self._detection_spectra(samples))
            with self.clock("fft"):
                responses = fft.irfft2(spectra, s=self.map_size)
            peaks = [subpixel_peak(r) for r in responses]
        best = int(np.argmax([p[2] for p in peaks]))
        dy, dx, peak = peaks[best]
        pixels_per_cell = self.window_size * self.scale * self.scale_factors[best] / np.array(self.map_size)
        self.pos = self.pos + np.array([dy, dx]) * pixels_per_cell
        self.pos = np.clip(self.pos, 0.0, np.array(self._frame_shape[:2], dtype=float))
        self.scale = float(np.clip(self.scale * self.scale_factors[best], 0.2, 5.0))
        self.response = np.fft.fftshift(responses[best])
        self.confidence = peak_to_sidelobe(responses[best])
        self.correlations = len(self.scale_factors) * self._correlated_channels()
        return samples.nbytes, peak

    @property
    def in_fallback(self) -> bool:
        """Whether the quality check has the tracker on all channels for now (False without a check)."""
        return self._monitor is not None and self._monitor.in_fallback

    def telemetry(self, frame: np.ndarray | None = None) -> FrameTelemetry:
        """The last ``initialize``/``track`` call's record: response map, channel weights and kept channels (copies),
        stage times, correlations, feature bytes and confidence; with ``frame`` (the frame just tracked) also the kept
        channels' feature maps at the tracked box, extracted once more for the views."""
        maps = None
        if frame is not None:
            maps = self.features.extract(self._patch(self._to_pixels(check_frame(frame)), 1.0), self.kept_channels)
        tracked = self.frame_index > 0 and self.response is not None
        return FrameTelemetry(
            self.response.astype(np.float32) if tracked else None, self.channel_weights.copy(),
            self.kept_channels.copy(), maps, dict(self.stage_seconds), correlations=self.correlations if tracked else 0,
            feature_bytes=int(self.feature_bytes), confidence=self.confidence if tracked else None,
            quality_fired=bool(self.quality_fired and tracked), fallback=bool(self.in_fallback and tracked),
            quality=self.quality_reading if tracked else None,
        )

    @property
    def stage_seconds(self) -> dict[str, float]:
        """Seconds each stage (:data:`~workbench.tracking.base.STAGES`) took in the last ``initialize``/``track``."""
        return self.clock.seconds

    @property
    def box(self) -> np.ndarray:
        """Current box (x, y, w, h)."""
        h, w = self.base_size * self.scale
        return np.array([self.pos[1] - w / 2.0, self.pos[0] - h / 2.0, w, h])

    # ------------------------------------------------------------------------------------------------ helpers

    def _to_pixels(self, frame: np.ndarray) -> np.ndarray:
        if frame.dtype == np.uint8:
            return frame
        return frame.astype(np.float32) * np.float32(self._float_scale)

    def _patch(self, frame: np.ndarray, scale: float) -> np.ndarray:
        return sample_patch(frame, self.pos, self.window_size * self.scale * scale, self.template)

    def _features(self, frame: np.ndarray, scale: float = 1.0, channels: np.ndarray | None = None) -> np.ndarray:
        """Weighted features ``(h, w, k)`` of the kept channels (or of ``channels``, unweighted)."""
        index = self.kept_channels if channels is None else channels
        with self.clock("features"):
            feats = self.features.extract(self._patch(frame, scale), index)
        if feats.shape[:2] != self.map_size:
            raise ValueError(f"feature map shape {feats.shape[:2]} differs from the first frame's {self.map_size}")
        return feats if channels is not None else feats * self.channel_weights[index].astype(np.float32)

    def _spectra(self, feats: np.ndarray) -> np.ndarray:
        """``(..., h, w, k)`` features -> ``(..., k, h, w')`` windowed spectra."""
        with self.clock("fft"):
            windowed = np.moveaxis(feats, -1, -3) * self.window
            return fft.rfft2(windowed).astype(np.complex64)

    def _correlated_channels(self) -> int:
        """Channels the filter is correlated with per scale (the ECO-style tracker correlates projections)."""
        return len(self.kept_channels)

    def _detection_spectra(self, feats: np.ndarray) -> np.ndarray:
        """Spectra the filter is applied to (the ECO-style tracker projects the channels first)."""
        return self._spectra(feats)

    def _energy(self, spectra: np.ndarray) -> np.ndarray:
        return np.sum(np.abs(spectra) ** 2 * self.column_weights, axis=(-2, -1))

    def _rescore_due(self, peak: float) -> bool:
        """Whether this frame re-runs the channel selection: every ``period`` frames, unless the response peak has
        stayed at ``stable`` x or more of its mean over the ``period`` frames after the last selection (nothing
        changed), for at most ``max_skips`` scheduled selections in a row."""
        cd = self.distillation
        if cd is None:
            return False
        if self._peak_reference is None:
            self._peaks.append(peak)
        if self.frame_index % cd.period != 0:
            return False
        if self._peak_reference is None:
            self._peak_reference = float(np.mean(self._peaks))
        since = self.frame_index - self._selected_at
        if cd.stable > 0 and since < cd.period * (cd.max_skips + 1) and peak >= cd.stable * self._peak_reference:
            return False
        return True

    def _distill(self, frame: np.ndarray, fresh: bool = False) -> int:
        """Run the w-step on all channels and rebuild the model on the kept ones; returns bytes extracted. ``fresh``
        (after a fallback): the channels kept so far are not preferred."""
        assert self.distillation is not None
        with self.clock("channel scoring"):
            all_channels = np.arange(self.features.channels)
            train = self._spectra(self._features(frame, 1.0, all_channels))
            views = np.stack(
                [self._spectra(self._features(frame, v, all_channels)) for v in self.distillation.views]
            )
            filters = self._per_channel_filters(train)
            previous = self.kept_channels if self.frame_index > 0 and not fresh else None
            weights = select_channels(
                views * filters, self.label_spectrum, self.column_weights, self._energy(train), self.distillation,
                previous, getattr(self.features, "channel_blocks", None),
            )
        previous_kept, previous_weights = self.kept_channels, self.channel_weights
        self.channel_weights = weights
        self.kept_channels = np.flatnonzero(weights)
        self._selected_at, self._peak_reference, self._peaks = self.frame_index, None, []
        if self._monitor is not None:
            self._held_back = train
        with self.clock("solve"):
            self._rebuild_model(train, previous_kept, previous_weights)
        return (1 + len(self.distillation.views)) * train.size * 4

    def _held_back_bytes(self) -> int:
        return int(self._held_back.nbytes) if self._held_back is not None else 0

    def _fall_back(self) -> None:
        """The quality check fired: track with all channels (this frame too, located again); those not kept so far
        start from the held-back sample (all channels' spectra at the last selection), not from the frame whose
        response failed, which is not learnt."""
        assert self._held_back is not None
        previous_kept, previous_weights = self.kept_channels, self.channel_weights
        self.channel_weights = np.ones(self.features.channels)
        self.kept_channels = np.arange(self.features.channels)
        with self.clock("solve"):
            self._rebuild_model(self._held_back, previous_kept, previous_weights)

    # ------------------------------------------------------------------------------------------------ model hooks

    def _init_model(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def _response_spectra(self, spectra: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _update_model(self, frame: np.ndarray) -> int:
        raise NotImplementedError

    def _per_channel_filters(self, train: np.ndarray) -> np.ndarray:
        """Filters of all channels fitted to the current sample alone (the single-sample closed form), which the
        w-step scores on the held-out views."""
        denominator = np.sum(np.abs(train) ** 2, axis=0)
        return train.conj() * self.label_spectrum / (denominator + self.params.lambda_ * float(denominator.mean()))

    def _rebuild_model(self, train: np.ndarray, previous_kept: np.ndarray, previous_weights: np.ndarray) -> None:
        """Move the model onto the new kept channels; ``train`` holds the current sample's spectra of all channels."""
        raise NotImplementedError

    def _model_bytes(self) -> int:
        raise NotImplementedError


class DCFTracker(CorrelationTracker):
    """Multi-channel linear DCF (MOSSE/DSST style) with a cosine window, Gaussian label and scale search.

    Filter per channel and frequency: ``F^d = (A^d + eta F_prev^d) / (B + lambda + eta)`` with running averages
    ``A^d = conj(X^d) Y`` and ``B = sum_d |X^d|^2`` (learning rate ``learning_rate``). With ``eta = 0`` this is the
    MOSSE/DSST filter; in general it is the exact minimiser of the CD energy when its data term is replaced by
    MOSSE's per-channel surrogate ``sum_d B |F^d|^2 - 2 Re(conj(A^d) F^d)``. ``lambda_`` and ``eta`` are relative to
    the mean of ``B``. With ``channel_distillation`` the features are the weighted kept channels ``w_d x^d``, the
    w-step runs at the first frame and every ``period`` frames, and ``eta`` comes from the CD settings; without it
    ``eta = 0`` and all channels are used.
    """

    name = "DCF"
    params_class = DCFParams
    distilled_params_class = DCFCDParams

    def _init_model(self, frame: np.ndarray) -> None:
        train = self._spectra(self._features(frame, channels=self.kept_channels))
        self._numerator = train.conj() * self.label_spectrum
        self._energy_per_channel = (np.abs(train) ** 2).astype(np.float32)
        self._solve(None)

    def _rebuild_model(self, train: np.ndarray, previous_kept: np.ndarray, previous_weights: np.ndarray) -> None:
        """Channels kept before keep their running averages; newly kept ones start from the current sample."""
        kept = self.kept_channels
        numerator = train[kept].conj() * self.label_spectrum
        energy = (np.abs(train[kept]) ** 2).astype(np.float32)
        previous_filter = np.zeros_like(numerator)
        where = {int(c): i for i, c in enumerate(previous_kept)}
        for j, c in enumerate(kept):
            if int(c) in where:
                i = where[int(c)]
                numerator[j] = self._numerator[i]
                energy[j] = self._energy_per_channel[i]
                previous_filter[j] = self._filter[i] * (previous_weights[c] / self.channel_weights[c])
        self._numerator, self._energy_per_channel = numerator, energy
        self._solve(previous_filter)

    def _solve(self, previous_filter: np.ndarray | None) -> None:
        """Filters of the weighted kept channels from the running (unweighted) averages."""
        w = self.channel_weights[self.kept_channels].astype(np.float32)[:, None, None]
        denominator = np.sum(w * w * self._energy_per_channel, axis=0)
        mean = float(denominator.mean())
        eta = self.eta * mean if previous_filter is not None else 0.0
        numerator = w * self._numerator + (eta * previous_filter if eta > 0 else 0.0)
        self._filter = (numerator / (denominator + self.params.lambda_ * mean + eta)).astype(np.complex64)

    def _response_spectra(self, spectra: np.ndarray) -> np.ndarray:
        return np.einsum("skhw,khw->shw", spectra, self._filter)

    def _update_model(self, frame: np.ndarray) -> int:
        train = self._spectra(self._features(frame, channels=self.kept_channels))
        rate = self.params.learning_rate
        self._numerator = (1 - rate) * self._numerator + rate * (train.conj() * self.label_spectrum)
        self._energy_per_channel = (1 - rate) * self._energy_per_channel + rate * np.abs(train) ** 2
        self._solve(self._filter)
        return train.size * 4

    def _model_bytes(self) -> int:
        return int(self._numerator.nbytes + self._energy_per_channel.nbytes + self._filter.nbytes)
