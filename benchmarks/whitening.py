"""Whitened vs plain (BatchNorm) face-forgery detector on the embedded forgery faces (held-out identities).

Writes ``benchmarks/results/whitening.md`` and ``.csv``: test ACC / AUC, AUC on a manipulation kind not seen in
training, mean |off-diagonal correlation| of the layer's channels, pointing game of channel maps and Grad-CAM
against the true masks, and ACC / AUC under JPEG, blur and noise. Both detectors are the cached full-setting recipes
(``workbench.whitening.whitening_detector``), trained on first use. Run: ``python benchmarks/whitening.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from workbench.data.faces import ForgerySet, load_forgery_faces
from workbench.train import training_throughput
from workbench.whitening import (
    build_detector,
    detector_config,
    evaluate_detector,
    gradcam_maps,
    layer_correlations,
    make_step,
    mean_abs_offdiagonal,
    pointing_game,
    pointing_per_channel,
    whitening_detector,
)

RESULTS = Path(__file__).resolve().parent / "results"
UNSEEN_KIND = "swap"
TRAIN_KINDS_UNSEEN = ("self_blend", "color", "warp")
MASK_THRESHOLD = 0.3


def jpeg(images: torch.Tensor, quality: int = 40) -> torch.Tensor:
    out = []
    for img in images[:, 0].numpy():
        ok, buf = cv2.imencode(".jpg", (img * 255).round().astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255)
    return torch.from_numpy(np.stack(out))[:, None]


def blur(images: torch.Tensor, sigma: float = 0.8) -> torch.Tensor:
    return torch.from_numpy(np.stack([cv2.GaussianBlur(i, (0, 0), sigma) for i in images[:, 0].numpy()]))[:, None]


def noise(images: torch.Tensor, sigma: float = 0.05) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (images + sigma * torch.randn(images.shape, generator=gen)).clamp(0, 1)


def _mean_std(row: dict, metric: str) -> str:
    mean, std = row.get(metric, float("nan")), row.get(f"{metric} std", float("nan"))
    if pd.isna(mean):
        return "-"
    return f"{mean:.3f}" if pd.isna(std) else f"{mean:.3f} ± {std:.3f}"


def markdown_table(frame: pd.DataFrame) -> list[str]:
    """A frame of strings as Markdown lines, without the optional tabulate package."""
    head = ["metric", *map(str, frame.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join([str(idx), *map(str, row)]) + " |"
              for idx, row in zip(frame.index, frame.values, strict=True)]
    return lines


def measure(model, whiten: bool, data: dict[str, ForgerySet]) -> dict[str, float]:
    """Every metric of one trained detector on the test split (the best channel is chosen on val)."""
    test, fakes_val, fakes_test = data["test"], data["fakes_val"], data["fakes_test"]
    row: dict[str, float] = {f"test_{k}": v for k, v in evaluate_detector(model, test).items()}
    corr = layer_correlations(model, test.images)
    row["offdiag_corr_layer_input"] = mean_abs_offdiagonal(corr["before"])
    row["offdiag_corr_layer_output"] = mean_abs_offdiagonal(corr["after"])
    best = int(pointing_per_channel(model, fakes_val.images, fakes_val.masks, MASK_THRESHOLD).argmax())
    test_pointing = pointing_per_channel(model, fakes_test.images, fakes_test.masks, MASK_THRESHOLD)
    row["pointing_best_channel (chosen on val)"] = float(test_pointing[best])
    row["pointing_concept_channel"] = float(test_pointing[model.concepts.index("manipulated")]) if whiten \
        else float("nan")
    row["pointing_gradcam"] = pointing_game(gradcam_maps(model, fakes_test.images, target=1), fakes_test.masks,
                                            MASK_THRESHOLD)
    for corruption, fn in (("jpeg40", jpeg), ("blur0.8", blur), ("noise0.05", noise)):
        corrupted = test.subset(np.arange(len(test)))
        corrupted.images = fn(test.images)
        res = evaluate_detector(model, corrupted)
        row[f"acc_{corruption}"], row[f"auc_{corruption}"] = res["acc"], res["auc"]
    return row


def gpu_check(device: str = "cuda", max_steps: int = 50) -> dict[str, float]:
    """Train the full whitened recipe for ``max_steps`` steps on ``device``: first/last loss and images per second
    (a row of ``benchmarks/gpu_check.py``)."""
    config = detector_config(True, smoke=False, epochs=10_000)
    train = load_forgery_faces("train", config.size, config.n_per_identity)
    return training_throughput(build_detector(config), train.loader(config.batch_size),
                               make_step(config.align_every, train), max_steps=max_steps, lr=config.lr, device=device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="smoke-setting models (seconds; for a quick check)")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per detector (mean and std reported)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a shared 2-core machine: one thread is faster than two fighting threads
    start = time.perf_counter()
    val, test = load_forgery_faces("val"), load_forgery_faces("test")
    data = {"test": test, "fakes_val": val.subset(val.labels == 1), "fakes_test": test.subset(test.labels == 1)}
    unseen_test = test.with_kinds((UNSEEN_KIND,))
    chance = float((data["fakes_test"].masks > MASK_THRESHOLD).float().mean())
    rows = []
    for name, whiten in (("whitened", True), ("plain (BatchNorm)", False)):
        per_seed = []
        for seed in range(args.seeds):
            model = whitening_detector(whiten, smoke=args.smoke, progress=False, seed=seed).eval()
            row = measure(model, whiten, data)
            if seed == 0:
                unseen = whitening_detector(whiten, smoke=args.smoke, progress=False, seed=seed,
                                            train_kinds=TRAIN_KINDS_UNSEEN).eval()
                row[f"auc_unseen_{UNSEEN_KIND} (seed 0)"] = evaluate_detector(unseen, unseen_test)["auc"]
            per_seed.append(row)
            print(name, seed, row, flush=True)
        frame = pd.DataFrame(per_seed)
        rows.append({"detector": name, **frame.mean().to_dict(), **{f"{k} std": v for k, v in frame.std().items()}})
    table = pd.DataFrame(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "_smoke" if args.smoke else ""
    table.to_csv(RESULTS / f"whitening{suffix}.csv", index=False)
    white, plain = rows
    best_plain = "pointing_best_channel (chosen on val)"
    targets = [
        ("whitened layer mean abs off-diagonal correlation < 0.05", white["offdiag_corr_layer_output"] < 0.05,
         f"{white['offdiag_corr_layer_output']:.4f} (plain {plain['offdiag_corr_layer_output']:.3f})"),
        ("whitened AUC within 2 points of plain (held-out identities)",
         white["test_auc"] >= plain["test_auc"] - 0.02, f"{white['test_auc']:.3f} vs {plain['test_auc']:.3f}"),
        ("whitened pointing game (concept channel) > plain (best channel)",
         white["pointing_concept_channel"] > plain[best_plain],
         f"{white['pointing_concept_channel']:.3f} vs {plain[best_plain]:.3f}"),
        ("whitened pointing game (concept channel) > plain Grad-CAM",
         white["pointing_concept_channel"] > plain["pointing_gradcam"],
         f"{white['pointing_concept_channel']:.3f} vs {plain['pointing_gradcam']:.3f}"),
    ]
    metrics = [c for c in table.columns if c != "detector" and not c.endswith(" std")]
    display = pd.DataFrame({r["detector"]: [_mean_std(r, m) for m in metrics] for r in rows}, index=metrics)
    lines = [
        "# Feature whitening: whitened vs plain detector",
        "",
        f"Embedded forgery faces (32x32 grey, `workbench.data.faces`), test split = held-out pseudo-identities "
        f"({len(test)} images, {len(data['fakes_test'])} fakes). Setting: {'smoke' if args.smoke else 'full'}. "
        f"Unseen kind: trained on {', '.join(TRAIN_KINDS_UNSEEN)}, tested on real + {UNSEEN_KIND}. Pointing game: "
        f"the map's peak inside the true mask (soft mask > {MASK_THRESHOLD}); chance = mean mask area "
        f"{chance:.3f}. Best channel = the layer channel with the best pointing game on the val split. Correlation: "
        "eval mode, over all test positions. Corruptions: JPEG quality 40, Gaussian blur sigma 0.8 px, Gaussian "
        f"noise sigma 0.05. Mean ± std over {args.seeds} training seeds (same data); the unseen-kind models: seed 0 "
        "only. Small test set (14 pseudo-identities): differences of a few points are noise. Targets use the means.",
        "",
        *markdown_table(display),
        "",
        "## Targets",
        "",
        "| target | met | value |",
        "| --- | --- | --- |",
        *[f"| {t} | {'yes' if ok else 'NO'} | {v} |" for t, ok, v in targets],
        "",
        f"Total benchmark time {time.perf_counter() - start:.0f} s on this machine's CPU, one thread (includes "
        "training on a cold cache).",
    ]
    (RESULTS / f"whitening{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
