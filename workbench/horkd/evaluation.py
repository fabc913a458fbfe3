"""Evaluating HORKD's streams: top-1 against input resolution, CPU inference time, and the relational structure
(distance and angle matrices) each stream gives a batch. The benchmark, the notebook and the dashboard all call these.
For ``task="faces"`` the held-out people are unseen identities: ``evaluate_resolutions`` reports rank-1
identification and verification AUC of the embeddings (``workbench.horkd.identification``) instead of top-1.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.cache import SHIPPED_DIR, cache_dir, shipping_enabled
from workbench.data.digits import ImageSet
from workbench.horkd.comparison import StudentErrors, student_errors
from workbench.horkd.data import load_horkd_test
from workbench.horkd.identification import identification_scores
from workbench.horkd.losses import normalized_distances, triplet_angles
from workbench.horkd.recipe import (
    METHODS,
    HorkdConfig,
    assistant_model,
    load_horkd_data,
    low_res_input,
    stream,
    teacher_model,
    train_students,
)
from workbench.train import SMOKE_ENV, accuracy, smoke_mode

TEST_RESOLUTIONS: tuple[int, ...] = (4, 6, 8, 12, 16, 24, 32)


def held_out_scores(config: HorkdConfig, model: nn.Module, images: torch.Tensor, labels: torch.Tensor
                    ) -> dict[str, float]:
    """A model's held-out scores on the view ``images`` it is fed: ``{"top1"}``, or for faces (unseen identities)
    ``{"rank1", "auc"}`` of its embeddings."""
    if config.task == "faces":
        return identification_scores(model, images, labels)
    return {"top1": accuracy(model, images, labels)}


def evaluate_resolutions(config: HorkdConfig, seeds: Sequence[int] = (0,), methods: Sequence[str] = METHODS,
                         teacher_resolutions: Sequence[int] | None = None, device: str = "auto",
                         progress: bool = True, budget_s: float | None = None) -> list[dict[str, Any]]:
    """Rows ``{method, resolution, seed, top1}`` for every student/seed at ``config.resolutions``, plus the
    assistants, and the HR teacher on up-sampled input at ``teacher_resolutions`` (default: those and HR); for
    ``task="faces"`` the rows hold ``rank1`` and ``auc`` on the unseen identities instead of ``top1``.

    Students are trained seed by seed (every resolution and method of a seed, then the next seed); with
    ``budget_s``, a seed is not started when the time spent so far plus the last seed's time would exceed it.
    """
    start = time.perf_counter()
    _, test = load_horkd_data(config)
    teacher = teacher_model(config, device=device, progress=progress)
    rows: list[dict[str, Any]] = []
    for r in teacher_resolutions or sorted({*config.resolutions, config.hr_size}):
        rows.append({"method": "teacher_upsampled", "resolution": r, "seed": 0,
                     **held_out_scores(config, teacher, low_res_input(test.images, r, True), test.labels)})
    for r in config.resolutions:
        assistant = assistant_model(config, r, device=device, progress=progress)
        rows.append({"method": "assistant", "resolution": r, "seed": 0,
                     **held_out_scores(config, assistant, low_res_input(test.images, r, True), test.labels)})
    last = 0.0
    for seed in seeds:
        if budget_s is not None and time.perf_counter() - start + last > budget_s:
            break
        t0 = time.perf_counter()
        for r in config.resolutions:
            for (method, _), model in train_students(config, r, methods, (seed,), device, progress=progress).items():
                rows.append({"method": method, "resolution": r, "seed": seed,
                             **held_out_scores(config, model, low_res_input(test.images, r), test.labels)})
        last = time.perf_counter() - t0
    return rows


@torch.no_grad()
def inference_seconds(model: nn.Module, images: torch.Tensor, repeats: int = 5) -> float:
    """Median wall-clock seconds of one eval forward pass over ``images`` on the CPU (after one warm-up)."""
    model.cpu().eval()
    model(images)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(images)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


@torch.no_grad()
def relational_views(models: dict[str, tuple[nn.Module, bool]], hr_images: torch.Tensor, resolution: int,
                     vertex: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """For each named stream ``(model, sees_hr_size_input)``: its normalised distance matrix (B, B) on the batch and
    its angle matrix at ``vertex`` (cos of the angle at sample ``vertex`` between samples i and k), as NumPy.

    The teacher is fed HR images; a model with ``sees_hr_size_input=True`` and not named 'teacher' gets the
    up-sampled low-resolution view; a student gets the low-resolution image.
    """
    if len(hr_images) < 3:
        raise ValueError(f"relational views need a batch of at least 3 images; got {len(hr_images)}")
    if not 0 <= vertex < len(hr_images):
        raise ValueError(f"vertex must lie in [0, {len(hr_images) - 1}]; got {vertex}")
    out = {}
    for name, (model, hr_sized) in models.items():
        model.cpu().eval()
        x = hr_images if name == "teacher" else low_res_input(hr_images, resolution, hr_sized)
        emb = stream(model, x).embedding
        out[name] = {"distance": normalized_distances(emb).numpy(), "angle": triplet_angles(emb)[vertex].numpy()}
    return out


# ------------------------------------------------------------------------------------- the streams of a view
@dataclass
class HorkdModels:
    """The streams a view compares: the HR teacher, one assistant and one student per method for each trained
    resolution (seed 0), the held-out HR test patches, and (once computed) the accuracy curves."""

    config: HorkdConfig
    teacher: nn.Module
    assistants: dict[int, nn.Module]
    students: dict[tuple[str, int], nn.Module]
    test: ImageSet
    curves: dict[str, list[float]] = field(default_factory=dict)

    def nearest_trained(self, resolution: int) -> int:
        """The trained resolution closest (in log scale) to ``resolution``: whose models serve that input size."""
        return min(self.config.resolutions, key=lambda r: abs(math.log(resolution / r)))


def default_models(config: HorkdConfig | None = None, smoke: bool | None = None, device: str = "auto",
                   progress: bool = True) -> HorkdModels:
    """The dashboard's streams (teacher, assistants, seed-0 students of every method), on the CPU in eval mode.

    Default: ``HorkdConfig.full()`` (the harder 44-class task; shipped or cached weights, trained on first use
    otherwise); ``smoke=True`` or ``$WORKBENCH_SMOKE=1`` (the tests) picks ``HorkdConfig.smoke()``.
    """
    explicit = smoke is not None or os.environ.get(SMOKE_ENV, "").strip() != ""
    config = config or HorkdConfig.preset(smoke_mode(smoke) if explicit else False)
    if config.task == "faces":
        raise ValueError("the dashboard's views classify held-out images into the training classes; faces are "
                         "tested on unseen identities: use evaluate_resolutions / identification_scores instead")
    teacher = teacher_model(config, device=device, progress=progress)
    assistants, students = {}, {}
    for r in config.resolutions:
        assistants[r] = assistant_model(config, r, device=device, progress=progress)
        for (method, _seed), model in train_students(config, r, METHODS, (0,), device, progress=progress).items():
            students[(method, r)] = model.cpu().eval()
    return HorkdModels(config, teacher.cpu().eval(), {r: a.cpu().eval() for r, a in assistants.items()}, students,
                       load_horkd_test(config))


@torch.no_grad()
def stream_probabilities(models: HorkdModels, image: torch.Tensor) -> list[tuple[str, int, torch.Tensor]]:
    """Every stream's class probabilities for one HR image (C, hr_size, hr_size) in [0, 1]: the teacher on the HR
    image, then for each trained resolution r the assistant on the r x r view up-sampled back to HR and each
    student on the r x r view (``low_res_input``, the views they were trained on). ``(stream, resolution, p)``
    with ``p`` the softmax over the training classes."""
    hr = models.config.hr_size
    if image.ndim != 3 or tuple(image.shape[-2:]) != (hr, hr):
        raise ValueError(f"expected one HR image of shape (C, {hr}, {hr}); got shape {tuple(image.shape)}")
    x = image[None].float()
    runs: list[tuple[str, int, nn.Module, torch.Tensor]] = [("teacher", hr, models.teacher, x)]
    for r in models.config.resolutions:
        runs.append(("assistant", r, models.assistants[r], low_res_input(x, r, for_teacher_size=True)))
        runs += [(method, r, models.students[(method, r)], low_res_input(x, r)) for method in METHODS]
    return [(name, r, torch.softmax(model.cpu().eval()(view).float(), 1)[0]) for name, r, model, view in runs]


def predict_image(models: HorkdModels, image: torch.Tensor) -> list[dict[str, Any]]:
    """Every stream's top-1 for one HR image (``stream_probabilities``). Rows ``{stream, resolution, class, p}``
    (``p``: the softmax probability of that class)."""
    classes = models.test.classes
    return [{"stream": name, "resolution": r, "class": classes[int(p.argmax())], "p": float(p.max())}
            for name, r, p in stream_probabilities(models, image)]


def accuracy_curves(models: HorkdModels, resolutions: Sequence[int] = TEST_RESOLUTIONS,
                    per_class: int | None = None) -> dict[str, list[float]]:
    """Top-1 on the test patches at each input resolution, for the teacher (on up-sampled input), the assistant and
    every student baseline (each served by the model trained at the nearest trained resolution). ``per_class``
    limits the test set to the first ``per_class`` patches of each class (the dashboard's quick curves)."""
    x, y = models.test.images, models.test.labels
    if per_class is not None:
        pick = torch.cat([torch.nonzero(y == c).flatten()[:per_class] for c in range(len(models.test.classes))])
        x, y = x[pick], y[pick]
    curves: dict[str, list[float]] = {name: [] for name in ("teacher_upsampled", "assistant", *METHODS)}
    for r in resolutions:
        near = models.nearest_trained(r)
        hr_sized = low_res_input(x, r, for_teacher_size=True)
        curves["teacher_upsampled"].append(accuracy(models.teacher, hr_sized, y))
        curves["assistant"].append(accuracy(models.assistants[near], hr_sized, y))
        low_res = low_res_input(x, r)
        for method in METHODS:
            curves[method].append(accuracy(models.students[(method, near)], low_res, y))
    return curves


def _weights_digest(models: HorkdModels) -> str:
    """A digest of every stream's weights and of the held-out set: what the accuracy curves are a function of."""
    digest = hashlib.sha256()
    streams = [models.teacher, *models.assistants.values(), *models.students.values()]
    for tensor in [*(t for m in streams for t in m.state_dict().values()), models.test.images, models.test.labels]:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def cached_accuracy_curves(models: HorkdModels, resolutions: Sequence[int] = TEST_RESOLUTIONS
                           ) -> dict[str, list[float]]:
    """``accuracy_curves`` on the whole held-out set, computed once per set of weights and kept in the model cache
    (``horkd_curves-<digest>.json``, written atomically): the same weights give the same curves, and a dashboard's
    first render does not spend seconds re-measuring them. A damaged file is measured again and replaced. The
    curves of the shipped weights ship too (``workbench/weights/derived``, same name): an empty cache reads them."""
    name = f"horkd_curves-{_weights_digest(models)}.json"
    path = cache_dir() / name
    for candidate in (path, *([SHIPPED_DIR / "derived" / name] if shipping_enabled() else [])):
        try:
            stored = json.loads(candidate.read_text())
            if stored["resolutions"] == list(resolutions):
                return {name: [float(v) for v in values] for name, values in stored["curves"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            pass
    curves = accuracy_curves(models, resolutions)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"resolutions": list(resolutions), "curves": curves}))
    tmp.replace(path)
    return curves


def errors_at(models: HorkdModels, resolution: int) -> StudentErrors:
    """Where the seed-0 students trained at ``resolution`` (one of ``config.resolutions``) err differently on the
    held-out set (``comparison.student_errors``)."""
    if resolution not in models.config.resolutions:
        raise ValueError(f"students were trained at {models.config.resolutions}; got resolution {resolution}")
    students = {m: models.students[(m, resolution)] for m in METHODS}
    return student_errors(students, models.test.images, models.test.labels, models.test.classes, resolution)


def per_class_batch(images: ImageSet, per_class: int = 2) -> tuple[torch.Tensor, list[str]]:
    """The first ``per_class`` images of every class (class by class) and a unique label for each ("chelsea 2"):
    the batch whose relational structure the notebook and the dashboard show."""
    pick = torch.cat([torch.nonzero(images.labels == c).flatten()[:per_class] for c in range(len(images.classes))])
    names = [images.classes[int(c)] for c in images.labels[pick]]
    return images.images[pick], [f"{name} {names[:i].count(name) + 1}" for i, name in enumerate(names)]


def distance_gaps(views: dict[str, dict[str, np.ndarray]], reference: str = "teacher") -> dict[str, float]:
    """Mean absolute difference between each stream's normalised distance matrix and the ``reference`` stream's
    (views from ``relational_views``): how far a stream's pairwise structure is from the teacher's."""
    ref = views[reference]["distance"]
    return {name: float(np.abs(v["distance"] - ref).mean()) for name, v in views.items() if name != reference}
