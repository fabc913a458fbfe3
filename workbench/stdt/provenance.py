"""What an STDT was trained on, said from its recipe, so that a page that scores a user's video says what the score
means (issue 24; design rule 11: "the page says what it was trained on").

Ours, not the paper's (the STDT paper trains on FaceForensics++ videos; none of the project's recipes does):

* :func:`recipe_of` is the recipe a model was built from (``build_stdt`` keeps it as ``workbench_recipe``; a model
  built another way carries none).
* :func:`trained_on` turns a recipe into one sentence: the data (the embedded grey clips and their manipulation
  kinds, or the self-blended colour clips and their faces), the frame size, channels and count, with or without
  spatiotemporal dropout, the smoke setting when it is one, and that no recipe trains on real videos, so a P(fake)
  on a real video is no evidence either way.
* :func:`model_label` names the model: its cache name and recipe hash, or that it has no training record.
"""

from __future__ import annotations

from torch import nn

from workbench.cache import config_key
from workbench.stdt.recipe import SbiStdtRecipe, StdtRecipe, input_channels

#: what every recipe of the project leaves out, and so what its P(fake) on a user's real video is worth
NOT_REAL_VIDEOS = "Not trained on real videos: its P(fake) on a real video is not evidence either way."


def recipe_of(model: nn.Module) -> StdtRecipe | None:
    """The recipe ``model`` was built from (``build_stdt``, hence ``stdt_detector``); None if it carries none."""
    recipe = getattr(model, "workbench_recipe", None)
    return recipe if isinstance(recipe, StdtRecipe) else None


def _clips(config: StdtRecipe) -> str:
    """The training clips of a recipe, in words."""
    shape = (f"{'colour' if input_channels(config) == 3 else 'grey'} {config.size}x{config.size} clips of "
             f"{config.frames} frames")
    if isinstance(config, SbiStdtRecipe):
        faces = (f"the face photos of {config.face_source}" if config.face_source else
                 "the embedded faces (LFW's grey crops given a random skin tint, and the astronaut)")
        return (f"self-blended {shape} made from {faces} in a synthetic motion (fake: the face blended with a "
                "transformed copy of itself)")
    kinds = config.train_kinds
    return (f"the embedded synthetic {shape} (LFW's grey face photos in a synthetic motion; fakes of {len(kinds)} "
            f"manipulation kind{'s' if len(kinds) != 1 else ''}: {', '.join(kinds)})")


def trained_on(config: StdtRecipe | None) -> str:
    """One sentence saying what an STDT of ``config`` was trained on, and so what its P(fake) on a user's video means
    (``None``: a model without a recipe, of which nothing is known)."""
    if config is None:
        return ("Trained on: unknown (this model carries no recipe). Until you know what it saw, its P(fake) on a "
                "real video is not evidence either way.")
    dropout = (f"with spatiotemporal dropout (rho_s {config.spatial_ratio:g}, rho_t {config.temporal_ratio:g})"
               if config.spatial_ratio or config.temporal_ratio else "without dropout")
    smoke = (", the smoke setting (a quick CPU run: its scores mean little)"
             if config.is_smoke_but("spatial_ratio", "temporal_ratio", "seed") else "")
    return (f"Trained on {_clips(config)}, {dropout}, {config.epochs} epochs{smoke}; validated on held-out faces. "
            f"{NOT_REAL_VIDEOS}")


def model_label(model: nn.Module) -> str:
    """Which STDT this is: its cache name and recipe hash (``stdt_detector``), or what is missing to say so."""
    config = recipe_of(model)
    meta = getattr(model, "workbench_meta", None) or {}
    if config is None:
        return "an STDT without a recipe"
    trained = "" if meta else ", built but not trained"
    return f"{meta.get('name', config.recipe)} (recipe {config_key(config)}{trained})"
