"""Embedded default data sets (no downloads: only what installed packages ship) and loaders for real layouts."""

from workbench.data.clips import ClipSet, NoFaceError, load_forgery_clips, read_video
from workbench.data.digits import DIGIT_CLASSES, ImageSet, load_digits
from workbench.data.faces import (
    FACE_REGIONS,
    FORGERY_CLASSES,
    MANIPULATION_KINDS,
    ForgeryParams,
    ForgerySet,
    detect_face_box,
    face_from_photo,
    face_mask,
    load_forgery_faces,
    load_frame_folder,
    make_forgery,
    real_faces,
    region_mask,
    sample_forgery_params,
)
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
    "ClipSet", "NoFaceError", "load_forgery_clips", "read_video",
    "FACE_REGIONS", "FORGERY_CLASSES", "MANIPULATION_KINDS", "ForgeryParams", "ForgerySet", "detect_face_box",
    "face_from_photo", "face_mask", "load_forgery_faces", "load_frame_folder", "make_forgery", "real_faces",
    "region_mask", "sample_forgery_params",
    "DIGIT_CLASSES", "FACE_CLASSES", "PATCH_CLASSES", "ImageSet", "PatchBox", "downsample", "load_cifar",
    "load_digits", "load_image_folder", "load_lfw_faces", "load_patches", "low_resolution_view", "patch_layout",
    "upsample",
]
