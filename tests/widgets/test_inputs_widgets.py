"""The "Your data" panels in-process: bad input is reported on the row, the dashboard keeps its state; good input is
swapped in. Image views show a placeholder, not a broken image, before their first run."""

from __future__ import annotations

import datetime

import cv2
import numpy as np
import pytest
import torch

from widgets.horkd import HorkdDashboard, horkd_panel
from widgets.inputs import PathRow, relabel_panel, stdt_panel
from widgets.placeholder import placeholder_png
from widgets.relabel import RelabelDashboard, dashboard
from widgets.stdt import StdtDashboard
from widgets.whitening import WhiteningDashboard, whitening_panel
from workbench.data.clips import load_forgery_clips
from workbench.data.face_crops import real_faces
from workbench.data.faces import load_forgery_faces
from workbench.horkd import METHODS, HorkdConfig, HorkdModels, build_student, build_teacher, load_horkd_data
from workbench.inputs import load_face
from workbench.stdt import BagOfPatchesViT
from workbench.train import one_thread
from workbench.whitening import WhiteningDetector

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
    new = board.classifier
    assert isinstance(new, torch.jit.ScriptModule)
    # every view reads the new teacher: the latent explorer and the scorecard with its explainers (none left bound
    # to the old model, whose maps the table would otherwise show beside the new model's scores)
    assert board.latent.classifier is new and board.scorecard.model is new
    assert set(board.scorecard.explainers) == {"RLD", "saliency"}
    assert all(e.forward_func is new for e in board.scorecard.explainers.values())
    assert board.scorecard.table is None and list(board.scorecard.explainer_pick.options) == ["RLD", "saliency"]


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


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, str]:
    """The astronaut (a face the Haar cascade finds), a grey gradient (no face), a text file named .png."""
    from skimage import data as skdata

    folder = tmp_path_factory.mktemp("photos")
    paths = {name: str(folder / f"{name}.png") for name in ("astronaut", "gradient", "notes")}
    cv2.imwrite(paths["astronaut"], cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(paths["gradient"], np.tile(np.linspace(0, 255, 96).astype(np.uint8), (80, 1)))
    (folder / "notes.png").write_text("not an image")
    return paths


def test_face_of_a_photo_is_cropped_like_the_training_faces(photos):
    face = load_face(photos["astronaut"], 1, 32)
    assert face.shape == (1, 32, 32)
    assert torch.allclose(face[0], torch.from_numpy(real_faces(32)[0][-1]), atol=1e-6)  # the embedded astronaut
    assert load_face(photos["astronaut"], 3, 64).shape == (3, 64, 64)
    with pytest.raises(ValueError, match="gradient.png: no face found"):
        load_face(photos["gradient"], 1, 32)


@pytest.fixture(scope="module")
def whitening_board() -> WhiteningDashboard:
    torch.manual_seed(0)
    data = load_forgery_faces("test", n_per_identity=2)
    white, plain = WhiteningDetector(width=8, whiten=True), WhiteningDetector(width=8, whiten=False)
    with one_thread():
        white.calibrate(data.images, T=20)
        return WhiteningDashboard({"whitened": white, "plain (BatchNorm)": plain}, data)


def test_face_photo_gets_both_detectors_p_fake_and_maps_and_a_photo_without_face_is_reported(whitening_board,
                                                                                            photos):
    panel = whitening_panel(whitening_board)
    row, view = panel.rows[0], panel.children[-1]
    assert not row.load(photos["gradient"])
    assert "Cannot use this face photo" in row.message.value and "no face found" in row.message.value
    assert not view.outputs
    assert not row.load(photos["notes"]) and "unreadable image" in row.message.value
    assert row.load(photos["astronaut"]), row.message.value
    assert "face found in astronaut.png" in row.message.value and "whitened 0." in row.message.value
    assert "plain (BatchNorm) 0." in row.message.value
    shown = view.outputs[0]["data"]["application/vnd.plotly.v1+json"]
    titles = [a["text"] for a in shown["layout"]["annotations"]]
    assert titles[0] == "your face" and any("ch 0 = manipulated" in t for t in titles) and len(shown["data"]) == 3
    whitening_board.channel_slider.value = 2
    titles = [a["text"] for a in view.outputs[0]["data"]["application/vnd.plotly.v1+json"]["layout"]["annotations"]]
    assert any("ch 2 = nose" in t for t in titles)  # the maps follow the dashboard's channel
    assert not row.load(photos["gradient"]) and "ch 2" in str(view.outputs)  # a bad photo keeps the last face


@pytest.fixture(scope="module")
def horkd_board() -> HorkdDashboard:
    config = HorkdConfig.smoke().with_(resolutions=(8,))
    with one_thread():
        torch.manual_seed(0)
        students = {(method, 8): build_student(config).eval() for method in METHODS}
        models = HorkdModels(config, build_teacher(config).eval(), {8: build_teacher(config).eval()}, students,
                             load_horkd_data(config)[1])
        return HorkdDashboard(models, curve_per_class=1)


def test_image_of_any_size_gets_every_streams_top1_and_a_bad_file_is_reported(horkd_board, photos):
    panel = horkd_panel(horkd_board)
    row, table, view = panel.rows[0], _by_class(panel, "wb-yours-predictions"), _by_class(panel, "wb-yours-views")
    assert not row.load(photos["notes"]) and "unreadable image" in row.message.value and not table.value
    assert row.load(photos["astronaut"]), row.message.value  # 512x512, resized to 32x32
    assert "resized to 32x32" in row.message.value and "HR teacher says" in row.message.value
    cells = table.value.split("<tr>")[2:]
    assert len(cells) == 2 + len(METHODS)  # teacher, assistant, every student
    classes = horkd_board.models.test.classes
    assert all(any(f"<b>{name}</b>" in cell for name in classes) for cell in cells)
    assert "32x32" in cells[0] and all("8x8" in cell for cell in cells[1:])
    shown = view.outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert "HR 32x32, then 8x8" in shown["layout"]["title"]["text"]


def _by_class(panel, css: str):
    """The one child of ``panel`` with CSS class ``css`` (the panel's rows and views, found by what they are)."""
    found = [child for child in panel.children if css in child._dom_classes]
    assert len(found) == 1, (css, [child._dom_classes for child in panel.children])
    return found[0]


def test_placeholder_is_a_png_of_the_asked_size():
    import io

    from PIL import Image

    png = placeholder_png(200, 40, "press Run")
    assert png.startswith(PNG) and Image.open(io.BytesIO(png)).size == (200, 40)
    with pytest.raises(ValueError, match="positive"):
        placeholder_png(0, 10)
