"""Benchmark: DCF and ECO-style trackers with and without channel distillation (CD), with OpenCV anchors.

    python benchmarks/tracking.py [--otb FOLDER ...] [--smoke] [--out benchmarks/results/tracking.md]

Runs every tracker on one generated sequence per attribute and on each real OTB folder given (by default the
development sequence, ``workbench.tracking.development_sequence_path()``, when it exists), all in the same run:
success AUC, precision at 20 px, FPS (tracker time only, image loading excluded), channels correlated per frame
and feature memory. FPS is timed over ``--repeats`` interleaved passes (each pass runs every tracker once on the
sequence) and the median pass is reported, so that load from other processes hits all trackers alike. Writes a
Markdown table and a CSV next to it. Hyper-parameters are the library defaults (chosen on generated sequences with
other seeds than the ones benchmarked here); nothing is tuned on these numbers.

``gpu_check(device, max_steps)`` trains the tracking feature CNN's full recipe for a bounded number of steps on a
device (``benchmarks/gpu_check.py`` calls it).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.tracking import (  # noqa: E402
    ATTRIBUTES,
    STAGES,
    ChannelDistillation,
    DCFTracker,
    ECOTracker,
    FeatureExtractor,
    HOGColorFeatures,
    OpenCVTracker,
    Sequence,
    development_sequence_path,
    evaluate,
    load_otb,
    make_sequence,
    run_sequence,
)
from workbench.tracking.pretrained import RECIPES, build_classifier, patch_sets, patch_step  # noqa: E402
from workbench.train import one_thread, resolve_device, single_threaded, training_throughput  # noqa: E402


def gpu_check(device: str | torch.device = "cuda", max_steps: int = 200) -> dict[str, float]:
    """Train the full recipe's patch classifier (the trackers' CNN features) for ``max_steps`` steps on ``device``,
    no cache involved: the mean loss of the first and the last tenth of the steps and the training throughput
    (patches/s), keys ``loss_first``, ``loss_last``, ``items_per_s``."""
    dev = resolve_device(device)
    recipe = RECIPES["full"]
    train_set, _ = patch_sets(recipe)
    with one_thread(dev.type == "cpu"):
        return training_throughput(build_classifier(recipe), train_set.loader(recipe.batch, shuffle=True),
                                   patch_step, max_steps=max_steps, lr=recipe.lr, device=dev)


def make_features(name: str) -> Callable[[], FeatureExtractor]:
    """Factory of the feature extractor all CF trackers share: hand-crafted, the project's CNN (``cnn``: trained on
    first use, cached; ``cnn-smoke``: the smoke recipe), or a cached torchvision layer."""
    if name == "hog":
        return HOGColorFeatures
    if name in ("cnn", "cnn-smoke"):
        from workbench.tracking import project_cnn_features

        cnn = project_cnn_features(smoke=name == "cnn-smoke", progress=False)
        return lambda: cnn
    from workbench.tracking import torchvision_features

    network, _, layer = name.partition(":")
    extractor = torchvision_features(network, layer or None)  # raises a clear error if the weights are not cached
    return lambda: extractor


#: the CD variants: the default (cost-blind selection, scoring skipped while the response is stable), and, for
#: extractors whose channels share work in blocks, "fast" (the cheapest blocks within 10% of the best fit)
CD_VARIANTS = {"CD": ChannelDistillation(), "CD-fast": ChannelDistillation(cost_tolerance=0.1)}


#: with CNN features, the "pruned" variant also prunes the layers before the last convolution (approximate)
PRUNE_TOLERANCE = 0.1


def trackers(features: Callable[[], FeatureExtractor]) -> dict[str, Callable[[], object]]:
    probe = features()
    blocks = getattr(probe, "channel_blocks", None) is not None
    pruned = probe.with_pruning(PRUNE_TOLERANCE) if hasattr(probe, "with_pruning") else None
    out: dict[str, Callable[[], object]] = {}
    for base, family in (("DCF", DCFTracker), ("ECO", ECOTracker)):
        out[base] = lambda family=family: family(features())
        for suffix, cd in CD_VARIANTS.items():
            if suffix == "CD" or blocks:
                out[f"{base}-{suffix}"] = lambda family=family, cd=cd: family(features(), channel_distillation=cd)
        if pruned is not None:
            out[f"{base}-CD-pruned"] = lambda family=family: family(pruned, channel_distillation=CD_VARIANTS["CD"])
    out["OpenCV-KCF"] = lambda: OpenCVTracker("KCF")
    out["OpenCV-CSRT"] = lambda: OpenCVTracker("CSRT")
    out["OpenCV-MOSSE"] = lambda: OpenCVTracker("MOSSE")
    return out


def benchmark_sequence(seq: Sequence, factories: dict[str, Callable[[], object]], repeats: int) -> list[dict]:
    frames = [seq.frame(i) for i in range(len(seq))]  # decoded once: loading is not part of any tracker's time
    loaded = Sequence(name=seq.name, frames=frames, ground_truth=seq.ground_truth, attributes=seq.attributes)
    passes: dict[str, list[float]] = {name: [] for name in factories}
    results = {}
    for _ in range(repeats):
        for name, make in factories.items():
            result = run_sequence(make(), loaded)
            passes[name].append(float(result.times[1:].sum()))
            results[name] = result  # trackers are deterministic: every pass gives the same boxes
    rows = []
    for name, result in results.items():
        score = evaluate(result.boxes, seq.ground_truth)
        rows.append(
            {
                "sequence": seq.name,
                "kind": "real" if seq.frame_paths is not None else "generated",
                "tracker": name,
                "success_auc": score.success_auc,
                "precision_20": score.precision_at_20,
                "fps": (len(seq) - 1) / float(np.median(passes[name])),
                "channels": result.channels_per_frame,
                "correlations": float(result.correlations[1:].mean()),
                "memory_kib": result.feature_memory_bytes / 1024,
                **{f"ms_{stage}": result.profile.get(stage, float("nan")) for stage in (*STAGES, "other")},
            }
        )
    return rows


def summarise(rows: list[dict], names: list[str]) -> list[dict]:
    """Per tracker: mean AUC / precision over generated sequences, the same on real ones, pooled FPS."""
    summary = []
    for name in names:
        mine = [r for r in rows if r["tracker"] == name]
        entry = {"tracker": name}
        for kind in ("generated", "real"):
            part = [r for r in mine if r["kind"] == kind]
            entry[f"auc_{kind}"] = float(np.mean([r["success_auc"] for r in part])) if part else float("nan")
            entry[f"p20_{kind}"] = float(np.mean([r["precision_20"] for r in part])) if part else float("nan")
            entry[f"fps_{kind}"] = float(len(part) / np.sum([1.0 / r["fps"] for r in part])) if part else float("nan")
        # pooled FPS: the harmonic mean of per-sequence FPS (total frames over total time for equal-length runs)
        entry["fps"] = float(len(mine) / np.sum([1.0 / r["fps"] for r in mine]))
        entry["channels"] = float(np.mean([r["channels"] for r in mine]))
        entry["correlations"] = float(np.mean([r["correlations"] for r in mine]))
        entry["memory_kib"] = float(np.mean([r["memory_kib"] for r in mine]))
        for kind in ("generated", "real"):
            part = [r for r in mine if r["kind"] == kind]
            for stage in (*STAGES, "other"):
                values = [r[f"ms_{stage}"] for r in part]
                entry[f"ms_{stage}_{kind}"] = float(np.mean(values)) if values else float("nan")
        summary.append(entry)
    return summary


def fmt(value: float, digits: int = 3) -> str:
    return "–" if value != value else f"{value:.{digits}f}"


def target_lines(rows: list[dict], by_name: dict[str, dict]) -> list[str]:
    """Each CD variant against the same tracker with all channels (FPS ratio, AUC difference), and the best CD
    tracker against OpenCV CSRT on each real sequence."""
    lines = []
    for base in (b for b in ("DCF", "ECO") if b in by_name):
        full = by_name[base]
        for name in (n for n in by_name if n.startswith(f"{base}-CD")):
            cd = by_name[name]
            for kind in ("generated", "real"):
                if full[f"auc_{kind}"] != full[f"auc_{kind}"]:
                    continue
                ratio = cd[f"fps_{kind}"] / full[f"fps_{kind}"]
                diff = cd[f"auc_{kind}"] - full[f"auc_{kind}"]
                met = ratio >= 2.0 and diff >= 0
                lines.append(
                    f"- {name} vs {base} ({kind}): FPS ratio {ratio:.2f}x (target >= 2x), success AUC "
                    f"{fmt(cd[f'auc_{kind}'])} vs {fmt(full[f'auc_{kind}'])} ({diff:+.3f}; target >= 0): "
                    f"**{'met' if met else 'not met'}**"
                )
    real = [r for r in rows if r["kind"] == "real"]
    for seq in sorted({r["sequence"] for r in real}):
        here = {r["tracker"]: r for r in real if r["sequence"] == seq}
        if "OpenCV-CSRT" not in here or not any("-CD" in n for n in here):
            continue
        best = max((n for n in here if "-CD" in n), key=lambda n: here[n]["success_auc"])
        csrt = here["OpenCV-CSRT"]["success_auc"]
        ok = here[best]["success_auc"] >= csrt
        lines.append(
            f"- {seq}: best CD tracker {best} success AUC {here[best]['success_auc']:.3f} vs OpenCV CSRT "
            f"{csrt:.3f} (target >=): **{'met' if ok else 'not met'}**"
        )
    return lines


def profile_lines(summary: list[dict]) -> list[str]:
    """The stage-by-stage profile: mean milliseconds per tracked frame, on generated and on real sequences."""
    lines = [
        "",
        "## Stage profile (ms per tracked frame)",
        "",
        "Each second of a tracker's time is counted in one stage: features (patch sampling and extraction), FFT "
        "(forward and inverse), solve (filter solve / conjugate gradient and model update), scale search "
        "(correlating every scale with the filter, peak finding), channel scoring (the CD w-step, including the "
        "features and FFTs it needs on its frames), other (validation, bookkeeping). Single-threaded, so "
        "comparable across trackers; absolute values move with the machine's load.",
        "",
        "| tracker | sequences | " + " | ".join([*STAGES, "other"]) + " |",
        "| --- | --- | " + " | ".join(["---"] * (len(STAGES) + 1)) + " |",
    ]
    for s in summary:
        for kind in ("generated", "real"):
            values = [s[f"ms_{stage}_{kind}"] for stage in (*STAGES, "other")]
            if all(v != v for v in values):
                continue
            lines.append(f"| {s['tracker']} | {kind} | " + " | ".join(fmt(v, 2) for v in values) + " |")
    return lines


def report(rows: list[dict], summary: list[dict], args: argparse.Namespace, seconds: float, load: tuple) -> str:
    by_name = {s["tracker"]: s for s in summary}
    lines = [
        "# Tracking benchmark: channel distillation (CD) vs full-channel trackers",
        "",
        f"Produced by `python benchmarks/tracking.py{' --smoke' if args.smoke else ''}` in {seconds:.0f} s on "
        f"{platform.machine()} / {os.cpu_count()} CPU(s), load average {load[0]:.1f} at start "
        f"(shared machine: FPS is the median of {args.repeats} interleaved passes; NumPy BLAS and OpenCV "
        f"single-threaded for every tracker). Features: `{args.features}`. "
        f"Generated sequences: {args.frames} frames of {args.size}x{args.size}, seeds 0-{len(ATTRIBUTES) - 1}.",
        "",
        "## Summary",
        "",
        "| tracker | success AUC (generated) | P@20 (generated) | success AUC (real) | P@20 (real) | FPS | "
        "channels / frame | correlations / frame | feature memory (KiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summary:
        lines.append(
            f"| {s['tracker']} | {fmt(s['auc_generated'])} | {fmt(s['p20_generated'])} | {fmt(s['auc_real'])} | "
            f"{fmt(s['p20_real'])} | {fmt(s['fps'], 1)} | {fmt(s['channels'], 1)} | {fmt(s['correlations'], 1)} | "
            f"{fmt(s['memory_kib'], 0)} |"
        )
    lines += ["", "## Targets", ""]
    lines += target_lines(rows, by_name)
    lines += profile_lines(summary)
    lines += [
        "",
        "## Per sequence",
        "",
        "| sequence | tracker | success AUC | P@20 | FPS | channels / frame | correlations / frame | "
        "feature memory (KiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['sequence']} | {r['tracker']} | {r['success_auc']:.3f} | {r['precision_20']:.3f} | "
            f"{r['fps']:.1f} | {r['channels']:.1f} | {r['correlations']:.1f} | {r['memory_kib']:.0f} |"
        )
    lines += [
        "",
        "Channels / frame: raw feature channels extracted and used per tracked frame; correlations / frame: channel "
        "correlations computed for detection (correlated channels x scales; ECO correlates a projection of at most "
        "12 dimensions, at most k with CD). OpenCV trackers do not report these (0). Feature memory: the largest "
        "per-frame footprint of extracted feature maps plus the model's stored spectra. CD frames that re-run the "
        "selection extract all channels once more for three views; they are included in FPS (a scheduled "
        "selection is skipped while the response peak stays stable). With the hand-crafted features, image "
        "gradients and colour conversions are computed once for all channels that need them: dropping channels "
        "saves their binning, normalisation, FFTs and correlations, and the whole gradient block only when no "
        "gradient channel is kept, which the CD-fast variant prefers (cost-aware selection). "
        "OpenCV KCF and MOSSE stop moving when their own failure test fires (OpenCV keeps the last box then).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--otb", nargs="*", type=Path, default=None, help="OTB-format sequence folders")
    parser.add_argument("--smoke", action="store_true", help="short sequences and one timing pass (a smoke run)")
    parser.add_argument("--quick", dest="smoke", action="store_true", help=argparse.SUPPRESS)  # results/*.md name it
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "tracking.md")
    parser.add_argument("--frames", type=int, default=None, help="frames per generated sequence (default 60)")
    parser.add_argument("--size", type=int, default=160, help="side of the generated frames")
    parser.add_argument("--repeats", type=int, default=None, help="timing passes (default 3, --smoke 1)")
    parser.add_argument("--features", default="hog", help="hog, or a cached torchvision layer: vgg16:conv3_3 ...")
    args = parser.parse_args(argv)
    args.frames = args.frames or (30 if args.smoke else 60)
    args.repeats = args.repeats or (1 if args.smoke else 3)
    development = development_sequence_path()
    folders = args.otb if args.otb is not None else ([development] if development is not None else [])

    load = os.getloadavg()
    start = time.perf_counter()
    factories = trackers(make_features(args.features))
    sequences = [make_sequence(a, args.frames, (args.size, args.size), seed=i) for i, a in enumerate(ATTRIBUTES)]
    sequences += [load_otb(folder) for folder in folders]
    rows = []
    # every tracker single-threaded (torch, BLAS, OpenCV): equal footing, less jitter from other processes
    with single_threaded():
        for seq in sequences:
            rows += benchmark_sequence(seq, factories, args.repeats)
            print(f"{seq.name}: "
                  + ", ".join(f"{r['tracker']} {r['success_auc']:.3f}" for r in rows[-len(factories):]))
    summary = summarise(rows, list(factories))
    text = report(rows, summary, args, time.perf_counter() - start, load)
    write_results(args.out, text, rows)


def write_results(out: Path, text: str, rows: list[dict]) -> None:
    """The Markdown table ``text`` into ``out``, ``rows`` into the CSV beside it; the table printed too."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    with out.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(text)


if __name__ == "__main__":
    main()
