"""Embedded default data sets (no downloads: only what installed packages ship) and loaders for real layouts.

The names below are imported on first use (PEP 562): ``from workbench.data import load_patches`` does not import the
face, clip and scikit-learn machinery the other loaders need, which keeps a dashboard kernel that shows one method
smaller (about 90 MB of private memory less for the HORKD dashboard).
"""

from __future__ import annotations

import importlib
from typing import Any

#: submodule -> the public names it defines
_EXPORTS: dict[str, str] = {
    "workbench.data.clips": (
        "ClipSet NoFaceError load_forgery_clips read_video "
    ),
    "workbench.data.digits": (
        "DIGIT_CLASSES ImageSet load_digits "
    ),
    "workbench.data.faces": (
        "FACE_REGIONS FORGERY_CLASSES MANIPULATION_KINDS ForgeryParams ForgerySet detect_face_box "
        "face_from_photo face_mask load_forgery_faces load_frame_folder make_forgery real_faces region_mask "
        "sample_forgery_params "
    ),
    "workbench.data.patches": (
        "FACE_CLASSES PATCH_CLASSES PatchBox downsample load_cifar load_image_folder load_lfw_faces "
        "load_patches low_resolution_view patch_layout upsample "
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names.split()}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'workbench.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
