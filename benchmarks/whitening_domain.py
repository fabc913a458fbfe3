"""Issue 24 item 5: are the shipped SBI colour detectors inverted on real fakes because of their input domain?

The shipped SBI detectors (``whitening_detector(..., data="sbi")``) train on the embedded colour faces
(``workbench.data.face_sbi.embedded_colour_faces``): grey LFW-subset faces times a skin tint drawn per face from
``EMBEDDED_TINT_RANGES``, i.e. tinted grey, not colour photographs. A real photo's colour differs, and the detector
may key on a colour cue real face swaps do not share. This script scores both shipped detectors (whitened, plain)
on ``../shared/realdata/deepfake_dev`` two ways:

* ``as given``: the photo's own colour;
* ``tinted grey``: each input mapped to the training domain by ``workbench.whitening.tinted_grey`` (the SBI
  detectors' reading step): luminance (OpenCV's RGB -> grey, the project's grey path) times the mean tint
  ``EMBEDDED_MEAN_TINT`` = (1, 0.84, 0.71). The tint is the training recipe's mean, not tuned on deepfake_dev.

Frame AUC over the 13 + 13 crops (and the frames of the FaceForensics++ pair); video AUC of the mean P(fake) per
video where a video id exists (DFDC crops share their video's id, the prefix of the file name; the FF++ pair is
two videos; the MesoNet crops have none). Beside them the layer's mean |off-diagonal| correlation on the real faces
of ``faces_dev`` both ways and on the detector's own held-out self-blends (embedded faces).

Development check on deepfake_dev: far too few to decide on, never a README result. Writes
``results/whitening_domain.md`` / ``.csv``. Run: ``python benchmarks/whitening_domain.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.whitening import DEEPFAKE_DEV, DEV_FACES, RESULTS, VIDEO_FRAMES, load_real_fakes
from workbench.data.face_sbi import EMBEDDED_MEAN_TINT, load_face_folder, load_sbi_faces
from workbench.train import binary_auc, predict_proba
from workbench.whitening import LUMA, layer_correlations, mean_abs_offdiagonal, tinted_grey, whitening_detector

DOMAINS = ("as given", "tinted grey")


def grey_32(images: torch.Tensor) -> torch.Tensor:
    """The page's default photo path: the face in grey (OpenCV's weights) at 32 px (area resize)."""
    weights = torch.tensor(LUMA, dtype=images.dtype)[None, :, None, None]
    return torch.nn.functional.interpolate((images * weights).sum(1, keepdim=True), size=32, mode="area")


def to_domain(images: torch.Tensor, domain: str) -> torch.Tensor:
    if domain == "grey 32 px":
        return grey_32(images)
    return images if domain == "as given" else tinted_grey(images)


def video_ids(folder: Path) -> list[str | None]:
    """Per crop of ``load_real_fakes`` (same order): its video id (DFDC: the name's prefix), None for MesoNet."""
    from workbench.data.frame_folders import FRAME_SUFFIXES

    ids = []
    for kind in ("real", "fake"):
        for path in sorted(p for p in (folder / "crops" / kind).iterdir() if p.suffix.lower() in FRAME_SUFFIXES):
            ids.append(None if path.stem.startswith("mesonet") else f"dfdc_{path.stem.split('-')[0]}")
    return ids


def score(model, real: dict, ids: list[str | None], domain: str) -> dict[str, float]:
    """Frame AUC (crops; crops + FF++ frames) and video AUC (mean P(fake) per video id), with the counts."""
    crops_p = predict_proba(model, to_domain(real["crops"], domain)).numpy()
    labels = real["labels"].numpy()
    frame_p, frame_y = [crops_p], [labels]
    videos = {}  # id -> (label, mean P(fake))
    for vid in sorted({i for i in ids if i is not None}):
        pick = np.array([i == vid for i in ids])
        videos[vid] = (int(labels[pick][0]), float(crops_p[pick].mean()))
    for label, kind in enumerate(("real", "fake")):
        for k, clip in enumerate(real["videos"].get(kind, [])):
            p = predict_proba(model, to_domain(clip, domain)).numpy()
            frame_p.append(p)
            frame_y.append(np.full(len(p), label))
            videos[f"ffpp_{kind}_{k}"] = (label, float(p.mean()))
    ffpp = {kind: [v[1] for k, v in videos.items() if k.startswith(f"ffpp_{kind}")] for kind in ("real", "fake")}
    all_p, all_y = np.concatenate(frame_p), np.concatenate(frame_y)
    vy = np.array([v[0] for v in videos.values()])
    vp = np.array([v[1] for v in videos.values()])
    return {"crop_auc": binary_auc(torch.as_tensor(labels), torch.as_tensor(crops_p)),
            "crops": f"{int((labels == 0).sum())}+{int((labels == 1).sum())}",
            "frame_auc": binary_auc(torch.as_tensor(all_y), torch.as_tensor(all_p)),
            "frames": f"{int((all_y == 0).sum())}+{int((all_y == 1).sum())}",
            "video_auc": binary_auc(torch.as_tensor(vy), torch.as_tensor(vp)),
            "videos": f"{int((vy == 0).sum())}+{int((vy == 1).sum())}",
            "ffpp_fake_minus_real_pfake": float(np.mean(ffpp["fake"]) - np.mean(ffpp["real"]))
            if ffpp["real"] and ffpp["fake"] else float("nan"),
            "mean_pfake_real": float(all_p[all_y == 0].mean()), "mean_pfake_fake": float(all_p[all_y == 1].mean())}


def offdiag(model, images: torch.Tensor) -> float:
    return mean_abs_offdiagonal(layer_correlations(model, images)["after"])


def run(smoke: bool, deepfake_dev: Path = DEEPFAKE_DEV, faces_dev: Path = DEV_FACES) -> pd.DataFrame:
    size = 64
    real = load_real_fakes(deepfake_dev, size)
    ids = video_ids(deepfake_dev)
    own = load_sbi_faces("test", size, 8).images
    dev_faces = torch.from_numpy(load_face_folder(faces_dev, size, skip_no_face=True).faces).permute(0, 3, 1, 2)
    rows = []
    for name, whiten in (("whitened", True), ("plain (BatchNorm)", False)):
        model = whitening_detector(whiten, smoke=smoke, data="sbi", progress=False).eval()
        own_corr = offdiag(model, own)
        for domain in DOMAINS:
            rows.append({"detector": name, "input": domain, **score(model, real, ids, domain),
                         f"offdiag_faces_dev ({len(dev_faces)})": offdiag(model, to_domain(dev_faces, domain)),
                         f"offdiag_own_selfblends ({len(own)})": own_corr})
            print(rows[-1], flush=True)
    for name, whiten in (("grey 32 px whitened", True), ("grey 32 px plain (BatchNorm)", False)):
        model = whitening_detector(whiten, smoke=smoke, progress=False).eval()
        rows.append({"detector": name, "input": "grey 32 px", **score(model, real, ids, "grey 32 px"),
                     f"offdiag_faces_dev ({len(dev_faces)})": offdiag(model, grey_32(dev_faces))})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def write(df: pd.DataFrame, seconds: float, smoke: bool) -> str:
    cols = [c for c in df.columns if c not in ("detector", "input")]
    fmt = lambda v: ("-" if np.isnan(v) else f"{v:.3f}") if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["# Shipped SBI colour detectors on real fakes: the photo's colour vs the training domain (tinted grey)",
             "", f"**Development check, deepfake_dev, too few to decide on** (never a README result). Weights: the "
             f"shipped `whitening_detector(..., data='sbi'{', smoke=True' if smoke else ''})` (64 px, trained on "
             "self-blends of the embedded tinted-grey LFW faces + the astronaut). `tinted grey`: luminance (OpenCV "
             f"RGB->grey weights) x the training faces' mean tint {tuple(round(t, 3) for t in EMBEDDED_MEAN_TINT)} "
             "(from `EMBEDDED_TINT_RANGES`, the recipe; not tuned here). Frame AUC: the 13 + 13 crops (`crop_auc`) "
             f"and the crops with {VIDEO_FRAMES} frames of each FF++ video (`frame_auc`); video AUC: mean P(fake) per "
             "video id (DFDC ids from the file names, the FF++ pair; MesoNet crops have no id); counts are "
             "real+fake. `offdiag_*`: mean |off-diagonal correlation| of the layer's output channels, eval mode, "
             "on the real faces of faces_dev (Haar crops, mapped the same way as the row's input) and on the "
             f"detector's own held-out self-blends (embedded faces, as trained). For reference the page's default "
             "photo readers, the grey 32 px detectors (`whitening_detector(...)`, synthetic forgeries of grey 32 px "
             "faces), "
             f"on the same crops in grey at 32 px. {seconds:.0f} s, CPU.", "",
             "| detector | input | " + " | ".join(cols) + " |", "|" + " --- |" * (len(cols) + 2)]
    lines += [f"| {r['detector']} | {r['input']} | " + " | ".join(fmt(r[c]) for c in cols) + " |"
              for _, r in df.iterrows()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="the smoke-setting detectors (seconds)")
    parser.add_argument("--deepfake-dev", type=Path, default=DEEPFAKE_DEV, help="the deepfake_dev folder")
    parser.add_argument("--faces-dev", type=Path, default=DEV_FACES, help="the faces_dev folder")
    args = parser.parse_args()
    for folder in (args.deepfake_dev, args.faces_dev):
        if not folder.is_dir():
            parser.error(f"{folder} is not a folder (../shared/realdata/...); nothing to measure without it")
    torch.set_num_threads(1)
    start = time.perf_counter()
    df = run(args.smoke, args.deepfake_dev, args.faces_dev)
    suffix = "_smoke" if args.smoke else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    df.to_csv(RESULTS / f"whitening_domain{suffix}.csv", index=False)
    text = write(df, time.perf_counter() - start, args.smoke)
    (RESULTS / f"whitening_domain{suffix}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
