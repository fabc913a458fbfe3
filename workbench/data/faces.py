"""Face-forgery data: real faces that scikit-image ships, manipulated copies with a known mask, real benchmark folders.

Embedded default (no downloads):

* **Real faces.** ``skimage.data.lfw_subset()`` is 200 grey 25x25 crops: the first 100 are LFW faces (tight,
  roughly aligned crops, eyes at about 1/3 of the height), the last 100 are background patches (non-faces; we never
  use them as faces). Plus the astronaut of ``skimage.data.astronaut()`` (Eileen Collins), whose face box comes from
  OpenCV's shipped Haar cascade. Every face is grey and resized to ``size`` x ``size`` (default 32; the embedded
  set is one channel because 100 of its 101 faces are grey).
* **Identities.** LFW person names are *not* shipped with the subset, so identities are pseudo-identities: each face
  is its own identity, except that faces whose standardised pixel correlation exceeds ``0.8`` are merged
  (connected components: 86 groups of 1..11 LFW faces + the astronaut), so that near-duplicates and likely repeats of
  one person (LFW holds many photos of a few people) never straddle a split. Pixel correlation is not face
  recognition: this is a conservative proxy, it cannot guarantee that two groups are different people.
* **Manipulated faces**, made the way self-blended images are made (Shiohara & Yamasaki, CVPR 2022; our
  reconstruction at this resolution, without landmarks: the crops are aligned, so facial regions sit at fixed
  places): a soft-edged, randomly deformed mask of one facial region, and the face blended inside it with a
  transformed copy of itself (``self_blend``: brightness/contrast/gamma jitter + small affine warp + blur or
  sharpen; ``color``: tone jitter + blur or sharpen; ``warp``: only the warp) or with another identity's face
  tone-matched to it and blurred or sharpened (``swap``). Strengths are larger than SBI's because the faces are
  tiny and the default detector trains in about a minute on a CPU. The blend mask is the ground truth of what was
  manipulated. Real samples get the same global augmentation (flip, one-pixel shift, global tone, grain ``GRAIN``)
  as fakes, so the only difference is the local blend.

``make_forgery(face, params, donor)`` makes one manipulated face + mask from given ``ForgeryParams`` (sampled by
``sample_forgery_params``), so that a video generator can reuse it with parameters that drift smoothly over frames.

Real benchmarks: ``load_frame_folder`` reads FaceForensics++ and Celeb-DF frame folders (layout in
``datasets/faceforensics/README.md``).

Where each part lives: real faces in :mod:`workbench.data.face_crops`, masks and forgeries in
:mod:`workbench.data.synthesis`, ``ForgerySet`` (shared with the clips) in :mod:`workbench.data.forgery_sets`, the
folder loaders in :mod:`workbench.data.frame_folders`; this module builds the embedded set and re-exports them all.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from workbench.data.face_crops import (  # noqa: F401  (re-exported: the public names of the faces module)
    ASTRONAUT_FACE_BOX,
    IDENTITY_MERGE_CORRELATION,
    LFW_FACES,
    detect_face_box,
    face_from_photo,
    real_faces,
    split_identities,
)
from workbench.data.forgery_sets import (  # noqa: F401
    FORGERY_CLASSES,
    GRAIN,
    SPLITS,
    ForgerySet,
    check_set_arguments,
    pick_donor,
    split_members,
)
from workbench.data.frame_folders import CELEBDF_LAYOUT, FACEFORENSICS_LAYOUT, load_frame_folder  # noqa: F401
from workbench.data.synthesis import (  # noqa: F401
    FACE_ELLIPSE,
    FACE_REGIONS,
    MANIPULATION_KINDS,
    ForgeryParams,
    blend_mask,
    ellipse_mask,
    face_mask,
    make_forgery,
    region_mask,
    sample_forgery_params,
)


def _global_augment(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = face[:, ::-1] if rng.random() < 0.5 else face
    dy, dx = rng.integers(-1, 2, size=2)
    out = np.roll(out, (int(dy), int(dx)), axis=(0, 1))
    out = rng.uniform(0.9, 1.1) * (out - 0.5) + 0.5 + rng.uniform(-0.05, 0.05)
    out = np.clip(out + rng.normal(0.0, GRAIN, out.shape), 0, 1)
    return np.ascontiguousarray(out, dtype=np.float32)


@functools.lru_cache(maxsize=8)
def _generate(size: int, n_per_identity: int, kinds: tuple[str, ...], seed: int, split: str
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]:
    faces, ids, _ = real_faces(size)
    members = split_members(ids, seed, split)
    rng = np.random.default_rng([seed, size, n_per_identity, SPLITS.index(split)])
    images, labels, masks, sample_kinds, sample_ids = [], [], [], [], []
    zero = np.zeros((size, size), np.float32)
    counter = 0
    for i in members:
        for _ in range(n_per_identity):
            images.append(_global_augment(faces[i], rng))
            labels.append(0)
            masks.append(zero)
            sample_kinds.append("real")
            sample_ids.append(ids[i])
            kind = kinds[counter % len(kinds)]
            counter += 1
            params = sample_forgery_params(kind, rng)
            base = _global_augment(faces[i], rng)
            donor = None
            if kind == "swap":
                donor = _global_augment(faces[pick_donor(members, ids, i, rng, split)], rng)
            fake, mask = make_forgery(base, params, donor)
            images.append(fake)
            labels.append(1)
            masks.append(mask)
            sample_kinds.append(kind)
            sample_ids.append(ids[i])
    return (np.stack(images)[:, None], np.asarray(labels, np.int64), np.stack(masks)[:, None],
            tuple(sample_kinds), np.asarray(sample_ids, np.int64))


def load_forgery_faces(split: str = "train", size: int = 32, n_per_identity: int = 8,
                       kinds: tuple[str, ...] | list[str] = MANIPULATION_KINDS, seed: int = 0) -> ForgerySet:
    """The embedded face-forgery set: per identity, ``n_per_identity`` real and as many fake samples (kinds cycled).

    ``split`` in {"train", "val", "test", "all"} is by pseudo-identity (60/20/20 of the identities, seeded), and
    swap donors come from the same split, so no person appears on both sides. Deterministic given the arguments.
    """
    kinds = check_set_arguments(split, kinds, n_per_identity, size)
    if split == "all":
        return ForgerySet.concat([load_forgery_faces(s, size, n_per_identity, kinds, seed) for s in SPLITS])
    images, labels, masks, sample_kinds, ids = _generate(size, n_per_identity, kinds, seed, split)
    return ForgerySet(torch.from_numpy(images.copy()), torch.from_numpy(labels.copy()),
                      torch.from_numpy(masks.copy()), sample_kinds, torch.from_numpy(ids.copy()))
