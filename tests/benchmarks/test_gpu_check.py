"""The combined GPU check (run here on the CPU, two steps): each check once in the table, sections from the
benchmark scripts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_every_check_appears_once_and_the_loss_falls(tmp_path, load_benchmark):
    out = tmp_path / "gpu_check.md"
    bench = load_benchmark("gpu_check")
    assert bench.main(["--device", "cpu", "--max-steps", "4", "--only", "tracking", "--out", str(out)]) == 0
    rows = [line for line in out.read_text().splitlines() if line.startswith("| tracking")]
    assert len(rows) == 1 and "| yes |" in rows[0]


def test_the_table_marks_a_loss_that_did_not_fall(load_benchmark):
    text, failed = load_benchmark("gpu_check").table([{"check": "a", "loss_first": 1.0, "loss_last": 2.0},
                                                      {"check": "b", "error": "boom", "ok": False}], "# t")
    assert failed and "| a | 1 | 2 | NO |" in text and text.count("| b |") == 1


def test_the_gpu_session_runs_each_section_in_its_own_process_and_reports_it(tmp_path):
    """The one-shot GPU session script (benchmarks/gpu_session.py) on the CPU with a few seconds per section: each
    section writes its rows, a broken section is reported in the summary and does not stop the next one."""
    import subprocess

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_session.py"
    out = tmp_path / "session"
    done = subprocess.run([sys.executable, str(script), "--out", str(out), "--tiny", "--plan", "weights,nope,check"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = (out / "summary.md").read_text()
    assert "| weights | 3 |" in summary and "| nope | 3 |" in summary and "| check | 3 |" in summary
    assert "| nope | 3 | " in summary and "exit 1" in summary.split("| nope |")[1].split("\n")[0]
    assert (out / "weights" / "rows.json").read_text().strip() == "[]"
    assert "horkd" in (out / "check" / "gpu_check.md").read_text()
