"""HORKD's setting (``HorkdConfig``) and the recipe of each of its three streams (teacher, assistant, student).

The setting is what a user picks (``HorkdConfig.full()``, ``.smoke()``, ``.faces(root)``); each stream's recipe is
the part of it that makes that stream (``HorkdTeacherRecipe.of(config)`` ...), a frozen dataclass handed whole to
``cached_model``: its fields are the cache key, the same keys as before issue 25 (the shipped weights are found).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from workbench.data.patch_bank import FACE_LAYOUT, bank_classes, face_folder_digest
from workbench.data.patches import PATCH_CLASSES
from workbench.horkd.data import load_horkd_data
from workbench.recipes import Recipe, optional_field, recipe_fields

TASKS: tuple[str, ...] = ("bank", "patches", "faces")
#: who teaches the faces task: the project's CNN trained on the training identities, or dlib's frozen network
TEACHERS: tuple[str, ...] = ("project", "dlib")
#: the faces front ends: None (the whole photo, centre square, resized) or "dlib" (dlib-aligned face chips)
FACE_FRONTS: tuple[str, ...] = ("dlib",)
#: the schedule of an aligned-faces setting: a face folder holds tens of faces, so small batches and many epochs
#: (the whole-photo preset's 30 one-step epochs leave a teacher or student barely trained)
ALIGNED_SCHEDULE: dict[str, int] = {"batch_size": 32, "teacher_epochs": 150, "assistant_epochs": 50,
                                    "student_epochs": 150}


@dataclass(frozen=True)
class HorkdConfig(Recipe):
    """Sizes and weights of the three-stream experiment (``lr``: the learning rate). Frozen: ``asdict()`` is the
    cache key of every stream it trains.

    ``task``: ``"bank"`` (``workbench.data.load_patch_bank``: 22 photographs/textures x ``bands`` bands, 44 classes
    by default, the harder task), ``"patches"`` (the 10-class colour patch set of ``load_patches``) or ``"faces"``
    (the paper's own setting: low-resolution faces from ``face_root``, laid out ``root/<identity>/<image>``; the
    streams classify the training identities and are judged by rank-1 identification and verification AUC on
    unseen ones, see ``workbench.horkd.identification``; ``bands`` and ``*_per_class`` do not apply).
    ``face_front``: None (each photo's centre square resized) or ``"dlib"`` (the face aligned by dlib's landmarks,
    ``workbench.models.face_id.align_face``, as dlib's network is fed). ``teacher``: None or ``"project"`` (our
    ``SmallCNN`` trained on the HR faces; stored as None so the keys from before the field hold) or ``"dlib"``
    (dlib's frozen face-recognition network with a fitted linear head, ``workbench.horkd.dlib_teacher``; needs
    ``face_front="dlib"``).
    ``angle_triplets``: None for RKD's exact angle term over all B^3 triplets of a batch, or the number of triplets
    of our sampled, unbiased estimate of it (``RKDAngle(triplets)``; the full setting's, which makes it fit a CPU).
    ``full()``: the benchmark and dashboard setting (the whole 5-seed benchmark in about three minutes on one
    H200). ``smoke()``: tests and first use on a CPU (seconds per model; numbers meaningless).
    """

    task: str = "bank"
    bands: int = 2
    hr_size: int = 32
    resolutions: tuple[int, ...] = (16, 8)
    teacher_width: int = 32
    student_width: int = 6
    depth: int = 3
    train_per_class: int | None = 160
    test_per_class: int | None = 48
    teacher_epochs: int = 30
    assistant_epochs: int = 10
    student_epochs: int = 24
    batch_size: int = 512
    lr: float = 3e-3
    alpha: float = 1.0
    beta: float = 25.0
    gamma: float = 50.0
    temperature: float = 4.0
    face_root: str | None = optional_field()  # both left out of the key while None: the keys from before they
    angle_triplets: int | None = optional_field()  # existed (the shipped smoke weights) hold
    face_front: str | None = optional_field()
    teacher: str | None = optional_field()

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}; got {self.task!r}")
        if self.task == "faces" and not self.face_root:
            raise ValueError(f"task='faces' needs face_root: a folder laid out as {FACE_LAYOUT}")
        if self.task != "faces" and self.face_root is not None:
            raise ValueError(f"face_root is only read by task='faces'; got task={self.task!r}")
        if self.face_root is not None:
            object.__setattr__(self, "face_root", str(Path(self.face_root).expanduser()))
        if not self.resolutions or any(not 4 <= r <= self.hr_size for r in self.resolutions):
            raise ValueError(f"resolutions must lie in [4, hr_size={self.hr_size}]; got {self.resolutions}")
        if self.angle_triplets is not None and self.angle_triplets < 1:
            raise ValueError(f"angle_triplets must be None (every triplet) or >= 1; got {self.angle_triplets}")
        self._check_faces_fields()

    def _check_faces_fields(self) -> None:
        if self.teacher == "project":
            object.__setattr__(self, "teacher", None)  # the default: keys as before the field existed
        if self.teacher is not None and self.teacher not in TEACHERS:
            raise ValueError(f"teacher must be one of {TEACHERS}; got {self.teacher!r}")
        if self.face_front is not None and self.face_front not in FACE_FRONTS:
            raise ValueError(f"face_front must be None (whole photo) or one of {FACE_FRONTS}; got {self.face_front!r}")
        if (self.teacher or self.face_front) and self.task != "faces":
            raise ValueError(f"teacher and face_front are only read by task='faces'; got task={self.task!r}")
        if self.teacher == "dlib" and self.face_front != "dlib":
            raise ValueError("teacher='dlib' needs face_front='dlib': dlib's network is fed dlib-aligned faces")

    @classmethod
    def full(cls) -> HorkdConfig:
        """The benchmark setting: the 44-class bank at HR 32x32 (11,430 training patches with flips), teacher width
        32 and student width 6 (a 25.5x capacity gap), batch 512: about 27,500 optimiser steps for the 5-seed
        benchmark (teacher, 2 assistants, 50 students). The angle term over 16,384 sampled triplets a batch (ours,
        unbiased; the exact term builds a 512^3 tensor, seconds a step on a CPU)."""
        return cls(angle_triplets=16384)

    @classmethod
    def smoke(cls) -> HorkdConfig:
        """One band (22 classes), a width-16 teacher, few patches and epochs: every stream in seconds on a CPU."""
        return cls(bands=1, teacher_width=16, student_width=4, train_per_class=16, test_per_class=8,
                   teacher_epochs=6, assistant_epochs=2, student_epochs=12, batch_size=64)

    @classmethod
    def faces(cls, root: str | Path, smoke: bool = False, teacher: str = "project",
              aligned: bool | None = None) -> HorkdConfig:
        """``preset(smoke)`` on the faces of ``root`` (``root/<identity>/<image>``), batches of at most 64 faces:
        a face folder is far smaller than the bank, and big batches would leave a few steps an epoch.

        ``teacher="dlib"``: dlib's frozen network teaches (HR = its own 150x150 aligned chip); ``aligned`` (default:
        whether the teacher is dlib's) feeds every stream dlib-aligned faces and, outside smoke, the
        ``ALIGNED_SCHEDULE``. ``faces(root)`` is the setting from before these options (same cache keys)."""
        if teacher not in TEACHERS:
            raise ValueError(f"teacher must be one of {TEACHERS}; got {teacher!r}")
        aligned = teacher == "dlib" if aligned is None else aligned
        base = cls.preset(smoke)
        config = base.with_(task="faces", face_root=str(root), batch_size=min(base.batch_size, 64))
        if not aligned:
            if teacher == "dlib":
                raise ValueError("teacher='dlib' needs aligned faces (aligned=True)")
            return config
        schedule = {} if smoke else ALIGNED_SCHEDULE
        config = config.with_(face_front="dlib", **schedule)
        if teacher == "dlib":
            from workbench.models.face_id import CHIP_SIZE

            config = config.with_(teacher="dlib", hr_size=CHIP_SIZE)
        return config

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names of ``task`` (for ``"faces"``: the training identities, read from ``face_root``)."""
        if self.task == "faces":
            return load_horkd_data(self)[0].classes
        return bank_classes(self.bands) if self.task == "bank" else PATCH_CLASSES

    @property
    def metric(self) -> str:
        """The held-out score the benchmark compares: ``"top1"``, or ``"rank1"`` (identification) for faces."""
        return "rank1" if self.task == "faces" else "top1"

    def recipe(self) -> dict[str, Any]:
        """The setting's part of every stream's cache key: its fields (``face_root`` and ``angle_triplets`` only
        when set, so the bank and patch recipes hash as before those fields existed); for faces also
        ``face_data``, a digest of the folder's files, so adding or replacing images retrains rather than reusing
        models trained on other faces."""
        keys = recipe_fields(self)
        if self.task == "faces":
            keys["face_data"] = face_folder_digest(self.face_root)
        return keys


class _OfSetting:
    """The presets of a stream's recipe: the stream of ``HorkdConfig``'s preset (the digest of a face folder is
    taken when the recipe is made: ``of``)."""

    @classmethod
    def of(cls, config: HorkdConfig, **which: Any) -> Any:
        """The recipe of this stream in the setting ``config`` (``which``: resolution, method, seed ...)."""
        names = {f.name for f in fields(cls) if f.init} & {f.name for f in fields(HorkdConfig)}
        face_data = face_folder_digest(config.face_root) if config.task == "faces" else None
        return cls(**{n: getattr(config, n) for n in names}, face_data=face_data, **which)

    @classmethod
    def full(cls) -> Any:
        """This stream in ``HorkdConfig.full()``."""
        return cls.of(HorkdConfig.full())

    @classmethod
    def smoke(cls) -> Any:
        """This stream in ``HorkdConfig.smoke()``."""
        return cls.of(HorkdConfig.smoke())

    @classmethod
    def faces(cls, root: str | Path, smoke: bool = False) -> Any:
        """This stream in ``HorkdConfig.faces(root, smoke)``."""
        return cls.of(HorkdConfig.faces(root, smoke))


@dataclass(frozen=True)
class _TeacherFields(Recipe):
    """The setting's fields that make the teacher (also the assistant's starting point)."""

    task: str = "bank"
    bands: int = 2
    hr_size: int = 32
    teacher_width: int = 32
    depth: int = 3
    train_per_class: int | None = 160
    test_per_class: int | None = 48
    teacher_epochs: int = 30
    batch_size: int = 512
    lr: float = 3e-3
    face_root: str | None = optional_field()
    face_data: str | None = optional_field()
    face_front: str | None = optional_field()
    teacher: str | None = optional_field()


@dataclass(frozen=True)
class HorkdTeacherRecipe(_OfSetting, _TeacherFields):
    """The HR teacher's recipe: ``HorkdTeacherRecipe.of(config)``; cross-entropy, AdamW, cosine schedule."""

    recipe: str = "horkd_teacher"
    schedule: str = "cosine"


@dataclass(frozen=True)
class HorkdAssistantRecipe(_OfSetting, _TeacherFields):
    """The assistant's recipe at ``resolution``: the teacher's fields and the fine-tuning's
    (``HorkdAssistantRecipe.of(config, resolution=8)``)."""

    recipe: str = "horkd_assistant"
    resolution: int = 8
    assistant_epochs: int = 10
    alpha: float = 1.0
    temperature: float = 4.0


@dataclass(frozen=True)
class HorkdStudentRecipe(_OfSetting, HorkdConfig):
    """One student's recipe: the whole setting, its ``method``, ``resolution`` and ``seed``
    (``HorkdStudentRecipe.of(config, method="horkd", resolution=8, seed=0)``)."""

    recipe: str = "horkd_student"
    method: str = "horkd"
    resolution: int = 8
    seed: int = 0
    face_data: str | None = optional_field()
