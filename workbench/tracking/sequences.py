"""Tracking sequences: a generator with exact ground truth and a loader for OTB-format folders.

The generator renders a real textured object (a crop of a scikit-image photograph) moving smoothly over a real
background photograph, with one named tracking difficulty (the OTB attribute vocabulary). It is the embedded
default data of the channel-distillation workbench: no download, deterministic with a seed, ground truth exact
because the boxes are the ones the frames were rendered from.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from workbench.tracking.base import check_frame_sizes, check_ground_truth

#: What each generated attribute does (OTB attribute names in brackets).
ATTRIBUTES: dict[str, str] = {
    "scale": "the object grows to about 1.6x and shrinks back to about 0.8x its size [SV, scale variation]",
    "rotation": "the object turns in the image plane, up to +-35 degrees [IPR, in-plane rotation]",
    "illumination": "the whole scene's brightness and a moving shadow gradient change 0.45x..1.35x [IV]",
    "blur": "the object moves fast in bursts and every frame gets motion blur along the motion, up to 13 px [MB/FM]",
    "occlusion": "an opaque photo patch sweeps over the object: partial, then full for a few frames [OCC]",
    "distractor": "a look-alike copy of the object moves nearby and crosses the target's path [BC, background clutter]",
    "mixed": "milder versions of all of the above at once",
}

# crops (top, bottom, left, right) of scikit-image photographs used as the tracked object
_OBJECTS: dict[str, tuple[int, int, int, int]] = {
    "astronaut": (20, 230, 150, 330),  # the astronaut's head
    "chelsea": (40, 230, 120, 330),  # the cat's eyes and nose
    "coffee": (60, 300, 180, 460),  # the cup
    "rocket": (120, 400, 270, 390),  # the rocket on its pad
}
_BACKGROUNDS = ("gravel", "grass", "brick", "coffee")


@dataclass
class Sequence:
    """A tracking sequence: frames (RGB uint8) or lazily loaded image files, and one box per frame.

    ``ground_truth`` is ``(N, 4)`` float, ``(x, y, w, h)`` 0-based; rows may be NaN only when the loader was told to
    accept frames without an annotation (UAV123 marks a fully occluded target that way). In-memory frames are
    checked when the sequence is made (one box per frame, boxes overlapping the frame, all frames of one size;
    a grey frame among colour ones is fine, the trackers repeat it to three channels), so that a bad sequence fails
    before tracking starts, not in the middle of it.
    """

    name: str
    ground_truth: np.ndarray
    frames: list[np.ndarray] | None = None
    frame_paths: list[Path] | None = None
    attributes: tuple[str, ...] = ()
    metadata: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.frames is None) == (self.frame_paths is None):
            raise ValueError("a Sequence needs exactly one of frames or frame_paths")
        if len(self) == 0:
            raise ValueError(f"sequence {self.name!r} has no frames")
        self.ground_truth = np.asarray(self.ground_truth, dtype=np.float64)
        if len(self.ground_truth) != len(self):
            raise ValueError(f"sequence {self.name!r}: {len(self.ground_truth)} boxes for {len(self)} frames")
        if self.frames is not None:
            check_frame_sizes([np.shape(f)[:2] for f in self.frames], f"sequence {self.name!r}: frame")
            check_ground_truth(self.ground_truth, np.shape(self.frames[0]), allow_missing=True,
                               where=f"sequence {self.name!r}")

    def __len__(self) -> int:
        return len(self.frames) if self.frames is not None else len(self.frame_paths or [])

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as an ``H x W x 3`` uint8 RGB array (read from disk for loaded sequences)."""
        if self.frames is not None:
            return self.frames[index]
        return read_image(self.frame_paths[index])  # type: ignore[index]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.frame(i) for i in range(len(self)))


def read_image(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8, with an error naming the file when it is missing or not decodable."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"image file {path} does not exist")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode image file {path}: it is corrupt or not an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------------------------------------------- generator


def _photo(name: str) -> np.ndarray:
    from skimage import data  # imported here: scikit-image is needed only by the generator

    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[:, :, :3])


def _background(name: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    image = _photo(name).astype(np.float32)
    if name != "coffee":  # grey textures get a colour tint so that colour channels carry something
        image *= rng.uniform(0.6, 1.1, size=3).astype(np.float32)
    side = min(image.shape[:2])
    crop = int(side * rng.uniform(0.6, 0.9))
    y0 = int(rng.integers(0, image.shape[0] - crop + 1))
    x0 = int(rng.integers(0, image.shape[1] - crop + 1))
    out = cv2.resize(image[y0 : y0 + crop, x0 : x0 + crop], (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.clip(out, 0, 255)


def _smooth_path(n: int, rng: np.random.Generator, amplitude: float, cycles: float) -> np.ndarray:
    """A smooth 1-D trajectory in [-amplitude, amplitude]: two sines with random phases."""
    t = np.linspace(0.0, 1.0, n)
    phase = rng.uniform(0, 2 * np.pi, size=2)
    mix = rng.uniform(0.25, 0.45)
    path = (1 - mix) * np.sin(2 * np.pi * cycles * t + phase[0]) + mix * np.sin(2 * np.pi * 2.3 * cycles * t + phase[1])
    return amplitude * path / max(np.abs(path).max(), 1e-6)


def _paste(canvas: np.ndarray, sprite: np.ndarray, center: tuple[float, float], scale: float, angle: float) -> None:
    """Composite ``sprite`` into ``canvas`` (in place), its centre at continuous ``center = (cx, cy)``."""
    sh, sw = sprite.shape[:2]
    matrix = cv2.getRotationMatrix2D(((sw - 1) / 2.0, (sh - 1) / 2.0), angle, scale)
    # move the sprite's centre (pixel index (sw-1)/2) onto the canvas index of the continuous centre (c - 0.5)
    matrix[:, 2] += np.array([center[0] - 0.5 - (sw - 1) / 2.0, center[1] - 0.5 - (sh - 1) / 2.0])
    size = (canvas.shape[1], canvas.shape[0])
    warped = cv2.warpAffine(sprite, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = cv2.warpAffine(np.ones((sh, sw), np.float32), matrix, size, flags=cv2.INTER_LINEAR)[:, :, None]
    canvas *= 1.0 - mask
    canvas += warped * mask


def _motion_blur(frame: np.ndarray, length: float, angle: float) -> np.ndarray:
    size = int(np.ceil(length)) | 1
    if size < 3:
        return frame
    kernel = np.zeros((size, size), np.float32)
    kernel[size // 2, :] = 1.0
    kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle, 1.0), (size, size))
    return cv2.filter2D(frame, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


def make_sequence(
    attribute: str = "mixed",
    n_frames: int = 60,
    size: tuple[int, int] = (160, 160),
    seed: int = 0,
) -> Sequence:
    """Render a sequence of ``n_frames`` frames of ``size = (H, W)`` with one tracking difficulty.

    ``attribute`` is one of :data:`ATTRIBUTES` (documented there). The object is a crop of a scikit-image photograph
    (astronaut, cat, coffee cup or rocket, chosen by ``seed``) about a fifth of the frame tall, moving smoothly over
    another photograph. Ground truth: the box of the object's un-rotated extent at its current scale, centred on its
    centre, exact to float precision because the frames are rendered from it (also during occlusion, as in OTB).
    """
    if attribute not in ATTRIBUTES:
        raise ValueError(f"unknown attribute {attribute!r}; expected one of {sorted(ATTRIBUTES)}")
    if n_frames < 2:
        raise ValueError(f"n_frames must be at least 2, got {n_frames}")
    height, width = int(size[0]), int(size[1])
    if height < 48 or width < 48:
        raise ValueError(f"size must be at least 48x48 pixels, got {size}")
    rng = np.random.default_rng(seed)
    object_name = list(_OBJECTS)[int(rng.integers(len(_OBJECTS)))]
    background_name = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))]
    if background_name == object_name:
        background_name = "gravel"
    top, bottom, left, right = _OBJECTS[object_name]
    crop = _photo(object_name)[top:bottom, left:right].astype(np.float32)
    obj_h = 0.22 * min(height, width)
    obj_w = obj_h * crop.shape[1] / crop.shape[0]
    sprite = cv2.resize(crop, (int(round(obj_w)), int(round(obj_h))), interpolation=cv2.INTER_AREA)
    background = _background(background_name, (height, width), rng)
    script = _script(attribute, n_frames, (height, width), sprite.shape[:2], background_name, rng)
    frames, boxes = _render(attribute, script, sprite, background)
    return Sequence(
        name=f"synthetic-{attribute}-{seed}",
        frames=frames,
        ground_truth=boxes,
        attributes=(attribute,),
        metadata={"object": object_name, "background": background_name, "description": ATTRIBUTES[attribute]},
    )


@dataclass
class _Script:
    """Per-frame trajectory and effects of a generated sequence: centre, scale, angle and brightness gain, the
    look-alike's centres and the occluder's x positions, y and patch (when the attribute has them)."""

    cx: np.ndarray
    cy: np.ndarray
    scale: np.ndarray
    angle: np.ndarray
    gain: np.ndarray
    distractor: tuple[np.ndarray, np.ndarray] | None
    occluder: tuple[np.ndarray, float, np.ndarray] | None


def _script(attribute: str, n_frames: int, size: tuple[int, int], sprite_size: tuple[int, int],
            background_name: str, rng: np.random.Generator) -> _Script:
    """What happens in each frame for ``attribute`` (random draws in a fixed order: sequences depend on the seed)."""
    height, width = size
    obj_h, obj_w = sprite_size
    mixed = attribute == "mixed"
    t = np.linspace(0.0, 1.0, n_frames)
    scale = np.ones(n_frames)
    if attribute == "scale":
        scale = 1.0 + 0.6 * np.sin(np.pi * t) ** 2 - 0.2 * t
    elif mixed:
        scale = 1.0 + 0.25 * np.sin(np.pi * t) ** 2
    max_half = 0.5 * np.hypot(obj_w, obj_h) * scale.max()
    amp_x = max(0.5 * width - max_half - 4, 4.0)
    amp_y = max(0.5 * height - max_half - 4, 4.0)
    cycles = 0.8 if attribute != "blur" else 1.6
    cx = 0.5 * width + _smooth_path(n_frames, rng, amp_x, cycles)
    cy = 0.5 * height + _smooth_path(n_frames, rng, amp_y, cycles * 0.7)
    angle = np.zeros(n_frames)
    if attribute == "rotation":
        angle = 35.0 * np.sin(2 * np.pi * 0.9 * t + rng.uniform(0, np.pi))
    elif mixed:
        angle = 15.0 * np.sin(2 * np.pi * 0.6 * t)
    gain = np.ones(n_frames)
    if attribute == "illumination":
        gain = 0.9 + 0.45 * np.sin(2 * np.pi * 1.3 * t + rng.uniform(0, np.pi))
    elif mixed:
        gain = 1.0 - 0.3 * np.sin(np.pi * t) ** 2
    distractor = None
    if attribute in ("distractor", "mixed"):
        # the look-alike mirrors the target's path about the frame centre, so the two pass close to each other
        distractor = (width - cx[::-1] * 0.9 - 0.05 * width, height - cy * 0.9 - 0.05 * height)
    occluder = None
    if attribute in ("occlusion", "mixed"):
        mid = n_frames // 2
        occ_w = obj_w * (1.4 if attribute == "occlusion" else 0.7)
        occ_h = obj_h * 1.6
        sweep = np.clip((np.arange(n_frames) - (mid - n_frames * 0.2)) / (n_frames * 0.4), 0.0, 1.0)
        occ_x = cx[mid] - occ_w / 2 + (sweep - 0.5) * 4.0 * occ_w  # sweeps across the target's spot at ``mid``
        occ_y = cy[mid] - occ_h / 2
        occ_patch = cv2.resize(_photo("brick" if background_name != "brick" else "grass"), (int(occ_w), int(occ_h)))
        occluder = (occ_x, occ_y, occ_patch.astype(np.float32) * 0.7)
    return _Script(cx, cy, scale, angle, gain, distractor, occluder)


def _render(attribute: str, script: _Script, sprite: np.ndarray,
            background: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The frames (uint8) and the true boxes of ``script``."""
    mixed = attribute == "mixed"
    n_frames, width = len(script.cx), background.shape[1]
    obj_h, obj_w = sprite.shape[:2]
    cx, cy, scale, angle, distractor, occluder = (
        script.cx, script.cy, script.scale, script.angle, script.distractor, script.occluder)
    frames: list[np.ndarray] = []
    boxes = np.zeros((n_frames, 4))
    shadow = np.linspace(0.75, 1.15, width, dtype=np.float32)[None, :, None]
    for i in range(n_frames):
        canvas = background.copy()
        if distractor is not None:
            _paste(canvas, sprite, (distractor[0][i], distractor[1][i]), scale[i], -angle[i])
        _paste(canvas, sprite, (cx[i], cy[i]), scale[i], angle[i])
        if occluder is not None and -occluder[2].shape[1] < occluder[0][i] < width:
            _paste_box(canvas, occluder[2], occluder[0][i], occluder[1])
        if attribute == "illumination" or mixed:
            canvas *= script.gain[i] * np.roll(shadow, int(i * width / n_frames), axis=1)
        if attribute == "blur" or mixed:
            after, before = min(i + 1, n_frames - 1), max(i - 1, 0)
            vx, vy = cx[after] - cx[before], cy[after] - cy[before]
            length = min(np.hypot(vx, vy) * (1.6 if not mixed else 0.8), 13.0)
            canvas = _motion_blur(canvas, length, -np.degrees(np.arctan2(vy, vx)))
        frames.append(np.clip(canvas, 0, 255).astype(np.uint8))
        w, h = obj_w * scale[i], obj_h * scale[i]
        boxes[i] = (cx[i] - w / 2.0, cy[i] - h / 2.0, w, h)
    return frames, boxes


def _paste_box(canvas: np.ndarray, patch: np.ndarray, x: float, y: float) -> None:
    """Paste an opaque patch with its top-left corner at whole-pixel ``(x, y)``, clipped to the canvas."""
    height, width = canvas.shape[:2]
    x0, y0 = int(round(x)), int(round(y))
    ph, pw = patch.shape[:2]
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + pw, width), min(y0 + ph, height)
    if cx1 > cx0 and cy1 > cy0:
        canvas[cy0:cy1, cx0:cx1] = patch[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]


# ---------------------------------------------------------------------------------------------------------- OTB loader

_OTB_LAYOUT = (
    "expected OTB layout: <folder>/img/0001.jpg ... (sorted image files) and <folder>/groundtruth_rect.txt "
    "with one 'x,y,w,h' line per frame (comma, tab or space separated, 1-based pixels)"
)
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def _parse_ground_truth(path: Path) -> np.ndarray:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = [p for p in line.replace(",", " ").replace("\t", " ").split(" ") if p]
        if len(parts) != 4:
            raise ValueError(f"{path}, line {number}: expected 4 numbers x,y,w,h, got {line!r}; {_OTB_LAYOUT}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise ValueError(f"{path}, line {number}: not a number in {line!r}; {_OTB_LAYOUT}") from None
    if not rows:
        raise ValueError(f"{path} holds no boxes; {_OTB_LAYOUT}")
    return np.asarray(rows, dtype=np.float64)


def load_otb(folder: str | Path, allow_missing: bool = False) -> Sequence:
    """Load an OTB-format sequence folder (``img/*.jpg`` + ``groundtruth_rect.txt``); frames are read lazily.

    OTB boxes are 1-based; they are converted to this package's 0-based convention. Every box is checked against
    the first frame's size. ``allow_missing=True`` accepts NaN rows (UAV123's marker for a target out of view) and
    keeps them as NaN, which the evaluation skips; otherwise NaN is an error. TC128/UAV123 sequences converted to
    this layout load the same way (see ``datasets/otb/README.md``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"sequence folder {folder} does not exist; {_OTB_LAYOUT}")
    img_dir = folder / "img"
    if not img_dir.is_dir():
        raise FileNotFoundError(f"{folder} has no img/ folder; {_OTB_LAYOUT}")
    gt_path = folder / "groundtruth_rect.txt"
    if not gt_path.is_file():
        candidates = sorted(folder.glob("groundtruth_rect*.txt"))  # OTB's two-target sequences (Jogging.1 ...)
        if not candidates:
            raise FileNotFoundError(f"{folder} has no groundtruth_rect.txt; {_OTB_LAYOUT}")
        gt_path = candidates[0]
    paths = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"{img_dir} holds no image files; {_OTB_LAYOUT}")
    boxes = _parse_ground_truth(gt_path)
    if len(boxes) != len(paths):
        raise ValueError(
            f"{gt_path} has {len(boxes)} boxes but {img_dir} has {len(paths)} frames; the counts must match"
        )
    first = read_image(paths[0])
    _check_sizes(paths)
    boxes[:, :2] -= 1.0
    where = f"{gt_path} (0-based after converting from OTB's 1-based)"
    check_ground_truth(boxes, first.shape, allow_missing=allow_missing, where=where)
    return Sequence(name=folder.name, frame_paths=paths, ground_truth=boxes, metadata={"folder": str(folder)})


def _check_sizes(paths: list[Path]) -> None:
    """Every image file has the first one's size (read from the file headers where PIL is there)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - PIL ships with torchvision; without it, decode
        Image = None

    def size(path: Path) -> tuple[int, ...]:
        if Image is None:
            return read_image(path).shape[:2]
        with Image.open(path) as image:
            return (image.height, image.width)

    check_frame_sizes([size(p) for p in paths], f"{paths[0].parent}: frame")


def load_otb_dataset(root: str | Path, names: SequenceABC[str] | None = None) -> list[Sequence]:
    """Load every OTB-format sequence folder under ``root`` (or only ``names``), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data set folder {root} does not exist; expected one sub-folder per sequence")
    if names is None:
        folders = sorted(p for p in root.iterdir() if (p / "img").is_dir())
        if not folders:
            raise FileNotFoundError(f"{root} holds no sequence folders; {_OTB_LAYOUT}")
    else:
        folders = [root / name for name in names]
    return [load_otb(folder) for folder in folders]


#: where the development checkout keeps one real OTB sequence, beside the repository (never shipped, never fetched)
DEVELOPMENT_SEQUENCE = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "otb_crossing"


def development_sequence_path() -> Path | None:
    """The real OTB sequence ``../shared/realdata/otb_crossing`` next to the repository, or None when absent.

    One real sequence for development: the dashboard offers it, the benchmark and the tutorial add it to the
    generated ones, and a test loads it, all only when it is there.
    """
    return DEVELOPMENT_SEQUENCE if DEVELOPMENT_SEQUENCE.is_dir() else None
