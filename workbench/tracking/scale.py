"""DSST's separate scale filter: a 1-D correlation filter over a pyramid of target-sized samples.

After Danelljan, Häger, Shahbaz Khan, Felsberg, "Accurate Scale Estimation for Robust Visual Tracking" (BMVC 2014;
the discriminative scale space tracker, DSST). The translation filter finds the target's centre at the current scale;
this filter then finds its scale. Around the centre, ``S`` patches of the target's size times ``a^n`` (n = -(S-1)/2
... (S-1)/2, ``a`` the scale step) are resized to one model size (at most ``max_area`` pixels), their features are
flattened into one column each and weighted by a Hann window over the scales; the 1-D filter per feature row is
``H = conj(Y) X / (sum_d |X^d|^2 + lambda)`` on the FFT over scales, ``Y`` a Gaussian label over the scales, numerator
and denominator running averages with rate ``learning_rate``. The response's peak picks the scale factor, the size is
clamped to the paper's limits (a target of at least 5 pixels, no larger than the frame) and to ``min_scale`` ..
``max_scale``. Paper values are the defaults and marked so in :class:`ScaleFilterParams`.

Ours, not the paper's: the features are the tracker's own extractor's (all channels; DSST uses fHOG), and
``lambda_`` is relative to the mean of the denominator as everywhere in this package (DSST's 0.01 is absolute).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft

from workbench.recipes import Recipe
from workbench.tracking.base import sample_patch
from workbench.tracking.features import FeatureExtractor


@dataclass(frozen=True)
class ScaleFilterParams(Recipe):
    """The scale filter's settings (DSST, BMVC 2014; the paper's value in brackets where it has one).

    ``scales``: number of scale samples S, odd so that the current scale is the middle one [33]; ``step``: scale
    step a between neighbours [1.02]; ``sigma_factor``: the label's width, sigma = ``sigma_factor`` x S / sqrt(33)
    scale samples as in DSST's code [1/4]; ``learning_rate`` [0.025]; ``lambda_``: ridge weight, relative to the mean
    of the denominator here [DSST: 0.01 absolute]; ``max_area``: the model size's largest area in pixels, the target
    patch is shrunk to it [512]; ``min_scale`` / ``max_scale``: the tracker's own bounds on the scale relative to
    the first frame's box, applied with the paper's (target at least 5 pixels, not larger than the frame) [ours;
    the same 0.2 .. 5 the translation filter's scale search uses]."""

    scales: int = 33
    step: float = 1.02
    sigma_factor: float = 0.25
    learning_rate: float = 0.025
    lambda_: float = 1e-2
    max_area: float = 512.0
    min_scale: float = 0.2
    max_scale: float = 5.0

    def __post_init__(self) -> None:
        if isinstance(self.scales, bool) or not isinstance(self.scales, (int, np.integer)):
            raise ValueError(f"scales must be an odd integer >= 3, got {self.scales!r}")
        if self.scales < 3 or self.scales % 2 == 0:
            raise ValueError(f"scales must be an odd integer >= 3 (the current scale in the middle), got {self.scales}")
        checks = {
            "step": self.step > 1.0,
            "sigma_factor": self.sigma_factor > 0,
            "learning_rate": 0.0 < self.learning_rate <= 1.0,
            "lambda_": self.lambda_ > 0,
            "max_area": self.max_area >= 16,
            "min_scale": 0 < self.min_scale <= 1.0,
            "max_scale": self.max_scale >= 1.0,
        }
        expected = {"step": "> 1", "sigma_factor": "> 0", "learning_rate": "in (0, 1]", "lambda_": "> 0",
                    "max_area": ">= 16 pixels", "min_scale": "in (0, 1]", "max_scale": ">= 1"}
        for name, ok in checks.items():
            value = getattr(self, name)
            if not ok or not np.isfinite(value):
                raise ValueError(f"{name} must be {expected[name]}, got {value!r}")

    @property
    def factors(self) -> np.ndarray:
        """The S scale factors a^n, n = -(S-1)/2 .. (S-1)/2, the current scale (1) in the middle."""
        return self.step ** (np.arange(self.scales) - (self.scales - 1) / 2.0)


class ScaleFilter:
    """The DSST scale filter of one target: ``initialize`` at the first frame, then per frame ``estimate`` (the new
    scale at the translation filter's centre) and ``update`` (learn the sample at the new centre and scale).

    Scales are relative to the first frame's box ``base_size = (h, w)``; ``frame_shape`` bounds the largest one."""

    def __init__(self, params: ScaleFilterParams, features: FeatureExtractor, base_size: np.ndarray,
                 frame_shape: tuple[int, ...]) -> None:
        self.params = params
        self.features = features
        self.base_size = np.asarray(base_size, dtype=float)
        self.factors = params.factors
        n = np.arange(params.scales) - (params.scales - 1) // 2
        sigma = params.sigma_factor * params.scales / np.sqrt(33.0)
        label = np.exp(-0.5 * n**2 / sigma**2)
        self.label_spectrum = fft.fft(np.roll(label, -((params.scales - 1) // 2)))  # peak at index 0
        self.window = np.hanning(params.scales + 2)[1:-1].astype(np.float32)  # nonzero at both ends
        cell = features.cell_size
        shrink = min(1.0, np.sqrt(params.max_area / float(np.prod(self.base_size))))
        model = np.maximum(np.round(self.base_size * shrink / cell), 2) * cell
        self.model_size = (int(model[0]), int(model[1]))
        smallest = params.step ** np.ceil(np.log(np.max(5.0 / self.base_size)) / np.log(params.step))
        largest = params.step ** np.floor(np.log(np.min(np.array(frame_shape[:2]) / self.base_size))
                                          / np.log(params.step))
        self.min_scale = max(params.min_scale, float(smallest))
        self.max_scale = max(min(params.max_scale, float(largest)), self.min_scale)
        self._numerator: np.ndarray | None = None
        self._denominator: np.ndarray | None = None
        self.response: np.ndarray | None = None

    def samples(self, frame: np.ndarray, center: np.ndarray, scale: float) -> np.ndarray:
        """``(D x cells, S)`` spectra over scales of the flattened, Hann-weighted features of the S samples."""
        columns = [
            self.features.extract(sample_patch(frame, center, self.base_size * scale * f, self.model_size)).ravel()
            for f in self.factors
        ]
        return fft.fft(np.stack(columns, axis=1) * self.window, axis=1)

    def initialize(self, frame: np.ndarray, center: np.ndarray, scale: float = 1.0) -> int:
        """Learn the first sample; returns the bytes of features extracted."""
        spectra = self.samples(frame, center, scale)
        self._numerator = self.label_spectrum * spectra.conj()
        self._denominator = np.sum(np.abs(spectra) ** 2, axis=0)
        return spectra.size * 4

    def estimate(self, frame: np.ndarray, center: np.ndarray, scale: float) -> tuple[float, int]:
        """The new scale at ``center`` from the current ``scale``, clamped; and the bytes of features extracted."""
        if self._numerator is None or self._denominator is None:
            raise RuntimeError("call initialize(frame, center) before estimate(...)")
        spectra = self.samples(frame, center, scale)
        regulariser = self.params.lambda_ * float(self._denominator.mean())
        response = np.real(fft.ifft(np.sum(self._numerator * spectra, axis=0) / (self._denominator + regulariser)))
        self.response = response
        best = int(np.argmax(response))
        new = float(np.clip(scale * self.factors[(best + (self.params.scales - 1) // 2) % self.params.scales],
                            self.min_scale, self.max_scale))
        return new, spectra.size * 4

    def update(self, frame: np.ndarray, center: np.ndarray, scale: float) -> int:
        """Blend the sample at ``center`` and ``scale`` into the running averages; returns the bytes extracted."""
        if self._numerator is None or self._denominator is None:
            raise RuntimeError("call initialize(frame, center) before update(...)")
        spectra = self.samples(frame, center, scale)
        rate = self.params.learning_rate
        self._numerator = (1 - rate) * self._numerator + rate * self.label_spectrum * spectra.conj()
        self._denominator = (1 - rate) * self._denominator + rate * np.sum(np.abs(spectra) ** 2, axis=0)
        return spectra.size * 4

    def step(self, frame: np.ndarray, center: np.ndarray, scale: float, learn: bool = True) -> tuple[float, int]:
        """One frame of DSST: :meth:`estimate`, then (when ``learn``) :meth:`update` at the new scale; returns the
        new scale and the bytes of features extracted."""
        new, extracted = self.estimate(frame, center, scale)
        return new, extracted + (self.update(frame, center, new) if learn else 0)

    @property
    def model_bytes(self) -> int:
        """Bytes of the stored numerator and denominator."""
        if self._numerator is None or self._denominator is None:
            return 0
        return int(self._numerator.nbytes + self._denominator.nbytes)
