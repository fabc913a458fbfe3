"""STDT with vs without spatiotemporal dropout (same ViT, same epochs, same seeds) on the embedded forgery clips.

Writes ``benchmarks/results/stdt.md`` and ``.csv``: video AUC on held-out identities, AUC on a manipulation kind not
seen in training, AUC under JPEG, blur, noise and dropped frames, per seed and mean +- std over seeds. Baselines
trained by the same code on the same clips and seeds: the same ViT with the per-frame stem (no STD), and a
frame-level CNN (the plain BatchNorm detector architecture of the feature-whitening recipe, trained on the frames of
the training clips, P(fake) averaged over a clip's frames). Training throughput (clips/s) on the training device.

    PYTHONPATH=. python benchmarks/stdt.py                       # full setting on CUDA when present, else smoke
    PYTHONPATH=. python benchmarks/stdt.py --full --device cpu --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.data.clips import ClipSet, load_forgery_clips
from workbench.data.corruptions import CONDITIONS, blur, corrupt, jpeg, noise
from workbench.stdt import StdtRecipe, build_stdt, predict_video_proba, stdt_config, step, train_stdt
from workbench.train import (
    binary_auc,
    budgeted_throughput,
    fit,
    one_thread,
    resolve_device,
    smoke_mode,
    training_throughput,
)
from workbench.whitening import build_detector, detector_config, make_step, predict_fake_proba

RESULTS = Path(__file__).resolve().parent / "results"
UNSEEN_KIND = "warp"
TRAIN_KINDS_UNSEEN = ["self_blend", "swap", "color"]


def drop_frames(clips: torch.Tensor, n_drop: int = 3, seed: int = 0) -> torch.Tensor:
    """A dropped frame is replaced by the previous one (a video player repeats the last decoded frame)."""
    rng = np.random.default_rng(seed)
    out = clips.clone()
    for i in range(clips.shape[0]):
        for t in sorted(rng.choice(np.arange(1, clips.shape[1]), n_drop, replace=False)):
            out[i, t] = out[i, t - 1]
    return out


def conditions(test: ClipSet) -> dict[str, torch.Tensor]:
    return {"clean": test.clips, "jpeg40": jpeg(test.clips), "blur0.8": blur(test.clips),
            "noise0.05": noise(test.clips), "drop3frames": drop_frames(test.clips)}


def _train_timed(model: torch.nn.Module, config: StdtRecipe, device: torch.device) -> float:
    """Train a recipe model; training clips per second."""
    start = time.perf_counter()
    meta = train_stdt(model, config, device, progress=False)
    return meta["train_clips"] * config.epochs / (time.perf_counter() - start)


def frame_cnn(train: ClipSet, seed: int, smoke: bool, device: torch.device) -> torch.nn.Module:
    """The plain detector architecture of the whitening recipe trained on the frames of the training clips."""
    config = detector_config(False, smoke, seed=seed)
    model = build_detector(config)
    frames = train.clips.flatten(0, 1)
    labels = train.labels.repeat_interleave(train.clips.shape[1])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(frames, labels), batch_size=64, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    fit(model, loader, make_step(config.align_every, None), epochs=max(config.epochs // 2, 2), lr=config.lr,
        weight_decay=config.weight_decay, device=device, progress=False, seed=seed)
    return model


def run(setting: str, seeds: list[int], device: torch.device) -> pd.DataFrame:
    smoke = setting == "smoke"
    n = stdt_config(smoke=smoke).n_per_identity
    test = load_forgery_clips("test", n_per_identity=n)
    train = load_forgery_clips("train", n_per_identity=n)
    perturbed = conditions(test)
    unseen = test.with_kinds([UNSEEN_KIND])
    rows = []
    variants = [("STDT (STD, tubelet stem)", True, "tubelet"), ("ViT (no STD, tubelet stem)", False, "tubelet"),
                ("ViT (no STD, per-frame stem)", False, "frame")]
    for seed in seeds:
        for name, std, stem in variants:
            config = stdt_config(std, smoke, seed, stem=stem)
            model = build_stdt(config)
            row = {"model": name, "seed": seed, "train_clips_per_s": _train_timed(model, config, device)}
            row.update({f"auc_{k}": binary_auc(test.labels, predict_video_proba(model, v))
                        for k, v in perturbed.items()})
            if stem == "tubelet":
                held_config = stdt_config(std, smoke, seed, stem=stem, train_kinds=TRAIN_KINDS_UNSEEN)
                held_out = build_stdt(held_config)
                train_stdt(held_out, held_config, device, progress=False)
                row[f"auc_unseen_{UNSEEN_KIND}"] = binary_auc(unseen.labels,
                                                              predict_video_proba(held_out, unseen.clips))
            rows.append(row)
            progress(rows)
        cnn = frame_cnn(train, seed, smoke, device)
        row = {"model": "frame CNN (plain whitening architecture, mean over frames)", "seed": seed}
        for k, v in perturbed.items():
            proba = predict_fake_proba(cnn, v.flatten(0, 1)).reshape(len(v), -1).mean(1)
            row[f"auc_{k}"] = binary_auc(test.labels, proba)
        rows.append(row)
        progress(rows)
    return pd.DataFrame(rows)


def progress(rows: list[dict]) -> None:
    """Print the newest row and keep the CSV up to date, so that a run cut short still leaves its rows."""
    print(rows[-1], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(RESULTS / "stdt.csv", index=False)


def cpu_throughput(setting: str, steps: int = 20) -> dict[str, float]:
    """Training clips per second on this CPU (one thread) of the STD and no-STD ViT of ``setting``, interleaved."""
    rates: dict[str, list[float]] = {"STDT (STD, tubelet stem)": [], "ViT (no STD, tubelet stem)": []}
    with one_thread():
        for _ in range(2):
            for name, std in zip(rates, (True, False), strict=True):
                rates[name].append(gpu_check("cpu", steps, std, setting == "smoke")["items_per_s"])
    return {name: max(r) for name, r in rates.items()}


def gpu_check(device: str = "cuda", max_steps: int = 50, std: bool = True, smoke: bool = False) -> dict[str, float]:
    """Train a recipe (default: the full one with STD) for ``max_steps`` steps on ``device``: first/last loss and
    clips per second (a row of ``benchmarks/gpu_check.py``; ``cpu_throughput`` uses it on the CPU)."""
    config = stdt_config(std, smoke=smoke, epochs=10_000)
    train = load_forgery_clips("train", config.size, config.frames, config.n_per_identity)
    return training_throughput(build_stdt(config), train.loader(config.batch_size), step, max_steps=max_steps,
                               lr=config.lr, device=device)


def write(df: pd.DataFrame, setting: str, seconds: float, device_name: str, config: StdtRecipe,
          cpu_rates: dict[str, float]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    df.to_csv(RESULTS / "stdt.csv", index=False)
    metrics = [c for c in df.columns if c.startswith("auc_")]
    summary = df.groupby("model", sort=False)[metrics + ["train_clips_per_s"]].agg(["mean", "std"])
    lines = [f"# STDT: with vs without spatiotemporal dropout ({setting} setting, seeds "
             f"{sorted(df.seed.unique().tolist())}, {device_name}"
             f"{'' if np.isnan(seconds) else f', {seconds:.0f} s'})", "",
             "Video AUC on held-out identities of the embedded clips (mean +- std over seeds); `unseen` = trained "
             f"without `{UNSEEN_KIND}`, tested on it. Setting: {config.n_per_identity} real + "
             f"{config.n_per_identity} fake clips per training face, {config.frames} frames of "
             f"{config.size}x{config.size}, {config.epochs} epochs, ViT dim {config.dim} depth "
             f"{config.depth}, STD ratios {config.spatial_ratio} (space) / {config.temporal_ratio} "
             "(time).", "",
             "| model | " + " | ".join(m.removeprefix("auc_") for m in metrics) + " | train clips/s |",
             "|---" * (len(metrics) + 2) + "|"]
    for model, r in summary.iterrows():
        cells = [f"{r[(m, 'mean')]:.3f} +- {0 if np.isnan(r[(m, 'std')]) else r[(m, 'std')]:.3f}"
                 if not np.isnan(r[(m, "mean")]) else "-" for m in metrics + ["train_clips_per_s"]]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += ["", f"Training throughput on this CPU (one thread, {platform.processor() or platform.machine()}, best of "
              "two 20-step runs, same setting): " + ", ".join(f"{k} {v:.0f} clips/s" for k, v in cpu_rates.items())
              + ". The table's clips/s column is the training device's (per-epoch validation included)."]
    std_rows, plain = summary.loc["STDT (STD, tubelet stem)"], summary.loc["ViT (no STD, tubelet stem)"]
    verdicts = []
    for m in [f"auc_unseen_{UNSEEN_KIND}", "auc_jpeg40", "auc_blur0.8", "auc_noise0.05", "auc_drop3frames"]:
        gain = std_rows[(m, "mean")] - plain[(m, "mean")]
        spread = max(std_rows[(m, "std")], plain[(m, "std")])
        verdicts.append(f"{m.removeprefix('auc_')}: gain {gain:+.3f} vs spread {spread:.3f} -> "
                        f"{'met' if gain > spread else 'NOT met'}")
    lines += ["", "## Target: STD improves unseen-manipulation and perturbed-input AUC by more than the seed spread",
              ""]
    lines += [f"- {v}" for v in verdicts]
    (RESULTS / "stdt.md").write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------ self-blended colour clips (real resolution)
def sbi_conditions(test: ClipSet) -> dict[str, torch.Tensor]:
    """Clean, JPEG 40, blur 0.8 px (at 64 px) and noise 0.05 versions of colour clips."""
    return {name: corrupt(test.clips, name, reference_size=64) for name in CONDITIONS}


@functools.lru_cache(maxsize=2)
def _sbi_test(faces: str, size: int, frames: int, n_per_identity: int, data_seed: int
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(labels, ``sbi_conditions``) of the held-out clips, made once per process (every model of a run shares them)."""
    from workbench.data.face_sbi import load_sbi_clips

    test = load_sbi_clips("test", size, frames, n_per_identity, faces or None, data_seed)
    return test.labels, sbi_conditions(test)


def _sbi_row(seed: int, std: bool, faces: str, smoke: bool, device: torch.device, threads: int | None = None,
             **overrides: Any) -> dict[str, Any]:
    """Train one model (STD or not) of the SBI benchmark and score it on the held-out clips, clean and perturbed."""
    if threads:
        torch.set_num_threads(threads)
    config = stdt_config(std, smoke, seed, data="sbi", face_source=faces, **overrides)
    labels, conditions = _sbi_test(faces, config.size, config.frames, config.n_per_identity, config.data_seed)
    model = build_stdt(config)
    row = {"model": "STDT (STD)" if std else "ViT (no STD)", "seed": seed,
           "train_clips_per_s": _train_timed(model, config, device)}
    row.update({f"auc_{k}": binary_auc(labels, predict_video_proba(model, v)) for k, v in conditions.items()})
    print(row, flush=True)
    return row


def run_sbi(seeds: list[int], faces: str, smoke: bool, device: torch.device, **overrides: Any) -> pd.DataFrame:
    """STD vs no STD trained on self-blended colour clips of ``faces``; AUC on held-out faces (clean / perturbed).
    ``overrides``: recipe fields changed for both models (e.g. ``epochs``, ``n_per_identity`` for a CPU run)."""
    return pd.DataFrame([_sbi_row(seed, std, faces, smoke, device, **overrides)
                         for seed in seeds for std in (True, False)])


def write_sbi(df: pd.DataFrame, faces: str, seconds: float, smoke: bool, device_name: str = "",
              **overrides: Any) -> str:
    config = stdt_config(True, smoke, data="sbi", face_source=faces, **overrides)
    changed = ", ".join(f"{k}={v}" for k, v in overrides.items())
    metrics = [c for c in df.columns if c.startswith("auc_")] + ["train_clips_per_s"]
    summary = df.groupby("model", sort=False)[metrics].agg(["mean", "std"])
    lines = [f"# STDT on self-blended colour clips ({config.size} px, {config.frames} frames, patches "
             f"{config.patch_size} px, seeds {sorted(df.seed.unique().tolist())}, {device_name or 'GPU'}, "
             f"{seconds:.0f} s)", "",
             *([f"Reduced from the full SBI recipe for this device: {changed}.", ""] if changed else []),
             f"Faces: {faces or 'embedded colour faces'} (file-disjoint test split); {config.n_per_identity} real + "
             f"{config.n_per_identity} fake clips per training face, {config.epochs} epochs"
             f"{' (fresh clips every epoch)' if config.fresh_draws else ''}; training augmentation per clip: JPEG "
             f"30-95 (p 0.5), blur sigma 0.3-1.2 px (p {config.blur_p}), noise std 0.01-0.06 (p {config.noise_p}); "
             f"ViT dim {config.dim}, depth {config.depth}, {config.heads} heads; per-patch mask loss weight "
             f"{config.mask_weight}; {'cosine' if config.cosine else 'constant'} learning rate. Same recipe for "
             "both models but the dropout. Mean +- std over seeds.", "",
             "| model | " + " | ".join(m.removeprefix("auc_") for m in metrics) + " |", "|---" * (len(metrics) + 1)
             + "|"]
    for model, r in summary.iterrows():
        lines.append(f"| {model} | " + " | ".join(f"{r[(m, 'mean')]:.3f} +- {np.nan_to_num(r[(m, 'std')]):.3f}"
                                                  for m in metrics) + " |")
    if len(summary) < 2:  # a run still going: one model so far
        return "\n".join(lines) + "\n"
    std, nostd = summary.loc["STDT (STD)"], summary.loc["ViT (no STD)"]
    perturbed = [m for m in metrics if m.startswith("auc_") and m != "auc_clean"]
    gain = np.mean([std[(m, "mean")] - nostd[(m, "mean")] for m in perturbed])
    verdict = "STD better" if gain > 0 else "STD NOT better"
    lines += ["", f"STD minus no STD, mean perturbed AUC: {gain:+.3f} ({verdict})."]
    return "\n".join(lines) + "\n"


def gpu_benchmark(device: torch.device, out_dir: Path, budget_s: float, size: int = 128, max_steps: int = 200,
                  seeds: tuple[int, ...] = (0, 1, 2)) -> list[dict]:
    """The GPU training cell of the STDT with and without STD on self-blended colour clips of the embedded faces at
    ``size`` px (16 px patches): ``max_steps`` steps each, first / last loss, clips per second; stops starting a
    model once ``budget_s`` is spent. Writes ``stdt_sbi_gpu.csv`` / ``.md`` into ``out_dir``; then, with what is
    left of the budget, the SBI benchmark (STD vs no STD, clean and perturbed AUC) over ``seeds``."""
    from workbench.data.face_sbi import load_sbi_clips

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    def cell(std: bool) -> tuple:
        config = stdt_config(std, False, data="sbi", size=size, patch_size=16, n_per_identity=1)
        train = load_sbi_clips("train", size, config.frames, config.n_per_identity, None, config.data_seed)
        return build_stdt(config), train.loader(config.batch_size), step, config.lr

    rows = budgeted_throughput([(f"stdt SBI {'STD' if std else 'no STD'} {size}px", lambda std=std: cell(std))
                                for std in (True, False)], max_steps=max_steps, budget_s=budget_s, device=device)
    frame = pd.DataFrame(rows)
    frame.to_csv(out_dir / "stdt_sbi_gpu.csv", index=False)
    (out_dir / "stdt_sbi_gpu.md").write_text(frame.to_string(index=False) + "\n")
    run_sbi_seeds(seeds, "", False, device, out_dir, str(device), budget_s - (time.perf_counter() - start))
    return rows


def run_sbi_seeds(seeds: list[int] | tuple[int, ...], faces: str, smoke: bool, device: torch.device, out_dir: Path,
                  device_name: str, budget_s: float | None = None, workers: int = 1, **overrides: Any) -> str:
    """The STD vs no-STD benchmark on self-blended clips of ``faces``, a seed at a time (the table is rewritten after
    each seed, so a killed run keeps what it finished): ``stdt_sbi.csv`` / ``.md`` in ``out_dir``. With
    ``budget_s``, a seed is not started when it would not finish within the budget. ``workers`` > 1 (a CPU run):
    the models train in that many processes of one thread each, the table rewritten after every model (no budget).
    Returns the table's text."""
    start, rows, text = time.perf_counter(), [], ""
    out_dir.mkdir(parents=True, exist_ok=True)

    def record(new: list[dict[str, Any]]) -> str:
        rows.extend(new)
        df = pd.DataFrame(rows).sort_values(["seed", "model"], ignore_index=True)  # "STDT (STD)" first
        df.to_csv(out_dir / "stdt_sbi.csv", index=False)
        table = write_sbi(df, faces, time.perf_counter() - start, smoke, device_name, **overrides)
        (out_dir / "stdt_sbi.md").write_text(table)
        return table

    if workers > 1:
        with concurrent.futures.ProcessPoolExecutor(workers) as pool:
            jobs = [pool.submit(_sbi_row, seed, std, faces, smoke, device, 1, **overrides)
                    for seed in seeds for std in (True, False)]
            for job in concurrent.futures.as_completed(jobs):
                text = record([job.result()])
        return text
    for seed in seeds:
        if budget_s is not None and rows and \
                (time.perf_counter() - start) * (len(rows) + 2) / len(rows) > budget_s:
            break
        text = record(run_sbi([seed], faces, smoke, device, **overrides).to_dict("records"))
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--smoke", action="store_true", help="the smoke setting (default on a CPU)")
    chosen.add_argument("--full", action="store_true", help="the full setting (default on CUDA)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--from-csv", action="store_true", help="only rewrite stdt.md from an existing stdt.csv "
                        "(rows of several runs, e.g. seeds split over two GPU calls) and re-measure CPU throughput")
    parser.add_argument("--device-note", default="", help="with --from-csv: where and how the rows were measured")
    parser.add_argument("--sbi-faces", default=None, help="train on self-blended colour clips of this face folder "
                        "('' = the embedded colour faces) and write stdt_sbi.md instead")
    parser.add_argument("--sbi-epochs", type=int, default=None, help="with --sbi-faces: fewer epochs (a CPU run)")
    parser.add_argument("--sbi-per-identity", type=int, default=None,
                        help="with --sbi-faces: fewer clips per training face (a CPU run)")
    parser.add_argument("--workers", type=int, default=1, help="with --sbi-faces on a CPU: train the models in this "
                        "many processes of one thread each")
    args = parser.parse_args()
    args.setting = "smoke" if args.smoke else "full" if args.full else None
    device = resolve_device(args.device)
    if args.sbi_faces is not None:
        torch.set_num_threads(1)
        overrides = {k: v for k, v in (("epochs", args.sbi_epochs), ("n_per_identity", args.sbi_per_identity))
                     if v is not None}
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.machine()})"
        workers = args.workers if device.type == "cpu" else 1
        name += f", {workers} one-thread processes side by side" if workers > 1 else ""
        print(run_sbi_seeds(args.seeds, args.sbi_faces, args.setting == "smoke", device, RESULTS, name,
                            workers=workers, **overrides))
        return
    setting = args.setting or ("smoke" if smoke_mode(None) and device.type == "cpu" else "full")
    if device.type == "cpu":
        torch.set_num_threads(1)  # a shared 2-core machine: one thread is faster and steadier
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    if args.from_csv:
        write(pd.read_csv(RESULTS / "stdt.csv"), setting, float("nan"), args.device_note or "rows from stdt.csv",
              stdt_config(smoke=setting == "smoke"), cpu_throughput(setting))
        print((RESULTS / "stdt.md").read_text())
        return
    start = time.perf_counter()
    df = run(setting, args.seeds, device)
    write(df, setting, time.perf_counter() - start, name, stdt_config(smoke=setting == "smoke"),
          cpu_throughput(setting))
    print((RESULTS / "stdt.md").read_text())


if __name__ == "__main__":
    main()
