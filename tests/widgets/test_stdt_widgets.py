"""The STD dashboard built in-process (no browser): the sliders and reseed change what is greyed out and the view."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from widgets.inputs import stdt_panel
from widgets.stdt import StdtDashboard, clip_figure
from workbench.data.clips import load_forgery_clips, read_video
from workbench.stdt import BagOfPatchesViT, kept_mask
from workbench.train import one_thread


@pytest.fixture(scope="module")
def board() -> StdtDashboard:
    with one_thread():
        torch.manual_seed(0)
        yield StdtDashboard(BagOfPatchesViT(dim=16, depth=2, heads=2), load_forgery_clips("test", n_per_identity=1))


def test_ratio_sliders_change_the_kept_share(board):
    board.spatial_slider.value, board.temporal_slider.value = 0.25, 0.25
    assert "kept 72 of 128 patches (6 frames)" in board.stats.value
    before = board.view_out.outputs
    board.temporal_slider.value = 0.5
    assert "kept 48 of 128 patches (4 frames)" in board.stats.value
    board.spatial_slider.value = 0.5
    assert "kept 32 of 128 patches (4 frames)" in board.stats.value
    assert board.view_out.outputs != before


def test_reseed_draws_other_patches_and_clip_picker_shows_a_fake_with_its_mask(board):
    before_draw = board.draw()
    before_view = board.view_out.outputs
    board.reseed_button.click()
    assert not torch.equal(before_draw[1], board.draw()[1]) and board.view_out.outputs != before_view
    fake = int(np.flatnonzero(board.data.labels.numpy() == 1)[0])
    board.clip_picker.value = fake
    assert board.data.kinds[fake] in str(board.view_out.outputs) and "P(fake)" in board.stats.value


def test_figure_greys_exactly_the_dropped_patches():
    clip = np.ones((2, 8, 8))
    keep = (torch.tensor([0, 0, 1]), torch.tensor([0, 3, 2]))
    kept = kept_mask(keep, 2, 2)
    assert kept.sum() == 3 and kept[0, 0, 0] and kept[0, 1, 1] and kept[1, 1, 0] and not kept[1, 0, 0]
    fig = clip_figure(clip, kept, kept.astype(float), np.zeros((2, 8, 8)))
    shown = np.asarray(fig.data[0].z)[::-1]  # frame 0, row 1
    assert (shown[:4, :4] == 1).all() and (shown[:4, 4:] < 1).all()


def test_another_draw_of_the_same_clip_shows_what_a_fresh_figure_shows(board):
    """A slider move or reseed updates the clip's figure in place (fast); the view must be the fresh figure's."""
    board.clip_picker.value = 0
    for spatial, temporal in ((0.5, 0.25), (0.1, 0.625), (0.0, 0.0)):
        board.spatial_slider.value, board.temporal_slider.value = spatial, temporal
        moved = board.view_out.outputs[0]["data"]["application/vnd.plotly.v1+json"]
        board._fig = None  # force the full build of the same view
        board.redraw()
        assert board.view_out.outputs[0]["data"]["application/vnd.plotly.v1+json"] == moved
    assert "(dropped)" not in str(moved["layout"]["annotations"])  # no dropout: every frame kept


def test_legend_says_dropped_is_darkened_and_the_view_darkens_exactly_the_dropped_patches(board):
    assert "<b>darkened</b> = dropped" in board.legend.value and "<b>as is</b> = kept" in board.legend.value
    board.clip_picker.value = 0
    board.spatial_slider.value, board.temporal_slider.value = 0.5, 0.5
    plot = board._fig  # the figure the view shows (its JSON carries the maps binary-encoded)
    keep = board.draw()
    kept = kept_mask(keep, board.model.frames, board.model.grid)
    patch = board.data.clips.shape[-1] // board.model.grid
    kept_px = np.kron(kept, np.ones((patch, patch))).astype(bool)
    frames = board.data.clips[0, :, 0].numpy()
    assert kept.any() and not kept.all()
    for row in (0, 1):  # the "kept patches" row and the frame under the attention overlay
        shown = np.stack([np.asarray(plot.data[4 * k + row].z, dtype=float)[::-1]
                          for k in range(board.model.frames)])
        assert np.allclose(shown[kept_px], frames[kept_px])  # kept: plain
        assert shown[~kept_px].mean() < 0.5 * frames[~kept_px].mean()  # dropped (and dropped frames): darkened
    dropped_frames = [k for k in range(board.model.frames) if not kept[k].any()]
    titles = [a.text for a in plot.layout.annotations[:board.model.frames]]
    assert dropped_frames and all("(dropped)" in titles[k] for k in dropped_frames)


def test_ratio_sliders_are_explained_with_the_models_frame_and_patch_counts(board):
    text = board.ratio_help.value
    assert f"share of the clip's {board.model.frames} frames dropped" in text
    assert f"share of the {board.model.grid ** 2} patch positions dropped in each kept frame" in text


def test_video_row_detect_faces_box_is_what_a_faceless_video_is_told_to_untick(board, tmp_path):
    path = tmp_path / "crops.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    for k in range(12):
        writer.write(np.full((64, 64, 3), 20 * k, np.uint8))
    writer.release()
    panel = stdt_panel(board)
    row = panel.rows[0]
    assert row.detect_faces.value and row.detect_faces in row.children[0].children  # on the row, ticked
    n = len(board.data)
    assert not row.load(str(path)) and len(board.data) == n
    assert "untick &#x27;detect faces&#x27; in this row" in row.message.value
    assert "detect_faces=False" not in row.message.value  # no code the page cannot run
    row.detect_faces.value = False
    assert row.load(str(path)) and len(board.data) == n + 1
    size = board.data.clips.shape[-1]
    expected = read_video(path, n_frames=board.model.frames, size=size, detect_faces=False)
    assert torch.allclose(board.data.clips[-1], torch.from_numpy(expected))
    assert board.clip_picker.value == n and "frames as they are, resized" in row.message.value


def _colour_video(path, n=12, side=64):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (side, side))
    for k in range(n):
        frame = np.zeros((side, side, 3), np.uint8)
        frame[..., 0], frame[..., 1], frame[..., 2] = 10 * k, 200 - 10 * k, 120  # colour, changing over time
        writer.write(frame)
    writer.release()
    return path


def _board_of(recipe) -> StdtDashboard:
    """A dashboard on an untrained model built from ``recipe`` and random clips of its input shape."""
    from workbench.data.clips import ClipSet
    from workbench.stdt import build_stdt, input_channels

    model = build_stdt(recipe)
    c, s, t = input_channels(recipe), recipe.size, recipe.frames
    data = ClipSet(torch.rand(2, t, c, s, s), torch.tensor([0, 1]), torch.zeros(2, t, s, s), ("real", "swap"),
                   torch.tensor([0, 1]))
    with one_thread():
        return StdtDashboard(model, data)


@pytest.mark.parametrize("colour", [False, True])
def test_page_says_what_the_model_was_trained_on_and_a_video_is_read_as_the_model_reads(colour, tmp_path):
    from workbench.stdt import STDT_SBI_SMOKE, STDT_SMOKE

    recipe = (STDT_SBI_SMOKE.with_(frames=4, dim=16, heads=2) if colour else
              STDT_SMOKE.with_(frames=4, dim=16, spatial_ratio=0.0, temporal_ratio=0.0))
    board = _board_of(recipe)
    said = board.trained_on.value
    assert "wb-stdt-trained-on" in board.trained_on._dom_classes and board.trained_on in board.children
    assert f"{recipe.size}x{recipe.size}" in said and ("colour" if colour else "grey") in said
    assert ("self-blended" in said) == colour and ("without dropout" in said) == (not colour)
    assert "Not trained on real videos" in said
    row = stdt_panel(board).rows[0]
    row.detect_faces.value = False
    assert row.load(str(_colour_video(tmp_path / "v.avi"))), row.message.value
    channels = 3 if colour else 1
    assert board.data.clips[-1].shape == (recipe.frames, channels, recipe.size, recipe.size)
    status = row.message.value
    assert f"at {recipe.size}x{recipe.size} {'colour' if colour else 'grey'}" in status
    assert "frames as they are" in status and "Not trained on real videos" in status and recipe.recipe in status


def test_a_model_without_a_recipe_is_said_to_be_of_unknown_training(board):
    assert "unknown" in board.trained_on.value and "not evidence" in board.trained_on.value
