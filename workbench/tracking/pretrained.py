"""The project's own CNN, pre-trained for classification, as deep features for the correlation-filter trackers.

The paper's trackers take channels from networks pre-trained for classification (VGG and friends). The workbench
trains its own small one, so that nothing is downloaded: :class:`workbench.models.SmallCNN` (3 blocks, width 16)
learns the 10-class real-image patch set of :mod:`workbench.data.patches` (patches of scikit-image photographs and
textures, train patches from the left part of each image, test from the right). Its conv blocks, flattened into one
``nn.Sequential`` that ends in the last convolution + BatchNorm + ReLU, become a :class:`~workbench.tracking.cnn.
CNNFeatures` with 64 channels at stride 4 (cell size 4, the HOG cell size, fine enough to localise). Because the
stack ends in a plain convolution, channel distillation's dropped channels are really not computed: the last
convolution's weight is sliced to the kept filters.

``project_cnn_features(smoke=False)`` trains on first use (cached in ``$WORKBENCH_CACHE``); ``gpu_check`` in
``benchmarks/tracking.py`` trains the full recipe for a bounded number of steps on a device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from workbench.data.digits import ImageSet
from workbench.data.patches import PATCH_CLASSES, load_patches
from workbench.models.classifier import SmallCNN
from workbench.recipes import Recipe
from workbench.tracking.cnn import IMAGENET_MEAN, IMAGENET_STD, CNNFeatures
from workbench.train import accuracy, cached_model, classification_loss, fit, one_thread, resolve_device


@dataclass(frozen=True)
class PatchClassifierRecipe(Recipe):
    """Training recipe of the feature CNN: input side, patches per class, epochs, network width and depth, learning
    rate, batch size. Its ``asdict()`` is the cache key."""

    recipe: str = "tracking_patch_classifier"
    size: int = 32
    max_per_class: int = 160
    epochs: int = 6
    width: int = 16
    depth: int = 3
    lr: float = 3e-3
    batch: int = 64

    @classmethod
    def smoke(cls) -> PatchClassifierRecipe:
        """40 patches per class, 1 epoch: seconds on a CPU."""
        return cls(max_per_class=40, epochs=1)


#: the full recipe trains in well under a minute on a CPU; the smoke one in seconds
RECIPES: dict[str, PatchClassifierRecipe] = {"full": PatchClassifierRecipe.full(),
                                             "smoke": PatchClassifierRecipe.smoke()}


def _normalise(x: torch.Tensor) -> torch.Tensor:
    """RGB in 0..1 -> the normalisation :class:`CNNFeatures` applies to tracker patches (ImageNet statistics)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def patch_step(model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy step on normalised patches, with random horizontal flips."""
    x, y = (t.to(device) for t in batch)
    flip = torch.rand(x.shape[0], device=device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return classification_loss(model(_normalise(x)), y)


def patch_sets(recipe: PatchClassifierRecipe) -> tuple[ImageSet, ImageSet]:
    """The recipe's training patches (left parts of the photographs) and test patches (right parts)."""
    train = load_patches(recipe.size, "train", max_per_class=recipe.max_per_class)
    test = load_patches(recipe.size, "test", max_per_class=max(recipe.max_per_class // 4, 10))
    return train, test


def build_classifier(recipe: PatchClassifierRecipe) -> SmallCNN:
    """The untrained SmallCNN of ``recipe``."""
    return SmallCNN(3, len(PATCH_CLASSES), width=recipe.width, depth=recipe.depth)


def patch_classifier(smoke: bool = False, device: str = "auto", retrain: bool = False,
                     progress: bool = True) -> SmallCNN:
    """SmallCNN(3, 10) trained to classify the real-image patches (full: 6 epochs on 1600 32x32 patches, under a
    minute on a CPU; smoke: 1 epoch on 400 patches, seconds). ``workbench_meta["test_acc"]``: accuracy on the
    held-out right-hand parts of the photographs."""
    recipe = PatchClassifierRecipe.preset(smoke)
    train_set, test_set = patch_sets(recipe)

    def evaluate(model: nn.Module) -> dict[str, float]:
        return {"test_acc": accuracy(model, test_set.images, test_set.labels, transform=_normalise)}

    def train(model: SmallCNN) -> dict[str, Any]:
        with one_thread(resolve_device(device).type == "cpu"):
            history = fit(model, train_set.loader(recipe.batch, shuffle=True), patch_step,
                          epochs=recipe.epochs, lr=recipe.lr, device=device, progress=progress,
                          desc="patch classifier (tracking features)", evaluate=evaluate)
        return {"history": history.epochs, "test_acc": history.epochs[-1]["test_acc"]}

    name = f"tracking_patch_classifier{'_smoke' if smoke else ''}"
    return cached_model(name, lambda: build_classifier(recipe), train, recipe, retrain=retrain)


def conv_stack(model: SmallCNN) -> nn.Sequential:
    """The classifier's conv blocks as one flat ``nn.Sequential`` (conv, BN, ReLU, ...), head and pooling removed.

    Flat, so that :class:`CNNFeatures` finds the last convolution and can slice it to the kept channels.
    """
    layers: list[nn.Module] = []
    for block in model.features:
        layers.extend(block.children())
    return nn.Sequential(*layers)


def project_cnn_features(smoke: bool = False, device: str = "cpu", train_device: str = "auto",
                         retrain: bool = False, progress: bool = True) -> CNNFeatures:
    """Deep features from the project's patch classifier: 64 channels, cell size 4, for the trackers.

    ``device`` is where the features are computed while tracking (the trackers' FFTs run on the CPU either way);
    ``train_device`` where the classifier trains on first use.
    """
    model = patch_classifier(smoke=smoke, device=train_device, retrain=retrain, progress=progress)
    return CNNFeatures(conv_stack(model), IMAGENET_MEAN, IMAGENET_STD, device=device,
                       name="cnn" if not smoke else "cnn-smoke")
