"""Explore RLD sampling variants that make the samples identifiable, against lime and Captum Lime (issue 12).

Every variant keeps what RLD is (samples generated around the image through the VAE, labelled by the black box, a
linear student distilled from those labels); they differ in how a sample is built and what the student sees:

* ``paper``: whole decodes, ridge student on pixels (``RelabelDistillation.paper``; the residual switch is ours).
* ``mix``: each grid cell of each sample kept from the image with probability ``keep_share``, else from the decode.
* ``features``: ``pixels`` (the paper), ``regions`` (region means) or ``mask`` (the kept-cell indicators).
* ``pool``: each decoded region from a random decode of the pool (``region_source``).
* ``soft, alpha 1``: the ridge student on soft labels only, ridge_alpha 1 (control rows show what these do alone).

Both embedded data sets, the same images and sample budget for every method, all maps signed (channel-summed):
planted-evidence mass (``RegionOnlyClassifier``, from ``benchmarks/relabel.py``), deletion (zeros) and insertion
(blur) AUC on the teacher, a randomisation check (Spearman correlation between the |map| on the trained teacher and
on a teacher with every weight re-initialised: lower is better, MPRT's last step), paired Wilcoxon tests against
lime, median CPU seconds per single-image explanation (methods interleaved image by image).

    python benchmarks/relabel_variants.py --smoke          # 6 digits + 4 patches, N = 200 (smoke)
    python benchmarks/relabel_variants.py                  # 30 digits + 20 patches, N = 500

Models: the full digits teacher/VAE (cached); patches teacher/VAE at ``--patches-smoke`` (default on: the full
patches recipes are not cached on the CPU machine this ran on). Writes ``benchmarks/results/relabel_variants.md``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from relabel import DATASETS, paired, pm, quiet_relabel, score, timed  # noqa: E402

from workbench.explainers import baseline_kwargs, make_explainer  # noqa: E402
from workbench.models import RegionOnlyClassifier, box_mask  # noqa: E402
from workbench.models.pretrained import digits_classifier, digits_vae, patches_classifier, patches_vae  # noqa: E402
from workbench.relabel import RelabelDistillation  # noqa: E402
from workbench.train import single_threaded  # noqa: E402

#: name -> RelabelDistillation keyword arguments (``paper`` rows go through ``RelabelDistillation.paper``)
STRONG = {"residual": True, "soft_weight": 1.0, "ridge_alpha": 1.0}
VARIANTS: dict[str, dict] = {
    "paper": {"paper": True},
    "paper, residual": {"paper": True, "residual": True},
    "paper, residual, soft, alpha 1": {"paper": True, **STRONG},
    "mix 0.5 own, mask": {"keep_share": 0.5, "features": "mask", "residual": True},
    "mix 0.5 own, regions, soft, alpha 1": {"keep_share": 0.5, "features": "regions", **STRONG},
    "pool, pixels, soft, alpha 1": {"region_source": "pool", **STRONG},
    "pool, regions, soft, alpha 1": {"region_source": "pool", "features": "regions", **STRONG},
    # RelabelDistillation's default configuration since issue 12 (chosen from this table)
    "pool + mix 0.5, regions, soft, alpha 1": {"region_source": "pool", "keep_share": 0.5, "features": "regions",
                                               **STRONG},
}
BASELINE_NAMES = ("lime", "captum_lime")
METRICS = ("planted_mass", "deletion_zeros", "insertion", "randomisation")


def build_rld(model, vae, n: int, settings: dict) -> RelabelDistillation:
    kwargs = {k: v for k, v in settings.items() if k != "paper"}
    if settings.get("paper"):
        return RelabelDistillation.paper(model, vae, n_samples=n, **kwargs)
    return RelabelDistillation(model, vae, n_samples=n, **kwargs)


def randomised(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` with every weight re-initialised (seeded): MPRT's fully randomised model."""
    torch.manual_seed(1234)
    clone = copy.deepcopy(model)
    for module in clone.modules():
        if hasattr(module, "reset_parameters") and module is not clone:
            module.reset_parameters()
    return clone.eval()


def rank_corr(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per-image Spearman correlation of the channel-summed |maps| (NaN where a map is constant: not counted)."""
    out = []
    for u, v in zip(a.sum(1).abs().flatten(1), b.sum(1).abs().flatten(1), strict=True):
        u, v = u.cpu().numpy(), v.cpu().numpy()
        out.append(float("nan") if u.std() == 0 or v.std() == 0 else float(spearmanr(u, v)[0]))
    return np.asarray(out)


def evaluate(dataset: str, n_images: int, n: int, n_timed: int, step: int, patches_smoke: bool) -> dict:
    """Scores (per image), seconds and notes for every variant and baseline on one data set."""
    spec = DATASETS[dataset]
    if dataset == "digits":
        teacher, vae = digits_classifier(progress=False, device="cpu"), digits_vae(progress=False, device="cpu")
    else:
        teacher = patches_classifier(smoke=patches_smoke, progress=False, device="cpu")
        vae = patches_vae(smoke=patches_smoke, progress=False, device="cpu")
    images = spec.load_test().images[:n_images]
    region = box_mask(spec.size, *spec.region)
    planted = RegionOnlyClassifier(teacher, region).eval()
    rand_teacher = randomised(teacher)
    makers: dict[str, Callable[[torch.nn.Module], object]] = {
        f"RLD {k}": (lambda m, s=s: build_rld(m, vae, n, s)) for k, s in VARIANTS.items()}
    for name in BASELINE_NAMES:
        makers[name] = lambda m, name=name: make_explainer(name, m, **baseline_kwargs(name, n))
    scores, notes, seconds = {}, {}, {}
    started = time.perf_counter()
    for name, make in makers.items():
        with quiet_relabel():
            t_map, p_map, r_map = (make(m).attribute(images) for m in (teacher, planted, rand_teacher))
        s = score(teacher, planted, images, t_map, p_map, region, step)
        s["randomisation"] = rank_corr(t_map, r_map)
        scores[name] = s
        print(f"{dataset} {name}: {time.perf_counter() - started:.0f}s", flush=True)
    explainers = {name: make(teacher) for name, make in makers.items()}
    with quiet_relabel():
        for i in range(n_timed):
            for name, explainer in explainers.items():
                seconds.setdefault(name, []).append(timed(lambda e=explainer, i=i: e.attribute(images[i:i + 1]),
                                                          torch.device("cpu"))[1])
    models = ("full" if dataset == "digits" or not patches_smoke else "smoke") + " models"
    notes = {"images": len(images), "models": models, "region": spec.region_text, "step": step}
    return {"scores": scores, "seconds": {k: statistics.median(v) for k, v in seconds.items()}, "notes": notes}


def nan_pm(values: np.ndarray) -> str:
    """Mean ± std over the finite values and how many were constant maps (NaN)."""
    finite = values[np.isfinite(values)]
    text = f"{np.mean(finite):.3f} ± {np.std(finite):.3f}" if len(finite) else "n/a"
    return text + (f" ({len(values) - len(finite)} const.)" if len(finite) < len(values) else "")


def table(dataset: str, result: dict, n: int) -> list[str]:
    scores, seconds, notes = result["scores"], result["seconds"], result["notes"]
    lime_sec = seconds["lime"]
    lines = [f"## {dataset}: {notes['images']} held-out images, {notes['models']}, N = {n}", "",
             f"Planted region: {notes['region']}. Metric step: {notes['step']} pixel(s).", "",
             "| method | planted mass ↑ | deletion AUC, zeros ↓ | insertion AUC, blur ↑ | randomisation ρ ↓ | "
             "s / expl. (CPU) | × lime | mass vs lime: win rate, p | insertion vs lime: p | deletion vs lime: p |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, s in scores.items():
        vs = {m: paired(s[m], scores["lime"][m]) for m in ("planted_mass", "insertion", "deletion_zeros")}
        cmp = "" if name == "lime" else (
            f"{vs['planted_mass']['win_rate']:.2f}, {vs['planted_mass']['wilcoxon_p']:.2g} | "
            f"{vs['insertion']['wilcoxon_p']:.2g} | {vs['deletion_zeros']['wilcoxon_p']:.2g}")
        cmp = cmp or " | "
        lines.append(f"| {name} | {pm(s['planted_mass'])} | {pm(s['deletion_zeros'])} | {pm(s['insertion'])} | "
                     f"{nan_pm(s['randomisation'])} | {seconds[name]:.3f} | {seconds[name] / lime_sec:.2f} | {cmp} |")
    return lines + [""]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", type=int, default=30, help="held-out digits explained")
    parser.add_argument("--patches", type=int, default=20, help="held-out colour patches explained")
    parser.add_argument("--n-samples", type=int, default=500, help="sample budget of RLD, lime and Captum Lime")
    parser.add_argument("--patches-n-samples", type=int, default=None,
                        help="sample budget on patches (default: --n-samples)")
    parser.add_argument("--timing-images", type=int, default=3, help="single-image explanations timed per method")
    parser.add_argument("--patches-smoke", action=argparse.BooleanOptionalAction, default=True,
                        help="patches teacher/VAE at their smoke recipes (the full ones are not cached here)")
    parser.add_argument("--smoke", action="store_true", help="6 digits, 4 patches, N = 200, 1 timed image")
    parser.add_argument("--out", default="benchmarks/results/relabel_variants.md")
    args = parser.parse_args(argv)
    if args.smoke:
        args.digits, args.patches, args.n_samples, args.timing_images = 6, 4, 200, 1
    patches_n = args.patches_n_samples or args.n_samples
    started = time.perf_counter()
    results = {}
    with single_threaded():
        results["digits"] = evaluate("digits", args.digits, args.n_samples, args.timing_images, 1,
                                     args.patches_smoke)
        results["patches"] = evaluate("patches", args.patches, patches_n, args.timing_images, 8,
                                      args.patches_smoke)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# RLD sampling variants vs lime and Captum Lime (issue 12)", "",
             f"Generated by `benchmarks/relabel_variants.py{' --smoke' if args.smoke else ''}` on {stamp}, CPU, "
             f"one torch thread, torch {torch.__version__}; run time {(time.perf_counter() - started) / 60:.1f} min.",
             "",
             "Variants (all `residual=True` except `paper`; ridge student; sigma by the flip-band bisection on "
             "samples built the same way): `paper` = `RelabelDistillation.paper` (whole decodes, pixel student, "
             "soft_weight 0.5, ridge alpha 0.01); `mix 0.5` = each grid cell (lime's grid: 2x2 px on digits, 4x4 px "
             "on patches) of each sample kept from the image with probability 0.5, else decoded; `own` = a sample's "
             "decoded cells come from its own decode, `pool` = each decoded cell from a random decode of the pool "
             "(`region_source='pool'`); `pixels` / `regions` / `mask` = the student sees pixels, cell means or the "
             "kept-cell indicators (painted back onto pixels); `soft, alpha 1` = soft_weight 1, ridge_alpha 1.",
             "Planted mass: share of |map| in the box a `RegionOnlyClassifier` sees (uniform map: 0.25). Deletion "
             "(zeros) / insertion (blur) AUC on the teacher. Randomisation ρ: Spearman correlation of the |map| on "
             "the trained teacher vs on a fully re-initialised copy (lower = map depends more on the model). "
             "p: two-sided paired Wilcoxon vs lime over the images; win rate: share of images above lime.", ""]
    for dataset, result in results.items():
        lines += table(dataset, result, args.n_samples if dataset == "digits" else patches_n)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
