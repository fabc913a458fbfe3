"""The relabel dashboard built in-process (no browser): controls change the views; drawing helpers are correct."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from widgets.gallery import DASHBOARDS, gallery
from widgets.placeholder import placeholder_png
from widgets.relabel import (
    KEPT_RGB,
    SHIFTED_RGB,
    RelabelDashboard,
    dashboard,
    fitted_map,
    map_figure,
    sample_grid,
)
from workbench.data import PATCH_CLASSES
from workbench.models import ConvVAE, SmallCNN
from workbench.relabel import RelabelWarning


@pytest.fixture(scope="module")
def board() -> RelabelDashboard:
    return dashboard(baselines=("saliency", "integrated_gradients"))


def test_latent_slider_redraws_the_decoded_image(board):
    board.image_picker.value = 0
    before = board.decoded.value
    slider = board.latent_sliders[0]
    times = []
    for value in (2.5, -2.5, 1.0):
        slider.value = value
        times.append(board.last_redraw_s)
    print(f"latent re-draw: median {1000 * float(np.median(times)):.1f} ms over {len(times)} moves")
    assert board.decoded.value != before
    board.reset_latents.click()
    assert all(s.value == 0.0 for s in board.latent_sliders)
    assert board.decoded.value == before


def test_one_slider_per_latent_dimension(board):
    latent = board.vae.encode(board.images[:1])[0]
    assert len(board.latent_sliders) == latent.shape[1]


def test_picking_an_image_changes_the_views_and_clears_the_explanation(board):
    board.image_picker.value = 0
    board.explain_button.click()
    assert board.explanation is not None
    original, decoded = board.original.value, board.decoded.value
    board.image_picker.value = 3
    assert board.original.value != original and board.decoded.value != decoded
    assert board.explanation is None and "Explain" in board.stats.value


def test_explain_button_fills_stats_samples_maps_and_curves(board):
    board.image_picker.value = 1
    board.n_samples.value = 500
    board.explain_button.click()
    e = board.explanation
    assert e is not None and e.samples.shape[0] == 500
    assert "flip rate" in board.stats.value and f"{e.flip_rate:.1%}" in board.stats.value
    assert "fidelity" in board.stats.value and e.status in board.stats.value
    assert bytes(board.samples.value).startswith(b"\x89PNG")
    assert len(board.maps_out.outputs) == 1 and len(board.curves_out.outputs) == 1
    assert not board.explain_button.disabled


def test_baselines_join_the_student_in_maps(board):
    board.image_picker.value = 2
    board.explain_button.click()
    board.baselines_button.click()
    assert set(board.baseline_results) == {"saliency", "integrated_gradients"}
    assert all(m.shape == board.images[2].shape for m in board.baseline_results.values())
    fig_json = board.maps_out.outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert len(fig_json["data"]) == 5  # the image, the student painted and as fitted, and two baselines


def test_fixed_tiny_sigma_reports_no_flip_without_crashing(board):
    board.image_picker.value = 0
    board.auto_sigma.value = False
    board.sigma.value = 0.01
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RelabelWarning)  # the dashboard must catch and show it, not raise it
            board.explain_button.click()
        assert board.explanation.status == "no_flip"
        assert "no_flip" in board.stats.value and "changed the label" in board.stats.value
    finally:
        board.auto_sigma.value = True


def test_digits_are_named_digits(board):
    label, index = board.image_picker.options[0]
    assert label == f"#0 (digit {board.labels[0]})"


def test_images_are_named_by_their_data_sets_classes():
    """Defect: the dashboard called every image a "digit", also on the colour photograph patches."""
    torch.manual_seed(0)
    teacher = SmallCNN(3, len(PATCH_CLASSES), width=4, depth=2)
    vae = ConvVAE(3, 16, latent_dim=4, width=8)
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    view = RelabelDashboard(teacher, vae, images, labels=[0, 4, 9], classes=PATCH_CLASSES, baselines=())
    labels = [label for label, _ in view.image_picker.options]
    assert labels == [f"#0 (class {PATCH_CLASSES[0]})", f"#1 (class {PATCH_CLASSES[4]})",
                      f"#2 (class {PATCH_CLASSES[9]})"]
    assert not any("digit" in label for label in labels)
    predicted = PATCH_CLASSES[int(teacher.eval()(images[:1]).argmax())]
    assert f"teacher: <b>{predicted}</b>" in view.prediction.value
    assert f"true class: {PATCH_CLASSES[0]}" in view.prediction.value
    assert bytes(view.original.value).startswith(b"\x89PNG")


def test_sample_grid_frames_match_the_labels(board):
    board.image_picker.value = 4
    e = board.explain()
    border, gap, cols = 2, 1, 12
    grid = sample_grid(e, n=48, cols=cols, border=border, gap=gap)
    h, w = e.samples.shape[-2:]
    assert grid.dtype == np.uint8 and grid.shape == (4 * (h + 2 * border + gap) - gap,
                                                     cols * (w + 2 * border + gap) - gap, 3)
    for k in range(48):
        r, c = divmod(k, cols)
        corner = tuple(grid[r * (h + 2 * border + gap), c * (w + 2 * border + gap)])
        assert corner == (KEPT_RGB if e.hard_labels[k] > 0.5 else SHIFTED_RGB)
    kept = int(e.hard_labels[:48].sum())
    assert 0 < kept < 48, "this image's first 48 samples should hold both labels (auto sigma aims at 30-70 % flips)"


def test_the_samples_regions_kept_and_decoded_are_drawn_under_the_samples(board):
    board.image_picker.value = 2
    e = board.explain()
    assert bytes(board.regions_view.value).startswith(b"\x89PNG") and "kept from the image" in board.regions_note.value
    border, gap, cols = 2, 1, 12
    grid = sample_grid(e, n=24, cols=cols, border=border, gap=gap, show="regions")
    h, w = e.samples.shape[-2:]
    for k in (0, 5, 17):  # each cell: white exactly where that sample's region was kept from the image
        r, c = divmod(k, cols)
        y, x = r * (h + 2 * border + gap) + border, c * (w + 2 * border + gap) + border
        cell = grid[y:y + h, x:x + w, 0]
        kept = e.keep[k][e.regions].numpy() > 0.5
        assert (cell[kept] == 255).all() and (cell[~kept] == 64).all() and 0 < kept.mean() < 1
        samples_there = e.samples[k][:, torch.from_numpy(kept)]
        assert torch.allclose(samples_there, e.image[:, torch.from_numpy(kept)])  # kept regions are the image's


def test_the_student_is_also_shown_at_the_resolution_it_was_fitted(board):
    board.image_picker.value = 2
    e = board.explain()
    fitted, what = fitted_map(e)
    assert fitted.shape == (8, 8) and what == "8x8 cells"
    # painted back, each 2x2 block of the pixel map is its cell's weight spread over the cell's pixels
    painted = e.attribution.sum(0).numpy()
    np.testing.assert_allclose(painted[::2, ::2] * 4, fitted, rtol=1e-4, atol=1e-7)
    layout = board.maps_out.outputs[0]["data"]["application/vnd.plotly.v1+json"]["layout"]
    assert "RLD as fitted (8x8 cells)" in [a["text"] for a in layout["annotations"]]


def test_the_fidelity_note_quotes_both_rates_and_says_by_how_much(board):
    board.image_picker.value = 2
    e = board.explain()
    board._show_stats(e, [])
    check = e.fidelity_check  # the numbers the page shows come from the explanation
    assert f"{check.fidelity:.1f} %" in board.stats.value and f"{check.majority_rate:.1f} %" in board.stats.value
    e.fidelity, e.majority_rate = 0.38, 0.62  # the case a user met: far below a constant answer
    board._show_stats(e, [])
    assert "24.0 points BELOW the majority rate 62.0 %" in board.stats.value
    assert "near the majority rate" not in board.stats.value
    e.fidelity, e.majority_rate = 0.60, 0.58
    board._show_stats(e, [])
    assert "2.0 points above the majority rate 58.0 %" in board.stats.value and "hardly beats" in board.stats.value
    e.fidelity = 0.9
    board._show_stats(e, [])
    assert "32.0 points above" in board.stats.value and "hardly beats" not in board.stats.value


def test_the_papers_variant_says_its_samples_are_whole_decodes():
    torch.manual_seed(0)
    images = torch.rand(2, 1, 16, 16)
    board = RelabelDashboard(SmallCNN(1, 10, width=4, depth=2), ConvVAE(1, 16, latent_dim=4, width=4), images,
                             explainer_kwargs={"keep_share": None, "features": "pixels", "region_source": "own"},
                             baselines=())
    board.n_samples.value = 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RelabelWarning)
        e = board.explain()
    assert bytes(board.regions_view.value) == placeholder_png(480, 48, "no regions: every sample is a whole decode")
    assert "whole VAE decode" in board.regions_note.value
    fitted, what = fitted_map(e)
    assert fitted.shape == (16, 16) and what == "pixels (16x16)"


def test_map_figure_is_signed_and_centred():
    m = torch.zeros(1, 4, 4)
    m[0, 0, 0], m[0, 3, 3] = 2.0, -1.0
    fig = map_figure({"student": m})
    heat = fig.data[0]
    assert heat.zmid == 0 and heat.zmin == -2.0 and heat.zmax == 2.0
    assert np.asarray(heat.z)[0, 0] == 2.0 and np.asarray(heat.z)[3, 3] == -1.0


def test_map_figure_has_one_colour_bar_that_says_each_map_has_its_own_scale():
    """Issue 29: the maps had no colour bar. One bar (on the last signed map) says red/blue and each map's own max,
    and sits in the right margin with plotly's toolbar standing upright beside it, clear of the titles."""
    maps = {"student": torch.randn(1, 4, 4), "saliency": torch.randn(1, 4, 4) * 10}
    fig = map_figure(maps, image=torch.rand(1, 4, 4))
    shown = [t for t in fig.data if t.showscale]
    assert len(shown) == 1 and shown[0] is fig.data[-1]
    assert "own scale" in shown[0].colorbar.title.text
    assert [t.split("<br>")[-1] for t in shown[0].colorbar.ticktext] == ["against", "0", "towards"]
    assert list(shown[0].colorbar.tickvals) == [shown[0].zmin, 0, shown[0].zmax]
    assert fig.layout.modebar.orientation == "v" and fig.layout.margin.r >= 100
    assert not fig.data[0].showscale  # the gray image has no bar

def test_gallery_links_existing_dashboards_and_marks_the_rest_coming_soon(tmp_path):
    (tmp_path / "relabel.ipynb").write_text("{}")
    page = gallery(tmp_path).value
    names = [name for name, _, _ in DASHBOARDS]
    assert names == ["relabel", "whitening", "stdt", "horkd", "tracking", "results"]
    assert [page.index(f'data-dashboard="{n}"') for n in names] == sorted(page.index(f'data-dashboard="{n}"')
                                                                          for n in names)
    assert 'href="./relabel.ipynb"' in page and "Re-label distillation" in page
    assert 'href="./whitening.ipynb"' not in page and page.count("coming soon") == 5


def test_scorecard_section_follows_the_picker_and_scores_rld_with_the_baselines(board):
    board.image_picker.value = 2
    assert board.scorecard.image == 2 and board.scorecard.table is None
    board.scorecard.score_button.click()
    table = board.scorecard.table
    assert list(dict.fromkeys(table["explainer"])) == ["RLD", "saliency", "integrated_gradients"]
    assert board.scorecard.indices[0] == 2 and table["image"].nunique() == board.scorecard.batch_size
    assert len(board.scorecard.table_out.outputs) == 1
    board.image_picker.value = 3
    assert board.scorecard.table is None and board.scorecard.table_out.outputs == ()
