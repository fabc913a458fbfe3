"""HORKD's data: the (train, test) HR sets of each task of ``HorkdConfig`` (patch bank, colour patches, faces)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from workbench.data.digits import ImageSet
from workbench.data.patch_bank import face_folder_digest, load_face_identities, load_patch_bank
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
            train, test = load_face_identities(config.face_root, config.hr_size)
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
        return config.task, config.face_root, face_folder_digest(config.face_root), config.hr_size
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
