"""Embedded default data sets (no downloads: only what installed packages ship) and loaders for real layouts."""

from workbench.data.digits import DIGIT_CLASSES, ImageSet, load_digits
from workbench.data.patches import (
    FACE_CLASSES,
    PATCH_CLASSES,
    PatchBox,
    downsample,
    load_cifar,
    load_image_folder,
    load_lfw_faces,
    load_patches,
    low_resolution_view,
    patch_layout,
    upsample,
)

__all__ = [
    "DIGIT_CLASSES", "FACE_CLASSES", "PATCH_CLASSES", "ImageSet", "PatchBox", "downsample", "load_cifar",
    "load_digits", "load_image_folder", "load_lfw_faces", "load_patches", "low_resolution_view", "patch_layout",
    "upsample",
]
