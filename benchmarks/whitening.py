"""Whitened vs plain (BatchNorm) face-forgery detector on the embedded forgery faces (held-out identities).

Writes ``benchmarks/results/whitening.md`` and ``.csv``: test ACC / AUC, AUC on a manipulation kind not seen in
training, mean |off-diagonal correlation| of the layer's channels, pointing game of channel maps and Grad-CAM
against the true masks, and ACC / AUC under JPEG, blur and noise. Both detectors are the cached full-setting recipes
(``workbench.whitening.whitening_detector``), trained on first use. Run: ``python benchmarks/whitening.py``.

``--sbi``: both detectors trained on self-blended colour images at 64 px (``detector_config(data="sbi")``) of
``--faces`` (default ``../shared/realdata/faces_dev`` when present, else the embedded colour faces), per seed, and
measured on held-out files: AUC clean / JPEG 40 / blur / noise, the unseen kind (Poisson-blended face swaps), the
layer's decorrelation, pointing game of the concept channel and of Grad-CAM -> ``results/whitening_sbi.md``.
``gpu_benchmark(device, out_dir, budget_s)``: the 128 px SBI training cell of both detectors on a GPU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from workbench.data.corruptions import blur, jpeg, noise
from workbench.data.face_sbi import MASKS, jpeg_colour, load_sbi_faces
from workbench.data.face_sbi import UNSEEN_KIND as SBI_UNSEEN_KIND
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
    train_detector,
    whitening_detector,
)

RESULTS = Path(__file__).resolve().parent / "results"
UNSEEN_KIND = "swap"
TRAIN_KINDS_UNSEEN = ("self_blend", "color", "warp")
MASK_THRESHOLD = 0.3


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


# ------------------------------------------------------------- self-blended images at real resolution (SBI)
DEV_FACES = RESULTS.parents[2] / "shared" / "realdata" / "faces_dev"
CONDITIONS = ("clean", "jpeg40", "blur0.8", "noise0.05")
#: Forgeries per held-out face in the SBI benchmark (the held-out split has only about 12 faces of faces_dev).
TEST_PER_FACE = 8


def sbi_corrupt(data: ForgerySet, condition: str, seed: int = 0) -> ForgerySet:
    """A copy of ``data`` with every image JPEG-compressed (quality 40), blurred (0.8 px at 64 px) or noised."""
    if condition == "clean":
        return data
    rng = np.random.default_rng(seed)
    scale = data.images.shape[-1] / 64

    def one(img: np.ndarray) -> np.ndarray:
        if condition == "jpeg40":
            return jpeg_colour(img, 40)
        if condition == "blur0.8":
            return cv2.GaussianBlur(img, (0, 0), 0.8 * scale)
        return np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1).astype(np.float32)

    out = data.subset(np.arange(len(data)))
    hwc = data.images.permute(0, 2, 3, 1).numpy()
    out.images = torch.from_numpy(np.stack([one(i) for i in hwc])).permute(0, 3, 1, 2).contiguous()
    return out


def peak_masks(masks: torch.Tensor) -> torch.Tensor:
    """Masks normalised per image (a blend ratio of 0.25 still marks its region), for the pointing game."""
    return masks / masks.flatten(1).amax(1).clamp(min=1e-6)[:, None, None, None]


def measure_sbi(model, test: ForgerySet, unseen: ForgerySet) -> dict[str, float]:
    """Every metric of one trained detector on the held-out faces."""
    row = {f"auc_{c}": evaluate_detector(model, sbi_corrupt(test, c))["auc"] for c in CONDITIONS}
    row[f"auc_unseen_{SBI_UNSEEN_KIND}"] = evaluate_detector(model, unseen)["auc"]
    row["offdiag_corr_layer_output"] = mean_abs_offdiagonal(layer_correlations(model, test.images)["after"])
    fakes = test.subset(test.labels == 1)
    masks = peak_masks(fakes.masks)
    if model.whiten:
        channel = model.concepts.index("manipulated")
        row["pointing_concept_channel"] = float(pointing_per_channel(model, fakes.images, masks, 0.5)[channel])
    row["pointing_gradcam"] = pointing_game(gradcam_maps(model, fakes.images, target=1), masks, 0.5)
    return row


def run_sbi(seeds: list[int], faces: str, smoke: bool, test_per_face: int = TEST_PER_FACE) -> pd.DataFrame:
    """Both detectors per seed (the seed also draws the file split), measured on ``test_per_face`` forgeries (and
    as many copies of the real photo) per held-out face."""
    rows = []
    for seed in seeds:
        config0 = detector_config(True, smoke, data="sbi", face_source=faces, seed=seed)
        test = load_sbi_faces("test", config0.size, test_per_face, faces or None, seed)
        unseen = load_sbi_faces("test", config0.size, test_per_face, faces or None, seed, kind=SBI_UNSEEN_KIND)
        for name, whiten in (("whitened", True), ("plain (BatchNorm)", False)):
            config = detector_config(whiten, smoke, data="sbi", face_source=faces, seed=seed)
            model = build_detector(config)
            start = time.perf_counter()
            train_detector(model, config, "cpu", progress=False)
            row = {"detector": name, "seed": seed, "train_s": time.perf_counter() - start,
                   **measure_sbi(model.eval(), test, unseen)}
            rows.append(row)
            print(row, flush=True)
            RESULTS.mkdir(parents=True, exist_ok=True)  # rows so far, so that a run cut short leaves them
            pd.DataFrame(rows).to_csv(RESULTS / f"whitening_sbi{'_smoke' if smoke else ''}.csv", index=False)
    return pd.DataFrame(rows)


def write_sbi(df: pd.DataFrame, faces: str, seconds: float, smoke: bool,
              test_per_face: int = TEST_PER_FACE) -> str:
    metrics = [c for c in df.columns if c not in ("detector", "seed")]
    summary = df.groupby("detector", sort=False)[metrics].agg(["mean", "std"])
    white, plain = summary.loc["whitened"], summary.loc["plain (BatchNorm)"]
    config = detector_config(True, smoke, data="sbi", face_source=faces)
    lines = [f"# Feature whitening on self-blended images ({config.size} px colour, seeds "
             f"{sorted(df.seed.unique().tolist())}, CPU, {seconds:.0f} s)", "",
             f"Faces: {faces or 'embedded colour faces'}; file-disjoint test split (drawn by the seed); "
             f"{config.n_per_identity} real + {config.n_per_identity} self-blended images per training face"
             f"{' drawn afresh every epoch' if config.fresh_draws else ''}, "
             f"{config.epochs} epochs, width {config.width}, colour (p = {config.colour_p}) / JPEG / resize / blur "
             f"(p = {config.blur_p}) / noise augmentation in training; calibration on the training images "
             f"{'of every draw ' if config.fresh_draws else ''}with{'' if config.calibrate_clean else 'out'} "
             "their un-augmented copies; concept rotation re-aligned "
             f"after calibration ({config.realign_steps} updates). Test: {test_per_face} forgeries (and as many "
             "copies of the real photo) per held-out face. "
             f"Unseen kind: {SBI_UNSEEN_KIND} (Poisson-blended face swap, never in training). Decorrelation: mean "
             "|off-diagonal correlation| of the layer's output channels, eval mode (calibrated running whitening), "
             "over all positions of the test images. Pointing game: the map's peak inside the true mask "
             "(mask / its max > 0.5). Mean +- std over seeds.", "",
             "| metric | whitened | plain (BatchNorm) |", "| --- | --- | --- |"]
    for m in metrics:
        cells = [f"{s[(m, 'mean')]:.3f} +- {0 if np.isnan(s[(m, 'std')]) else s[(m, 'std')]:.3f}"
                 if not np.isnan(s[(m, "mean")]) else "-" for s in (white, plain)]
        lines.append(f"| {m} | {' | '.join(cells)} |")
    mean = lambda s, m: float(s[(m, "mean")])  # noqa: E731
    # the "both detectors" are the whitening detector and the STDT (stdt_sbi.md); the plain one is the
    # baseline without the method, reported beside it
    targets = [(f"AUC {c} >= 0.75 (whitened detector; plain baseline beside it)", mean(white, f"auc_{c}") >= 0.75,
                f"{mean(white, f'auc_{c}'):.3f} / {mean(plain, f'auc_{c}'):.3f}") for c in CONDITIONS]
    targets += [
        ("whitened clean AUC within 2 points of plain", mean(white, "auc_clean") >= mean(plain, "auc_clean") - 0.02,
         f"{mean(white, 'auc_clean'):.3f} vs {mean(plain, 'auc_clean'):.3f}"),
        ("decorrelation < 0.05", mean(white, "offdiag_corr_layer_output") < 0.05,
         f"{mean(white, 'offdiag_corr_layer_output'):.4f}"),
        ("concept channel pointing >= plain Grad-CAM",
         mean(white, "pointing_concept_channel") >= mean(plain, "pointing_gradcam"),
         f"{mean(white, 'pointing_concept_channel'):.3f} vs {mean(plain, 'pointing_gradcam'):.3f}")]
    lines += ["", "| target | met | value (whitened / plain) |", "| --- | --- | --- |",
              *[f"| {t} | {'yes' if ok else 'NO'} | {v} |" for t, ok, v in targets]]
    return "\n".join(lines + ["", *paired_lines(df)]) + "\n"


def paired_lines(df: pd.DataFrame) -> list[str]:
    """Whitened minus plain per seed (same split, same test images): the spread of a paired difference is free of
    the split-to-split spread that dominates the per-detector standard deviations."""
    white = df[df.detector == "whitened"].set_index("seed")
    plain = df[df.detector == "plain (BatchNorm)"].set_index("seed")
    pairs = {f"AUC {c}": white[f"auc_{c}"] - plain[f"auc_{c}"] for c in CONDITIONS}
    pairs["concept channel pointing - plain Grad-CAM pointing"] = \
        white["pointing_concept_channel"] - plain["pointing_gradcam"]
    lines = ["| paired difference (whitened - plain, per seed) | mean +- std | seeds where >= 0 |",
             "| --- | --- | --- |"]
    for name, diff in pairs.items():
        diff = diff.dropna()
        lines.append(f"| {name} | {diff.mean():+.3f} +- {0 if len(diff) < 2 else diff.std():.3f} | "
                     f"{int((diff >= 0).sum())} of {len(diff)} |")
    return lines


def gpu_benchmark(device: torch.device, out_dir: Path, budget_s: float, size: int = 128,
                  max_steps: int = 300) -> list[dict]:
    """The GPU training cell of both SBI detectors at ``size`` px on the embedded colour faces (no ../shared on a GPU
    box): ``max_steps`` steps each (the whitened one with its concept alignment), first / last loss, images per
    second; stops starting a detector once ``budget_s`` is spent. Writes ``whitening_sbi_gpu.csv`` / ``.md`` into
    ``out_dir``; imports only torch / numpy / opencv / pandas / scikit-learn."""
    from workbench.train import budgeted_throughput
    from workbench.whitening import make_step

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def cell(whiten: bool) -> tuple:
        config = detector_config(whiten, False, data="sbi", size=size, batch_size=64)
        train = load_sbi_faces("train", size, config.n_per_identity, None, 0, blur_p=config.blur_p)
        return (build_detector(config), train.loader(config.batch_size),
                make_step(config.align_every, train if whiten else None), config.lr)

    rows = budgeted_throughput([(f"whitening SBI {'whitened' if w else 'plain'} {size}px", lambda w=w: cell(w))
                                for w in (True, False)], max_steps=max_steps, budget_s=budget_s, device=device)
    frame = pd.DataFrame(rows)
    frame.to_csv(out_dir / "whitening_sbi_gpu.csv", index=False)
    (out_dir / "whitening_sbi_gpu.md").write_text(frame.to_string(index=False) + "\n")
    return rows


# ------------------------------------------------- landmark-hull vs landmark-free ("box") blend masks (issue 24)
#: The shorter whitened recipe both masks train with in ``--mask`` (6 trainings must fit ~35 min on one shared
#: CPU thread; the full recipe's 20 epochs and 20 calibration draws take ~400 s alone, 3x that under load).
MASK_RECIPE = {"epochs": 8, "calibrate_max_images": 1152}  # 1152 // 576 images per draw = 2 calibration draws
PERTURBED = CONDITIONS[1:]
DEEPFAKE_DEV = DEV_FACES.parent / "deepfake_dev"
VIDEO_FRAMES = 32


def parse_masks(text: str) -> tuple[str, ...]:
    """``"box,hull"`` -> ("box", "hull"): the blend masks to compare, each one of ``face_sbi.MASKS``, no repeats."""
    masks = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in masks if m not in MASKS]
    if not masks or bad or len(set(masks)) != len(masks):
        raise ValueError(f"--mask takes distinct masks from {MASKS} separated by commas (e.g. box,hull); got {text!r}")
    return masks


def mask_config(mask: str, faces: str, seed: int, smoke: bool):
    """The whitened SBI recipe of one blend mask: the same faces, seed and (``MASK_RECIPE``) recipe for every mask."""
    changes = {} if smoke else MASK_RECIPE
    return detector_config(True, smoke, data="sbi", face_source=faces, seed=seed, mask=mask, **changes)


def load_real_fakes(folder: Path, size: int) -> dict:
    """``deepfake_dev``: its 13 + 13 real / fake crops as ``size`` px colour faces framed like the training faces
    (Haar on the crop padded by a quarter of its side; dlib's aligned crop where Haar misses; the whole tight crop
    where both miss), labels, the finders;
    and ``VIDEO_FRAMES`` Haar-cropped frames of each video of ``videos/{real,fake}``."""
    from workbench.data.clips import VIDEO_SUFFIXES, read_video
    from workbench.data.face_front import crop_face, find_face
    from workbench.data.frame_folders import FRAME_SUFFIXES, read_rgb

    crops, labels, finders = [], [], []
    for label, kind in enumerate(("real", "fake")):
        for path in sorted(p for p in (folder / "crops" / kind).iterdir() if p.suffix.lower() in FRAME_SUFFIXES):
            tight = read_rgb(path)
            pad = max(tight.shape[:2]) // 4
            rgb = cv2.copyMakeBorder(tight, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            try:
                face = find_face(rgb, "haar")
            except ValueError:
                try:
                    face = find_face(rgb, "dlib")
                except ValueError:  # neither finds it: the tight crop is the face
                    face = None
            crops.append(crop_face(rgb, face, size, 3) if face else
                         cv2.resize(tight, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255)
            labels.append(label)
            finders.append(face.finder if face else "whole crop")
    videos = {kind: [torch.from_numpy(read_video(p, VIDEO_FRAMES, size, channels=3))
                     for p in sorted((folder / "videos" / kind).iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES]
              for kind in ("real", "fake")}
    return {"crops": torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous(),
            "labels": torch.as_tensor(labels), "finders": finders, "videos": videos}


def real_fake_scores(model, real: dict) -> dict[str, float]:
    """The smoke check on real fakes: frame AUC of the crops, mean P(fake) of each real / fake video's frames."""
    from workbench.train import binary_auc, predict_proba

    row = {"dev_crops_auc": binary_auc(real["labels"], predict_proba(model, real["crops"]))}
    for kind, clips in real["videos"].items():
        row[f"dev_video_{kind}_pfake"] = float(np.mean([float(predict_proba(model, c).mean()) for c in clips]))
    if {"real", "fake"} <= set(real["videos"]):
        row["dev_video_fake_minus_real_pfake"] = row["dev_video_fake_pfake"] - row["dev_video_real_pfake"]
    return row


def measure_masks(model, tests: dict[str, ForgerySet], unseen: ForgerySet, real: dict | None) -> dict[str, float]:
    """AUC of one detector on the held-out faces blended with every mask (clean, each perturbation, their mean),
    on the unseen kind, the layer's decorrelation, and (``real``) the smoke check on real fakes."""
    row: dict[str, float] = {}
    for mask, test in tests.items():
        for c in CONDITIONS:
            row[f"auc_{mask}_{c}"] = evaluate_detector(model, sbi_corrupt(test, c))["auc"]
        row[f"auc_{mask}_perturbed"] = float(np.mean([row[f"auc_{mask}_{c}"] for c in PERTURBED]))
    row[f"auc_unseen_{SBI_UNSEEN_KIND}"] = evaluate_detector(model, unseen)["auc"]
    row["offdiag_corr_layer_output"] = mean_abs_offdiagonal(layer_correlations(model, unseen.images)["after"])
    return {**row, **(real_fake_scores(model, real) if real is not None else {})}


def run_sbi_masks(masks: tuple[str, ...], seeds: list[int], faces: str, smoke: bool, real: dict | None,
                  out: Path, test_per_face: int = TEST_PER_FACE) -> pd.DataFrame:
    """The whitened detector per seed and mask (masks of one seed side by side, so that a run cut short leaves
    pairs), every model measured on the same held-out faces blended with every mask; rows so far to ``out``."""
    rows = []
    for seed in seeds:
        size = mask_config(masks[0], faces, seed, smoke).size
        tests = {m: load_sbi_faces("test", size, test_per_face, faces or None, seed, mask=m) for m in masks}
        unseen = load_sbi_faces("test", size, test_per_face, faces or None, seed, kind=SBI_UNSEEN_KIND)
        for mask in masks:
            config = mask_config(mask, faces, seed, smoke)
            model = build_detector(config)
            start = time.perf_counter()
            train_detector(model, config, "cpu", progress=False)
            rows.append({"mask": mask, "seed": seed, "train_s": time.perf_counter() - start,
                         **measure_masks(model.eval(), tests, unseen, real)})
            print(rows[-1], flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(out, index=False)
    return pd.DataFrame(rows)


def mask_metrics(df: pd.DataFrame) -> list[str]:
    """The table's metric rows: per test mask clean / perturbations / perturbed mean, then the rest."""
    return [c for c in df.columns if c not in ("mask", "seed")]


def write_sbi_masks(df: pd.DataFrame, faces: str, seconds: float, smoke: bool, real: dict | None = None,
                    test_per_face: int = TEST_PER_FACE) -> str:
    """The Markdown of ``--mask``: mean +- std per mask, the paired per-seed differences of the last mask minus
    the first (hull - box), the real-fake smoke check, and what the numbers say."""
    masks = tuple(dict.fromkeys(df["mask"]))
    config = mask_config(masks[0], faces, 0, smoke)
    summary = df.groupby("mask", sort=False)[mask_metrics(df)].agg(["mean", "std"])
    lines = [f"# Whitened SBI detector: {' vs '.join(masks)} blend masks ({config.size} px colour, seeds "
             f"{sorted(df.seed.unique().tolist())}, CPU one thread, {seconds:.0f} s)", "",
             f"**Development numbers** (faces: {faces or 'embedded colour faces'}; nothing here is a test set). "
             "Same faces (Haar crops; the hull gets dlib's 68 landmarks predicted on each crop), same file split, "
             f"same seeds and the same recipe for every mask: the whitened detector of `SbiWhiteningRecipe.full()` "
             f"{'(smoke preset) ' if smoke else ''}shortened to {config.epochs} epochs of fresh draws and "
             f"{config.calibrate_max_images} calibration images ({config.n_per_identity} real + "
             f"{config.n_per_identity} self-blended images per training face and draw, width {config.width}); "
             "the full recipe has 20 epochs and 20 calibration draws, too long for 3 seeds x 2 masks on this "
             f"machine. Test: {test_per_face} forgeries (and as many copies of the real photo) per held-out face, "
             "the same held-out faces blended with each mask (`auc_<test mask>_<condition>`; perturbed = mean of "
             f"JPEG 40, blur 0.8 px, noise 0.05). Unseen kind: {SBI_UNSEEN_KIND}. Mean +- std over seeds.", "",
             "| metric | " + " | ".join(f"trained on {m}" for m in masks) + " |", "|" + " --- |" * (len(masks) + 1)]
    for metric in mask_metrics(df):
        cells = [f"{summary.loc[m, (metric, 'mean')]:.3f} +- {np.nan_to_num(summary.loc[m, (metric, 'std')]):.3f}"
                 for m in masks]
        lines.append(f"| {metric} | {' | '.join(cells)} |")
    if len(masks) >= 2:
        lines += ["", *mask_paired_lines(df, masks[0], masks[-1])]
    if real is not None:
        finders = pd.Series(real["finders"]).value_counts().to_dict()
        lines += ["", f"SMOKE check, not a result: `deepfake_dev` ({int((real['labels'] == 0).sum())} real + "
                  f"{int((real['labels'] == 1).sum())} fake crops, DFDC / MesoNet, identity-confounded; faces found "
                  f"by {finders}; one FaceForensics++ real / fake video pair, {VIDEO_FRAMES} frames each). Far too "
                  "few to tune on: it only shows whether a detector is inverted (crop AUC < 0.5, fake video below "
                  "the real one) on real fakes. Rows `dev_*` above."]
    return "\n".join(lines) + "\n"


def mask_paired_lines(df: pd.DataFrame, first: str, last: str) -> list[str]:
    """``last`` minus ``first`` per seed (the same split and test images), and the verdict the issue asks for:
    whether ``last`` >= ``first`` on clean and perturbed AUC on every test mask, paired over the seeds."""
    a, b = df[df["mask"] == first].set_index("seed"), df[df["mask"] == last].set_index("seed")
    seeds = a.index.intersection(b.index)
    metrics = [c for c in mask_metrics(df) if c.startswith(("auc_", "dev_")) and not c.endswith(PERTURBED)]
    lines = [f"| paired difference ({last} - {first}, per seed) | mean +- std | seeds where >= 0 |",
             "| --- | --- | --- |"]
    verdict = []
    for metric in metrics:
        diff = (b.loc[seeds, metric] - a.loc[seeds, metric]).dropna()
        lines.append(f"| {metric} | {diff.mean():+.3f} +- {0 if len(diff) < 2 else diff.std():.3f} | "
                     f"{int((diff >= 0).sum())} of {len(diff)} |")
        if metric.endswith(("_clean", "_perturbed")) and not metric.startswith("dev_"):
            verdict.append(diff.mean() >= 0)
    holds = bool(verdict) and all(verdict)
    lines += ["", f"{last} >= {first} on clean and perturbed AUC (mean paired difference over {len(seeds)} seeds, "
              f"every test mask): **{'yes' if holds else 'no'}**."]
    return lines


def main_sbi_masks(masks: tuple[str, ...], seeds: int, faces: str, smoke: bool) -> None:
    """``--sbi --mask``: writes ``results/whitening_sbi_masks.md`` and ``.csv`` (the real-fake smoke check when
    ``../shared/realdata/deepfake_dev`` is present)."""
    start = time.perf_counter()
    size = mask_config(masks[0], faces, 0, smoke).size
    real = load_real_fakes(DEEPFAKE_DEV, size) if DEEPFAKE_DEV.is_dir() else None
    suffix = "_smoke" if smoke else ""
    out = RESULTS / f"whitening_sbi_masks{suffix}.csv"
    df = run_sbi_masks(masks, list(range(seeds)), faces, smoke, real, out)
    text = write_sbi_masks(df, faces, time.perf_counter() - start, smoke, real)
    (RESULTS / f"whitening_sbi_masks{suffix}.md").write_text(text)
    print(text)


def main_sbi(seeds: int, faces: str, smoke: bool) -> None:
    """The SBI benchmark: writes ``results/whitening_sbi.md`` and ``.csv``."""
    start = time.perf_counter()
    df = run_sbi(list(range(seeds)), faces, smoke)
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "_smoke" if smoke else ""
    df.to_csv(RESULTS / f"whitening_sbi{suffix}.csv", index=False)
    text = write_sbi(df, faces, time.perf_counter() - start, smoke)
    (RESULTS / f"whitening_sbi{suffix}.md").write_text(text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="smoke-setting models (seconds; for a quick check)")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per detector (mean and std reported)")
    parser.add_argument("--sbi", action="store_true", help="self-blended colour images at 64 px instead "
                        "(writes whitening_sbi.md)")
    parser.add_argument("--faces", default=str(DEV_FACES) if DEV_FACES.is_dir() else "",
                        help="with --sbi: a folder of real face photos ('' = the embedded colour faces)")
    parser.add_argument("--mask", default="", help="with --sbi: compare the whitened detector trained with these "
                        "blend masks, e.g. box,hull (writes whitening_sbi_masks.md; MASK_RECIPE for every mask)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a shared 2-core machine: one thread is faster than two fighting threads
    if args.mask:
        if not args.sbi:
            parser.error("--mask compares SBI blend masks: add --sbi")
        try:
            masks = parse_masks(args.mask)
        except ValueError as err:
            parser.error(str(err))
        main_sbi_masks(masks, args.seeds, args.faces, args.smoke)
        return
    if args.sbi:
        main_sbi(args.seeds, args.faces, args.smoke)
        return
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
