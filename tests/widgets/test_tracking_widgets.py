"""The tracking dashboard built in-process (no browser): running fills every view, the frame slider re-draws from the
recorded run, sources switch, a bad OTB folder is reported, and the drawing helpers are correct."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from widgets._layout import TOOLBAR_PX
from widgets.tracking import TrackingDashboard, channel_label, channel_mosaic, dashboard, draw_frame
from widgets.tracking_draw import MOSAIC_CAPTION_PX, heat_image, responses_image
from workbench.tracking import HOGColorFeatures, make_sequence, run_sequence


@pytest.fixture(scope="module")
def board() -> TrackingDashboard:
    return dashboard(make_sequence("distractor", n_frames=24, seed=5), n_frames=24)


@pytest.fixture(scope="module")
def ran(board: TrackingDashboard) -> TrackingDashboard:
    board.source.value = board.source.options[0]
    board.family.value = "DCF"
    board.run_button.click()
    return board


@pytest.fixture(scope="module")
def tracked() -> TrackingDashboard:
    """A run of its own (the tests above switch ``board``'s source, which clears its run)."""
    own = dashboard(make_sequence("occlusion", n_frames=20, seed=3), n_frames=20)
    own.run_button.click()
    return own


def test_run_fills_stats_curves_weights_and_records_every_frame(ran):
    assert list(ran.records) == ["DCF", "DCF-CD"]
    full, cd = ran.records.values()
    n = len(ran.sequence)
    assert full.boxes.shape == cd.boxes.shape == (n, 4)
    assert len(cd.telemetry) == n and cd.telemetry[0].response is None and cd.telemetry[1].response.ndim == 2
    assert full.telemetry[1].response.ndim == 2 and full.telemetry[1].channel_maps is None
    assert cd.channel_weights.shape == (n, 40)  # the distilled few, all 40 where the quality check fell back
    assert all((len(k) == 40) == bool(back) for k, back in zip(cd.kept_channels, cd.fallback, strict=True))
    assert all(t.channel_maps.shape[2] == len(t.kept_channels) for t in cd.telemetry)
    assert "success AUC" in ran.stats.value and f"{cd.score.success_auc:.3f}" in ran.stats.value
    assert "FPS" in ran.stats.value and "channels / frame" in ran.stats.value
    curves = ran.curves_out.outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert {"DCF", "DCF-CD"} == {t["legendgroup"] for t in curves["data"]}
    assert any("AUC" in t["name"] and "P@20" in t["name"] for t in curves["data"])
    assert len(ran.weights_out.outputs) == 1
    assert not ran.run_button.disabled


def test_frame_slider_redraws_the_recorded_views(ran):
    ran.frame.value = 2
    view, response, maps, info = ran.view.value, ran.response.value, ran.channels.value, ran.info.value
    times = []
    for index in (15, 3, 20):
        ran.frame.value = index
        times.append(ran.last_redraw_s)
    print(f"frame re-draw: median {1000 * float(np.median(times)):.2f} ms")
    ran.frame.value = 15
    assert ran.view.value != view and ran.response.value != response and ran.info.value != info
    assert bytes(ran.view.value).startswith(b"\x89PNG") and bytes(ran.channels.value).startswith(b"\x89PNG")
    assert "frame 15" in ran.info.value and maps is not None


def test_frame_telemetry_shows_kept_channels_and_stage_costs(ran):
    ran.frame.value = 12
    full, cd = ran.records.values()
    text = ran.telemetry.value
    assert "frame 12: stage costs (ms)" in text
    for stage in ("features", "fft", "solve", "scale search", "channel scoring"):
        assert f"<th>{stage}</th>" in text
    kept = cd.telemetry[12].kept_channels
    assert f"CD kept {len(kept)} of 40 channels" in text
    names = ran.features().channel_names
    assert all(channel_label(names[c]) in text for c in kept)
    assert "|" not in text.split("channels:</b>")[1]  # readable labels, not the library's raw hog|80|
    features_ms = 1e3 * cd.telemetry[12].stage_seconds["features"]
    assert f"{features_ms:.2f}" in text  # this frame's own cost, not an average
    ran.frame.value = 13
    assert ran.telemetry.value != text and "frame 13" in ran.telemetry.value


def test_eco_family_runs_with_and_without_distillation(board):
    board.family.value = "ECO"
    board.run()
    assert list(board.records) == ["ECO", "ECO-CD"]
    board.family.value = "DCF"


def test_switching_source_clears_the_run_and_shows_ground_truth(board):
    board.source.value = "generated: scale"
    assert board.records == {} and board.sequence.name.startswith("synthetic-scale")
    assert board.frame.max == len(board.sequence) - 1 and "Run trackers" in board.stats.value
    before = board.view.value
    board.frame.value = 10
    assert board.view.value != before and "ground truth only" in board.info.value


def test_bad_otb_folder_is_reported_not_raised(board, tmp_path):
    board.source.value = "your OTB folder…"
    assert board.folder.layout.display == "" and board.load_button.layout.display == ""
    board.folder.value = str(tmp_path / "missing")
    board.load_button.click()
    assert "Cannot load this folder" in board.message.value and "missing" in board.message.value
    (tmp_path / "seq" / "img").mkdir(parents=True)
    assert board.load_folder(str(tmp_path / "seq")) is None
    assert "groundtruth_rect.txt" in board.message.value


def test_the_dashboard_uses_the_library_runner():
    import widgets.tracking as view

    assert not hasattr(view, "track_with_views") and not hasattr(view, "TrackRecord")
    assert view.run_sequence is run_sequence


def test_draw_frame_puts_boxes_where_they_belong():
    frame = np.zeros((20, 30, 3), np.uint8)
    image = draw_frame(frame, {"truth": (np.array([5.0, 4.0, 10.0, 8.0]), (0, 255, 0))}, scale=2)
    assert image.shape == (40, 60, 3)
    assert tuple(image[8, 10]) == (0, 255, 0) and tuple(image[16, 20]) == (0, 0, 0)  # corner on, inside off


def test_channel_mosaic_has_one_tile_per_channel():
    maps = np.random.default_rng(0).random((8, 8, 5)).astype(np.float32)
    mosaic = channel_mosaic(maps, [f"c{i}" for i in range(5)], tile=20, cols=4)
    assert mosaic.shape == (2 * (20 + MOSAIC_CAPTION_PX + 4), 4 * (20 + 4), 3)


def _array(value: object) -> np.ndarray:
    """A plotly JSON array: a list, or plotly's binary form ``{"dtype": ..., "bdata": base64}``."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).astype(float)
    return np.asarray(value, dtype=float)


def test_info_shows_each_runs_confidence_of_the_frame_with_what_low_means(tracked):
    full, cd = tracked.records.values()
    for index in (5, 17):
        tracked.frame.value = index
        assert np.isfinite(full.confidence[index]) and np.isfinite(cd.confidence[index])
        assert f"confidence {full.tracker} <b>{full.confidence[index]:.2f}</b>" in tracked.info.value
        assert f"{cd.tracker} <b>{cd.confidence[index]:.2f}</b>" in tracked.info.value
    assert "low: the tracker may have lost the target" in tracked.info.value
    tracked.frame.value = 0  # initialisation: the library says NaN, the page says so rather than a number
    assert "n/a (initialisation)" in tracked.info.value
    plot = tracked.confidence_out.outputs[0]["data"]["application/vnd.plotly.v1+json"]
    shown = {t["name"]: t["y"] for t in plot["data"]}
    assert set(shown) == {full.tracker, cd.tracker}
    assert np.allclose(_array(shown[cd.tracker]), cd.confidence, equal_nan=True)
    assert np.allclose(_array(shown[full.tracker]), full.confidence, equal_nan=True)


def test_channel_labels_are_readable_everywhere_the_page_names_channels(tracked):
    names = HOGColorFeatures().channel_names
    assert channel_label("hog|80|") == "HOG 80 deg (unsigned)" and channel_label("hog80") == "HOG 80 deg (signed)"
    assert channel_label("hue45") == "hue 45 deg (colour)" and channel_label("L") == "Lab L (lightness)"
    assert len({channel_label(n) for n in names}) == len(names)  # still one label per channel
    assert not any("|" in channel_label(n) for n in names)
    weights = tracked.weights_out.outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert weights["data"][0]["y"] and not any("|" in y for y in weights["data"][0]["y"])


def test_plot_titles_sit_in_a_band_clear_of_the_toolbar(tracked):
    for out in (tracked.weights_out, tracked.curves_out, tracked.confidence_out):
        layout = out.outputs[0]["data"]["application/vnd.plotly.v1+json"]["layout"]
        assert layout["title"]["xanchor"] == "left" and layout["margin"]["t"] >= TOOLBAR_PX
    curves = tracked.curves_out.outputs[0]["data"]["application/vnd.plotly.v1+json"]["layout"]
    assert curves["margin"]["t"] > TOOLBAR_PX + 10  # room for the subplot titles under the toolbar


def test_response_maps_keep_their_aspect_and_carry_a_colour_bar(tracked):
    wide = np.zeros((10, 20), np.float32)
    wide[3, 7] = 2.0
    wide[6, 2] = -1.0
    image = responses_image([wide, wide / 2], size=40)
    heat = heat_image(wide, 40, 2.0)
    assert heat.shape[:2] == (40, 80)  # square cells: a 10x20 map is drawn twice as wide as tall
    assert image.shape[0] == 40 and image.shape[1] > 2 * 80 + 6  # the two maps, then the bar
    bar_top, bar_bottom = image[0, 2 * (80 + 6) + 6], image[39, 2 * (80 + 6) + 6]
    assert tuple(bar_top) == tuple(heat[12, 28]) and tuple(bar_bottom) == tuple(heat_image(-wide, 40, 2.0)[12, 28])
    for image_widget in (tracked.view, tracked.response, tracked.channels):
        assert image_widget.layout.align_self == "flex-start" and image_widget.layout.object_fit == "contain"
