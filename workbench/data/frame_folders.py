"""Real benchmark layouts: FaceForensics++ and Celeb-DF folders of extracted frames (``datasets/faceforensics``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from workbench.data.face_crops import detect_face_box
from workbench.data.forgery_sets import ForgerySet

FRAME_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
FACEFORENSICS_LAYOUT = (
    "<root>/original_sequences/youtube/<compression>/frames/<video>/<frame>.png and "
    "<root>/manipulated_sequences/<method>/<compression>/frames/<target>_<source>/<frame>.png "
    "(methods e.g. Deepfakes, Face2Face, FaceSwap, NeuralTextures, FaceShifter; compression raw, c23 or c40)"
)
CELEBDF_LAYOUT = (
    "<root>/Celeb-real/<video>/<frame>.png (optionally also <root>/YouTube-real/<video>/...) and "
    "<root>/Celeb-synthesis/<video>/<frame>.png, one folder of extracted frames per video "
    "(e.g. Celeb-real/id0_0000/000.png, Celeb-synthesis/id0_id16_0000/000.png)"
)


def _video_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _frames_of(video: Path, max_frames: int) -> list[Path]:
    frames = sorted(p for p in video.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    if len(frames) > max_frames:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, max_frames).round().astype(int)]
    return frames



def read_rgb(path: Path) -> np.ndarray:
    """An image file as an RGB uint8 array; ValueError naming the file if it is unreadable or corrupt."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"could not read frame {path} (unreadable or corrupt image file)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read_face(path: Path, size: int, channels: int, crop_faces: bool) -> np.ndarray:
    rgb = read_rgb(path)
    if crop_faces:
        try:
            x, y, w, h = detect_face_box(rgb)
            rgb = rgb[y:y + h, x:x + w]
        except ValueError:
            pass  # keep the whole frame: the frame may already be a face crop
    rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    if channels == 1:
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[None]
    return rgb.transpose(2, 0, 1)


def load_frame_folder(root: str | Path, layout: str = "auto", size: int = 64, channels: int = 3,
                      compression: str = "c23", methods: tuple[str, ...] | None = None,
                      max_frames_per_video: int = 8, crop_faces: bool = True) -> ForgerySet:
    """Frames of a FaceForensics++ or Celeb-DF folder as a ``ForgerySet`` (no masks: ``has_masks`` False).

    ``layout`` "faceforensics", "celebdf" or "auto" (detected from the sub-folders). Identities are the target
    person of each video (FF++: the first number of ``<target>_<source>``; Celeb-DF: the ``id<k>`` prefix), so a
    split by identity keeps one person on one side. Each frame is face-cropped with the Haar cascade when
    ``crop_faces`` (the whole frame is kept when none is found) and resized to ``size``.
    """
    root = Path(root)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB); got {channels}")
    if not root.is_dir():
        raise FileNotFoundError(f"frame folder {root} does not exist; expected the layout {FACEFORENSICS_LAYOUT} "
                                f"or {CELEBDF_LAYOUT}")
    if layout == "auto":
        if (root / "original_sequences").is_dir():
            layout = "faceforensics"
        elif (root / "Celeb-real").is_dir() or (root / "Celeb-synthesis").is_dir():
            layout = "celebdf"
        else:
            raise ValueError(f"{root} is neither a FaceForensics++ folder ({FACEFORENSICS_LAYOUT}) nor a Celeb-DF "
                             f"folder ({CELEBDF_LAYOUT}); found sub-folders "
                             f"{sorted(p.name for p in root.iterdir())[:10]}")
    videos: list[tuple[Path, int, str, str]] = []  # (video folder, label, kind, identity key)
    if layout == "faceforensics":
        real_dir = root / "original_sequences" / "youtube" / compression / "frames"
        if not real_dir.is_dir():
            raise ValueError(f"missing {real_dir}; expected the FaceForensics++ layout {FACEFORENSICS_LAYOUT}")
        videos += [(v, 0, "real", v.name.split("_")[0]) for v in _video_dirs(real_dir)]
        manip_root = root / "manipulated_sequences"
        available = sorted(p.name for p in manip_root.iterdir() if p.is_dir()) if manip_root.is_dir() else []
        for method in methods or tuple(available):
            fake_dir = manip_root / method / compression / "frames"
            if not fake_dir.is_dir():
                raise ValueError(f"missing {fake_dir}; methods found: {available}; expected the FaceForensics++ "
                                 f"layout {FACEFORENSICS_LAYOUT}")
            videos += [(v, 1, method, v.name.split("_")[0]) for v in _video_dirs(fake_dir)]
    elif layout == "celebdf":
        for name, label in (("Celeb-real", 0), ("YouTube-real", 0), ("Celeb-synthesis", 1)):
            folder = root / name
            if folder.is_dir():
                kind = "real" if label == 0 else "Celeb-synthesis"
                videos += [(v, label, kind, v.name if name == "YouTube-real" else v.name.split("_")[0])
                           for v in _video_dirs(folder)]
        if not any(lbl == 0 for _, lbl, _, _ in videos) or not any(lbl == 1 for _, lbl, _, _ in videos):
            raise ValueError(f"{root} needs both real and synthesis video folders; expected the Celeb-DF layout "
                             f"{CELEBDF_LAYOUT}")
    else:
        raise ValueError(f"layout must be 'faceforensics', 'celebdf' or 'auto'; got {layout!r}")
    images, labels, kinds, keys = [], [], [], []
    for video, label, kind, key in videos:
        for frame in _frames_of(video, max_frames_per_video):
            images.append(_read_face(frame, size, channels, crop_faces))
            labels.append(label)
            kinds.append(kind)
            keys.append(key)
    if not images:
        raise ValueError(f"no frames ({sorted(FRAME_SUFFIXES)}) found under {root}; expected "
                         f"{FACEFORENSICS_LAYOUT if layout == 'faceforensics' else CELEBDF_LAYOUT}")
    key_ids = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    n = len(images)
    return ForgerySet(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.long),
                      torch.zeros(n, 1, size, size), tuple(kinds), torch.tensor([key_ids[k] for k in keys]),
                      has_masks=False)
