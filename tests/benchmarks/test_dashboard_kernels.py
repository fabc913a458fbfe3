"""``benchmarks/dashboards.py --kernels`` on the one dashboard that needs no trained model (tracking): its row says
what the kernel holds and how long a re-draw-only control move takes."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_kernel_row_measures_memory_and_every_redraw(load_benchmark):
    bench = load_benchmark("dashboards")
    row = bench.measure_kernel("tracking", moves=3)
    assert row["moves"] == 3 and 0 < row["redraw_ms"] <= row["redraw_max_ms"]
    assert 0 < row["import_uss"] <= row["uss"] + 1 and row["rss"] >= row["uss"]
    assert "cv2" in row["heavy"]
    line = bench.kernel_table([row]).splitlines()[-1]
    assert line.startswith("| tracking |") and line.rstrip().endswith(("| yes |", "| no |"))


def test_move_values_change_the_control_every_time(load_benchmark):
    import ipywidgets as W

    bench = load_benchmark("dashboards")
    slider = W.IntSlider(value=0, min=0, max=59)
    values = bench._move_values(slider, None, 5)
    assert len(values) == 5 and all(isinstance(v, int) and v != 0 for v in values)
    picker = W.SelectionSlider(options=[8, 12, 16], value=8)
    assert bench._move_values(picker, None, 4) == [12, 16, 12, 16]
