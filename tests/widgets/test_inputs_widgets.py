"""The "Your data" panels in-process: bad input is reported on the row, the dashboard keeps its state; good input is
swapped in. Image views show a placeholder, not a broken image, before their first run."""

from __future__ import annotations

import datetime

import cv2
import numpy as np
import pytest
import torch

from widgets.inputs import PathRow, relabel_panel, stdt_panel
from widgets.placeholder import placeholder_png
from widgets.relabel import RelabelDashboard, dashboard
from widgets.stdt import StdtDashboard
from workbench.data.clips import load_forgery_clips
from workbench.stdt import BagOfPatchesViT
from workbench.train import one_thread

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def board() -> RelabelDashboard:
    return dashboard(baselines=("saliency",))


def _rows(panel) -> dict[str, PathRow]:
    return {row.what: row for row in panel.rows}


def test_relabel_dashboard_carries_the_panel_and_a_samples_placeholder(board):
    assert any(getattr(child, "rows", None) for child in board.children)
    assert bytes(board.samples.value).startswith(PNG)


def test_text_file_as_model_is_reported_and_the_teacher_kept(board, tmp_path):
    rows = _rows(relabel_panel(board))
    teacher = board.classifier
    text = tmp_path / "notes.pt"
    text.write_text("not a model")
    assert not rows["model"].load(str(text))
    assert "Cannot use this model" in rows["model"].message.value and "not a TorchScript file" in \
        rows["model"].message.value
    assert board.classifier is teacher


def test_torchscript_teacher_is_swapped_in(board, tmp_path):
    rows = _rows(relabel_panel(board))
    path = tmp_path / "teacher.pt"
    torch.jit.trace(board.classifier, board.images[:1]).save(str(path))
    assert rows["model"].load(str(path)), rows["model"].message.value
    assert board.classifier is not None and "teacher is now" in rows["model"].message.value


def test_colour_image_for_the_grey_model_is_reported_and_a_grey_one_added(board, tmp_path):
    rows = _rows(relabel_panel(board))
    n = len(board.images)
    colour = tmp_path / "colour.png"
    cv2.imwrite(str(colour), np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8))
    assert not rows["image"].load(str(colour))
    assert "colour (RGB) image" in rows["image"].message.value and len(board.images) == n
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.random.default_rng(0).integers(0, 255, (16, 16), dtype=np.uint8))
    assert rows["image"].load(str(grey)), rows["image"].message.value
    assert len(board.images) == n + 1 and board.image_picker.value == n
    assert board.image_picker.label == "yours: grey.png"


def test_upload_is_loaded_like_a_typed_path(board, tmp_path):
    row = _rows(relabel_panel(board))["image"]
    ok, buf = cv2.imencode(".png", np.zeros((16, 16), np.uint8))
    row.upload.value = ({"name": "up.png", "type": "image/png", "size": len(buf), "content": memoryview(buf),
                         "last_modified": datetime.datetime(2026, 1, 1)},)
    assert row.path.value.endswith("up.png") and "added up.png" in row.message.value


@pytest.fixture(scope="module")
def stdt_board() -> StdtDashboard:
    with one_thread():
        torch.manual_seed(0)
        yield StdtDashboard(BagOfPatchesViT(dim=16, depth=2, heads=2), load_forgery_clips("test", n_per_identity=1))


def test_video_with_no_face_is_reported_and_the_clips_kept(stdt_board, tmp_path):
    path = tmp_path / "noface.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    for k in range(12):
        writer.write(np.full((64, 64, 3), 20 * k, np.uint8))
    writer.release()
    row = _rows(stdt_panel(stdt_board))["video"]
    n = len(stdt_board.data)
    assert not row.load(str(path))
    assert "no face found" in row.message.value and len(stdt_board.data) == n


def test_placeholder_is_a_png_of_the_asked_size():
    import io

    from PIL import Image

    png = placeholder_png(200, 40, "press Run")
    assert png.startswith(PNG) and Image.open(io.BytesIO(png)).size == (200, 40)
    with pytest.raises(ValueError, match="positive"):
        placeholder_png(0, 10)
