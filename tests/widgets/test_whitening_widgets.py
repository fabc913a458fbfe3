"""The whitening dashboard built in-process (no browser): controls change the views; figures draw what they say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from widgets.whitening import WhiteningDashboard, correlation_figure, pair_figure
from workbench.data.faces import load_forgery_faces
from workbench.whitening import WhiteningDetector


@pytest.fixture(scope="module")
def board() -> WhiteningDashboard:
    torch.manual_seed(0)
    data = load_forgery_faces("test", n_per_identity=2)
    white, plain = WhiteningDetector(width=8, whiten=True), WhiteningDetector(width=8, whiten=False)
    white.calibrate(data.images, T=20)
    return WhiteningDashboard({"whitened": white, "plain (BatchNorm)": plain}, data)


def test_channel_slider_redraws_the_maps_and_names_the_concept(board):
    board.channel_slider.value = 0
    maps, stats = board.maps_out.outputs, board.stats.value
    assert "ch 0 = manipulated" in stats and "P(fake)" in stats
    times = []
    for channel in (1, 5, 2):
        board.channel_slider.value = channel
        times.append(board.last_redraw_s)
    print(f"channel re-draw: median {1000 * float(np.median(times)):.1f} ms")
    assert board.maps_out.outputs != maps and "ch 2 = nose" in board.stats.value


def test_a_channel_move_draws_what_a_fresh_figure_of_that_channel_draws(board):
    """The slider updates the pair's figure in place (fast); what it shows must be the fresh figure's, map for map."""
    board.pair_picker.value = 1
    for channel in (3, 0, 4):
        board.channel_slider.value = channel
        moved = board.maps_out.outputs[0]["data"]["application/vnd.plotly.v1+json"]
        board._pair_fig = None  # force the full build of the same view
        board.redraw()
        fresh = board.maps_out.outputs[0]["data"]["application/vnd.plotly.v1+json"]
        assert moved == fresh
    real_map = np.asarray(board._pair_fig.data[1].z)[::-1]
    np.testing.assert_allclose(real_map, board._pair_maps["real"][4], rtol=1e-6)


def test_picking_a_pair_shows_a_real_and_a_fake_of_the_same_person(board):
    board.pair_picker.value = 3
    real, fake = board.pair()
    assert int(board.data.labels[real]) == 0 and int(board.data.labels[fake]) == 1
    assert int(board.data.identities[real]) == int(board.data.identities[fake])
    before = board.maps_out.outputs
    board.pair_picker.value = 4
    assert board.maps_out.outputs != before


def test_model_toggle_switches_correlations_and_gallery(board):
    corr, gallery = board.corr_out.outputs, board.gallery_out.outputs
    board.model_picker.value = "plain (BatchNorm)"
    assert board.corr_out.outputs != corr and board.gallery_out.outputs != gallery
    assert "plain" in board.stats.value
    board.model_picker.value = "whitened"


def test_correlation_figure_reports_the_mean_offdiagonal_before_and_after(board):
    fig = correlation_figure(torch.eye(4) * 0.5 + 0.5, torch.eye(4))
    assert "0.500" in fig.layout.annotations[0].text and "0.000" in fig.layout.annotations[1].text
    board.model_picker.value = "whitened"
    titles = board.corr_out.outputs[0]["data"]["application/vnd.plotly.v1+json"]["layout"]["annotations"]
    before, after = (float(t["text"].rsplit(" ", 1)[1]) for t in titles[:2])
    assert after < before  # the whitening layer decorrelates its input


def test_pair_figure_outlines_the_true_mask_on_the_fake_only():
    mask = np.zeros((8, 8), np.float32)
    mask[2:5, 2:5] = 1
    fig = pair_figure(*(np.random.rand(8, 8) for _ in range(4)), mask)
    contours = [t for t in fig.data if t.type == "contour"]
    assert len(contours) == 2 and {t.xaxis for t in contours} == {"x3", "x4"}


def test_colour_self_blended_faces_are_drawn_in_colour_with_their_masks_and_maps():
    from widgets.whitening import explanation_figure, face_image
    from workbench.data.face_sbi import load_sbi_faces

    torch.manual_seed(0)
    data = load_sbi_faces("test", 64, 1)
    white = WhiteningDetector(3, width=8, whiten=True, image_size=64)
    board = WhiteningDashboard({"whitened": white}, data)
    board.channel_slider.value = 1
    shown = board.maps_out.outputs[0]["data"]
    assert "ch 1" in board.stats.value and shown  # the colour pair was drawn
    fakes = data.subset(data.labels == 1)
    maps = np.random.default_rng(0).random((2, 64, 64))
    fig = explanation_figure([face_image(x) for x in fakes.images[:2]], [m[0].numpy() for m in fakes.masks[:2]],
                             {"concept channel": maps, "Grad-CAM": maps})
    kinds = [t.type for t in fig.data]
    assert kinds.count("image") == 2 and kinds.count("contour") == 4  # colour faces; mask outlined on both maps
    assert face_image(fakes.images[0]).shape == (64, 64, 3)


def test_the_real_faces_section_opens_the_colour_detectors_on_held_out_self_blends():
    from widgets.whitening import WhiteningDashboard, real_faces_section

    section = real_faces_section(smoke=True)
    area = section.children[-1]
    assert area.children == ()  # nothing built before the click: the page's first render does not pay for it
    section.open_board()
    board = area.children[0]
    assert isinstance(board, WhiteningDashboard) and board.data.images.shape[1:] == (3, 64, 64)
    assert board.model.in_channels == 3 and "P(fake)" in board.stats.value
    board.channel_slider.value = 0
    real, fake = board.pair()
    assert board.data.kinds[fake] == "self_blend" and float(board.data.masks[fake].sum()) > 0
    assert "held-out real faces" in section.children[2].value


def test_the_pair_note_says_which_face_scored_higher_and_by_how_much(board):
    """Issue 29: pair #0 showed P(fake) real 0.40 > manipulated 0.34 with no comment."""
    for k in range(min(6, len(board.pair_picker.options))):
        board.pair_picker.value = k
        p_real, p_fake = board._proba
        verdict = "Right on this pair" if p_fake > p_real else "Wrong on this pair"
        assert verdict in board.stats.value and f"{abs(p_fake - p_real):.2f}" in board.stats.value


def test_the_which_model_read_your_photo_line_matches_the_shipped_sidecar():
    """Issue 24: the page names the weights that read a user's photo, what they were trained on and their AUC, as
    the shipped sidecar records them."""
    import json

    from widgets.whitening import reader_note
    from workbench.cache import SHIPPED_DIR
    from workbench.whitening import whitening_detector

    models = {"whitened": whitening_detector(True, progress=False)}
    note = reader_note(models)
    sidecar = json.loads(next(SHIPPED_DIR.glob("whitening_detector_white-*.json")).read_text())
    assert f"<code>{sidecar['name']}</code>" in note
    assert f"validation AUC {sidecar['metrics']['val_auc_calibrated']:.2f}" in note
    assert f"{sidecar['recipe']['epochs']} epochs" in note and "grey 32 px" in note
    assert all(kind in note for kind in sidecar["recipe"]["train_kinds"])


def test_the_photo_row_says_which_detector_read_the_photo_and_follows_the_read_with_toggle(board, tmp_path):
    """Issue 24 item 4: the photo row names the model that actually read the photo and what it was trained on
    (from its recipe); switching the detectors switches the sentence, and the colour ones read in tinted grey."""
    import cv2
    from skimage import data as skdata

    from widgets.whitening import whitening_panel
    from workbench.inputs import load_face
    from workbench.whitening import predict_fake_proba, reader_sentence, tinted_grey, whitening_detector

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    colour = {"whitened": whitening_detector(True, data="sbi", progress=False),
              "plain (BatchNorm)": whitening_detector(False, data="sbi", progress=False)}
    grey = {"whitened": whitening_detector(True, progress=False)}
    panel = whitening_panel(board, {"colour": colour, "grey": grey})
    row, said = panel.rows[0], panel.reader_lines
    assert panel.readers.value == "colour" and said.value == ""
    assert row.load(str(photo)), row.message.value
    for name, model in colour.items():
        assert html_text(reader_sentence(model, name)) in html_text(said.value)
    assert "self-blends of tinted-grey LFW faces (and the astronaut), 64 px colour" in html_text(said.value)
    assert "whitening_detector_sbi_white" in said.value and "grey 32 px" not in said.value
    expected = float(predict_fake_proba(colour["whitened"], tinted_grey(load_face(str(photo), 3, 64))[None])[0])
    assert f"whitened {expected:.2f}" in row.message.value and "(64x64, colour" in row.message.value

    panel.readers.value = "grey"  # the same photo, re-read by the other detectors
    assert "grey 32 px synthetic forgeries" in said.value and "whitening_detector_white)" in said.value
    assert "self-blends" not in said.value and "mean tint" not in said.value
    assert html_text(reader_sentence(grey["whitened"], "whitened")) in html_text(said.value)
    assert "(32x32, grey" in row.message.value and "plain" not in row.message.value
    assert "grey 32 px" in panel.children[3].value  # the "which models read your photo" note follows the toggle


def html_text(text: str) -> str:
    import html

    return html.unescape(text)


def test_the_dashboard_on_a_users_own_faces_still_offers_both_photo_readers():
    """Passing ``data`` (a user's own faces for the views) keeps the photo row's colour and grey readers."""
    from widgets.whitening import dashboard
    from workbench.data import load_forgery_faces

    board = dashboard(data=load_forgery_faces("test"), smoke=True)
    panels = [c for c in board.children if "wb-yours" in getattr(c, "_dom_classes", ())]
    assert len(panels) == 1, [type(c).__name__ for c in board.children]
    options = panels[0].readers.options
    assert len(options) == 2 and any("colour" in o for o in options) and any("grey" in o for o in options)
