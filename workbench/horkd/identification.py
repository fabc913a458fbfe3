"""Low-resolution face recognition on **unseen** identities, HORKD's own setting: each stream is trained as a
classifier over the training identities, then judged by its embeddings on people it never saw.

What LR face recognition reports (and what ``evaluate_resolutions`` gives for ``task="faces"``):

* **rank-1 identification**: leave-one-out nearest neighbour among the test faces by cosine similarity; a probe
  is correct when its most similar *other* face shows the same person;
* **verification AUC**: ROC AUC of the cosine similarity over every same/different pair of test faces.

Each model embeds its own input (the teacher the HR face or the up-sampled LR view, the assistant the up-sampled LR
view, a student the LR view itself); embeddings are the pooled features before the classifier head.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from workbench.train import binary_auc, model_device

#: what each metric of the HORKD tables measures (the benchmark's column headings)
METRIC_LABELS: dict[str, str] = {
    "top1": "top-1 accuracy on held-out patches",
    "rank1": "rank-1 identification on unseen identities (leave-one-out nearest neighbour, cosine)",
    "auc": "verification AUC on unseen identities (all same/different pairs, cosine)",
}


def _check(embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    if embeddings.ndim != 2 or labels.ndim != 1 or len(embeddings) != len(labels):
        raise ValueError(f"expected embeddings (N, D) and labels (N,) of one length; got shapes "
                         f"{tuple(embeddings.shape)} and {tuple(labels.shape)}")
    if len(labels) < 3 or len(torch.unique(labels)) < 2:
        raise ValueError(f"identification needs at least 3 faces of at least 2 identities; got {len(labels)} "
                         f"face(s) of {len(torch.unique(labels))} identity(ies)")
    if not torch.isfinite(embeddings).all():
        raise ValueError("embeddings contain NaN or Inf")


def cosine_similarities(embeddings: torch.Tensor) -> torch.Tensor:
    """(N, N) cosine similarity of every pair of embeddings (a zero embedding is similar to nothing)."""
    unit = torch.nn.functional.normalize(embeddings.float(), dim=1)
    return unit @ unit.T


def rank1_identification(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of faces whose nearest other face (cosine) has the same identity, over the faces whose identity has
    at least one other face in the set (the others cannot be re-identified)."""
    _check(embeddings, labels)
    sim = cosine_similarities(embeddings)
    sim.fill_diagonal_(-float("inf"))
    same = labels[:, None] == labels[None, :]
    probes = same.sum(1) > 1
    hit = labels[sim.argmax(1)] == labels
    return float(hit[probes].double().mean())


def verification_auc(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """ROC AUC of the cosine similarity for "same person" over all unordered pairs of distinct faces."""
    _check(embeddings, labels)
    i, j = torch.triu_indices(len(labels), len(labels), offset=1)
    return binary_auc((labels[i] == labels[j]).int().numpy(), cosine_similarities(embeddings)[i, j].numpy())


@torch.no_grad()
def embed(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Embeddings (``forward_head(forward_features(x), pre_logits=True)``) of ``images``, in eval mode on the
    model's device, float32 on the CPU."""
    dev = model_device(model)
    model.eval()
    out = [model.forward_head(model.forward_features(images[i:i + batch_size].to(dev)), pre_logits=True)
           for i in range(0, len(images), batch_size)]
    return torch.cat([o.float().cpu() for o in out])


def identification_scores(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256
                          ) -> dict[str, float]:
    """``{"rank1", "auc"}`` of ``model``'s embeddings of ``images`` (each model fed the view it was trained on)."""
    embeddings = embed(model, images, batch_size)
    return {"rank1": rank1_identification(embeddings, labels), "auc": verification_auc(embeddings, labels)}


def identification_metric(images: torch.Tensor, labels: torch.Tensor) -> Callable[[nn.Module], dict[str, float]]:
    """A ``fit(evaluate=...)`` callback: the held-out rank-1 identification after each epoch (``test_rank1``)."""
    return lambda model: {"test_rank1": identification_scores(model, images, labels)["rank1"]}
