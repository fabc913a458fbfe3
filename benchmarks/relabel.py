"""Benchmark re-label distillation (RLD) against the baseline explainers on held-out images, all measured in one run.

Data sets (``--dataset``): ``digits`` (16x16 gray scikit-learn digits, the default) and ``patches`` (32x32 RGB
patches of scikit-image's photographs and textures, ``load_patches``; photographs are where VAE-latent and
superpixel perturbations differ most). Each has its own teacher and VAE recipe, planted region and output path.

Rows: RLD's default configuration (ours, issue 12), the paper's variant ``RelabelDistillation.paper`` (ridge and
sgd student), each with the signed map and the map times the input, and every baseline of
``workbench.explainers`` at the same sample budget N where the baseline samples (lime, captum_lime, kernel_shap; the
others at their defaults), all built by ``make_explainer``.
Columns (mean ± std over the images): deletion AUC with a zeros and a blur substrate (lower better), insertion AUC
(blur substrate, higher better) on the teacher; the share of map mass inside the evidence region of a
planted-evidence classifier (``RegionOnlyClassifier``: the teacher sees only the central box of half the image
side, the explainer is re-run on it); median seconds per single-image explanation on the CPU and the ratio to the
lime package.
Scores are computed by :func:`workbench.evaluation.scorecard` where it has an equivalent metric, which also adds
sparseness, relevance mass accuracy and the pointing game on the planted box, and the MPRT sanity check
(``--mprt-images``).
Also: RLD's time split, explanations per second for a batch of 1 and of B images (CPU, and CUDA when available),
the per-image win rate of RLD's default configuration against lime on planted mass, insertion, deletion and MPRT
with paired Wilcoxon signed-rank tests, and degenerate RLD explanations (no_flip / all_flip, counted from the
per-image statuses RLD reports: zero maps, scored as such).

    WORKBENCH_CACHE=/tmp/wbcache python benchmarks/relabel.py            # 100 images, N = 1000
    python benchmarks/relabel.py --smoke                                  # 10 images, N = 200 (smoke)
    python benchmarks/relabel.py --dataset patches --n-images 40 --n-samples 500 --metric-step 8 --timing-images 5

``gpu_benchmark(device, out_dir, budget_s)`` is the GPU part (called by the lead's GPU session; imports only what a
bare torch machine has): explanations/s of the default and ``paper()`` for 100 digits at N = 1000, and of the
default at 128 px with a ResNet-18 teacher (batch 8, N = 1000) with its peak GPU memory.

Writes ``<out>.md`` and ``<out>.csv`` (default ``benchmarks/results/relabel`` for digits,
``benchmarks/results/relabel_patches`` for patches). The metric is never tuned to a method: every map is scored by
the same code.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import os
import platform
import re
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import wilcoxon

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.data import ImageSet, load_digits, load_patches  # noqa: E402
from workbench.evaluation import (  # noqa: E402
    MPRT,
    Deletion,
    ExplainFn,
    Insertion,
    Metric,
    PointingGame,
    RelevanceMassAccuracy,
    Sparseness,
    scorecard,
)
from workbench.explainers import (  # noqa: E402
    BASELINES,
    DEGENERATE_STATUSES,
    Explainer,
    baseline_kwargs,
    default_cell,
    make_explainer,
)
from workbench.metrics import deletion_auc  # noqa: E402
from workbench.models import RegionOnlyClassifier, box_mask  # noqa: E402
from workbench.models.pretrained import (  # noqa: E402
    DIGITS_SIZE,
    PATCHES_SIZE,
    digits_classifier,
    digits_vae,
    patches_classifier,
    patches_vae,
)
from workbench.relabel import RelabelDistillation, RelabelWarning  # noqa: E402
from workbench.train import resolve_device, synchronize  # noqa: E402

#: the RLD rows: the default configuration (ours, issue 12) and the paper's variant, each with the sgd student too
RLD_CONFIGS: dict[str, Callable[..., RelabelDistillation]] = {
    "RLD default": RelabelDistillation,
    "RLD paper()": RelabelDistillation.paper,
    "RLD paper(), sgd": lambda teacher, vae, **kw: RelabelDistillation.paper(teacher, vae, student="sgd", **kw),
}
MAP_MODES = ("signed", "times_input")
#: the configuration the paired tests and the targets are about
HEADLINE = "RLD default"
#: paired tests against lime: metric -> True where higher is better
PAIRED_METRICS = {"planted_mass": True, "insertion": True, "deletion_zeros": False, "mprt": False}


def interleaved_patches_test() -> ImageSet:
    """The held-out patches in a seeded class-interleaved order (the test split itself is sorted by class and by
    position), so that the first n images cover every class about equally."""
    test = load_patches(PATCHES_SIZE, "test")
    gen = torch.Generator().manual_seed(0)
    rank = torch.empty(len(test), dtype=torch.long)
    for c in range(len(test.classes)):
        idx = (test.labels == c).nonzero().squeeze(1)
        rank[idx] = torch.randperm(len(idx), generator=gen)
    order = torch.argsort(rank * len(test.classes) + test.labels)
    return ImageSet(test.images[order], test.labels[order], test.classes)


@dataclass(frozen=True)
class DatasetSpec:
    """What differs between the benchmark's data sets: images, models, planted region and how the report names them."""

    title: str
    size: int
    load_test: Callable[[], ImageSet]
    teacher: Callable[[], torch.nn.Module]
    vae: Callable[[], torch.nn.Module]
    images_text: str
    models_text: str
    out: str

    @property
    def region(self) -> tuple[int, int, int, int]:
        """Top, left, height, width of the planted-evidence box: the central box of half the image side."""
        side = self.size // 2
        return side // 2, side // 2, side, side

    @property
    def region_text(self) -> str:
        top, left, h, w = self.region
        return (f"central {h}x{w} box (rows {top}-{top + h - 1}, columns {left}-{left + w - 1}) of the "
                f"{self.size}x{self.size} image; outside pixels are replaced by 0")


DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(
        title="held-out digits", size=DIGITS_SIZE, load_test=lambda: load_digits(DIGITS_SIZE, "test"),
        teacher=lambda: digits_classifier(progress=False), vae=lambda: digits_vae(progress=False),
        images_text=f"`load_digits({DIGITS_SIZE}, 'test')` (held out)",
        models_text="teacher `digits_classifier()`, VAE `digits_vae()`", out="benchmarks/results/relabel"),
    "patches": DatasetSpec(
        title="held-out photograph patches", size=PATCHES_SIZE, load_test=interleaved_patches_test,
        teacher=lambda: patches_classifier(progress=False), vae=lambda: patches_vae(progress=False),
        images_text=f"`load_patches({PATCHES_SIZE}, 'test')` (RGB, the held-out right part of every scikit-image "
                    "source photograph / texture), in a seeded class-interleaved order",
        models_text="teacher `patches_classifier()`, VAE `patches_vae()`",
        out="benchmarks/results/relabel_patches"),
}


def rld_name(config: str, map_mode: str) -> str:
    return config if map_mode == "signed" else f"{config}, times_input"


def timed(fn: Callable[[], torch.Tensor], device: torch.device) -> tuple[torch.Tensor, float]:
    synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    synchronize(device)
    return out, time.perf_counter() - t0


def degenerate_counts(explainer: Explainer) -> dict[str, int]:
    """How many images of the explainer's last call got each degenerate status (no_flip, all_flip)."""
    return {status: explainer.last_status.count(status) for status in sorted(DEGENERATE_STATUSES, reverse=True)}


def run_rld(rld: RelabelDistillation, images: torch.Tensor) -> tuple[torch.Tensor, float, dict[str, int]]:
    """Batched RLD attribution, its wall time and the degenerate count (the per-image statuses RLD reports)."""
    with quiet_relabel():
        attr, seconds = timed(lambda: rld.attribute(images), images.device)
    return attr, seconds, degenerate_counts(rld)


@contextlib.contextmanager
def quiet_relabel() -> Iterator[None]:
    """Silence RLD's degenerate-explanation warnings: the benchmark counts the statuses instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RelabelWarning)
        yield


def fixed(maps: torch.Tensor) -> ExplainFn:
    """An explain_fn that returns maps already computed for the batch, so the scorecard scores exactly those."""
    return lambda model, inputs, targets: maps


def scored(model, images: torch.Tensor, maps: torch.Tensor, metrics: list[Metric],
           masks: torch.Tensor | None = None) -> list[np.ndarray]:
    """Per-image scores of ``maps`` by each metric, through the scorecard (NaN where a row failed)."""
    table = scorecard(model, images, None, {"maps": fixed(maps)}, metrics, masks=masks, progress=False)
    return list(table["score"].to_numpy(dtype=float).reshape(len(metrics), -1))  # rows: metric-major, then image


def score(teacher, planted, images: torch.Tensor, teacher_map: torch.Tensor, planted_map: torch.Tensor,
          region: torch.Tensor, step: int) -> dict[str, np.ndarray]:
    """Per-image scores of one method, computed by the scorecard's metrics where one is equivalent: RISE deletion
    (zeros) / insertion (blur) AUC and sparseness on the teacher; on the planted classifier the share of |map| inside
    the region (relevance mass accuracy with abs=True; an all-zero map scores 0, as before), Quantus's signed
    relevance mass accuracy and the pointing game. Deletion to a blurred copy has no scorecard metric."""
    deletion, insertion, sparseness = scored(teacher, images, teacher_map,
                                             [Deletion(step), Insertion(step), Sparseness()])
    mass, signed_mass, pointing = scored(planted, images, planted_map, [
        RelevanceMassAccuracy(abs=True), RelevanceMassAccuracy(), PointingGame()], masks=region.bool())
    return {
        "deletion_zeros": deletion,
        "deletion_blur": deletion_auc(teacher, images, teacher_map, substrate="blur", step=step).cpu().numpy(),
        "insertion": insertion,
        "planted_mass": np.nan_to_num(mass, nan=0.0),
        "sparseness": sparseness,
        "relevance_mass_accuracy": signed_mass,
        "pointing_game": pointing,
    }


def mprt(teacher, images: torch.Tensor, explainer: object) -> np.ndarray:
    """MPRT (Spearman rank correlation of the map with the map of the fully randomised model, top-down; lower is
    better) of each image; NaN where it is undefined (an explainer that returns a constant map, e.g. RLD's zero map
    when no sample or every sample flips)."""
    with quiet_relabel():
        table = scorecard(teacher, images, None, {"explainer": explainer}, [MPRT()], progress=False)
    return table["score"].to_numpy(dtype=float)


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pm(values: np.ndarray) -> str:
    """Mean ± std over the images where the score is defined (MPRT is undefined for a constant map)."""
    if not np.isfinite(values).any():
        return "n/a"
    return f"{np.nanmean(values):.3f} ± {np.nanstd(values):.3f}"


def defined_mean(values: np.ndarray) -> float:
    """Mean over the images where the score is defined (NaN when it is defined for none)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def paired(rld: np.ndarray, lime: np.ndarray, higher_is_better: bool = True) -> dict[str, float]:
    """Win rate (ties count half), median difference and two-sided Wilcoxon signed-rank p of RLD vs lime, over the
    images where both scores are defined."""
    ok = np.isfinite(rld) & np.isfinite(lime)
    rld, lime = rld[ok], lime[ok]
    if not len(rld):
        return {"win_rate": float("nan"), "median_diff": float("nan"), "wilcoxon_p": float("nan"), "images": 0}
    diff = rld - lime
    better = diff > 0 if higher_is_better else diff < 0
    wins = float(np.mean(better + 0.5 * (diff == 0)))
    p = float("nan") if np.all(diff == 0) else float(wilcoxon(rld, lime).pvalue)
    return {"win_rate": wins, "median_diff": float(np.median(diff)), "wilcoxon_p": p, "images": int(len(rld))}


def throughput(teacher, vae, images: torch.Tensor, config: str, n_samples: int,
               device: torch.device) -> dict[str, float]:
    """Explanations per second on ``device`` (models and images already there) for a batch of 1 (median of 3) and a
    batch of all ``images``."""
    rld = RLD_CONFIGS[config](teacher, vae, n_samples=n_samples)
    x = images.to(device)
    with quiet_relabel():
        rld.attribute(x[:1])  # warm-up (kernels, allocator)
        single = statistics.median(timed(lambda i=i: rld.attribute(x[i:i + 1]), device)[1] for i in range(3))
        _, batch = timed(lambda: rld.attribute(x), device)
    return {"batch_1": 1.0 / single, "batch_b": len(x) / batch}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=tuple(DATASETS), default="digits",
                        help="digits: 16x16 gray digits; patches: 32x32 RGB photograph patches")
    parser.add_argument("--n-images", type=int, default=100, help="held-out images explained and scored")
    parser.add_argument("--n-samples", type=int, default=1000, help="sample budget N of RLD and the sampling baselines")
    parser.add_argument("--timing-images", type=int, default=10, help="images timed one at a time per method")
    parser.add_argument("--metric-step", type=int, default=1, help="pixels switched per deletion/insertion step")
    parser.add_argument("--mprt-images", type=int, default=20,
                        help="images of the MPRT sanity check (re-explains once per layer of the teacher)")
    parser.add_argument("--smoke", action="store_true", help="10 images, N = 200, 3 timed and 3 MPRT images (smoke)")
    parser.add_argument("--device", default="auto",
                        help="where the table's maps and scores are computed and RLD's extra throughput is measured "
                             "(auto: CUDA when present); single-image timings always run on the CPU")
    parser.add_argument("--out", default=None,
                        help="output path without suffix (default: benchmarks/results/relabel for digits, "
                             "benchmarks/results/relabel_patches for patches)")
    args = parser.parse_args(argv)
    spec = DATASETS[args.dataset]
    args.out = args.out or spec.out
    if args.smoke:
        args.n_images, args.n_samples, args.timing_images, args.mprt_images = 10, 200, 3, 3
    started = time.perf_counter()
    cpu = torch.device("cpu")
    extra_device = resolve_device(args.device)

    teacher, vae = spec.teacher(), spec.vae()
    test = spec.load_test()
    if args.n_images > len(test):
        raise SystemExit(f"--n-images {args.n_images} exceeds the {len(test)} {spec.title}")
    cpu_images = test.images[:args.n_images]
    region = box_mask(spec.size, *spec.region)
    # the table's maps and scores on --device (CUDA when present); single-image timings on CPU copies
    bulk_teacher, bulk_vae = copy.deepcopy(teacher).to(extra_device), copy.deepcopy(vae).to(extra_device)
    images, region = cpu_images.to(extra_device), region.to(extra_device)
    planted = RegionOnlyClassifier(bulk_teacher, region).eval()
    n, n_timed = args.n_samples, min(args.timing_images, args.n_images)
    n_mprt = min(args.mprt_images, args.n_images)
    print(f"{len(images)} images, N = {n}, {torch.get_num_threads()} threads", flush=True)

    scores: dict[str, dict[str, np.ndarray]] = {}
    seconds: dict[str, list[float]] = {}
    extra: dict[str, dict] = {}

    # RLD: one batched fit per (student, residual) and classifier; the times_input map is the same student's weight
    # times the input, exactly what map_mode="times_input" returns, so both rows come from one fit.
    for config, build in RLD_CONFIGS.items():
        t_map, t_sec, t_deg = run_rld(build(bulk_teacher, bulk_vae, n_samples=n), images)
        p_map, _, p_deg = run_rld(build(planted, bulk_vae, n_samples=n), images)
        for map_mode in MAP_MODES:
            name = rld_name(config, map_mode)
            tm, pmap = (t_map, p_map) if map_mode == "signed" else (t_map * images, p_map * images)
            scores[name] = score(bulk_teacher, planted, images, tm, pmap, region, args.metric_step)
            scores[name]["mprt"] = mprt(bulk_teacher, images[:n_mprt],
                                        build(bulk_teacher, bulk_vae, n_samples=n, map_mode=map_mode))
            extra[name] = {"degenerate": f"{t_deg['no_flip']}/{t_deg['all_flip']} · {p_deg['no_flip']}/"
                                         f"{p_deg['all_flip']}", "batch_seconds": t_sec}
        print(f"{config}: {time.perf_counter() - started:.0f}s", flush=True)

    for name in BASELINES:
        kwargs = baseline_kwargs(name, n)
        t_map = make_explainer(name, bulk_teacher, **kwargs).attribute(images)
        p_map = make_explainer(name, planted, **kwargs).attribute(images)
        scores[name] = score(bulk_teacher, planted, images, t_map, p_map, region, args.metric_step)
        scores[name]["mprt"] = mprt(bulk_teacher, images[:n_mprt], make_explainer(name, bulk_teacher, **kwargs))
        print(f"{name}: {time.perf_counter() - started:.0f}s", flush=True)

    # Timing: single-image explanations on the CPU, methods interleaved image by image so that the load of a shared
    # machine falls on every method alike.
    explainers: dict[str, Callable[[torch.Tensor], object]] = {}
    for config, build in RLD_CONFIGS.items():
        explainers[config] = build(teacher, vae, n_samples=n).explain
    for name in BASELINES:
        baseline = make_explainer(name, teacher, **baseline_kwargs(name, n))
        explainers[name] = lambda x, baseline=baseline: baseline.attribute(x[None])
    splits: dict[str, list[dict[str, float]]] = {k: [] for k in explainers}
    with quiet_relabel():
        for i in range(n_timed):
            for name, explain in explainers.items():
                result, sec = timed(lambda explain=explain, i=i: explain(cpu_images[i]), cpu)
                seconds.setdefault(name, []).append(sec)
                if name.startswith("RLD"):
                    splits[name].append(result.timings)
    for config in RLD_CONFIGS:
        split = {k: statistics.median(s[k] for s in splits[config]) for k in splits[config][0]}
        extra[config]["split"] = split
        seconds[rld_name(config, "times_input")] = seconds[config]
        extra[rld_name(config, "times_input")]["split"] = split
    print(f"timing: {time.perf_counter() - started:.0f}s", flush=True)

    lime_sec = statistics.median(seconds["lime"])
    best = HEADLINE
    wins = {metric: paired(scores[best][metric], scores["lime"][metric], higher)
            for metric, higher in PAIRED_METRICS.items()}

    throughput_rows = {}
    for name in RLD_CONFIGS:
        row = {"cpu_batch_1": 1.0 / statistics.median(seconds[name])}
        if extra_device.type == "cpu":
            row["cpu_batch_b"] = len(images) / extra[name]["batch_seconds"]
        else:
            row["cpu_batch_b"] = throughput(teacher, vae, cpu_images, name, n, cpu)["batch_b"]
            cuda = throughput(bulk_teacher, bulk_vae, images, name, n, extra_device)
            row.update(cuda_batch_1=cuda["batch_1"], cuda_batch_b=cuda["batch_b"])
        throughput_rows[name] = row
    print(f"throughput: {time.perf_counter() - started:.0f}s", flush=True)

    runtime = time.perf_counter() - started
    write_results(args, spec, images, scores, seconds, extra, lime_sec, best, wins, throughput_rows, runtime,
                  extra_device)


def write_results(args, spec, images, scores, seconds, extra, lime_sec, best, wins, throughput_rows, runtime,
                  extra_device) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    b, n = len(images), args.n_samples
    rows = []
    for name, s in scores.items():
        med = statistics.median(seconds[name])
        row = {"method": name, "n_samples": n if name.startswith("RLD") or baseline_kwargs(name, n) else None,
               "images": b}
        for metric, values in s.items():
            defined = values[np.isfinite(values)]
            row[f"{metric}_mean"], row[f"{metric}_std"] = ((float(np.mean(defined)), float(np.std(defined)))
                                                           if len(defined) else (float("nan"), float("nan")))
        row.update(seconds_median=med, time_vs_lime=med / lime_sec,
                   degenerate_teacher_planted=extra.get(name, {}).get("degenerate", ""))
        if name in extra:
            row.update({f"rld_{k}_s": v for k, v in extra[name]["split"].items()})
        if name in throughput_rows:
            row.update({f"expl_per_s_{k}": v for k, v in throughput_rows[name].items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    table["n_samples"] = table["n_samples"].astype("Int64")
    table.to_csv(out.with_suffix(".csv"), index=False)

    lime_ins, lime_mass = (float(np.mean(scores["lime"][k])) for k in ("insertion", "planted_mass"))
    best_ins, best_mass, best_del = (float(np.mean(scores[best][k]))
                                     for k in ("insertion", "planted_mass", "deletion_zeros"))
    lime_del = float(np.mean(scores["lime"]["deletion_zeros"]))
    best_mprt, lime_mprt = (defined_mean(scores[k]["mprt"]) for k in (best, "lime"))
    best_signed = re.sub(r", times_input$", "", best)
    best_sec = statistics.median(seconds[best_signed])
    cuda_key = "cuda_batch_b"
    cuda_rate = throughput_rows[best_signed].get(cuda_key)
    threads = torch.get_num_threads()
    cell = default_cell(spec.size, spec.size)
    flags = f"{' --dataset ' + args.dataset if args.dataset != 'digits' else ''}{' --smoke' if args.smoke else ''}"
    _, _, h, w = spec.region
    lines = [
        f"# Re-label distillation vs baseline explainers on {spec.title}",
        "",
        f"Generated by `benchmarks/relabel.py{flags}` on "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {cpu_name()}, {os.cpu_count()} CPU cores, "
        f"{threads} torch threads, torch {torch.__version__}"
        f"{', CUDA: ' + torch.cuda.get_device_name(extra_device) if extra_device.type == 'cuda' else ', no CUDA'}. "
        f"Run time {runtime / 60:.1f} min.",
        "",
        f"- Maps and scores computed on {extra_device.type} (the same numbers as on a CPU up to float rounding); "
        "single-explanation timings on the CPU.",
        f"- Images: the first {b} of {spec.images_text}; {spec.models_text}.",
        f"- Sample budget N = {n} for RLD and the sampling baselines (lime, captum_lime, kernel_shap; superpixels: "
        f"{cell}x{cell}-pixel grid cells, removed = 0); integrated_gradients (50 steps, zero baseline), saliency "
        f"(|grad|), occlusion ({2 * cell}x{2 * cell} window, stride {cell}, zero fill), gradcam (last conv block, "
        "ReLU, bilinear) at their defaults.",
        "- Deletion: pixels replaced in order of decreasing (signed, channel-summed) map value by zeros or by a "
        "blurred copy (Gaussian sigma 2); insertion: pixels put into the blurred copy; score = teacher softmax "
        "probability of its predicted class; AUC in [0, 1]; "
        f"{args.metric_step} pixel(s) per step ({-(-spec.size ** 2 // args.metric_step)} steps).",
        f"- Planted mass: share of |map| inside the evidence region of `RegionOnlyClassifier(teacher, box)` whose "
        f"decision depends only on the {spec.region_text}; each explainer re-run on that classifier (its own "
        f"predicted class). A uniform map scores {h * w / spec.size ** 2:.2f}.",
        "- Scores come from `workbench.evaluation.scorecard` (Quantus's definitions) where one is equivalent: "
        "deletion (zeros) and insertion are its RISE `Deletion`/`Insertion`, planted mass its "
        "`RelevanceMassAccuracy(abs=True)` (an all-zero map scores 0); deletion to a blurred copy is "
        "`workbench.metrics.deletion_auc`. Added scorecard columns: sparseness (Gini index of |map| on the teacher, "
        "higher = more concise), relevance mass accuracy (Quantus's default: signed map, share inside the box) and "
        "pointing game (the map's maximum inside the box) on the planted classifier, and MPRT (Spearman correlation "
        "of |map| with the map of the teacher after randomising every layer top-down; lower = the map depends on "
        f"what the model learned) on the first {min(args.mprt_images, b)} images, mean over the images where it is "
        "defined (n/a: the explainer's maps were constant, e.g. RLD's zero map when no sample or every sample flips "
        "under the randomised teacher).",
        "- RLD default: `RelabelDistillation(teacher, vae)` (ours, issue 12: grid cells from a pool of decodes, half "
        "kept from the image, residual on, ridge student on cell means, alpha 1, soft labels); RLD paper(): "
        "`RelabelDistillation.paper(teacher, vae)` (whole decodes, pixel student, ridge alpha 0.01, soft_weight 0.5; "
        "sgd: 150 Adam steps); sigma by bisection to a 30-70 % flip band for both. `times_input` rows are the same "
        "fit's weights times the input "
        "(what `map_mode='times_input'` returns). Degenerate = no_flip/all_flip count on the teacher · on the "
        "planted classifier (their map is zero and is scored as such).",
        f"- Seconds: median wall time of one single-image explanation on the CPU over the first "
        f"{min(args.timing_images, b)} images, methods interleaved image by image (so that the "
        "load of a shared machine falls on every method alike; ratios are more robust than absolute times); "
        "`× lime` = that time / the lime package's.",
        "",
        "| method | deletion AUC, zeros ↓ | deletion AUC, blur ↓ | insertion AUC ↑ | planted mass ↑ | s / expl. | "
        "× lime | degenerate | sparseness ↑ | relevance mass acc. ↑ | pointing game ↑ | MPRT ↓ |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in scores.items():
        med = statistics.median(seconds[name])
        label = f"**{name}**" if name == best else name
        lines.append(f"| {label} | {pm(s['deletion_zeros'])} | {pm(s['deletion_blur'])} | {pm(s['insertion'])} | "
                     f"{pm(s['planted_mass'])} | {med:.3f} | {med / lime_sec:.2f} | "
                     f"{extra.get(name, {}).get('degenerate', '')} | {pm(s['sparseness'])} | "
                     f"{pm(s['relevance_mass_accuracy'])} | {pm(s['pointing_game'])} | {pm(s['mprt'])} |")
    lines += [
        "",
        f"## RLD's default configuration vs the lime package (paired, {b} images)",
        "",
        f"**{best}** vs lime. Win rate = share of images where RLD scores better (lower for deletion and MPRT; "
        "ties count half); p = two-sided Wilcoxon signed-rank test (scipy) over the images where both are defined "
        "(MPRT: the first MPRT images).",
        "",
        "| metric | RLD mean | lime mean | win rate | median difference | Wilcoxon p | images |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for metric, w in wins.items():
        rld_mean, lime_mean = (defined_mean(scores[k][metric]) for k in (best, "lime"))
        lines.append(f"| {metric.replace('_', ' ')} | {rld_mean:.3f} | "
                     f"{lime_mean:.3f} | {w['win_rate']:.2f} | {w['median_diff']:+.3f} | "
                     f"{w['wilcoxon_p']:.2g} | {w['images']} |")
    has_cuda = any("cuda_batch_1" in r for r in throughput_rows.values())
    cuda_cols = " explanations/s, CUDA batch 1 | explanations/s, CUDA batch " + str(b) + " |" if has_cuda else ""
    lines += [
        "",
        "## RLD time split (median seconds, single image, CPU) and throughput",
        "",
        f"| configuration | sigma search | decode | teacher forward | student fit | total | explanations/s, CPU "
        f"batch 1 | explanations/s, CPU batch {b} |{cuda_cols}",
        "| --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if has_cuda else ""),
    ]
    for name, tp in throughput_rows.items():
        sp = extra[name]["split"]
        cells = [f"{sp[k]:.4f}" for k in ("sigma_search", "decode", "teacher_forward", "student_fit")]
        cuda_cells = f" {tp['cuda_batch_1']:.1f} | {tp['cuda_batch_b']:.1f} |" if has_cuda else ""
        total = statistics.median(seconds[name])
        lines.append(f"| {name.removesuffix(', signed')} | {' | '.join(cells)} | {total:.4f} "
                     f"| {tp['cpu_batch_1']:.1f} | {tp['cpu_batch_b']:.1f} |{cuda_cells}")

    def met(ok: bool | None) -> str:
        return "not measured" if ok is None else ("met" if ok else "**not met**")

    lines += [
        "",
        "## Targets (issue 12)",
        "",
        "| target | measured | status |",
        "| --- | --- | --- |",
        f"| RLD default above lime on planted-evidence mass, significant (paired p < 0.05) | {best_mass:.3f} vs "
        f"{lime_mass:.3f}, p = {wins['planted_mass']['wilcoxon_p']:.2g} | "
        f"{met(best_mass > lime_mass and wins['planted_mass']['wilcoxon_p'] < 0.05)} |",
        f"| insertion AUC no worse than lime (not significantly lower) | {best_ins:.3f} vs {lime_ins:.3f}, "
        f"p = {wins['insertion']['wilcoxon_p']:.2g} | "
        f"{met(best_ins >= lime_ins or not wins['insertion']['wilcoxon_p'] < 0.05)} |",
        f"| deletion AUC (zeros) no worse than lime (not significantly higher) | {best_del:.3f} vs {lime_del:.3f}, "
        f"p = {wins['deletion_zeros']['wilcoxon_p']:.2g} | "
        f"{met(best_del <= lime_del or not wins['deletion_zeros']['wilcoxon_p'] < 0.05)} |",
        f"| MPRT at least as low as lime's | {best_mprt:.3f} vs {lime_mprt:.3f} | "
        f"{met(None if np.isnan(best_mprt) or np.isnan(lime_mprt) else best_mprt <= lime_mprt)} |",
        f"| no slower per explanation than lime, same CPU, N = {n} | {best_sec:.3f} s vs "
        f"{lime_sec:.3f} s ({best_sec / lime_sec:.2f}×) | {met(best_sec <= lime_sec)} |",
        f"| ≥ 1000 explanations/s on a GPU, batch of 100, N = 1000 | "
        f"{f'{cuda_rate:.0f}/s' if cuda_rate else 'no CUDA in this run (see gpu_benchmark)'} | "
        f"{met(None if cuda_rate is None or n != 1000 or b < 100 else cuda_rate >= 1000)} |",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


# ------------------------------------------------------------------------------------------------ GPU benchmark
GPU_TARGETS = {"digits": 1000.0, "large": 25.0, "large_peak_gib": 4.0}


def _rate(rld: RelabelDistillation, x: torch.Tensor, device: torch.device, min_s: float = 1.0) -> float:
    """Explanations per second for the batch ``x``: one warm-up call, then repeats until ``min_s`` (at least 2)."""
    with quiet_relabel():
        rld.attribute(x)
        synchronize(device)
        t0, calls = time.perf_counter(), 0
        while calls < 2 or time.perf_counter() - t0 < min_s:
            rld.attribute(x)
            calls += 1
        synchronize(device)
    return calls * len(x) / (time.perf_counter() - t0)


def _patch_models(train: ImageSet, size: int, steps: int, device: torch.device, tiny: bool):
    """A torchvision ResNet-18 teacher (no downloaded weights) and a VAE, each trained ``steps`` on ``train``."""
    from torchvision.models import resnet18

    from workbench.relabel import train_folder_vae
    from workbench.train import classification_step, fit

    teacher = resnet18(num_classes=len(train.classes))
    fit(teacher, train.loader(32), classification_step, epochs=10**6, max_steps=steps, lr=1e-3, device=device,
        progress=False, desc="resnet18")
    vae = train_folder_vae(train.images, size, latent_dim=16 if tiny else 64, width=8 if tiny else 32,
                           steps=steps, batch_size=32, device=device, checkpoint_every=steps)
    return teacher.eval(), vae


def _digit_models(steps: int, device: torch.device):
    """The digits teacher CNN and VAE of the library's recipes, each trained ``steps`` (no cache involved)."""
    from workbench.models import SmallCNN
    from workbench.relabel import train_folder_vae
    from workbench.train import classification_step, fit

    digits = load_digits(DIGITS_SIZE, "train")
    teacher = SmallCNN(1, 10, width=16, depth=3)
    fit(teacher, digits.loader(64), classification_step, epochs=10**6, max_steps=steps, lr=3e-3, device=device,
        progress=False, desc="digits teacher")
    vae = train_folder_vae(digits.images, DIGITS_SIZE, channels=1, latent_dim=16, width=32, steps=steps,
                           batch_size=64, lr=2e-3, device=device, checkpoint_every=steps)
    return teacher.eval().to(device), vae


def gpu_benchmark(device: torch.device, out_dir: Path, budget_s: float) -> list[dict]:
    """RLD on a GPU (issues 12 and 13): explanations/s of the default configuration and of ``paper()`` for a batch of
    100 digits at N = 1000, and at 128 px (a ResNet-18 teacher and a VAE, each trained a few hundred steps on the
    embedded colour patches at 128 px) explanations/s for a batch of 8 at N = 1000 and the peak
    ``torch.cuda.max_memory_allocated``. Stops starting new rows once ``budget_s`` is spent; writes
    ``relabel_gpu.md`` / ``.csv`` into ``out_dir``. ``WORKBENCH_SMOKE=1`` shrinks everything (CPU test).
    Imports only torch, torchvision, numpy, pandas, scipy and the library."""
    from workbench.train import accuracy, smoke_mode

    tiny = smoke_mode()
    t_start, rows = time.perf_counter(), []
    cuda = device.type == "cuda"

    def left() -> float:
        return budget_s - (time.perf_counter() - t_start)

    def row(check: str, rate: float | None, target: float, **extra: object) -> None:
        rows.append({"check": check, "explanations_per_s": rate, "target_per_s": target,
                     "met": None if rate is None or tiny else rate >= target, **extra})

    n, batch = (100, 4) if tiny else (1000, 100)
    models = _digit_models(20 if tiny else 400, device) if left() > 0 else None
    x = load_digits(DIGITS_SIZE, "test").images[:batch].to(device)
    for name, build in (("default", RelabelDistillation), ("paper()", RelabelDistillation.paper)):
        check = f"RLD {name}, digits 16 px, batch {batch}, N = {n}"
        if models is None or left() <= 0:
            row(check, None, GPU_TARGETS["digits"], note="budget spent")
            continue
        row(check, _rate(build(*models, n_samples=n), x, device, 0.2 if tiny else 2.0), GPU_TARGETS["digits"])
    size, batch, n = (32, 2, 50) if tiny else (128, 8, 1000)
    check = f"RLD default, colour patches {size} px, ResNet-18 teacher, batch {batch}, N = {n}"
    if left() <= 0:
        row(check, None, GPU_TARGETS["large"], note="budget spent")
    else:
        train = load_patches(size, "train", patch=128, stride=128 if tiny else 32)
        test = load_patches(size, "test", patch=128, stride=32, max_per_class=1)
        steps = 10 if tiny else 300
        teacher, vae = _patch_models(train, size, steps, device, tiny)
        acc = accuracy(teacher, test.images.to(device), test.labels.to(device))
        rld = RelabelDistillation(teacher, vae, n_samples=n, probe_samples=16 if tiny else 128)
        x = test.images[:batch].to(device)
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        rate = _rate(rld, x, device, 0.2 if tiny else 2.0)
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
        row(check, rate, GPU_TARGETS["large"], peak_gib=peak, peak_target_gib=GPU_TARGETS["large_peak_gib"],
            peak_met=None if peak is None else peak < GPU_TARGETS["large_peak_gib"], teacher_test_acc=acc,
            train_steps=steps)
    _write_gpu_table(rows, device, out_dir, time.perf_counter() - t_start, tiny)
    return rows


def _write_gpu_table(rows: list[dict], device: torch.device, out_dir: Path, seconds: float, tiny: bool) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out_dir / "relabel_gpu.csv", index=False)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()

    def fmt(v: object, spec: str = ".0f") -> str:
        return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)

    def met(v: object) -> str:
        return "–" if v is None else ("met" if v else "**not met**")

    lines = [f"# RLD on the GPU ({name}{', tiny smoke setting' if tiny else ''}; {seconds:.0f} s)", "",
             "| setting | explanations/s | target | status | peak GPU memory (GiB) | status |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['check']} | {fmt(r['explanations_per_s'], '.1f')} | ≥ {fmt(r['target_per_s'])} | "
                     f"{met(r['met'])} | {fmt(r.get('peak_gib'), '.2f')} | {met(r.get('peak_met'))} |")
    (out_dir / "relabel_gpu.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
