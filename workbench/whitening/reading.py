"""How a whitening detector reads a user's photo: the input step its training data calls for, and what to say of it.

Ours, not the paper's. The shipped self-blended (SBI) colour detectors train on the embedded colour faces
(:func:`workbench.data.face_sbi.embedded_colour_faces`): grey LFW-subset faces times a skin tint, i.e. tinted grey,
not colour photographs. With a real photo's own colour they come out inverted on real fakes (deepfake_dev, crop AUC
0.02 whitened / 0.38 plain); mapped to their training domain (luminance times the training faces' mean tint) they are
not (0.74 / 0.82): ``benchmarks/whitening_domain.py``, a development check on 13 + 13 crops, too few to decide on.
So :func:`reading_input` maps a photo to the ``"tinted_grey"`` domain for a detector whose recipe trained on the
embedded colour faces, and leaves it as given otherwise (grey detectors, SBI detectors of a folder of real photos).
The tint is the recipe's (``EMBEDDED_MEAN_TINT``, the mean of ``EMBEDDED_TINT_RANGES``), not tuned on real fakes.

:func:`trained_on` / :func:`reader_sentence` say, from the model's recipe, which model read a photo and what it was
trained on, so a page never names the training data by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from workbench.data.face_sbi import EMBEDDED_MEAN_TINT

#: the input domains of :func:`reading_domain`
DOMAINS = ("as_given", "tinted_grey")
#: luminance weights of R, G, B (OpenCV's RGB -> grey, ITU-R BT.601: the project's grey path)
LUMA = (0.299, 0.587, 0.114)


def recipe_of(model: nn.Module) -> dict[str, Any]:
    """The recipe a cached detector was trained with (``model.workbench_meta["config"]``); {} for any other model."""
    meta = getattr(model, "workbench_meta", None) or {}
    return dict(meta.get("config") or {})


def reading_domain(model: nn.Module) -> str:
    """``"tinted_grey"`` for a colour detector trained on the embedded (tinted-grey) colour faces, else
    ``"as_given"``."""
    recipe = recipe_of(model)
    embedded_colour = recipe.get("recipe") == "whitening_detector_sbi" and not recipe.get("face_source")
    return "tinted_grey" if embedded_colour and getattr(model, "in_channels", 3) == 3 else "as_given"


def tinted_grey(images: torch.Tensor) -> torch.Tensor:
    """Colour faces (N, 3, H, W) or (3, H, W) in [0, 1] in the embedded colour faces' domain: each pixel's luminance
    (``LUMA``) times the training faces' mean tint ``EMBEDDED_MEAN_TINT`` = (1, 0.84, 0.71)."""
    if images.ndim not in (3, 4) or images.shape[-3] != 3:
        raise ValueError(f"expected colour faces (N, 3, H, W) or (3, H, W); got shape {tuple(images.shape)}")
    shape = (3, 1, 1)
    luma = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(shape)
    tint = torch.tensor(EMBEDDED_MEAN_TINT, dtype=images.dtype, device=images.device).view(shape)
    return ((images * luma).sum(-3, keepdim=True) * tint).clamp(0, 1)


def reading_input(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``images`` as ``model`` reads a user's photo: mapped to its :func:`reading_domain`."""
    return tinted_grey(images) if reading_domain(model) == "tinted_grey" else images


def trained_on(recipe: Mapping[str, Any]) -> str:
    """What a whitening recipe (its ``asdict()``, as in a weights' record) trained on, in one phrase, e.g. "grey 32 px
    synthetic forgeries of scikit-image's LFW faces and the astronaut" or "self-blends of tinted-grey LFW faces
    (and the astronaut), 64 px colour"."""
    name, size = recipe.get("recipe"), recipe.get("size", "?")
    if name == "whitening_detector":
        kinds = ", ".join(recipe.get("train_kinds", ()))
        return (f"grey {size} px synthetic forgeries of scikit-image's LFW faces and the astronaut"
                f"{f' ({kinds})' if kinds else ''}")
    if name == "whitening_detector_sbi":
        source = recipe.get("face_source")
        faces = f"the face photos of {source}" if source else "tinted-grey LFW faces (and the astronaut)"
        mask = "; landmark-hull blend masks" if recipe.get("mask") == "hull" else ""
        return f"self-blends of {faces}, {size} px colour{mask}"
    return f"an unknown recipe ({name or 'no recipe recorded'})"


def reader_sentence(model: nn.Module, label: str = "") -> str:
    """Which model read a photo, what it was trained on and how the photo was fed to it, from its recipe."""
    recipe = recipe_of(model)
    meta = getattr(model, "workbench_meta", None) or {}
    kind = "whitened" if getattr(model, "whiten", True) else "plain (BatchNorm)"
    who = f"{label or kind} detector" + (f" ({meta['name']})" if meta.get("name") else "")
    data = trained_on(recipe) if recipe else "data not recorded (not a cached workbench model)"
    feed = (" Your photo was fed to it in that domain: its luminance times the training faces' mean tint."
            if reading_domain(model) == "tinted_grey" else "")
    return f"Read by the {who}, trained on {data}.{feed}"
