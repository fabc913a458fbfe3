"""Face-forgery *clips*: the embedded real faces in smooth motion, manipulations that flicker over time, a video reader.

Embedded default (no downloads), built on :mod:`workbench.data.faces`:

* **Real clips.** Each real face (``real_faces``) is animated over ``frames`` frames by a smooth affine motion
  (sinusoidal translation of up to ~1.5 px, scale 0.96..1.04, rotation up to ~5 degrees, random phases), warped with
  ``cv2.warpAffine``; every frame gets fresh sensor grain (``faces.GRAIN``) and the clip one global tone.
* **Manipulated clips.** One ``ForgeryParams`` per clip (``sample_forgery_params``), then per frame the blend
  strength, tone (brightness/contrast), mask centre and filter strength are jittered independently (``flicker``
  scales the jitter), so the blended region flickers from frame to frame the way per-frame face-swap pipelines do:
  temporal inconsistency is a real cue. ``make_forgery`` builds each frame from the still face and the frame's
  parameters; the face *and* its mask are then moved by the same motion as a real clip. Masks per frame.
* **Splits** by pseudo-identity with ``split_identities`` (60/20/20, seeded); swap donors come from the same split.
  Deterministic given the arguments.

Real videos: ``read_video`` reads an ``.mp4``/``.avi`` file (OpenCV) or a folder of frames, samples ``n_frames``
uniformly, crops the face of each frame (Haar box, or aligned on dlib's landmarks), grey or colour;
FaceForensics++/Celeb-DF layouts in
``datasets/faceforensics-video/README.md``.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import cv2
import numpy as np
import torch

from workbench.data.face_crops import real_faces
from workbench.data.face_front import NoFaceError, crop_face, resolve_aligner, track_faces
from workbench.data.forgery_sets import (  # noqa: F401  (ClipSet re-exported: it was defined here)
    GRAIN,
    SPLITS,
    ClipSet,
    check_set_arguments,
    pick_donor,
    split_members,
)
from workbench.data.frame_folders import FRAME_SUFFIXES, read_rgb
from workbench.data.synthesis import MANIPULATION_KINDS, ForgeryParams, make_forgery, sample_forgery_params

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv"}


# ------------------------------------------------------------------------------------------------------- generator
def _motion(frames: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Smooth affine warps (2x3) of a clip: sinusoidal translation, scale and rotation with random phases."""
    t = np.linspace(0.0, 1.0, frames)
    phase = rng.uniform(0, 2 * np.pi, 4)
    freq = rng.uniform(0.5, 1.2)
    amp = rng.uniform(0.5, 1.5, 2), rng.uniform(0.01, 0.04), rng.uniform(1.0, 5.0)
    mats = []
    for k in range(frames):
        w = 2 * np.pi * freq * t[k]
        angle = amp[2] * np.sin(w + phase[2])
        scale = 1.0 + amp[1] * np.sin(w + phase[3])
        mat = cv2.getRotationMatrix2D((size / 2, size / 2), float(angle), float(scale))
        mat[:, 2] += (amp[0][0] * np.sin(w + phase[0]), amp[0][1] * np.sin(w + phase[1]))
        mats.append(mat)
    return mats


def _warp(img: np.ndarray, mat: np.ndarray) -> np.ndarray:
    size = img.shape[0]
    return cv2.warpAffine(img, mat, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _flickered(params: ForgeryParams, rng: np.random.Generator, flicker: float) -> ForgeryParams:
    """Per-frame jitter of a clip's forgery parameters: blend strength, tone, mask centre and filter strength."""
    j = flicker
    return dataclasses.replace(
        params,
        blend=float(np.clip(params.blend * rng.uniform(1 - 0.6 * j, 1.0), 0.0, 1.0)),
        brightness=float(params.brightness + rng.normal(0, 0.08 * j)),
        contrast=float(max(params.contrast + rng.normal(0, 0.2 * j), 0.3)),
        centre_shift=(float(params.centre_shift[0] + rng.normal(0, 0.03 * j)),
                      float(params.centre_shift[1] + rng.normal(0, 0.03 * j))),
        blur_sigma=float(max(params.blur_sigma * rng.uniform(1 - 0.5 * j, 1 + 0.5 * j), 0.0)),
        sharpen=float(max(params.sharpen * rng.uniform(1 - 0.5 * j, 1 + 0.5 * j), 0.0)),
    )


def _finish(frame: np.ndarray, gain: float, offset: float, rng: np.random.Generator) -> np.ndarray:
    out = gain * (frame - 0.5) + 0.5 + offset + rng.normal(0.0, GRAIN, frame.shape)
    return np.clip(out, 0, 1).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _generate(size: int, frames: int, n_per_identity: int, kinds: tuple[str, ...], seed: int, split: str,
              flicker: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]:
    faces, ids, _ = real_faces(size)
    members = split_members(ids, seed, split)
    rng = np.random.default_rng([seed, size, frames, n_per_identity, SPLITS.index(split)])
    clips, labels, masks, clip_kinds, clip_ids = [], [], [], [], []
    counter = 0
    for i in members:
        for _ in range(n_per_identity):
            for fake in (False, True):
                face = faces[i][:, ::-1].copy() if rng.random() < 0.5 else faces[i]
                mats = _motion(frames, size, rng)
                gain, offset = rng.uniform(0.9, 1.1), rng.uniform(-0.05, 0.05)
                kind = "real"
                frame_masks = [np.zeros((size, size), np.float32)] * frames
                stills = [face] * frames
                if fake:
                    kind = kinds[counter % len(kinds)]
                    counter += 1
                    params = sample_forgery_params(kind, rng)
                    donor = faces[pick_donor(members, ids, i, rng, split)] if kind == "swap" else None
                    made = [make_forgery(face, _flickered(params, rng, flicker), donor) for _ in range(frames)]
                    stills = [m[0] for m in made]
                    frame_masks = [_warp(m[1], mat) for m, mat in zip(made, mats, strict=True)]
                clip = [_finish(_warp(s, mat), gain, offset, rng) for s, mat in zip(stills, mats, strict=True)]
                clips.append(np.stack(clip)[:, None])
                masks.append(np.stack(frame_masks))
                labels.append(int(fake))
                clip_kinds.append(kind)
                clip_ids.append(ids[i])
    return (np.stack(clips), np.asarray(labels, np.int64), np.stack(masks).astype(np.float32), tuple(clip_kinds),
            np.asarray(clip_ids, np.int64))


def load_forgery_clips(split: str = "train", size: int = 32, frames: int = 8, n_per_identity: int = 2,
                       kinds: tuple[str, ...] | list[str] = MANIPULATION_KINDS, seed: int = 0,
                       flicker: float = 1.0) -> ClipSet:
    """The embedded clip set: per face of the split, ``n_per_identity`` real and as many manipulated clips.

    ``split`` in {"train", "val", "test", "all"} by pseudo-identity; ``flicker`` scales the per-frame jitter of
    the manipulation (0: a temporally consistent forgery). Deterministic given the arguments.
    """
    kinds = check_set_arguments(split, kinds, n_per_identity, size)
    if frames < 1:
        raise ValueError(f"frames must be at least 1; got {frames}")
    if flicker < 0:
        raise ValueError(f"flicker must be >= 0; got {flicker}")
    if split == "all":
        return ClipSet.concat([load_forgery_clips(s, size, frames, n_per_identity, kinds, seed, flicker)
                               for s in SPLITS])
    clips, labels, masks, clip_kinds, ids = _generate(size, frames, n_per_identity, kinds, seed, split, float(flicker))
    return ClipSet(torch.from_numpy(clips.copy()), torch.from_numpy(labels.copy()), torch.from_numpy(masks.copy()),
                   clip_kinds, torch.from_numpy(ids.copy()))


# ---------------------------------------------------------------------------------------------------- video reader
def _sampled_video_frames(path: Path, n_frames: int) -> list[np.ndarray]:
    """``n_frames`` uniformly sampled RGB frames of a video file, decoding only up to the last one picked (the
    others are grabbed, not converted or kept); ValueError naming the file if none can be read."""
    cap = cv2.VideoCapture(str(path))
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        picks = set(np.linspace(0, count - 1, n_frames).round().astype(int).tolist()) if count > 0 else set()
        frames, kept, index = [], {}, 0
        while cap.isOpened() and (not picks or index <= max(picks)):
            if not cap.grab():
                break
            if not picks or index in picks:
                ok, bgr = cap.retrieve()
                if ok:
                    kept[index] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        cap.release()
    if not kept:
        raise ValueError(f"could not read any frame from video {path} (unreadable or corrupt file)")
    frames = [kept[k] for k in sorted(kept)]
    if picks and len(frames) == len(picks):
        return frames
    # the container's frame count was wrong (or absent): sample from the frames that were read
    return [frames[i] for i in np.linspace(0, len(frames) - 1, n_frames).round().astype(int)]


def _sampled_frames(path: Path, n_frames: int) -> list[np.ndarray]:
    """``n_frames`` uniformly sampled RGB uint8 frames of a video file or a frame folder; ValueError naming the
    file if unreadable."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        if not files:
            raise ValueError(f"frame folder {path} holds no frames ({sorted(FRAME_SUFFIXES)})")
        return [read_rgb(files[i]) for i in np.linspace(0, len(files) - 1, n_frames).round().astype(int)]
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"{path} is neither a video file ({sorted(VIDEO_SUFFIXES)}) nor a folder of frames")
    return _sampled_video_frames(path, n_frames)


def _is_grey(frames: list[np.ndarray]) -> bool:
    spread = [np.abs(f.astype(np.int16) - f[..., 1:2].astype(np.int16)).max() for f in frames]
    return max(spread) <= 2


def _haar_crops(sampled: list[np.ndarray], size: int, channels: int, detect_faces: bool, path: Path) -> np.ndarray:
    """Today's crops: each frame cut to its Haar box (a miss takes the nearest frame's box), resized."""
    boxes: list[tuple[int, int, int, int] | None] = [None] * len(sampled)
    if detect_faces:
        try:
            boxes = [f.box for f in track_faces(sampled, "haar")]
        except NoFaceError:
            raise NoFaceError(f"no face found by OpenCV's Haar cascade in any of the {len(sampled)} sampled frames "
                              f"of {path}; pass detect_faces=False if the frames are already face crops") from None
    out = []
    for rgb, box in zip(sampled, boxes, strict=True):
        if box is not None:
            x, y, w, h = box
            rgb = rgb[y:y + h, x:x + w]
        img = (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if channels == 1 else rgb).astype(np.float32) / 255.0
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).clip(0, 1)
        out.append(img.reshape(size, size, channels).transpose(2, 0, 1))
    return np.stack(out).astype(np.float32)


def read_video(path: str | Path, n_frames: int = 8, size: int = 32, detect_faces: bool = True, channels: int = 1,
               aligner: str = "haar") -> np.ndarray:
    """``n_frames`` uniformly sampled frames of a video file or frame folder as (T, ``channels``, size, size)
    float32 in [0, 1]: grey (``channels=1``, the default) or colour (``channels=3``; a grey video is refused).

    With ``detect_faces`` each frame is cropped to its face (:mod:`workbench.data.face_front`): ``aligner="haar"``
    (the default, today's crops) cuts the largest Haar-cascade box; ``aligner="dlib"`` aligns the crop on dlib's
    68 landmarks (eyes and mouth at ``face_front.TEMPLATE``, landmarks smoothed over neighbouring frames; Haar with
    a warning when dlib is not installed). A frame where no face is found takes the nearest frame's box; if no
    sampled frame has a face, ``NoFaceError`` names the file. A missing, corrupt or unreadable file raises
    ``FileNotFoundError``/``ValueError`` naming it.
    """
    path = Path(path)
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1; got {n_frames}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (colour); got {channels}")
    if not path.exists():
        raise FileNotFoundError(f"video {path} does not exist")
    aligner = resolve_aligner(aligner, str(path))
    sampled = _sampled_frames(path, n_frames)
    if channels == 3 and _is_grey(sampled):
        raise ValueError(f"{path} is a grey video (its frames have no colour); this model takes colour frames: "
                         "read it with channels=1 for a grey model, or give a colour video")
    if aligner == "haar" or not detect_faces:
        return _haar_crops(sampled, size, channels, detect_faces, path)
    try:
        faces = track_faces(sampled, "dlib")
    except NoFaceError as err:
        raise NoFaceError(f"{err} sampled from {path}; pass detect_faces=False if the frames are already face "
                          "crops") from None
    crops = [crop_face(rgb, face, size, channels) for rgb, face in zip(sampled, faces, strict=True)]
    return np.stack([c.reshape(size, size, channels).transpose(2, 0, 1) for c in crops]).astype(np.float32)
