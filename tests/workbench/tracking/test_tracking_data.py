"""Sequence generator and OTB loader: deterministic ground truth, the three separators, clear errors."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from workbench.tracking import ATTRIBUTES, development_sequence_path, load_otb, load_otb_dataset, make_sequence
from workbench.tracking.sequences import DEVELOPMENT_SEQUENCE


def write_otb(folder: Path, boxes: list[str], n_frames: int, size: tuple[int, int] = (48, 64)) -> Path:
    """A tiny OTB folder: ``n_frames`` JPEGs and a ground-truth file with the given lines."""
    (folder / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n_frames):
        cv2.imwrite(str(folder / "img" / f"{i + 1:04d}.jpg"), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
    (folder / "groundtruth_rect.txt").write_text("\n".join(boxes) + "\n")
    return folder


@pytest.mark.parametrize("attribute", sorted(ATTRIBUTES))
def test_generated_sequence_is_deterministic_and_boxes_lie_in_frame(attribute):
    a = make_sequence(attribute, n_frames=12, size=(96, 96), seed=3)
    b = make_sequence(attribute, n_frames=12, size=(96, 96), seed=3)
    assert len(a) == 12 and a.frames[0].shape == (96, 96, 3) and a.frames[0].dtype == np.uint8
    assert np.array_equal(a.ground_truth, b.ground_truth)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
    gt = a.ground_truth
    assert (gt[:, 2] > 0).all() and (gt[:, 3] > 0).all()
    assert (gt[:, 0] >= 0).all() and (gt[:, 0] + gt[:, 2] <= 96).all()  # the path keeps the object in view
    assert attribute in a.attributes


def test_ground_truth_marks_the_rendered_object():
    # the object is a photo crop over another photo: the box interior must differ from the plain background there
    seq = make_sequence("scale", n_frames=20, size=(120, 120), seed=1)
    moving = np.abs(seq.frames[0].astype(float) - seq.frames[10].astype(float)).sum(axis=2) > 30
    for index in (0, 10):
        x, y, w, h = np.round(seq.ground_truth[index]).astype(int)
        inside = moving[y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4].mean()
        assert inside > 0.5, "the box centre should hold pixels that changed as the object moved"
    assert seq.ground_truth[10, 2] > 1.2 * seq.ground_truth[0, 2]  # the "scale" attribute grows the object


def test_generator_rejects_unknown_attribute():
    with pytest.raises(ValueError, match="unknown attribute"):
        make_sequence("teleport")


@pytest.mark.parametrize("separator", [",", "\t", " "])
def test_otb_loader_reads_separators_and_converts_to_zero_based(tmp_path, separator):
    lines = [separator.join(["5", "6", "10", "12"]), separator.join(["7", "8", "10", "12"])]
    seq = load_otb(write_otb(tmp_path / "seq", lines, 2))
    assert np.allclose(seq.ground_truth, [[4, 5, 10, 12], [6, 7, 10, 12]])
    frame = seq.frame(1)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8


def test_otb_loader_rejects_box_outside_frame(tmp_path):
    folder = write_otb(tmp_path / "seq", ["5,6,10,12", "200,6,10,12"], 2)
    with pytest.raises(ValueError, match="line 2.*outside"):
        load_otb(folder)


def test_otb_loader_rejects_count_mismatch(tmp_path):
    folder = write_otb(tmp_path / "seq", ["5,6,10,12"] * 3, 2)
    with pytest.raises(ValueError, match="3 boxes but .* 2 frames"):
        load_otb(folder)


def test_otb_loader_rejects_corrupt_jpeg_naming_it(tmp_path):
    folder = write_otb(tmp_path / "seq", ["5,6,10,12"] * 2, 2)
    (folder / "img" / "0001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="0001.jpg"):
        load_otb(folder)


@pytest.mark.parametrize(
    ("line", "message"),
    [("5,6,0,12", "positive width"), ("5,6,nan,12", "finite"), ("5,6,10", "expected 4 numbers")],
)
def test_otb_loader_rejects_bad_boxes(tmp_path, line, message):
    folder = write_otb(tmp_path / "seq", ["5,6,10,12", line], 2)
    with pytest.raises(ValueError, match=message):
        load_otb(folder)


def test_otb_loader_missing_pieces_name_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_otb(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="img/"):
        load_otb(tmp_path / "empty")
    folder = write_otb(tmp_path / "nogt", ["1,1,2,2"], 1)
    (folder / "groundtruth_rect.txt").unlink()
    with pytest.raises(FileNotFoundError, match="groundtruth_rect.txt"):
        load_otb(folder)


def test_otb_dataset_loads_every_sequence_folder(tmp_path):
    write_otb(tmp_path / "b", ["1,1,5,5"] * 2, 2)
    write_otb(tmp_path / "a", ["1,1,5,5"] * 3, 3)
    sequences = load_otb_dataset(tmp_path)
    assert [s.name for s in sequences] == ["a", "b"] and [len(s) for s in sequences] == [3, 2]


def test_development_sequence_path_is_the_folder_beside_the_repository_or_none():
    repository = Path(__file__).resolve().parents[3]
    assert DEVELOPMENT_SEQUENCE == repository.parent / "shared" / "realdata" / "otb_crossing"
    assert development_sequence_path() == (DEVELOPMENT_SEQUENCE if DEVELOPMENT_SEQUENCE.is_dir() else None)


def test_real_otb_sequence_loads():
    folder = development_sequence_path()
    if folder is None:
        pytest.skip(f"real OTB sequence not present at {DEVELOPMENT_SEQUENCE}")
    seq = load_otb(folder)
    assert len(seq) == 120 and seq.ground_truth.shape == (120, 4)
    frame = seq.frame(0)
    assert frame.shape == (240, 360, 3)
    assert np.allclose(seq.ground_truth[0], [204, 150, 17, 50])  # line 1 is "205,151,17,50", 1-based
