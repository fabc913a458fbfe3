"""Face-forgery data: real faces that scikit-image ships, manipulated copies with a known mask, real benchmark folders.

Embedded default (no downloads):

* **Real faces.** ``skimage.data.lfw_subset()`` is 200 grey 25x25 crops: the first 100 are LFW faces (tight,
  roughly aligned crops, eyes at about 1/3 of the height), the last 100 are background patches (non-faces; we never
  use them as faces). Plus the astronaut of ``skimage.data.astronaut()`` (Eileen Collins), whose face box comes from
  OpenCV's shipped Haar cascade. Every face is grey and resized to ``size`` x ``size`` (default 32; the embedded
  set is one channel because 100 of its 101 faces are grey).
* **Identities.** LFW person names are *not* shipped with the subset, so identities are pseudo-identities: each face
  is its own identity, except that faces whose standardised pixel correlation exceeds ``0.8`` are merged
  (connected components: 86 groups of 1..11 LFW faces + the astronaut), so that near-duplicates and likely repeats of
  one person (LFW holds many photos of a few people) never straddle a split. Pixel correlation is not face
  recognition: this is a conservative proxy, it cannot guarantee that two groups are different people.
* **Manipulated faces**, made the way self-blended images are made (Shiohara & Yamasaki, CVPR 2022; our
  reconstruction at this resolution, without landmarks: the crops are aligned, so facial regions sit at fixed
  places): a soft-edged, randomly deformed mask of one facial region, and the face blended inside it with a
  transformed copy of itself (``self_blend``: brightness/contrast/gamma jitter + small affine warp + blur or
  sharpen; ``color``: tone jitter + blur or sharpen; ``warp``: only the warp) or with another identity's face
  tone-matched to it and blurred or sharpened (``swap``). Strengths are larger than SBI's because the faces are
  tiny and the default detector trains in about a minute on a CPU. The blend mask is the ground truth of what was
  manipulated. Real samples get the same global augmentation (flip, one-pixel shift, global tone, grain ``GRAIN``)
  as fakes, so the only difference is the local blend.

``make_forgery(face, params, donor)`` makes one manipulated face + mask from given ``ForgeryParams`` (sampled by
``sample_forgery_params``), so that a video generator can reuse it with parameters that drift smoothly over frames.

Real benchmarks: ``load_frame_folder`` reads FaceForensics++ and Celeb-DF frame folders (layout in
``datasets/faceforensics/README.md``).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage import data as skdata

#: Facial regions of an aligned face crop as ellipses ``(centre_y, centre_x, radius_y, radius_x)`` in [0, 1] units.
FACE_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "eyes": (0.37, 0.50, 0.10, 0.34),
    "left_eye": (0.37, 0.31, 0.09, 0.14),
    "right_eye": (0.37, 0.69, 0.09, 0.14),
    "nose": (0.56, 0.50, 0.14, 0.11),
    "mouth": (0.77, 0.50, 0.08, 0.19),
    "inner_face": (0.55, 0.50, 0.33, 0.33),
}
#: The whole face (every manipulation mask is clipped to it).
FACE_ELLIPSE: tuple[float, float, float, float] = (0.52, 0.50, 0.46, 0.44)
#: Manipulation kinds of the embedded set (a detector can be trained on some and tested on the others).
MANIPULATION_KINDS: tuple[str, ...] = ("self_blend", "swap", "color", "warp")
FORGERY_CLASSES: tuple[str, ...] = ("real", "fake")
IDENTITY_MERGE_CORRELATION = 0.8
#: The astronaut's face box (x, y, w, h) as OpenCV 4.x's frontal-face Haar cascade finds it (``detect_face_box``),
#: recorded so that the embedded set does not depend on the OpenCV build (some builds lack the cascade module).
ASTRONAUT_FACE_BOX = (177, 66, 95, 95)
LFW_FACES = 100
#: Sensor-like grain added to every face (real and fake) before any manipulation: a blurred, sharpened or warped
#: source changes it inside the mask, the local texture cue self-blended images teach a detector to find.
GRAIN = 0.05


# ------------------------------------------------------------------------------------------------------ input checks
def _check_face(face: np.ndarray, name: str = "face", size: int | None = None) -> np.ndarray:
    """A grey face as (H, W) float32 in [0, 1]; clear errors for colour, NaN, wrong size or range."""
    arr = np.asarray(face)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a grey (H, W) image in [0, 1]; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains {int((~np.isfinite(arr)).sum())} NaN/Inf value(s); expected finite values")
    if arr.min() < -1e-4 or arr.max() > 1 + 1e-4:
        raise ValueError(f"{name} must lie in [0, 1]; got values in [{arr.min():.3g}, {arr.max():.3g}]")
    if size is not None and arr.shape != (size, size):
        raise ValueError(f"{name} must be {size}x{size} pixels; got {arr.shape[0]}x{arr.shape[1]}")
    return arr


def _check_photo(image: np.ndarray) -> np.ndarray:
    """An RGB photo as (H, W, 3) uint8; clear errors for grey, NaN, wrong layout."""
    arr = np.asarray(image)
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 1):
        raise ValueError(f"expected an RGB photo of shape (H, W, 3); got a grey image of shape {arr.shape}")
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected an RGB photo of shape (H, W, 3); got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            raise ValueError(f"photo contains {int((~np.isfinite(arr)).sum())} NaN/Inf value(s)")
        scale = 255.0 if arr.max() <= 1.0 else 1.0
        arr = np.clip(arr * scale, 0, 255).astype(np.uint8)
    return arr


# ------------------------------------------------------------------------------------------------------- real faces
@functools.lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise RuntimeError(f"this OpenCV build ({cv2.__version__}) has no Haar cascade detector; install "
                           "opencv-contrib-python-headless<5, or pass the face box yourself (box=(x, y, w, h))")
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's Haar cascade could not be read from {path}")
    return cascade


def detect_face_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """The largest frontal face in an RGB photo as ``(x, y, w, h)`` (OpenCV's shipped Haar cascade)."""
    rgb = _check_photo(image)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    boxes = _cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    if len(boxes) == 0:
        raise ValueError(f"no face found in the {rgb.shape[1]}x{rgb.shape[0]} image by OpenCV's frontal-face "
                         "Haar cascade; pass a photo with a frontal face")
    x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
    return int(x), int(y), int(w), int(h)


def face_from_photo(image: np.ndarray, size: int = 32, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Crop the (largest, Haar-detected unless ``box`` is given) face of an RGB photo, grey, ``size`` x ``size``.

    The Haar box is shrunk a little horizontally and moved down so that the crop is framed like the LFW crops
    (eyes at about 1/3 of the height).
    """
    rgb = _check_photo(image)
    x, y, w, h = box if box is not None else detect_face_box(rgb)
    x0, x1 = x + int(0.08 * w), x + w - int(0.08 * w)
    y0, y1 = y + int(0.06 * h), y + h + int(0.02 * h)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[max(y0, 0):y1, max(x0, 0):x1]
    return cv2.resize(grey.astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_AREA).clip(0, 1)


@functools.lru_cache(maxsize=4)
def _real_faces_cached(size: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    lfw = skdata.lfw_subset()[:LFW_FACES].astype(np.float32)
    faces = [cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR).clip(0, 1) for f in lfw]
    faces.append(face_from_photo(skdata.astronaut(), size, box=ASTRONAUT_FACE_BOX))
    sources = tuple(f"lfw_subset[{i}]" for i in range(LFW_FACES)) + ("astronaut",)
    stack = np.stack(faces).astype(np.float32)
    return stack, _pseudo_identities(stack[:LFW_FACES], extra=1), sources


def _pseudo_identities(faces: np.ndarray, extra: int) -> np.ndarray:
    """Connected components of the 'correlation > IDENTITY_MERGE_CORRELATION' graph; ``extra`` singletons appended."""
    flat = faces.reshape(len(faces), -1).astype(np.float64)
    flat = (flat - flat.mean(1, keepdims=True)) / (flat.std(1, keepdims=True) + 1e-8)
    corr = flat @ flat.T / flat.shape[1]
    parent = list(range(len(faces)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(corr > IDENTITY_MERGE_CORRELATION, 1)), strict=True):
        parent[root(int(i))] = root(int(j))
    roots = [root(i) for i in range(len(faces))]
    relabel = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    ids = [relabel[r] for r in roots]
    ids += [len(relabel) + k for k in range(extra)]
    return np.asarray(ids, dtype=np.int64)


def real_faces(size: int = 32) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The embedded real faces: ``(faces (N, size, size) float32 in [0, 1], pseudo-identities (N,), sources)``."""
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels; got {size}")
    faces, ids, sources = _real_faces_cached(size)
    return faces.copy(), ids.copy(), sources


# ---------------------------------------------------------------------------------------------------------- masks
def ellipse_mask(size: int, ellipse: tuple[float, float, float, float], wobble: np.ndarray | None = None) -> np.ndarray:
    """A binary (size, size) float32 ellipse (normalised units); ``wobble`` = harmonic amplitudes deforming its edge."""
    cy, cx, ry, rx = ellipse
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    dy, dx = (yy - cy) / ry, (xx - cx) / rx
    radius = np.ones_like(dy)
    if wobble is not None:
        angle = np.arctan2(dy, dx)
        for k, (a, phase) in enumerate(wobble.reshape(-1, 2), start=2):
            radius = radius + a * np.cos(k * angle + phase)
    return (dy**2 + dx**2 <= radius**2).astype(np.float32)


def face_mask(size: int = 32) -> np.ndarray:
    """Binary mask of the face area of an aligned crop: every manipulation mask lies inside it."""
    return ellipse_mask(size, FACE_ELLIPSE)


def region_mask(region: str, size: int = 32) -> np.ndarray:
    """Binary mask of one facial region (``FACE_REGIONS``) of an aligned crop, clipped to the face."""
    if region not in FACE_REGIONS:
        raise ValueError(f"unknown facial region {region!r}; choose one of {sorted(FACE_REGIONS)}")
    return ellipse_mask(size, FACE_REGIONS[region]) * face_mask(size)


# ------------------------------------------------------------------------------------------------------ forgeries
@dataclass(frozen=True)
class ForgeryParams:
    """Everything ``make_forgery`` needs; a video generator can vary these smoothly from frame to frame.

    Geometry in normalised units; ``wobble`` holds (amplitude, phase) pairs of the mask edge's harmonics 2, 3, ...;
    tone = ``contrast * (x - mean) + mean + brightness`` then ``** gamma``; ``warp_scale/shift/angle`` is an affine
    warp about the region centre; ``sharpen`` > 0 sharpens, ``blur_sigma`` > 0 blurs (pixels); ``blend`` scales the
    mask (SBI's random blend ratio).
    """

    kind: str
    region: str
    centre_shift: tuple[float, float] = (0.0, 0.0)
    radius_scale: tuple[float, float] = (1.0, 1.0)
    wobble: tuple[float, ...] = ()
    edge_sigma: float = 1.0
    blend: float = 1.0
    brightness: float = 0.0
    contrast: float = 1.0
    gamma: float = 1.0
    warp_scale: float = 1.0
    warp_shift: tuple[float, float] = (0.0, 0.0)
    warp_angle: float = 0.0
    blur_sigma: float = 0.0
    sharpen: float = 0.0


_KIND_REGIONS: dict[str, tuple[str, ...]] = {
    "self_blend": ("eyes", "left_eye", "right_eye", "nose", "mouth", "inner_face"),
    "swap": ("inner_face", "eyes", "mouth"),
    "color": ("eyes", "nose", "mouth", "inner_face", "left_eye", "right_eye"),
    "warp": ("eyes", "left_eye", "right_eye", "nose", "mouth"),
}


def sample_forgery_params(kind: str, rng: np.random.Generator, region: str | None = None) -> ForgeryParams:
    """Random parameters of one manipulation ``kind`` (see the module docstring), deterministic given ``rng``."""
    if kind not in MANIPULATION_KINDS:
        raise ValueError(f"unknown manipulation kind {kind!r}; choose one of {MANIPULATION_KINDS}")
    region = region or str(rng.choice(_KIND_REGIONS[kind]))
    if region not in FACE_REGIONS:
        raise ValueError(f"unknown facial region {region!r}; choose one of {sorted(FACE_REGIONS)}")

    def tone() -> dict[str, float]:
        sign = rng.choice([-1.0, 1.0])
        return {"brightness": float(sign * rng.uniform(0.1, 0.22)), "contrast": float(rng.uniform(0.6, 1.5)),
                "gamma": float(rng.uniform(0.7, 1.4))}

    def warp() -> dict[str, object]:
        return {"warp_scale": float(rng.uniform(1.12, 1.3) if rng.random() < 0.7 else rng.uniform(0.8, 0.9)),
                "warp_shift": (float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))),
                "warp_angle": float(rng.uniform(-10, 10))}

    def filt() -> dict[str, float]:
        return {"blur_sigma": float(rng.uniform(1.0, 1.6))} if rng.random() < 0.5 else \
            {"sharpen": float(rng.uniform(1.5, 2.5))}

    extra: dict[str, object] = {}
    if kind == "self_blend":
        extra = {**tone(), **warp(), **filt()}
    elif kind == "color":
        extra = {**tone(), **filt()}
    elif kind == "warp":
        extra = warp()
    elif kind == "swap":
        extra = filt()
    return ForgeryParams(
        kind=kind, region=region,
        centre_shift=(float(rng.uniform(-0.03, 0.03)), float(rng.uniform(-0.03, 0.03))),
        radius_scale=(float(rng.uniform(0.85, 1.2)), float(rng.uniform(0.85, 1.2))),
        wobble=tuple(float(v) for v in np.stack([rng.uniform(0, 0.12, 3), rng.uniform(0, 2 * np.pi, 3)], 1).ravel()),
        edge_sigma=float(rng.uniform(0.4, 1.0)),
        blend=float(rng.uniform(0.85, 1.0)),
        **extra,
    )


def blend_mask(params: ForgeryParams, size: int) -> np.ndarray:
    """The soft (size, size) blend mask of ``params``: deformed region ellipse, clipped to the face, blurred edge."""
    cy, cx, ry, rx = FACE_REGIONS[params.region]
    ellipse = (cy + params.centre_shift[0], cx + params.centre_shift[1],
               ry * params.radius_scale[0], rx * params.radius_scale[1])
    hard = ellipse_mask(size, ellipse, np.asarray(params.wobble, np.float32) if params.wobble else None)
    hard *= face_mask(size)
    sigma = params.edge_sigma * size / 32
    soft = cv2.GaussianBlur(hard, (0, 0), sigma) if sigma > 0 else hard
    return (soft * face_mask(size) * params.blend).astype(np.float32)


def _transform_source(src: np.ndarray, params: ForgeryParams) -> np.ndarray:
    size = src.shape[0]
    out = src.astype(np.float32)
    if params.warp_scale != 1.0 or params.warp_angle != 0.0 or params.warp_shift != (0.0, 0.0):
        cy, cx = FACE_REGIONS[params.region][:2]
        mat = cv2.getRotationMatrix2D((cx * size, cy * size), params.warp_angle, params.warp_scale)
        mat[:, 2] += (params.warp_shift[1] * size, params.warp_shift[0] * size)
        out = cv2.warpAffine(out, mat, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if params.brightness != 0.0 or params.contrast != 1.0 or params.gamma != 1.0:
        mean = float(out.mean())
        out = np.clip(params.contrast * (out - mean) + mean + params.brightness, 0, 1) ** params.gamma
    if params.blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), params.blur_sigma * size / 32)
    if params.sharpen > 0:
        out = out + params.sharpen * (out - cv2.GaussianBlur(out, (0, 0), size / 32))
    return np.clip(out, 0, 1).astype(np.float32)


def make_forgery(face: np.ndarray, params: ForgeryParams, donor: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One manipulated face and its soft mask from a real grey ``face`` (H, W) in [0, 1].

    ``swap`` needs ``donor`` (another identity's aligned face of the same size); its tone is matched to ``face``
    inside the mask, as face-swap pipelines do, so the blend is not given away by a brightness jump.
    """
    target = _check_face(face)
    size = target.shape[0]
    if target.shape != (size, size):
        raise ValueError(f"face must be square; got {target.shape[0]}x{target.shape[1]}")
    mask = blend_mask(params, size)
    if params.kind == "swap":
        if donor is None:
            raise ValueError("kind 'swap' needs a donor face (another identity's aligned face)")
        source = _check_face(donor, "donor", size)
        inside = mask > 0.5
        if inside.any():
            s_mu, s_sd = source[inside].mean(), source[inside].std() + 1e-4
            t_mu, t_sd = target[inside].mean(), target[inside].std() + 1e-4
            source = np.clip((source - s_mu) * (t_sd / s_sd) + t_mu, 0, 1)
    else:
        source = target
    source = _transform_source(source, params)
    fake = mask * source + (1 - mask) * target
    return fake.astype(np.float32), mask


# -------------------------------------------------------------------------------------------------------- data set
@dataclass
class ForgerySet:
    """Face-forgery samples as tensors.

    ``images`` (N, C, H, W) float in [0, 1]; ``labels`` (N,) long, 0 real / 1 fake; ``masks`` (N, 1, H, W) float
    soft manipulation masks (zero for real faces; all NaN-free; ``has_masks`` False when the source has none);
    ``kinds`` one string per sample ("real" or a manipulation kind / benchmark method); ``identities`` (N,) long.
    """

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    kinds: tuple[str, ...]
    identities: torch.Tensor
    classes: tuple[str, ...] = FORGERY_CLASSES
    has_masks: bool = True

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, index: np.ndarray | torch.Tensor | list[int]) -> ForgerySet:
        """The samples at ``index`` (a boolean mask or integer indices)."""
        idx = torch.as_tensor(np.asarray(index))
        if idx.dtype == torch.bool:
            idx = torch.nonzero(idx).flatten()
        picks = idx.tolist()
        return dataclasses.replace(self, images=self.images[idx], labels=self.labels[idx], masks=self.masks[idx],
                                   kinds=tuple(self.kinds[i] for i in picks), identities=self.identities[idx])

    def with_kinds(self, kinds: tuple[str, ...] | list[str]) -> ForgerySet:
        """Real samples plus the fakes of the given manipulation ``kinds``."""
        keep = [k == "real" or k in kinds for k in self.kinds]
        return self.subset(np.asarray(keep))

    def loader(self, batch_size: int = 64, shuffle: bool = True, seed: int = 0,
               with_masks: bool = False) -> torch.utils.data.DataLoader:
        """Batches of ``(images, labels)`` or, with ``with_masks``, ``(images, labels, masks)``."""
        tensors = (self.images, self.labels, self.masks) if with_masks else (self.images, self.labels)
        gen = torch.Generator().manual_seed(seed)
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*tensors), batch_size=batch_size,
                                           shuffle=shuffle, generator=gen)


def split_identities(identities: np.ndarray, seed: int = 0, fractions: tuple[float, float] = (0.6, 0.2)
                     ) -> dict[str, np.ndarray]:
    """Assign each identity to "train", "val" or "test" (fractions of identities; the rest is test), seeded."""
    unique = np.unique(identities)
    order = np.random.default_rng(seed).permutation(unique)
    n_train = int(round(fractions[0] * len(unique)))
    n_val = int(round(fractions[1] * len(unique)))
    return {"train": np.sort(order[:n_train]), "val": np.sort(order[n_train:n_train + n_val]),
            "test": np.sort(order[n_train + n_val:])}


def _global_augment(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = face[:, ::-1] if rng.random() < 0.5 else face
    dy, dx = rng.integers(-1, 2, size=2)
    out = np.roll(out, (int(dy), int(dx)), axis=(0, 1))
    out = rng.uniform(0.9, 1.1) * (out - 0.5) + 0.5 + rng.uniform(-0.05, 0.05)
    out = np.clip(out + rng.normal(0.0, GRAIN, out.shape), 0, 1)
    return np.ascontiguousarray(out, dtype=np.float32)


@functools.lru_cache(maxsize=8)
def _generate(size: int, n_per_identity: int, kinds: tuple[str, ...], seed: int, split: str
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]:
    faces, ids, _ = real_faces(size)
    chosen = split_identities(ids, seed)[split]
    members = np.flatnonzero(np.isin(ids, chosen))
    rng = np.random.default_rng([seed, size, n_per_identity, ["train", "val", "test"].index(split)])
    images, labels, masks, sample_kinds, sample_ids = [], [], [], [], []
    zero = np.zeros((size, size), np.float32)
    counter = 0
    for i in members:
        for _ in range(n_per_identity):
            images.append(_global_augment(faces[i], rng))
            labels.append(0)
            masks.append(zero)
            sample_kinds.append("real")
            sample_ids.append(ids[i])
            kind = kinds[counter % len(kinds)]
            counter += 1
            params = sample_forgery_params(kind, rng)
            base = _global_augment(faces[i], rng)
            donor = None
            if kind == "swap":
                others = members[ids[members] != ids[i]]
                if len(others) == 0:
                    raise ValueError(f"split {split!r} has a single identity; 'swap' needs a donor of another one")
                donor = _global_augment(faces[int(rng.choice(others))], rng)
            fake, mask = make_forgery(base, params, donor)
            images.append(fake)
            labels.append(1)
            masks.append(mask)
            sample_kinds.append(kind)
            sample_ids.append(ids[i])
    return (np.stack(images)[:, None], np.asarray(labels, np.int64), np.stack(masks)[:, None],
            tuple(sample_kinds), np.asarray(sample_ids, np.int64))


def load_forgery_faces(split: str = "train", size: int = 32, n_per_identity: int = 8,
                       kinds: tuple[str, ...] | list[str] = MANIPULATION_KINDS, seed: int = 0) -> ForgerySet:
    """The embedded face-forgery set: per identity, ``n_per_identity`` real and as many fake samples (kinds cycled).

    ``split`` in {"train", "val", "test", "all"} is by pseudo-identity (60/20/20 of the identities, seeded), and
    swap donors come from the same split, so no person appears on both sides. Deterministic given the arguments.
    """
    kinds = tuple(kinds)
    if not kinds or any(k not in MANIPULATION_KINDS for k in kinds):
        raise ValueError(f"kinds must be a non-empty subset of {MANIPULATION_KINDS}; got {kinds}")
    if n_per_identity < 1:
        raise ValueError(f"n_per_identity must be at least 1; got {n_per_identity}")
    if split == "all":
        parts = [load_forgery_faces(s, size, n_per_identity, kinds, seed) for s in ("train", "val", "test")]
        return ForgerySet(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]),
                          torch.cat([p.masks for p in parts]), sum((p.kinds for p in parts), ()),
                          torch.cat([p.identities for p in parts]))
    if split not in {"train", "val", "test"}:
        raise ValueError(f"split must be 'train', 'val', 'test' or 'all'; got {split!r}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels; got {size}")
    images, labels, masks, sample_kinds, ids = _generate(size, n_per_identity, kinds, seed, split)
    return ForgerySet(torch.from_numpy(images.copy()), torch.from_numpy(labels.copy()),
                      torch.from_numpy(masks.copy()), sample_kinds, torch.from_numpy(ids.copy()))


# ----------------------------------------------------------------------------------------------- real benchmarks
_FRAME_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
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
    frames = sorted(p for p in video.iterdir() if p.suffix.lower() in _FRAME_SUFFIXES)
    if len(frames) > max_frames:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, max_frames).round().astype(int)]
    return frames


def _read_face(path: Path, size: int, channels: int, crop_faces: bool) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"could not read frame {path} (unreadable or corrupt image file)")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
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
        raise ValueError(f"no frames ({sorted(_FRAME_SUFFIXES)}) found under {root}; expected "
                         f"{FACEFORENSICS_LAYOUT if layout == 'faceforensics' else CELEBDF_LAYOUT}")
    key_ids = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    n = len(images)
    return ForgerySet(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.long),
                      torch.zeros(n, 1, size, size), tuple(kinds), torch.tensor([key_ids[k] for k in keys]),
                      has_masks=False)
