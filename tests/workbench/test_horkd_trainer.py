"""The three-stream trainer in its smoke setting: every baseline trains through ``workbench.train.fit`` and learns."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from workbench.horkd import (
    METHODS,
    HorkdConfig,
    accuracy_curves,
    assistant_model,
    build_student,
    build_teacher,
    count_parameters,
    default_models,
    evaluate_resolutions,
    load_horkd_data,
    recipe_optimizer,
    relational_views,
    student_model,
    teacher_model,
    train_students,
)
from workbench.train import cosine_schedule, fit, one_thread

CONFIG = HorkdConfig.smoke().with_(resolutions=(8,))


@pytest.fixture(scope="module", autouse=True)
def small_cpu_run(tmp_path_factory):
    """A session cache shared with the widget tests; one torch thread (much faster than contended threads on a
    small shared CPU)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("WORKBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "horkd_cache"))
    with one_thread():
        yield
    mp.undo()


@pytest.fixture(scope="module")
def students():
    return train_students(CONFIG, 8, METHODS, seeds=(0,), device="cpu", progress=False)


def test_every_baseline_student_beats_chance_on_held_out_patches(students):
    chance = 1 / 10
    for (method, _seed), model in students.items():
        assert model.workbench_meta["test_acc"] > chance + 0.1, method
    assert {m for m, _ in students} == set(METHODS)


def test_student_is_at_least_four_times_smaller_than_teacher():
    assert count_parameters(build_teacher(CONFIG)) >= 4 * count_parameters(build_student(CONFIG))


def test_teacher_is_frozen_reference_and_assistant_starts_from_it(students):
    teacher = teacher_model(CONFIG, device="cpu", progress=False)
    assistant = assistant_model(CONFIG, 8, device="cpu", progress=False)
    assert teacher.workbench_meta["test_acc"] > 0.3
    assert type(assistant) is type(teacher) and count_parameters(assistant) == count_parameters(teacher)
    # fine-tuned from the teacher: close to it, but not identical
    w_t, w_a = teacher.features[0][0].weight, assistant.features[0][0].weight
    assert 0 < float((w_t - w_a).detach().norm()) < 0.5 * float(w_t.detach().norm())


def test_models_are_cached_and_rows_cover_every_stream(students):
    again = student_model(CONFIG, "horkd", 8, seed=0, device="cpu", progress=False)
    assert torch.equal(again.head.weight, students[("horkd", 0)].head.weight)
    rows = evaluate_resolutions(CONFIG, seeds=(0,), device="cpu", progress=False, teacher_resolutions=(8, 32))
    methods = {(r["method"], r["resolution"]) for r in rows}
    assert {("teacher_upsampled", 8), ("teacher_upsampled", 32), ("assistant", 8), ("horkd", 8)} <= methods
    hr = next(r["top1"] for r in rows if r["method"] == "teacher_upsampled" and r["resolution"] == 32)
    assert hr > 0.3


def test_relational_views_of_the_three_streams(students):
    _, test = load_horkd_data(CONFIG)
    teacher = teacher_model(CONFIG, device="cpu", progress=False)
    assistant = assistant_model(CONFIG, 8, device="cpu", progress=False)
    views = relational_views({"teacher": (teacher, True), "assistant": (assistant, True),
                              "student": (students[("horkd", 0)], False)}, test.images[::8][:12], 8, vertex=2)
    for v in views.values():
        assert v["distance"].shape == (12, 12) and v["angle"].shape == (12, 12)
        assert abs(v["distance"][~torch.eye(12, dtype=torch.bool).numpy()].mean() - 1) < 1e-4
    with pytest.raises(ValueError, match="at least 3"):
        relational_views({"teacher": (teacher, True)}, test.images[:2], 8)
    with pytest.raises(ValueError, match="vertex must lie"):
        relational_views({"teacher": (teacher, True)}, test.images[:4], 8, vertex=4)


def test_bad_trainer_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="unknown method"):
        train_students(CONFIG, 8, ["distill-everything"], progress=False)
    with pytest.raises(ValueError, match="resolution must lie"):
        train_students(CONFIG, 64, ["scratch"], progress=False)


def test_recipe_learning_rate_decays_on_the_cosine_of_the_optimiser_step():
    """Every stream's schedule: step k (from 0) runs at lr * 0.5 * (1 + cos(pi * min(k / total, 1))), where total =
    epochs * len(loader) bounded by max_steps (what HORKD's own loop set before each step before fit had a hook)."""
    model = torch.nn.Linear(3, 2)
    loader = [(torch.randn(4, 3), torch.tensor([0, 1, 0, 1])) for _ in range(5)]
    seen: list[float] = []
    optimizer = recipe_optimizer(model, 3e-3)

    def step(m, batch, device):
        seen.append(optimizer.param_groups[0]["lr"])
        return torch.nn.functional.cross_entropy(m(batch[0]), batch[1]), {}

    fit(model, loader, step, optimizer=optimizer, scheduler=cosine_schedule, epochs=3, device="cpu", progress=False)
    assert optimizer.defaults["weight_decay"] == 1e-4
    assert seen == [3e-3 * 0.5 * (1 + math.cos(math.pi * min(k / 15, 1.0))) for k in range(15)]
    seen.clear()
    optimizer = recipe_optimizer(model, 3e-3)
    fit(model, loader, step, optimizer=optimizer, scheduler=cosine_schedule, epochs=10**6, max_steps=7,
        device="cpu", progress=False)
    assert seen == [3e-3 * 0.5 * (1 + math.cos(math.pi * k / 7)) for k in range(7)]


def _benchmark():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "horkd.py"
    spec = importlib.util.spec_from_file_location("horkd_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_entry_point_runs_on_cpu():
    out = _benchmark().gpu_check("cpu", max_steps=2)
    assert set(out) == {"loss_first", "loss_last", "items_per_s"}
    assert all(math.isfinite(v) and v > 0 for v in out.values())


def test_accuracy_curves_follow_the_trained_models_at_their_resolution(students):
    models = default_models(CONFIG, device="cpu", progress=False)
    curves = accuracy_curves(models, resolutions=(4, 8, 32))
    assert set(curves) == {"teacher_upsampled", "assistant", *METHODS}
    assert all(len(v) == 3 for v in curves.values())
    rows = evaluate_resolutions(CONFIG, seeds=(0,), device="cpu", progress=False, teacher_resolutions=(8, 32))
    top1 = {(r["method"], r["resolution"]): r["top1"] for r in rows}
    assert curves["horkd"][1] == top1[("horkd", 8)] and curves["assistant"][1] == top1[("assistant", 8)]
    assert curves["teacher_upsampled"][2] == top1[("teacher_upsampled", 32)]
    assert curves["teacher_upsampled"][2] > curves["teacher_upsampled"][0]  # HR beats 4x4 up-sampled
