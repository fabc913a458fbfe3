"""A real face teacher for HORKD: dlib's frozen face-recognition network (``HorkdConfig(teacher="dlib")``).

Paper: HORKD's teacher is a face-recognition network trained on HR faces. Ours: dlib's ResNet (King, "dlib-ml",
JMLR 2009; ``workbench.models.face_id``), fed the 150x150 chip its own alignment makes (``face_id.align_face``).
Its 128-d descriptors are the teacher stream's embedding, which the relational (distance, angle) terms compare; the
logits of the Hinton/KD terms come from a linear head (multinomial logistic regression, scikit-learn) fitted on the
training identities' HR descriptors (their flips included): dlib's network has no classifier of our identities.

The assistant (ours, a reconstruction): the same frozen network on the LR face up-sampled back to 150x150, scored
by the same head. It bridges the resolutions as the paper's assistant does (it sees what the student sees, at the
teacher's size) without training anything, so in the tables its rows equal the HR teacher's on up-sampled input.

dlib runs in C++ on the CPU, ~0.3 s a face: descriptors are computed once per image and view (HR chip, its flip,
each up-sampled LR view) and kept, keyed by a hash of the input pixels, in memory and in the model cache
(``horkd_dlib_descriptors.pt``, atomic writes); training never runs the network per step.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from workbench.cache import CorruptCheckpointError, cache_dir, load_state, save_state
from workbench.horkd.data import load_horkd_data
from workbench.horkd.identification import identification_scores

if TYPE_CHECKING:
    from workbench.horkd.config import HorkdConfig

DESCRIPTOR_FILE = "horkd_dlib_descriptors.pt"
#: inverse regularisation of the fitted head: strong enough to keep the training identities' soft logits informative
#: (a separable problem with C large drives every training face's probability to 1)
HEAD_C = 10.0
_MEMO: dict[Path, dict[str, torch.Tensor]] = {}  # per cache folder: pixel hash -> descriptor


def _pixel_key(image: torch.Tensor) -> str:
    return hashlib.sha1(image.numpy().tobytes()).hexdigest()


def _memo() -> tuple[Path, dict[str, torch.Tensor]]:
    path = cache_dir() / DESCRIPTOR_FILE
    if path not in _MEMO:
        memo: dict[str, torch.Tensor] = {}
        try:
            blob = load_state(path) if path.is_file() else None
        except CorruptCheckpointError:
            blob = None  # measured again and replaced
        if blob is not None:
            memo = dict(zip(blob["keys"], blob["descriptors"], strict=True))
        _MEMO[path] = memo
    return path, _MEMO[path]


def cached_descriptors(images: torch.Tensor) -> torch.Tensor:
    """dlib's 128-d descriptors (N, 128) of face images (N, 3, H, W) in [0, 1] (any size: resized to 150x150),
    float32 on the CPU; each distinct image is run through the network once, ever (memory + model cache)."""
    from workbench.models.face_id import face_descriptors

    x = images.detach().float().cpu().contiguous()
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"face images must be an RGB batch (N, 3, H, W) in [0, 1]; got {tuple(x.shape)}")
    path, memo = _memo()
    keys = [_pixel_key(image) for image in x]
    missing = sorted({k: i for i, k in enumerate(keys) if k not in memo}.values())
    if missing:
        for i, descriptor in zip(missing, face_descriptors(x[missing]), strict=True):
            memo[keys[i]] = descriptor.clone()
        save_state(path, {"keys": list(memo), "descriptors": torch.stack(list(memo.values()))})
    return torch.stack([memo[k] for k in keys])


class DlibTeacher(nn.Module):
    """dlib's frozen network plus a linear head over the training identities, shaped like ``SmallCNN`` for the
    trainer: ``forward_features`` -> the 128-d descriptor (cached), ``forward_head(f, pre_logits=True)`` -> the
    embedding, ``head`` -> the logits. Nothing in it trains."""

    def __init__(self, head: nn.Linear) -> None:
        super().__init__()
        self.head, self.drop = head, nn.Identity()
        self.requires_grad_(False)
        self.workbench_meta: dict[str, Any] = {}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return cached_descriptors(x).to(x.device)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return features if pre_logits else self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def fit_linear_head(embeddings: torch.Tensor, labels: torch.Tensor, n_classes: int, c: float = HEAD_C) -> nn.Linear:
    """The (D -> n_classes) linear layer of a multinomial logistic regression on ``embeddings`` (deterministic)."""
    from sklearn.linear_model import LogisticRegression

    if len(torch.unique(labels)) != n_classes:
        raise ValueError(f"the head needs faces of all {n_classes} training identities; got "
                         f"{len(torch.unique(labels))}")
    fitted = LogisticRegression(C=c, max_iter=5000).fit(embeddings.numpy(), labels.numpy())
    head = nn.Linear(embeddings.shape[1], n_classes)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(fitted.coef_, dtype=torch.float32))
        head.bias.copy_(torch.as_tensor(fitted.intercept_, dtype=torch.float32))
    return head


def dlib_teacher(config: HorkdConfig) -> DlibTeacher:
    """The HR teacher of ``config`` (``teacher="dlib"``): dlib's network and the head fitted on its training split.
    ``workbench_meta`` holds the head's training accuracy and the HR identification scores on the unseen people
    (``test_rank1``, ``test_auc``), as a trained teacher's does."""
    if config.teacher != "dlib":
        raise ValueError(f"dlib_teacher needs HorkdConfig(teacher='dlib'); got teacher={config.teacher!r}")
    train, test = load_horkd_data(config)
    embeddings = cached_descriptors(train.images)
    model = DlibTeacher(fit_linear_head(embeddings, train.labels, len(train.classes))).eval()
    with torch.no_grad():
        train_acc = float((model.head(embeddings).argmax(1) == train.labels).double().mean())
    scores = identification_scores(model, test.images, test.labels)
    model.workbench_meta = {"train_acc": train_acc, "test_rank1": scores["rank1"], "test_auc": scores["auc"]}
    return model
