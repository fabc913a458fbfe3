"""Labelled forgery samples shared by the face set (:mod:`workbench.data.faces`) and the clip set
(:mod:`workbench.data.clips`): one implementation of subsetting, kind filtering, concatenation, batching, argument
checks and the identity split that both generators draw from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from workbench.data.face_crops import split_identities
from workbench.data.synthesis import MANIPULATION_KINDS

FORGERY_CLASSES: tuple[str, ...] = ("real", "fake")
#: Sensor-like grain added to every face (real and fake) before any manipulation: a blurred, sharpened or warped
#: source changes it inside the mask, the local texture cue self-blended images teach a detector to find.
GRAIN = 0.05
SPLITS: tuple[str, ...] = ("train", "val", "test")

Samples = TypeVar("Samples", bound="LabelledSamples")


class LabelledSamples:
    """What a forgery data set (a dataclass with ``labels``, ``kinds`` and ``identities``) can do with its samples.

    Every tensor field is indexed along its first axis, so a subset keeps samples, labels, masks and identities
    aligned whatever the set's sample field is called (``images`` or ``clips``).
    """

    labels: torch.Tensor
    kinds: tuple[str, ...]
    identities: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def _tensor_fields(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if isinstance(getattr(self, f.name), torch.Tensor)]

    def subset(self: Samples, index: np.ndarray | torch.Tensor | list[int]) -> Samples:
        """The samples at ``index`` (a boolean mask or integer indices)."""
        idx = torch.as_tensor(np.asarray(index))
        if idx.dtype == torch.bool:
            idx = torch.nonzero(idx).flatten()
        picks = idx.tolist()
        return dataclasses.replace(self, **{name: getattr(self, name)[idx] for name in self._tensor_fields()},
                                   kinds=tuple(self.kinds[i] for i in picks))

    def with_kinds(self: Samples, kinds: Sequence[str]) -> Samples:
        """Real samples plus the fakes of the given manipulation ``kinds``."""
        return self.subset(np.asarray([k == "real" or k in kinds for k in self.kinds]))

    def nearest_real(self, index: int) -> int:
        """The real sample of ``index``'s identity nearest to it in the set's order (``index`` itself if none)."""
        same = torch.nonzero((self.identities == self.identities[index]) & (self.labels == 0))
        return int(same[torch.argmin((same[:, 0] - index).abs())]) if len(same) else index

    @classmethod
    def concat(cls: type[Samples], parts: Sequence[Samples]) -> Samples:
        """One set of the samples of ``parts`` in order (tensors concatenated, other fields from the first part)."""
        if not parts:
            raise ValueError("concat needs at least one set")
        names = parts[0]._tensor_fields()
        return dataclasses.replace(parts[0], **{name: torch.cat([getattr(p, name) for p in parts]) for name in names},
                                   kinds=sum((p.kinds for p in parts), ()))


def seeded_loader(dataset: torch.utils.data.Dataset, batch_size: int, shuffle: bool, seed: int
                  ) -> torch.utils.data.DataLoader:
    """Batches of ``dataset``; the shuffle order is seeded."""
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                                       generator=torch.Generator().manual_seed(seed))


def tensor_loader(tensors: Sequence[torch.Tensor], batch_size: int, shuffle: bool, seed: int
                  ) -> torch.utils.data.DataLoader:
    """Batches of the aligned ``tensors``; the shuffle order is seeded."""
    return seeded_loader(torch.utils.data.TensorDataset(*tensors), batch_size, shuffle, seed)


class FreshDraws(torch.utils.data.Dataset):
    """A training set drawn afresh for every epoch, as SBI generates its blends on the fly: ``draw(epoch)`` returns
    that epoch's ``LabelledSamples`` (the same length every epoch; ``first``, when given, is epoch 0's), and a
    sample is the tuple of its ``fields``. ``fit`` calls ``set_epoch`` before every epoch, also under torchrun,
    where every rank draws the same set and its ``DistributedSampler`` takes its share."""

    def __init__(self, draw: Callable[[int], LabelledSamples], fields: Sequence[str] = ("images", "labels"),
                 first: LabelledSamples | None = None) -> None:
        self.draw, self.fields, self.epoch = draw, tuple(fields), 0
        self.current = draw(0) if first is None else first

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            current = self.draw(epoch)
            if len(current) != len(self.current):
                raise ValueError(f"epoch {epoch}'s draw has {len(current)} samples, epoch {self.epoch}'s "
                                 f"{len(self.current)}: a fresh draw must keep the set's size")
            self.current, self.epoch = current, epoch

    def __len__(self) -> int:
        return len(self.current)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self.current, name)[index] for name in self.fields)

    def loader(self, batch_size: int, seed: int = 0) -> torch.utils.data.DataLoader:
        """Shuffled batches (seeded order) of the current epoch's draw."""
        return seeded_loader(self, batch_size, True, seed)


@dataclass
class ForgerySet(LabelledSamples):
    """Face-forgery samples as tensors.

    ``images`` (N, C, H, W) float in [0, 1]; ``labels`` (N,) long, 0 real / 1 fake; ``masks`` (N, 1, H, W) float
    soft manipulation masks (zero for real faces; all NaN-free; ``has_masks`` False when the source has none);
    ``kinds`` one string per sample ("real" or a manipulation kind / benchmark method); ``identities`` (N,) long.
    """

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    kinds: tuple[str, ...]
    identities: torch.Tensor
    classes: tuple[str, ...] = FORGERY_CLASSES
    has_masks: bool = True

    def loader(self, batch_size: int = 64, shuffle: bool = True, seed: int = 0,
               with_masks: bool = False) -> torch.utils.data.DataLoader:
        """Batches of ``(images, labels)`` or, with ``with_masks``, ``(images, labels, masks)``."""
        tensors = (self.images, self.labels, self.masks) if with_masks else (self.images, self.labels)
        return tensor_loader(tensors, batch_size, shuffle, seed)


@dataclass
class ClipSet(LabelledSamples):
    """Face-forgery clips as tensors.

    ``clips`` (N, T, C, H, W) float in [0, 1]; ``labels`` (N,) long, 0 real / 1 fake; ``masks`` (N, T, H, W) soft
    per-frame manipulation masks (zero for real clips); ``kinds`` "real" or a manipulation kind; ``identities`` (N,).
    """

    clips: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    kinds: tuple[str, ...]
    identities: torch.Tensor
    classes: tuple[str, ...] = FORGERY_CLASSES

    def loader(self, batch_size: int = 16, shuffle: bool = True, seed: int = 0,
               with_masks: bool = False) -> torch.utils.data.DataLoader:
        """Batches of ``(clips, labels)`` or, with ``with_masks``, ``(clips, labels, masks)``."""
        tensors = (self.clips, self.labels, self.masks) if with_masks else (self.clips, self.labels)
        return tensor_loader(tensors, batch_size, shuffle, seed)


# ------------------------------------------------------------------------------------- what both generators share
def check_set_arguments(split: str, kinds: Sequence[str], n_per_identity: int, size: int) -> tuple[str, ...]:
    """Validate a generator's common arguments (clear ValueErrors); return ``kinds`` as a tuple."""
    kinds = tuple(kinds)
    if not kinds or any(k not in MANIPULATION_KINDS for k in kinds):
        raise ValueError(f"kinds must be a non-empty subset of {MANIPULATION_KINDS}; got {kinds}")
    if n_per_identity < 1:
        raise ValueError(f"n_per_identity must be at least 1; got {n_per_identity}")
    if split not in {*SPLITS, "all"}:
        raise ValueError(f"split must be 'train', 'val', 'test' or 'all'; got {split!r}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels; got {size}")
    return kinds


def split_members(ids: np.ndarray, seed: int, split: str) -> np.ndarray:
    """Indices of the faces whose pseudo-identity falls in ``split`` (``split_identities``, seeded)."""
    return np.flatnonzero(np.isin(ids, split_identities(ids, seed)[split]))


def pick_donor(members: np.ndarray, ids: np.ndarray, face: int, rng: np.random.Generator, split: str) -> int:
    """A face of another identity of the same split, the donor of a ``swap`` forgery of face ``face``."""
    others = members[ids[members] != ids[face]]
    if len(others) == 0:
        raise ValueError(f"split {split!r} has a single identity; 'swap' needs a donor of another one")
    return int(rng.choice(others))
