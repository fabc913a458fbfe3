"""Saving what a view shows: images as PNG, figures as JSON (+ SVG/PNG with kaleido) with their arrays as NPY,
named after the image and the method, never overwriting a file."""

from __future__ import annotations

import json

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from widgets._common import figure_outputs, png_bytes
from widgets.export import SaveBar, free_path, safe_name, save_views, trace_arrays, with_save_bar
from widgets.placeholder import placeholder_png
from widgets.stdt import StdtDashboard
from workbench.data.clips import load_forgery_clips
from workbench.stdt import BagOfPatchesViT
from workbench.train import one_thread


def _board(values: np.ndarray) -> W.VBox:
    image = W.Image(value=png_bytes(np.zeros((4, 4), np.uint8)), format="png")
    image.add_class("wb-demo-original")
    out = W.Output()
    out.add_class("wb-demo-map")
    out.outputs = figure_outputs(go.Figure(go.Heatmap(z=values, name="student")))
    waiting = W.Image(value=placeholder_png(50, 10), format="png")
    return W.VBox([W.HBox([image, waiting]), out])


def test_views_are_saved_as_png_figure_and_the_heat_map_values(tmp_path):
    values = np.arange(12, dtype=float).reshape(3, 4)
    written = save_views(_board(values), tmp_path, "digit 7 (#3)", "rld")
    names = sorted(p.name for p in written)
    assert "digit_7_3_rld_original.png" in names and "digit_7_3_rld_map.json" in names
    npy = [p for p in written if p.suffix == ".npy"]
    assert len(npy) == 1 and np.array_equal(np.load(npy[0]), values)
    assert not any("placeholder" in n or n.endswith("_1.png") for n in names)  # the waiting panel is not saved
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
    assert np.allclose(arrays["deletion_0_y"], [1.0, 0.4, 0.1]) and np.allclose(arrays["deletion_0_x"], [0, .5, 1])
    assert safe_name("a/b", " c d ") == "a_b_c_d"


def test_save_bar_on_a_dashboard_reports_what_it_wrote(tmp_path):
    with one_thread():
        torch.manual_seed(0)
        board = StdtDashboard(BagOfPatchesViT(dim=16, depth=2, heads=2), load_forgery_clips("test", n_per_identity=1))
    with_save_bar(board, "stdt", lambda: board.clip_picker.label)
    bar = board.children[-1]
    assert isinstance(bar, SaveBar)
    bar.folder.value = str(tmp_path / "out")
    written = bar.save()
    assert written and all(p.name.startswith("0_real") and "_stdt_" in p.name for p in written)
    assert "saved" in bar.message.value and any(p.suffix == ".npy" for p in written)


def test_unwritable_folder_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    bar = SaveBar(_board(np.ones((2, 2))), "m", lambda: "img")
    bar.folder.value = str(blocker / "sub")
    assert bar.save() == [] and "Cannot save" in bar.message.value


@pytest.mark.parametrize("stem", ["", "  "])
def test_empty_names_still_give_a_file_name(stem):
    assert safe_name(stem) == "view"
