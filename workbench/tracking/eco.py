"""ECO-style tracker: factorised projection, Gaussian-mixture sample space, filter trained by conjugate gradient.

After Danelljan, Bhat, Khan, Felsberg, "ECO: Efficient Convolution Operators for Tracking" (CVPR 2017) and the
pytracking implementation. Simplified here, on purpose and for speed: no continuous-domain interpolation
(features and filter live on one discrete grid), no spatial regularisation (a scalar ``lambda`` instead, with the
cosine window), the projection matrix is PCA of the first frame's features and then fixed (ECO also refines it
jointly with the filter by Gauss-Newton in the first frame), and sample merging uses ECO's rule without its
minimum-weight replacement.
"""

from __future__ import annotations

import numpy as np

from workbench.tracking.dcf import CorrelationTracker
from workbench.tracking.params import ECOCDParams, ECOParams


class ECOTracker(CorrelationTracker):
    """ECO-style tracker; with ``channel_distillation`` it projects only the kept, weighted raw channels.

    Features ``x`` (D channels) are projected by ``P`` (D x ``compressed_channels``) and correlated with the filter.
    Every frame the projected sample enters a sample space of at most ``samples`` components (ECO's merging of the
    two closest); every ``update_every`` frames ``cg_iterations`` of preconditioned conjugate gradient, warm-started,
    re-fit the filter to all components weighted by their mixture weights. With CD the projected sample is
    ``P_kept^T (w * x)_kept`` (the kept rows of the first frame's PCA, at most k columns, so that at most k channels
    are correlated), and the energy's temporal term ``eta ||f - f_prev||^2`` enters the CG system. Samples already
    in the sample space keep the projection they were made with when the kept channels change.
    """

    name = "ECO"
    params_class = ECOParams
    distilled_params_class = ECOCDParams

    # -------------------------------------------------------------------------------------------- model hooks

    def _init_model(self, frame: np.ndarray) -> None:
        train = self._spectra(self._features(frame, channels=self.kept_channels))
        self.projection = self._pca(train)
        self._filter = np.zeros((self.projection.shape[1], *self.label_spectrum.shape), np.complex64)
        self._reset_samples(np.einsum("dc,dhw->chw", self.projection, train).astype(np.complex64))
        self._train(self.params.init_cg_iterations, previous=None)

    def _pca(self, train: np.ndarray) -> np.ndarray:
        """Projection ``(D, d)``: the principal directions of all channels of the first sample, as ECO. Computed from
        the spectra, DC left out, which by Parseval is the PCA of the mean-free windowed features. With channel
        distillation ``d`` is also at most k, so the distilled tracker correlates at most k channels."""
        q = np.sqrt(self.column_weights)
        flat = (train * q).reshape(len(train), -1)[:, 1:]
        _, vectors = np.linalg.eigh(np.real(flat @ flat.conj().T))
        d = min(self.params.compressed_channels, len(train))
        if self.distillation is not None:
            d = min(d, self.distillation.n_keep(len(train)))
        return np.ascontiguousarray(vectors[:, ::-1][:, :d]).astype(np.float32)

    def _reset_samples(self, sample: np.ndarray) -> None:
        self._samples = sample[None].copy()
        self._weights = np.ones(1)

    def _detection_spectra(self, feats: np.ndarray) -> np.ndarray:
        projection = self.projection[self.kept_channels]
        return self._spectra(feats @ projection)

    def _correlated_channels(self) -> int:
        return int(self.projection.shape[1])

    def _response_spectra(self, spectra: np.ndarray) -> np.ndarray:
        return np.einsum("schw,chw->shw", spectra, self._filter)

    def _update_model(self, frame: np.ndarray) -> int:
        feats = self._features(frame)
        self._add_sample(self._detection_spectra(feats))
        if self.frame_index % self.params.update_every == 0:
            self._train(self.params.cg_iterations, previous=self._filter if self.eta > 0 else None)
        return feats.nbytes

    def _rebuild_model(self, train: np.ndarray, previous_kept: np.ndarray, previous_weights: np.ndarray) -> None:
        """First frame: restart the sample space in the distilled projection; later: add the sample and re-fit."""
        kept = self.kept_channels
        weighted = train[kept] * self.channel_weights[kept].astype(np.float32)[:, None, None]
        spectrum = np.einsum("dc,dhw->chw", self.projection[kept], weighted).astype(np.complex64)
        if self.frame_index == 0:
            self._reset_samples(spectrum)
            self._train(self.params.init_cg_iterations, previous=None)
        else:
            self._add_sample(spectrum)
            self._train(self.params.cg_iterations, previous=self._filter if self.eta > 0 else None)

    def _model_bytes(self) -> int:
        return int(self._samples.nbytes + self._filter.nbytes)

    # -------------------------------------------------------------------------------------------- sample space

    def _distances(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Squared distances between the rows of ``a`` ``(m, ...)`` and ``b`` ``(n, ...)`` (Parseval-weighted)."""
        q = np.sqrt(self.column_weights)
        fa = (a * q).reshape(len(a), -1)
        fb = (b * q).reshape(len(b), -1)
        cross = np.real(fa.conj() @ fb.T)
        return (np.abs(fa) ** 2).sum(1)[:, None] + (np.abs(fb) ** 2).sum(1)[None, :] - 2 * cross

    def _add_sample(self, sample: np.ndarray) -> None:
        """ECO's sample-space update: add, or merge the new sample or the two closest components."""
        rate = self.params.learning_rate
        self._weights *= 1.0 - rate
        if len(self._samples) < self.params.samples:
            self._samples = np.concatenate([self._samples, sample[None]])
            self._weights = np.append(self._weights, rate)
        else:
            to_new = self._distances(self._samples, sample[None])[:, 0]
            pairwise = self._distances(self._samples, self._samples)
            np.fill_diagonal(pairwise, np.inf)
            i, j = np.unravel_index(int(np.argmin(pairwise)), pairwise.shape)
            nearest = int(np.argmin(to_new))
            if to_new[nearest] < pairwise[i, j]:
                total = self._weights[nearest] + rate
                self._samples[nearest] = (self._weights[nearest] * self._samples[nearest] + rate * sample) / total
                self._weights[nearest] = total
            else:
                total = self._weights[i] + self._weights[j]
                self._samples[i] = (self._weights[i] * self._samples[i] + self._weights[j] * self._samples[j]) / total
                self._weights[i] = total
                self._samples[j] = sample
                self._weights[j] = rate
        self._weights /= self._weights.sum()

    # -------------------------------------------------------------------------------------------- filter (CG)

    def _train(self, iterations: int, previous: np.ndarray | None) -> None:
        """Preconditioned CG on the normal equations, all frequencies at once, warm-started from the filter.

        ``(sum_m pi_m conj(z_m) z_m^T + lambda + eta) f = sum_m pi_m conj(z_m) y + eta f_prev`` per frequency.
        """
        samples, pi = self._samples, self._weights
        energy = np.einsum("m,mchw->hw", pi, np.abs(samples) ** 2)
        mean = float(energy.mean())
        eta = self.eta * mean if previous is not None else 0.0
        reg = self.params.lambda_ * mean + eta
        q = self.column_weights

        def apply(v: np.ndarray) -> np.ndarray:
            inner = np.einsum("mchw,chw->mhw", samples, v)
            return np.einsum("m,mchw,mhw->chw", pi, samples.conj(), inner) + reg * v

        def dot(a: np.ndarray, b: np.ndarray) -> float:
            return float(np.real(np.sum(a.conj() * b * q)))

        rhs = np.einsum("m,mchw->chw", pi, samples.conj()) * self.label_spectrum
        if previous is not None:
            rhs = rhs + eta * previous
        diagonal = np.einsum("m,mchw->chw", pi, np.abs(samples) ** 2) + reg
        f = self._filter
        residual = rhs - apply(f)
        z = residual / diagonal
        direction = z
        rz = dot(residual, z)
        for _ in range(iterations):
            if rz <= 1e-20:
                break
            a_dir = apply(direction)
            alpha = rz / max(dot(direction, a_dir), 1e-30)
            f = f + alpha * direction
            residual = residual - alpha * a_dir
            z = residual / diagonal
            rz_next = dot(residual, z)
            direction = z + (rz_next / rz) * direction
            rz = rz_next
        self._filter = f.astype(np.complex64)
