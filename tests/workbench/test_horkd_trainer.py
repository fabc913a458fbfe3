"""The three-stream trainer in its smoke setting: every baseline trains through ``workbench.train.fit`` and learns."""

import dataclasses
import math

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
    errors_at,
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
    chance = 1 / len(CONFIG.classes)
    accuracy = {method: model.workbench_meta["test_acc"] for (method, _seed), model in students.items()}
    assert set(accuracy) == set(METHODS)
    assert all(acc > 1.5 * chance for acc in accuracy.values()), accuracy
    assert max(accuracy.values()) > chance + 0.1, accuracy  # a few CPU epochs: the best of them clearly learns


def test_bank_task_and_harder_setting_are_frozen_recipes():
    full = HorkdConfig.full()
    assert full.task == "bank" and len(full.classes) == 44 and build_teacher(full).head.out_features == 44
    assert count_parameters(build_teacher(full)) >= 20 * count_parameters(build_student(full))
    assert set(full.resolutions) == {8, 16} and 32 <= full.hr_size <= 64
    with pytest.raises(dataclasses.FrozenInstanceError):
        full.lr = 1.0
    with pytest.raises(ValueError, match="task must be one of"):
        HorkdConfig(task="cifar")
    with pytest.raises(ValueError, match="resolutions must lie"):
        HorkdConfig(resolutions=(2,))
    train, test = load_horkd_data(CONFIG)
    assert train.classes == CONFIG.classes and int(test.labels.max()) == len(CONFIG.classes) - 1


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
    with pytest.raises(ValueError, match="trained at"):
        errors_at(default_models(CONFIG, device="cpu", progress=False), 16)


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


def test_gpu_check_entry_point_runs_on_cpu(load_benchmark):
    out = load_benchmark("horkd").gpu_check("cpu", max_steps=2, config=CONFIG)
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


def test_students_error_views_match_their_accuracy(students):
    errors = errors_at(default_models(CONFIG, device="cpu", progress=False), 8)
    assert errors.names == list(METHODS) and errors.disagreement.shape == (5, 5)
    for name in METHODS:
        assert errors.accuracy(name) == pytest.approx(students[(name, 0)].workbench_meta["test_acc"])
    i, j = errors.names.index("horkd"), errors.names.index("scratch")
    # the pair's accuracy difference is what one gets right and the other wrong, minus the reverse
    assert errors.disagreement[i, j] - errors.disagreement[j, i] == pytest.approx(
        errors.accuracy("horkd") - errors.accuracy("scratch"))
    for k in errors.examples("horkd", "scratch"):
        assert errors.predictions["horkd"][k] == errors.labels[k] != errors.predictions["scratch"][k]


def test_gpu_benchmark_writes_paired_tables_and_stops_at_its_budget(tmp_path, load_benchmark):
    bench = load_benchmark("horkd")
    rows = bench.gpu_benchmark(torch.device("cpu"), tmp_path, budget_s=600, config=CONFIG, seeds=(0, 1))
    assert {(r["method"], r["n"]) for r in rows if r["method"] in METHODS} == {(m, 2) for m in METHODS}
    text = (tmp_path / "horkd_gpu.md").read_text()
    assert "paired t p" in text and "> spread" in text and "Target 1" in text
    pairs = (tmp_path / "horkd_gpu_pairs.csv").read_text()
    assert "horkd,hinton" in pairs and "horkd,scratch" in pairs
    assert list((tmp_path / "models").glob("horkd_student_horkd8_s1-*.pt"))  # trained into out_dir, not elsewhere
    spent = bench.gpu_benchmark(torch.device("cpu"), tmp_path / "none", budget_s=0, config=CONFIG, seeds=(0, 1))
    assert all(r["n"] == 0 for r in spent if r["method"] in METHODS)
    assert "not evaluated" in (tmp_path / "none" / "horkd_gpu.md").read_text()


def test_cached_reference_outputs_give_the_same_student_loss_as_running_the_frozen_streams_live():
    """The students' data set holds the frozen teacher's and assistant's outputs computed once; a step on it gives
    the loss a step gets from running both streams on the same batch (the student sees the same views)."""
    from workbench.horkd.recipe import (
        distillation_loss,
        low_res_input,
        stream,
        student_dataset,
        student_step,
    )

    config = HorkdConfig.smoke()
    g = torch.Generator().manual_seed(0)
    hr, labels = torch.rand(10, 3, 32, 32, generator=g), torch.arange(10) % 22
    teacher, assistant = build_teacher(config, 0).eval(), build_teacher(config, 1).eval()
    cached = student_dataset(hr, labels, teacher, assistant, 8, "cpu").tensors
    student = build_student(config).eval()
    step = student_step(distillation_loss(config.with_(angle_triplets=None), "horkd"), use_assistant=True)
    loss_cached, _ = step(student, cached, torch.device("cpu"))
    with torch.no_grad():
        t, a = stream(teacher, hr), stream(assistant, low_res_input(hr, 8, True))
    live = (low_res_input(hr, 8), labels, t.embedding, t.logits, a.embedding, a.logits)
    loss_live, _ = step(student, live, torch.device("cpu"))
    assert torch.equal(cached[0], live[0])
    assert float(loss_cached.detach()) == pytest.approx(float(loss_live.detach()), rel=1e-5)
