"""The Save bar: a page's views as files named ``<image>_<method>_<view>.<ext>`` (no legend text, no trace
indices), sent to the browser as a download (zip, HTML report, or PNG/SVG drawn by plotly.js), written into a
folder only where the user owns the kernel; a second save gets new names and says so."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from widgets._common import figure_outputs, png_bytes
from widgets.export import SaveBar, free_path, page_report, safe_name, save_views, settings, trace_arrays, with_save_bar
from widgets.placeholder import placeholder_png
from widgets.stdt import StdtDashboard
from workbench.data.clips import load_forgery_clips
from workbench.stdt import BagOfPatchesViT
from workbench.train import one_thread


class _Model(torch.nn.Module):
    workbench_meta = {"name": "digits_classifier", "recipe_hash": "c185cd6356", "metrics": {"test_acc": 0.994},
                      "trained_on": "cpu (2-core x86_64, no GPU)", "config": {"hidden": "left out"}}


def _board(values: np.ndarray) -> W.VBox:
    image = W.Image(value=png_bytes(np.zeros((4, 4), np.uint8)), format="png")
    image.add_class("wb-demo-original")
    out = W.Output()
    out.add_class("wb-demo-map")
    out.outputs = figure_outputs(go.Figure([go.Heatmap(z=values, name="student 0.077"),
                                            go.Scatter(x=[0, 1], y=[2, 3], name="deletion 0.110")]))
    waiting = W.Image(value=placeholder_png(50, 10), format="png")
    picker = W.Dropdown(options=[("digit 7 (#3)", 3), ("digit 1 (#4)", 4)], description="image")
    board = W.VBox([picker, W.HBox([image, waiting]), out, W.HTML("<b>flip rate 0.4</b>").add_class("wb-demo-stats")])
    board.classifier = _Model()
    return board


def _data(link_html: str) -> bytes:
    return base64.b64decode(re.search(r"href='data:[^;]+;base64,([^']*)'", link_html).group(1))


def test_views_are_saved_as_png_figure_and_one_npz_named_without_legend_or_trace_index(tmp_path):
    values = np.arange(12, dtype=float).reshape(3, 4)
    written = save_views(_board(values), tmp_path, "digit 7 (#3)", "rld")
    names = sorted(p.name for p in written)
    assert names == ["digit_7_3_rld_map.json", "digit_7_3_rld_map.npz", "digit_7_3_rld_original.png"]
    arrays = np.load(tmp_path / "digit_7_3_rld_map.npz")
    assert np.array_equal(arrays["trace0_z"], values) and np.allclose(arrays["trace1_y"], [2, 3])
    assert list(arrays["names"]) == ["student 0.077", "deletion 0.110"]  # legends inside the file, not its name
    assert json.loads((tmp_path / "digit_7_3_rld_map.json").read_text())["data"][0]["type"] == "heatmap"


def test_saving_twice_never_overwrites(tmp_path):
    board = _board(np.ones((2, 2)))
    first = save_views(board, tmp_path, "img", "m")
    second = save_views(board, tmp_path, "img", "m")
    assert not set(first) & set(second)
    assert (tmp_path / "img_m_original-2.png").exists()
    assert free_path(tmp_path, "img_m_original", ".png").name == "img_m_original-3.png"


def test_curve_arrays_and_safe_names():
    fig = go.Figure(go.Scatter(x=[0.0, 0.5, 1.0], y=[1.0, 0.4, 0.1], name="deletion"))
    arrays = trace_arrays(fig.to_dict())
    assert np.allclose(arrays["trace0_y"], [1.0, 0.4, 0.1]) and np.allclose(arrays["trace0_x"], [0, .5, 1])
    assert safe_name("a/b", " c d ") == "a_b_c_d"


def test_download_zip_holds_the_views_and_a_second_download_gets_new_names():
    board = with_save_bar(_board(np.ones((2, 2))), "rld")
    bar = board.children[-1]
    names = bar.download("zip")
    assert names == ["digit_7_3_rld_views.zip"] and "digit_7_3_rld_views.zip" in bar.message.value
    archive = zipfile.ZipFile(io.BytesIO(_data(bar.link.value)))
    assert sorted(archive.namelist()) == ["digit_7_3_rld_map.json", "digit_7_3_rld_map.npz",
                                          "digit_7_3_rld_original.png"]
    assert "download='digit_7_3_rld_views.zip'" in bar.link.value and "onerror=" in bar.link.value
    again = bar.download("zip")
    assert again == ["digit_7_3_rld_views-2.zip"] and "download 2: new names" in bar.message.value


def test_download_report_is_one_html_file_with_settings_provenance_figures_and_images():
    board = with_save_bar(_board(np.ones((2, 2))), "rld")
    bar = board.children[-1]
    assert bar.download("html") == ["digit_7_3_rld_report.html"]
    text = _data(bar.link.value).decode()
    assert text.count("Plotly.newPlot(") == 1 and text.count("<script>") == 2  # plotly.js once, one figure
    assert "c185cd6356" in text and "test_acc" in text and "2-core x86_64" in text and "left out" not in text
    body = text.split("<body>")[1]
    assert "digit 7 (#3)" in text and "flip rate 0.4" in body and body.count("data:image/png;base64,") == 1
    assert not re.search(r"<script[^>]+src=", text)  # nothing loaded from elsewhere


def test_figures_as_png_are_drawn_by_the_browser_under_view_names():
    board = with_save_bar(_board(np.ones((2, 2))), "rld")
    bar = board.children[-1]
    assert bar.download("svg") == ["digit_7_3_rld_map.svg"]
    assert "wb-demo-map" in bar.link.value and "format:&#x27;svg&#x27;" in bar.link.value


def test_settings_name_the_controls_and_leave_out_the_save_bar():
    board = with_save_bar(_board(np.ones((2, 2))), "rld")
    assert settings(board) == {"image": "digit 7 (#3)"}
    assert page_report(board, "rld", "x").n_figures == 1


def test_a_served_page_offers_no_folder_on_the_server(monkeypatch):
    monkeypatch.setenv("WORKBENCH_SERVED", "1")
    served = SaveBar(_board(np.ones((2, 2))), "m", lambda: "img")
    monkeypatch.setenv("WORKBENCH_SERVED", "0")
    owned = SaveBar(_board(np.ones((2, 2))), "m", lambda: "img")
    assert served.folder not in served.children and served.download_button in served.children
    assert owned.folder in owned.children and owned.save_button in owned.children


def test_save_bar_on_a_dashboard_writes_views_and_report_into_the_folder(tmp_path):
    with one_thread():
        torch.manual_seed(0)
        board = StdtDashboard(BagOfPatchesViT(dim=16, depth=2, heads=2), load_forgery_clips("test", n_per_identity=1))
    with_save_bar(board, "stdt", lambda: board.clip_picker.label)
    bar = board.children[-1]
    assert isinstance(bar, SaveBar)
    bar.folder.value = str(tmp_path / "out")
    written = bar.save()
    assert written and all(p.name.startswith("0_real") and "_stdt_" in p.name for p in written)
    assert {p.suffix for p in written} >= {".json", ".npz", ".html"}
    assert all(p.name in bar.message.value for p in written)


def test_unwritable_folder_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    bar = SaveBar(_board(np.ones((2, 2))), "m", lambda: "img")
    bar.folder.value = str(blocker / "sub")
    assert bar.save() == [] and "Cannot save" in bar.message.value


@pytest.mark.parametrize("stem", ["", "  "])
def test_empty_names_still_give_a_file_name(stem):
    assert safe_name(stem) == "view"
