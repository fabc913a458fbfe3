"""How long HORKD's full benchmark (``benchmarks/horkd.py``: ``HorkdConfig.full()``, 5 seeds, every distiller, 8x8
and 16x16) takes on this machine, estimated from a short timed run instead of run to the end.

Times a few optimiser steps of every stream the benchmark trains (the HR teacher, an assistant, each student
method at each resolution, and HORKD's student with RKD's exact angle term, the cost before the sampled angle term),
one eval pass of each network size, then multiplies by the step and pass counts of the full setting (read from
``HorkdConfig.full()``, not typed in). Writes ``<out>/horkd_budget.md`` with ms/step, the counts, the estimate per
stream and in total, the load average before and after (the cores are shared: a timing is only as good as them).

Run: ``python benchmarks/horkd_budget.py`` (about 4 min on one thread of a 2-core CPU; ``--threads`` for more).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from workbench.horkd import (  # noqa: E402
    METHODS,
    HorkdConfig,
    batches,
    build_student,
    build_teacher,
    distillation_loss,
    load_horkd_data,
    recipe_optimizer,
    student_step,
)
from workbench.horkd.recipe import low_res_input, stream_outputs  # noqa: E402
from workbench.train import classification_step  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SEEDS = 5


def step_ms(model: torch.nn.Module, dataset: torch.utils.data.TensorDataset, step: Any, batch_size: int,
            steps: int) -> float:
    """Median ms of one training step (forward, loss, backward, AdamW) over ``steps`` batches, after one warm-up."""
    optimizer = recipe_optimizer(model, 1e-3)
    loader = iter(batches(dataset, batch_size, 0, "cpu", drop_last=True))
    model.train()
    times = []
    for i in range(steps + 1):
        batch = next(loader)
        t0 = time.perf_counter()
        loss, _ = step(model, batch, torch.device("cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i:
            times.append(time.perf_counter() - t0)
    return 1e3 * sorted(times)[len(times) // 2]


def eval_seconds_per_item(model: torch.nn.Module, images: torch.Tensor) -> float:
    """Seconds per image of one eval pass (embeddings and logits) over ``images``."""
    t0 = time.perf_counter()
    stream_outputs(model, images, "cpu")
    return (time.perf_counter() - t0) / len(images)


def measure(config: HorkdConfig, steps: int) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """One row per stream: ms/step, the full setting's step count and the estimated seconds; plus eval rates."""
    train, test = load_horkd_data(config)
    n_train, n_test, bs = len(train), len(test), config.batch_size
    teacher, assistant = build_teacher(config, 0), build_teacher(config, 1)
    hr = torch.utils.data.TensorDataset(train.images, train.labels)
    per_epoch = math.ceil(n_train / bs)  # the teacher and assistants keep the last short batch
    t_ms = step_ms(teacher, hr, classification_step, bs, steps)
    sample = train.images[:1024]
    big_eval = eval_seconds_per_item(teacher, sample)
    rows = [{"stream": "HR teacher", "ms_step": t_ms, "steps": per_epoch * config.teacher_epochs},
            {"stream": "assistants (teacher-size step, both resolutions)", "ms_step": t_ms,
             "steps": per_epoch * config.assistant_epochs * len(config.resolutions)}]
    extra = {"reference outputs (teacher + assistant over the train set, per resolution; assistant fine-tuning "
             "needs the teacher's too)": big_eval * n_train * 3 * len(config.resolutions),
             "per-epoch held-out evaluation of teacher and assistants":
                 big_eval * n_test * (config.teacher_epochs + config.assistant_epochs * len(config.resolutions))}
    student_steps = (n_train // bs) * config.student_epochs  # students drop the last short batch
    for r in sorted(config.resolutions, reverse=True):
        hr_batches, labels = train.images[:bs * (steps + 1)], train.labels[:bs * (steps + 1)]
        t_out = stream_outputs(teacher, hr_batches, "cpu")
        a_out = stream_outputs(assistant, low_res_input(hr_batches, r, True), "cpu")
        data = torch.utils.data.TensorDataset(low_res_input(hr_batches, r), labels, t_out.embedding, t_out.logits,
                                              a_out.embedding, a_out.logits)
        for method in METHODS:
            ms = step_ms(build_student(config), data, student_step(distillation_loss(config, method),
                                                                    method == "horkd"), bs, steps)
            rows.append({"stream": f"{method} {r}x{r}", "ms_step": ms, "steps": student_steps * SEEDS})
        exact = student_step(distillation_loss(config.with_(angle_triplets=None), "horkd"), True)
        rows.append({"stream": f"horkd {r}x{r}, exact B^3 angle (before; not in the total)",
                     "ms_step": step_ms(build_student(config), data, exact, bs, 2),
                     "steps": student_steps * SEEDS, "excluded": True})
        small_eval = eval_seconds_per_item(build_student(config), low_res_input(sample, r))
        extra[f"per-epoch held-out evaluation of the {r}x{r} students"] = (
            small_eval * n_test * config.student_epochs * len(METHODS) * SEEDS)
    for row in rows:
        row["seconds"] = row["ms_step"] * row["steps"] / 1e3
    return rows, extra


def report(rows: list[dict[str, Any]], extra: dict[str, float], threads: int, load: tuple[Any, Any],
           wall: float, note: str = "") -> list[str]:
    total = sum(r["seconds"] for r in rows if not r.get("excluded")) + sum(extra.values())
    lines = ["# HORKD full benchmark: wall-time estimate on this CPU", "",
             f"`HorkdConfig.full()`, {SEEDS} seeds, methods {', '.join(METHODS)}, resolutions "
             f"{HorkdConfig.full().resolutions}; torch threads {threads}, one process; measured "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in {wall:.0f} s; load average (1, 5, 15 min) "
             f"before {load[0]}, after {load[1]} on {os.cpu_count()} cores shared with other users. {note}", "",
             "| stream | ms/step | steps in the full run | estimated s |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['stream']} | {r['ms_step']:.0f} | {r['steps']:,} | {r['seconds']:.0f} |" for r in rows]
    lines += [f"| {name} | | | {s:.0f} |" for name, s in extra.items()]
    lines += ["", f"**Estimated total: {total:.0f} s = {total / 60:.0f} min** (target: 60 min). The teacher-size "
              "streams alone (teacher and two assistants) are "
              f"{sum(r['seconds'] for r in rows[:2]) / 60:.0f} min."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per stream (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="a sentence on the conditions, added to the setting line")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    before, t0 = tuple(round(x, 2) for x in os.getloadavg()), time.perf_counter()
    rows, extra = measure(HorkdConfig.full(), args.steps)
    after = tuple(round(x, 2) for x in os.getloadavg())
    lines = report(rows, extra, args.threads, (before, after), time.perf_counter() - t0, args.note)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "horkd_budget.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
