"""HORKD's data: the (train, test) HR sets of each task of ``HorkdConfig`` (patch bank, colour patches, faces;
faces either whole photos resized or, with ``face_front="dlib"``, dlib-aligned face chips)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from workbench.cache import CorruptCheckpointError, cache_dir, load_state, save_state
from workbench.data.digits import ImageSet
from workbench.data.patch_bank import (
    face_folder_digest,
    load_face_identities,
    load_patch_bank,
    split_face_identities,
)
from workbench.data.patches import load_patches

if TYPE_CHECKING:
    from workbench.horkd.recipe import HorkdConfig


def load_horkd_data(config: HorkdConfig) -> tuple[ImageSet, ImageSet]:
    """(train, test) HR patch sets of ``config.task`` at ``config.hr_size``; train holds every patch and its flip.
    Memoised per setting (the bank cuts and blurs a few thousand patches: seconds a call). For ``"faces"``: the
    identity-disjoint split of ``load_face_identities`` (its errors name the folder and the expected layout)."""
    key = _data_key(config)
    if key not in _DATA:
        if config.task == "faces":
            load = load_aligned_identities if config.face_front == "dlib" else load_face_identities
            train, test = load(config.face_root, config.hr_size)
            train = ImageSet(torch.cat([train.images, train.images.flip(-1)]), torch.cat([train.labels] * 2),
                             train.classes)
        elif config.task == "bank":
            train = load_patch_bank(config.hr_size, "train", bands=config.bands,
                                    max_per_class=config.train_per_class, augment=True)
            test = load_patch_bank(config.hr_size, "test", bands=config.bands, max_per_class=config.test_per_class)
        else:
            train = load_patches(config.hr_size, "train", max_per_class=config.train_per_class, augment=True)
            test = load_patches(config.hr_size, "test", max_per_class=config.test_per_class)
        _DATA.clear()  # keep one setting: a full and a smoke set side by side would double the memory for nothing
        _DATA[key] = (train, test)
    return _DATA[key]


def _data_key(config: HorkdConfig) -> tuple:
    if config.task == "faces":
        return (config.task, config.face_root, face_folder_digest(config.face_root), config.hr_size,
                config.face_front)
    return config.task, config.bands, config.hr_size, config.train_per_class, config.test_per_class


def load_horkd_test(config: HorkdConfig) -> ImageSet:
    """The held-out HR set of ``config`` alone: what a view of trained streams needs. The memoised pair when it is
    there, else only the test split is cut (the training split with its flips is most of ``load_horkd_data``'s
    time, and a dashboard that loads trained models never reads it)."""
    if config.task == "faces" or _data_key(config) in _DATA:
        return load_horkd_data(config)[1]
    if config.task == "bank":
        return load_patch_bank(config.hr_size, "test", bands=config.bands, max_per_class=config.test_per_class)
    return load_patches(config.hr_size, "test", max_per_class=config.test_per_class)


_DATA: dict[tuple, tuple[ImageSet, ImageSet]] = {}


def load_aligned_identities(root: str | Path, size: int = 150) -> tuple[ImageSet, ImageSet]:
    """(train, test) of ``load_face_identities``' identity-disjoint split, each photo's largest face aligned by
    dlib's landmarks (``workbench.models.face_id.align_face``: the 150x150 chip dlib's network is fed), resized to
    ``size``. The chips are aligned once per folder and kept in the model cache (alignment is ~0.5 s a photo).
    Photos in which dlib finds no face are one error naming every such file (never skipped: a silently smaller
    identity changes the split's numbers)."""
    files, train_names, test_names = split_face_identities(root)
    chips = aligned_chips(root, files)

    def face_set(names: list[str]) -> ImageSet:
        x = torch.stack([chips[path] for name in names for path in files[name]]).float() / 255.0
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        labels = [label for label, name in enumerate(names) for _ in files[name]]
        return ImageSet(x, torch.tensor(labels, dtype=torch.long), tuple(names))

    return face_set(train_names), face_set(test_names)


def aligned_chips(root: str | Path, files: dict[str, list[Path]]) -> dict[Path, torch.Tensor]:
    """Every photo's dlib-aligned chip, (3, 150, 150) uint8, by path; read from / written to the model cache
    (``horkd_aligned_faces-<folder digest>.pt``, atomic; an unreadable file is aligned again)."""
    from workbench.models.face_id import CHIP_SIZE, NoFaceError, align_face, read_photo

    root = Path(root).expanduser()
    paths = [path for name in files for path in files[name]]
    cached = cache_dir() / f"horkd_aligned_faces-{face_folder_digest(root)}-{CHIP_SIZE}.pt"
    names = [path.relative_to(root).as_posix() for path in paths]
    try:
        blob = load_state(cached) if cached.is_file() else None
    except CorruptCheckpointError:
        blob = None
    if blob is not None and blob.get("files") == names:
        return dict(zip(paths, blob["chips"], strict=True))
    chips, no_face = [], []
    for path in paths:
        try:
            chip = align_face(read_photo(path), CHIP_SIZE, source=str(path))
            chips.append(torch.from_numpy(np.ascontiguousarray(chip)).permute(2, 0, 1).contiguous())
        except NoFaceError:
            no_face.append(str(path))
    if no_face:
        raise NoFaceError(f"dlib's face detector found no face in {len(no_face)} photo(s) of face folder {root}: "
                          f"{', '.join(no_face)}; expected a visible, roughly frontal face in every photo (remove or "
                          "replace these)")
    save_state(cached, {"files": names, "chips": torch.stack(chips)})
    return dict(zip(paths, chips, strict=True))
