"""Spatiotemporal dropout transformer (STDT) for deepfake video detection.

Paper: Zhang, Lin, Hua, Wang, Zeng, Ge, *Deepfake Video Detection with Spatiotemporal Dropout Transformer*, ACM MM
2022 (arXiv:2207.06612). What the paper says (abstract + a figure caption only): face frames are cut into patches, a
spatiotemporal dropout (STD) drops patches across space and time, the kept patches of all frames form one *bag of
patches* fed to a vision transformer; STD doubles as data augmentation and plugs into existing ViTs.

Our reconstruction (the paper's details are not public):

* ``SpatiotemporalDropout(spatial_ratio, temporal_ratio, seed)`` works on any token tensor (B, T, N, D): per clip it
  keeps ``round((1 - rho_t) * T)`` frames and, in each kept frame, ``round((1 - rho_s) * N)`` patch positions
  (drawn independently per kept frame), returning the kept tokens (B, K, D) and their (t, n) indices. Identity in
  eval mode. A seeded ``torch.Generator`` makes draws reproducible.
* ``BagOfPatchesViT``: a small convolutional stem, then 8x8 patches of every frame, TimeSformer-style spatial
  ``pos_embed`` + temporal ``time_embed`` added *before* STD (so a kept token still knows where and when it came
  from), joint space-time attention over the bag (pre-norm blocks whose attention weights we compute ourselves, for
  the rollout), CLS token -> 2-way head. STD only in training, or averaged over ``test_draws`` draws at test time.
  ``mask_head=True`` adds a per-patch manipulation logit (``patch_mask_logits``), trained on the blend masks of
  self-blended clips (``SbiStdtRecipe.mask_weight``; ours).
* The stem is ours: two 3x3 convolutions with BatchNorm + GELU, then the patchifying convolution. ``stem="tubelet"``
  (default) convolves over ``stem_frames`` neighbouring frames as well as space (ViViT's tubelet embedding, one token
  per frame and patch so that STD still drops frames and patches); ``stem="frame"`` sees one frame at a time. Only
  the tubelet stem with BatchNorm left chance reliably on the embedded clips (measured; other stems: not always).
* ``attention_rollout`` (Abnar & Zuidema 2020): heads averaged, identity added, rows normalised, multiplied over
  layers, the CLS row scattered back to (B, T, h, w). ``time_embedding=False`` + ``stem="frame"``: order-invariant.
* ``StdtRecipe`` (presets ``STDT_SMOKE`` / ``STDT_FULL``; ``STDT_SBI``: 64 px colour self-blended clips) is the
  recipe, its ``asdict()`` the cache key of ``stdt_detector``; ``stdt_dashboard_models`` the dashboard's defaults;
  ``inspect_draw`` scores a clip with every patch and with one STD draw, and returns the draw's rollout.

* ``trained_on`` says in one sentence, from a model's recipe (``recipe_of``), what it was trained on, so that a page
  scoring a user's video says what the P(fake) means; ``model_label`` names the model (cache name, recipe hash).

Modules: ``model`` (dropout, blocks, the ViT), ``inspection`` (one draw of one clip), ``recipe`` (training),
``provenance`` (what a model was trained on).
"""

from workbench.stdt.inspection import DrawInspection, dropout_draw, inspect_draw, kept_mask
from workbench.stdt.model import BagOfPatchesViT, Block, SpatiotemporalDropout, gather_tokens
from workbench.stdt.provenance import model_label, recipe_of, trained_on
from workbench.stdt.recipe import (
    STDT_FULL,
    STDT_SBI,
    STDT_SBI_SMOKE,
    STDT_SMOKE,
    SbiStdtRecipe,
    StdtRecipe,
    build_stdt,
    input_channels,
    predict_video_proba,
    stdt_config,
    stdt_dashboard_models,
    stdt_detector,
    step,
    train_stdt,
    training_clips,
    video_auc,
)

__all__ = ["BagOfPatchesViT", "Block", "DrawInspection", "STDT_FULL", "STDT_SBI", "STDT_SBI_SMOKE", "STDT_SMOKE",
           "SbiStdtRecipe", "SpatiotemporalDropout", "StdtRecipe", "build_stdt", "dropout_draw", "gather_tokens",
           "input_channels", "inspect_draw", "kept_mask", "model_label", "predict_video_proba", "recipe_of",
           "stdt_config", "stdt_dashboard_models", "stdt_detector", "step", "train_stdt", "trained_on",
           "training_clips", "video_auc"]
