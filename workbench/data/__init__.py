"""Embedded default data sets (no downloads: only what installed packages ship) and loaders for real layouts."""

from workbench.data.digits import DIGIT_CLASSES, ImageSet, load_digits

__all__ = ["DIGIT_CLASSES", "ImageSet", "load_digits"]
