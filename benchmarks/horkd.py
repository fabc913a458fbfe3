"""Benchmark of hybrid-order relational KD on the patch bank (44 classes): top-1 of every baseline at 16x16 and 8x8
over five or more seeds, with paired tests across seeds.

Trains (or loads from the cache) the HR teacher, one assistant per resolution and every student baseline
(scratch, Hinton KD, RKD, HORKD without assistant, HORKD) for each seed, all with ``workbench.horkd``, and writes
``<out>/horkd.md`` (tables: mean ± std over seeds; each distiller vs scratch and HORKD vs each baseline with the
paired t-test and sign test, marking differences larger than the seed spread) and ``horkd.csv`` (one row per model
and seed) and ``horkd_pairs.csv``.

Run: ``python benchmarks/horkd.py`` (``HorkdConfig.full()``, seeds 0-4: meant for a GPU, about three minutes on an
H200) or ``python benchmarks/horkd.py --smoke`` (the smoke setting on a CPU in seconds; numbers meaningless).
``--faces ROOT`` runs the paper's own setting on your faces (``ROOT/<identity>/<image>``, split by identity): the
same tables, with rank-1 identification and verification AUC on the unseen identities in place of top-1
(``horkd_faces.md``; ``horkd_faces_quick.md`` with ``--smoke``).
``gpu_benchmark(device, out_dir, budget_s)`` is the same run for the lead's GPU session (imports only torch, numpy,
scipy, scikit-learn, scikit-image, pandas); ``gpu_check(device, max_steps)`` is HORKD's row of
``benchmarks/gpu_check.py`` (student training throughput). On a CPU torch runs single-threaded: on a shared
2-core machine that is several times faster than two contended threads.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from workbench.horkd import (  # noqa: E402
    METHOD_LABELS,
    METHODS,
    HorkdConfig,
    batches,
    build_student,
    build_teacher,
    count_parameters,
    distillation_loss,
    evaluate_resolutions,
    inference_seconds,
    load_horkd_data,
    low_res_input,
    recipe_optimizer,
    student_dataset,
    student_model,
    student_step,
    teacher_model,
)
from workbench.horkd.comparison import paired_comparisons, seed_summary  # noqa: E402
from workbench.horkd.identification import METRIC_LABELS  # noqa: E402
from workbench.train import classification_step, cosine_schedule, fit, resolve_device, synchronize  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = ["teacher_upsampled", "assistant", *METHODS]


def gpu_check(device: str | torch.device = "cuda", max_steps: int = 50, config: HorkdConfig | None = None
              ) -> dict[str, float]:
    """Run the full setting's HORKD student training for ``max_steps`` steps on ``device`` (no cache).

    The teacher is trained for ``max_steps`` steps first and used as both reference streams (assistant = a copy),
    so the check exercises every loss term. Returns the student's first/last loss and training items per second.
    """
    config = config or HorkdConfig.full()
    resolution = min(config.resolutions)
    train, _ = load_horkd_data(config)
    teacher = build_teacher(config)
    fit(teacher, batches(torch.utils.data.TensorDataset(train.images, train.labels), config.batch_size, 0, device),
        classification_step, optimizer=recipe_optimizer(teacher, config.lr),
        scheduler=cosine_schedule, epochs=10**6, max_steps=max_steps, device=device, seed=0, progress=False,
        desc="GPU check teacher")
    dataset = student_dataset(train.images, train.labels, teacher, copy.deepcopy(teacher), resolution, device)
    loader = batches(dataset, config.batch_size, 0, device, drop_last=True)
    inner = student_step(distillation_loss(config, "horkd"), use_assistant=True)
    losses: list[float] = []

    def step(model: torch.nn.Module, batch: Any, dev: torch.device):
        loss, metrics = inner(model, batch, dev)
        losses.append(float(loss.detach()))
        return loss, metrics

    student = build_student(config)
    dev = resolve_device(device)
    synchronize(dev)
    t0 = time.perf_counter()
    fit(student, loader, step, optimizer=recipe_optimizer(student, config.lr), scheduler=cosine_schedule,
        epochs=10**6, max_steps=max_steps, device=device, seed=0, progress=False, desc="GPU check student")
    synchronize(dev)
    elapsed = time.perf_counter() - t0
    return {"loss_first": losses[0], "loss_last": losses[-1], "items_per_s": len(losses) * config.batch_size / elapsed}


def _cell(stats: dict[str, float]) -> str:
    return f"{stats['mean']:.3f} ± {stats['std']:.3f} (n={stats['n']})" if stats["n"] else "-"


def _mark(pair: dict[str, Any]) -> str:
    return "**yes**" if pair["exceeds_spread"] else "no"


def _setting_line(config: HorkdConfig, setting: str, seeds: list[int], wall: float, device: str) -> str:
    train, test = load_horkd_data(config)
    if config.task == "faces":
        data = (f"Task `faces`: low-resolution face recognition on the folder `{config.face_root}`, identity-disjoint "
                f"split: the streams are trained as classifiers of {len(train.classes)} identities ({len(train) // 2} "
                f"faces + flips) and tested by their embeddings on {len(test)} faces of {len(test.classes)} unseen "
                f"identities")
        per_class = ""
    else:
        data = (f"Task `{config.task}` ({len(config.classes)} classes: every photograph/texture scikit-image and "
                f"scikit-learn ship, {config.bands} band(s) each; train = left part, test = right part of each band, "
                f"{len(test)} test patches)")
        per_class = f"{config.train_per_class} train patches per class + flips, "
    return (f"{data}, HR {config.hr_size}x{config.hr_size}, LR by Gaussian blur + area down-sampling. Setting: "
            f"`{setting}` (teacher width {config.teacher_width} / {config.teacher_epochs} epochs, assistant "
            f"{config.assistant_epochs} epochs, students width {config.student_width} / {config.student_epochs} "
            f"epochs, {per_class}batch {config.batch_size}). Seeds {seeds} (student initialisation and data order; "
            f"teacher and assistants shared). Loss weights alpha={config.alpha}, beta={config.beta}, "
            f"gamma={config.gamma}, tau={config.temperature}. Wall time {wall:.0f} s on {device} (cached models are "
            f"reused when present).")


def _metric_table(rows: list[dict[str, Any]], config: HorkdConfig, metric: str) -> list[str]:
    resolutions = sorted(config.resolutions, reverse=True)
    heading = ("Top-1 on held-out patches" if metric == "top1" else METRIC_LABELS[metric][0].upper()
               + METRIC_LABELS[metric][1:])
    lines = [f"{heading}, mean ± std (ddof=1) over seeds:", "",
             "| model | " + " | ".join(f"{r}x{r}" for r in resolutions) + " |",
             "| --- | " + " | ".join("---" for _ in resolutions) + " |"]
    for method in ORDER:
        lines.append(f"| {METHOD_LABELS[method]} | "
                     + " | ".join(_cell(seed_summary(rows, method, r, metric)) for r in resolutions) + " |")
    hr = seed_summary(rows, "teacher_upsampled", config.hr_size, metric)["mean"]
    return lines + ["", f"HR teacher on HR input: {hr:.3f}" + ("." if metric == "top1" else f" ({metric}).")]


def report(rows: list[dict[str, Any]], config: HorkdConfig, setting: str, wall: float, pairs: list[dict[str, Any]],
           sizes: dict[str, Any]) -> list[str]:
    """The markdown report: one table per metric (top-1; for faces rank-1 and verification AUC), paired tests on
    ``config.metric``, sizes and the targets of issue 17."""
    seeds = sorted({r["seed"] for r in rows if r["method"] == "scratch"})
    faces = config.task == "faces"
    title = ("low-resolution face recognition on unseen identities" if faces
             else "low-resolution recognition on the patch bank")
    lines = [f"# Hybrid-order relational KD (HORKD): {title}", "",
             _setting_line(config, setting, seeds, wall, sizes["device"]), ""]
    for metric in (("rank1", "auc") if faces else ("top1",)):
        lines += _metric_table(rows, config, metric) + [""]
    of = f" of {config.metric}" if faces else ""
    lines += [f"Paired differences{of} across seeds (Δ = first − second, same seed); *> spread*: |mean Δ| larger "
              "than the larger of the two methods' seed std:", "",
              "| resolution | comparison | mean Δ | std Δ | wins/losses | paired t p | sign test p | > spread |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in pairs:
        lines.append(f"| {p['resolution']}x{p['resolution']} | {METHOD_LABELS[p['method']]} − "
                     f"{METHOD_LABELS[p['reference']]} | {p['mean_diff']:+.3f} | {p['std_diff']:.3f} | "
                     f"{p['wins']}/{p['losses']} | {p['t_p']:.3g} | {p['sign_p']:.3g} | {_mark(p)} |")
    lines += ["", f"Teacher {sizes['p_teacher']:,} parameters, student {sizes['p_student']:,} "
              f"({sizes['p_teacher'] / sizes['p_student']:.1f}x smaller); CPU inference on {sizes['n']} "
              f"{'faces' if faces else 'patches'} at {sizes['low']}x{sizes['low']}: teacher "
              f"{sizes['t_teacher'] * 1e3:.1f} ms, student {sizes['t_student'] * 1e3:.1f} ms.", "",
              *targets(pairs, min(config.resolutions))]
    return lines


def targets(pairs: list[dict[str, Any]], low: int) -> list[str]:
    """Issue 17's two targets at the lowest resolution, stated from the paired comparisons."""
    at = {(p["method"], p["reference"]): p for p in pairs if p["resolution"] == low}
    vs_scratch = [p for (m, ref), p in at.items() if ref == "scratch"]
    if not vs_scratch:
        return [f"Targets at {low}x{low}: not evaluated (need at least 2 seeds)."]
    best = max(vs_scratch, key=lambda p: p["mean_diff"])
    separated = best["exceeds_spread"] and best["mean_diff"] > 0
    beats = {ref: at[("horkd", ref)]["mean_diff"] >= 0 for ref in ("hinton", "rkd") if ("horkd", ref) in at}
    met = bool(beats) and all(beats.values())
    return [
        f"**Target 1** (at {low}x{low}, the best distiller beats scratch by more than the seed spread): "
        f"**{'met' if separated else 'not met'}**: best is {METHOD_LABELS[best['method']]}, "
        f"{best['mean_diff']:+.3f} over scratch (spread {best['spread']:.3f}, paired t p = {best['t_p']:.3g}).",
        "",
        f"**Target 2** (at {low}x{low}, HORKD ≥ Hinton KD and ≥ RKD): **{'met' if met else 'not met'}**: "
        + ", ".join(f"HORKD − {METHOD_LABELS[ref]} = {at[('horkd', ref)]['mean_diff']:+.3f}" for ref in beats) + ".",
    ]


def run(config: HorkdConfig, seeds: list[int], device: str | torch.device, budget_s: float | None = None
        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float]:
    """Train/evaluate every stream (seed by seed, stopping before a seed that would overrun ``budget_s``);
    return the per-model rows, the paired comparisons and the wall time."""
    t0 = time.perf_counter()
    rows = evaluate_resolutions(config, seeds, device=device, budget_s=budget_s, progress=False)
    pairs = paired_comparisons(rows, sorted(config.resolutions, reverse=True), metric=config.metric)
    return rows, pairs, time.perf_counter() - t0


def _sizes(config: HorkdConfig, seed: int, device: str | torch.device) -> dict[str, Any]:
    teacher = teacher_model(config, device=device, progress=False)
    _, test = load_horkd_data(config)
    low = min(config.resolutions)
    batch = test.images[:256]
    student = student_model(config, "horkd", low, seed=seed, device=device, progress=False)
    with torch.inference_mode():
        t_teacher = inference_seconds(teacher, low_res_input(batch, low, for_teacher_size=True))
        t_student = inference_seconds(student, low_res_input(batch, low))
    name = torch.cuda.get_device_name(device) if resolve_device(device).type == "cuda" else "CPU"
    return {"p_teacher": count_parameters(build_teacher(config)), "p_student": count_parameters(build_student(config)),
            "low": low, "n": len(batch), "t_teacher": t_teacher, "t_student": t_student, "device": name}


def write_results(out_dir: Path, name: str, rows: list[dict[str, Any]], pairs: list[dict[str, Any]],
                  lines: list[str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.md").write_text("\n".join(lines) + "\n")
    pd.DataFrame(rows).to_csv(out_dir / f"{name}.csv", index=False)
    pd.DataFrame(pairs).to_csv(out_dir / f"{name}_pairs.csv", index=False)


@contextlib.contextmanager
def _model_cache(folder: Path):
    previous = os.environ.get("WORKBENCH_CACHE")
    os.environ["WORKBENCH_CACHE"] = str(folder)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("WORKBENCH_CACHE", None)
        else:
            os.environ["WORKBENCH_CACHE"] = previous


def gpu_benchmark(device: torch.device, out_dir: Path, budget_s: float, config: HorkdConfig | None = None,
                  seeds: tuple[int, ...] = (0, 1, 2, 3, 4)) -> list[dict[str, Any]]:
    """The full harder benchmark (``HorkdConfig.full()``, seeds 0-4, 8x8 and 16x16, every baseline) on ``device``.

    Models are trained fresh into ``out_dir/models`` (the seed-0 teacher, assistants and students there are the
    dashboard's default models: ship them); a seed whose training would overrun ``budget_s`` is not started.
    Writes ``horkd_gpu.md``, ``horkd_gpu.csv``, ``horkd_gpu_pairs.csv`` into ``out_dir`` and returns one row per
    method and resolution (mean, std, n over seeds). ``config``/``seeds`` shrink it for a CPU test.
    """
    config = config or HorkdConfig.full()
    out_dir = Path(out_dir)
    with _model_cache(out_dir / "models"):
        rows, pairs, wall = run(config, list(seeds), device, budget_s)
        lines = report(rows, config, "HorkdConfig.full()" if config == HorkdConfig.full() else repr(config), wall,
                       pairs, _sizes(config, seeds[0], device))
    write_results(out_dir, "horkd_gpu", rows, pairs, lines)
    return [{"method": m, "resolution": r, **seed_summary(rows, m, r, config.metric)}
            for r in config.resolutions for m in ORDER]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true",
                        help="the smoke setting on a CPU, 3 seeds (seconds); numbers meaningless")
    parser.add_argument("--quick", dest="smoke", action="store_true", help=argparse.SUPPRESS)  # README, tests
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0-4 (0-2 with --smoke)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--faces", type=Path, default=None, metavar="ROOT",
                        help="your own faces, ROOT/<identity>/<image>: train on some identities, report rank-1 "
                             "identification and verification AUC on the unseen others (writes horkd_faces*.md)")
    args = parser.parse_args()
    if args.faces is not None:
        config = HorkdConfig.faces(args.faces, smoke=args.smoke)
        setting = f"HorkdConfig.faces(ROOT, smoke={args.smoke})"
        name = "horkd_faces_quick" if args.smoke else "horkd_faces"
        load_horkd_data(config)  # a bad folder stops here, with the layout in the message
    else:
        config = HorkdConfig.preset(args.smoke)
        setting = "HorkdConfig.smoke()" if args.smoke else "HorkdConfig.full()"
        name = "horkd_quick" if args.smoke else "horkd"
    seeds = args.seeds or ([0, 1, 2] if args.smoke else [0, 1, 2, 3, 4])
    if resolve_device(args.device).type == "cpu":
        torch.set_num_threads(1)
    rows, pairs, wall = run(config, seeds, args.device)
    lines = report(rows, config, setting, wall, pairs, _sizes(config, seeds[0], args.device))
    write_results(args.out, name, rows, pairs, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
