"""The HTML report: one self-contained file (plotly.js once, images inline, provenance), and
``python -m workbench report RUN_DIR`` for a batch run, with a bad RUN_DIR refused in one line (exit status 2)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.batch import explain_dataset
from workbench.report import HtmlReport, load_run, model_provenance, run_report, scorecard

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "WORKBENCH_SMOKE": "1"}
    return subprocess.run([sys.executable, "-m", "workbench", "report", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    explain_dataset("digits", "digits_classifier", ["saliency", "random"], out, metrics=["deletion"], shard_size=8,
                    limit=16, engine="local", device="cpu", progress=False)
    return out


def test_a_report_inlines_plotly_once_and_its_images(tmp_path):
    report = HtmlReport("t").add_heading("a <b>").add_text("x & y")
    report.add_figure({"data": [{"type": "bar", "x": [1, 2], "y": [3, 4]}], "layout": {}})
    report.add_figure({"data": [{"type": "heatmap", "z": np.eye(2)}]}, name="second")
    report.add_image(np.zeros((4, 4, 3), np.uint8), "black").add_table(pd.DataFrame({"m": [0.12345]}))
    report.add_provenance(model_provenance({"recipe_hash": "abc", "metrics": {"acc": 0.9}, "config": {}}))
    text = report.write(tmp_path / "r.html").read_text()
    assert text.count("<script>") == 3 and text.count("Plotly.newPlot(") == 2 and report.n_figures == 2
    assert "a &lt;b&gt;" in text and "0.123" in text and "metrics.acc" in text and "abc" in text
    assert not re.search(r"(src|href)=['\"]?https?:", text.split("<body>")[1])
    with pytest.raises(FileExistsError):
        report.write(tmp_path / "r.html")
    with pytest.raises(ValueError, match="uint8 or finite floats"):
        report.add_image(np.full((2, 2), 3.0))


def test_the_run_scorecard_ranks_each_metric_by_its_direction(run_dir):
    run = load_run(run_dir)
    table = scorecard(run)
    row = table[(table["explainer"] == "saliency") & (table["metric"] == "deletion")].iloc[0]
    ok = run.rows[(run.rows["explainer"] == "saliency") & (run.rows["status"] == "ok")]
    assert row["better"] == "lower" and row["mean"] == pytest.approx(ok["metric_deletion"].mean())
    text = run_report(run_dir).to_html()
    assert "worst of saliency" in text and "best of random" in text and "c185cd6356" in text


def test_the_command_writes_a_new_file_each_time_and_refuses_a_bad_run_dir(run_dir, tmp_path):
    first, second = _cli(str(run_dir)), _cli(str(run_dir))
    assert first.returncode == 0 and second.returncode == 0, first.stderr[-2000:]
    assert (run_dir / "report.html").is_file() and (run_dir / "report-2.html").is_file()
    assert (run_dir / "report.html").stat().st_size < 10 * 2**20
    (tmp_path / "notes").mkdir()
    for args, fragment in (([str(tmp_path / "nowhere")], "not a folder"), ([str(tmp_path / "notes")], "no run.json"),
                           ([str(run_dir), "--out", str(run_dir / "report.html")], "exists")):
        out = _cli(*args)
        lines = out.stderr.splitlines()
        assert out.returncode == 2 and len(lines) == 1 and fragment in lines[0], out.stderr[-2000:]
        assert lines[0].startswith("python -m workbench: error: ")
