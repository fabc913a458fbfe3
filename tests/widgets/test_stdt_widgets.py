"""The STD dashboard built in-process (no browser): the sliders and reseed change what is greyed out and the view."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from widgets.stdt import StdtDashboard, clip_figure
from workbench.data.clips import load_forgery_clips
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
