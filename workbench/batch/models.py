"""Which model a batch run explains: an embedded one by name, a TorchScript file, or a class plus a state dict.

A :class:`ModelSpec` is a small picklable description; each worker calls :meth:`ModelSpec.load` once.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

#: embedded classifiers: name -> (recipe function, input shape (C, H, W), the VAE recipe RLD uses with it)
EMBEDDED_MODELS = {
    "digits_classifier": ("workbench.models.pretrained:digits_classifier", (1, 16, 16),
                          "workbench.models.pretrained:digits_vae"),
    "patches_classifier": ("workbench.models.pretrained:patches_classifier", (3, 32, 32),
                           "workbench.models.pretrained:patches_vae"),
}


@dataclass(frozen=True)
class ModelSpec:
    """A model to explain.

    ``model``: an embedded name (:data:`EMBEDDED_MODELS`), a TorchScript file, or ``"package.module:Class"`` (built
    with no arguments, then ``weights`` — a state-dict file — is loaded into it). ``input_shape`` (C, H, W) is
    required for the last two. ``vae``: the VAE that re-label distillation needs — the embedded model's own, or a
    TorchScript file / ``module:Class`` + ``vae_weights``; None when no RLD is asked for. ``smoke``: the embedded
    recipes' CPU setting.
    """

    model: str
    input_shape: tuple[int, int, int] | None = None
    weights: str | None = None
    vae: str | None = None
    vae_weights: str | None = None
    smoke: bool = False

    def check(self) -> tuple[int, int, int]:
        """Refuse, before anything is loaded, a model or VAE that names neither an embedded model, a file nor
        ``module:Class`` (FileNotFoundError), or a bad input shape (ValueError); returns :meth:`resolved_shape`."""
        for name, what in ((self.model, "model"), (self.vae, "VAE")):
            if name is not None and name not in EMBEDDED_MODELS and ":" not in name and not Path(name).is_file():
                raise FileNotFoundError(f"{what} {name!r}: neither an embedded model ({', '.join(EMBEDDED_MODELS)}), "
                                        "an existing TorchScript file, nor module:Class")
        return self.resolved_shape()

    def resolved_shape(self) -> tuple[int, int, int]:
        """The model's input shape (C, H, W): the embedded model's own, else ``input_shape``; a ValueError when
        it is missing, not three positive numbers, or not the embedded model's."""
        if self.model in EMBEDDED_MODELS:
            shape = EMBEDDED_MODELS[self.model][1]
            if self.input_shape is not None and tuple(self.input_shape) != shape:
                raise ValueError(f"model {self.model!r} takes inputs of shape {' '.join(map(str, shape))} (C H W), "
                                 f"not {' '.join(map(str, self.input_shape))}: leave out --input-shape")
            return shape
        if self.input_shape is None or len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"model {self.model!r}: give its input shape as (channels, height, width), e.g. "
                             "--input-shape 3 32 32")
        return tuple(int(v) for v in self.input_shape)  # type: ignore[return-value]

    def default_vae(self) -> str | None:
        return self.vae or (EMBEDDED_MODELS[self.model][2] if self.model in EMBEDDED_MODELS else None)

    def load(self, need_vae: bool = False) -> tuple[torch.nn.Module, torch.nn.Module | None]:
        """The model (eval mode, CPU) and, when ``need_vae``, its VAE; a clear error naming what is wrong."""
        shape = self.resolved_shape()
        model = self._load(self.model, self.weights, "model")
        vae = None
        if need_vae:
            name = self.default_vae()
            if name is None:
                raise ValueError("the 'relabel' explainer needs a VAE trained on the same images: give --vae "
                                 "(a TorchScript file or module:Class with --vae-weights)")
            vae = self._load(name, self.vae_weights, "VAE")
        with torch.no_grad():
            try:
                logits = model(torch.zeros(1, *shape))
            except Exception as exc:
                raise ValueError(f"model {self.model!r} fails on an input of shape (1, {', '.join(map(str, shape))}): "
                                 f"{type(exc).__name__}: {exc}") from exc
        if logits.dim() != 2:
            raise ValueError(f"model {self.model!r} must return logits shaped (batch, classes); got "
                             f"{tuple(logits.shape)}")
        return model, vae

    def _load(self, name: str, weights: str | None, what: str) -> torch.nn.Module:
        if name in EMBEDDED_MODELS or ":" in name and not Path(name).exists():
            target = EMBEDDED_MODELS[name][0] if name in EMBEDDED_MODELS else name
            embedded = target.startswith("workbench.models.pretrained:")
            if not embedded:  # the weights are checked before the class is imported or called
                state = self._state_dict(name, weights, what)
            module_name, _, attr = target.partition(":")
            try:
                factory = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise ValueError(f"{what} {name!r}: cannot import {target} ({exc})") from exc
            if embedded:
                return factory(smoke=self.smoke, progress=False).eval()
            module = factory()
            try:
                module.load_state_dict(state)
            except Exception as exc:
                raise ValueError(f"{what} weights {weights}: cannot be loaded into {target}: {exc}") from exc
            return module.eval()
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"{what} {name!r}: neither an embedded model ({', '.join(EMBEDDED_MODELS)}), an "
                                    "existing TorchScript file, nor module:Class")
        try:
            with warnings.catch_warnings():  # torch 2.x deprecates TorchScript loading in a FutureWarning
                warnings.filterwarnings("ignore", message=".*torch.jit.load", category=FutureWarning)
                return torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as exc:
            raise ValueError(f"{what} {path}: not a TorchScript file ({exc})") from exc

    @staticmethod
    def _state_dict(name: str, weights: str | None, what: str) -> dict:
        if weights is None:
            raise ValueError(f"{what} {name!r}: a class needs its weights (a state-dict file)")
        try:
            return torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"{what} weights {weights}: not a state-dict file ({exc})") from exc
