"""The project's own CNN, pre-trained for classification, as deep features for the correlation-filter trackers.

The paper's trackers take channels from networks pre-trained for classification (VGG and friends). The workbench
trains its own small one, so that nothing is downloaded: :class:`workbench.models.SmallCNN` (3 blocks, width 16)
learns the 10-class real-image patch set of :mod:`workbench.data.patches` (patches of scikit-image photographs and
textures, train patches from the left part of each image, test from the right). Its conv blocks, flattened into one
``nn.Sequential`` that ends in the last convolution + BatchNorm + ReLU, become a :class:`~workbench.tracking.cnn.
CNNFeatures` with 64 channels at stride 4 (cell size 4, the HOG cell size, fine enough to localise). Because the
stack ends in a plain convolution, channel distillation's dropped channels are really not computed: the last
convolution's weight is sliced to the kept filters.

``project_cnn_features(smoke=False)`` trains on first use (cached in ``$WORKBENCH_CACHE``); ``gpu_check_tracking``
trains the full setting for a bounded number of steps on a device (``benchmarks/gpu_check.py``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workbench.data.digits import ImageSet
from workbench.data.patches import PATCH_CLASSES, load_patches
from workbench.models.classifier import SmallCNN
from workbench.tracking.cnn import IMAGENET_MEAN, IMAGENET_STD, CNNFeatures
from workbench.train import cached_model, fit, one_thread, resolve_device, training_throughput

#: training settings: input side, patches per class, epochs (the full one trains in well under a minute on a CPU)
SETTINGS: dict[str, dict[str, Any]] = {
    "full": {"size": 32, "max_per_class": 160, "epochs": 6, "width": 16, "depth": 3, "lr": 3e-3, "batch": 64},
    "smoke": {"size": 32, "max_per_class": 40, "epochs": 1, "width": 16, "depth": 3, "lr": 3e-3, "batch": 64},
}


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
    logits = model(_normalise(x))
    loss = F.cross_entropy(logits.float(), y)
    return loss, {"acc": float((logits.argmax(1) == y).float().mean())}


def _accuracy(model: nn.Module, data: ImageSet) -> float:
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(_normalise(data.images[i:i + 256].to(device))).argmax(1).cpu()
                          for i in range(0, len(data.images), 256)])
    return float((pred == data.labels).float().mean())


def _patch_sets(setting: dict[str, Any]) -> tuple[ImageSet, ImageSet]:
    train = load_patches(setting["size"], "train", max_per_class=setting["max_per_class"])
    test = load_patches(setting["size"], "test", max_per_class=max(setting["max_per_class"] // 4, 10))
    return train, test


def _build(setting: dict[str, Any]) -> SmallCNN:
    return SmallCNN(3, len(PATCH_CLASSES), width=setting["width"], depth=setting["depth"])


def patch_classifier(smoke: bool = False, device: str = "auto", retrain: bool = False,
                     progress: bool = True) -> SmallCNN:
    """SmallCNN(3, 10) trained to classify the real-image patches (full: 6 epochs on 1600 32x32 patches, under a
    minute on a CPU; smoke: 1 epoch on 400 patches, seconds). ``workbench_meta["test_acc"]``: accuracy on the
    held-out right-hand parts of the photographs."""
    setting = SETTINGS["smoke" if smoke else "full"]
    config = {"recipe": "tracking_patch_classifier", **setting}
    train_set, test_set = _patch_sets(setting)

    def train(model: SmallCNN) -> dict[str, Any]:
        with one_thread(resolve_device(device).type == "cpu"):
            history = fit(model, train_set.loader(setting["batch"], shuffle=True), patch_step,
                          epochs=setting["epochs"], lr=setting["lr"], device=device, progress=progress,
                          desc="patch classifier (tracking features)",
                          evaluate=lambda m: {"test_acc": _accuracy(m, test_set)})
        return {"history": history.epochs, "test_acc": history.epochs[-1]["test_acc"]}

    name = f"tracking_patch_classifier{'_smoke' if smoke else ''}"
    return cached_model(name, lambda: _build(setting), train, config, retrain=retrain)


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


def gpu_check_tracking(device: str | torch.device = "cuda", max_steps: int = 200) -> dict[str, float]:
    """Train the full setting's patch classifier for ``max_steps`` steps on ``device`` (no cache involved).

    Returns the mean loss of the first and the last tenth of the steps and the training throughput (patches/s).
    """
    dev = resolve_device(device)
    setting = SETTINGS["full"]
    train_set = load_patches(setting["size"], "train", max_per_class=setting["max_per_class"])
    with one_thread(dev.type == "cpu"):
        return training_throughput(_build(setting), train_set.loader(setting["batch"], shuffle=True), patch_step,
                                   max_steps=max_steps, lr=setting["lr"], device=dev)
