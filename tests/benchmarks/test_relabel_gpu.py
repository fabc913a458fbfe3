"""RLD's GPU benchmark, run tiny on the CPU: it must import nothing the GPU machine lacks and write its table."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
MISSING_ON_GPU_MACHINE = ("captum", "lime", "quantus", "ray", "ipywidgets", "plotly", "matplotlib")

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def benchmark(monkeypatch):
    monkeypatch.setenv("WORKBENCH_SMOKE", "1")
    monkeypatch.syspath_prepend(str(REPO))
    for name in [m for m in sys.modules if m.split(".")[0] in MISSING_ON_GPU_MACHINE]:
        monkeypatch.delitem(sys.modules, name)
    for name in MISSING_ON_GPU_MACHINE:
        monkeypatch.setitem(sys.modules, name, None)  # import -> ImportError, as on the GPU machine
    monkeypatch.delitem(sys.modules, "benchmarks.relabel", raising=False)
    return importlib.import_module("benchmarks.relabel")


def test_gpu_benchmark_measures_every_setting_and_writes_its_table(benchmark, tmp_path):
    rows = benchmark.gpu_benchmark(torch.device("cpu"), tmp_path, budget_s=120)
    assert [r["check"].split(",")[0] for r in rows] == ["RLD default", "RLD paper()", "RLD default"]
    assert all(r["explanations_per_s"] > 0 for r in rows)
    table = (tmp_path / "relabel_gpu.md").read_text()
    assert "ResNet-18" in table and (tmp_path / "relabel_gpu.csv").exists()


def test_a_spent_budget_starts_nothing_and_says_so(benchmark, tmp_path):
    rows = benchmark.gpu_benchmark(torch.device("cpu"), tmp_path, budget_s=0)
    assert len(rows) == 3 and all(r["explanations_per_s"] is None and r["note"] == "budget spent" for r in rows)
