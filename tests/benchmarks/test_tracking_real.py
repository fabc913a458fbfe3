"""``benchmarks/tracking_real.py``: leave-one-sequence-out never lets a sequence choose its own setting, the script
skips cleanly without the real sequences, and (where they are) writes the development table with LOSO rows."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_leave_one_out_chooses_on_the_other_sequences_only(load_benchmark):
    bench = load_benchmark("tracking_real")
    # "spike" wins by far on a alone; "steady" is better on every other sequence
    auc = {"steady": {"a": 0.5, "b": 0.6, "c": 0.6, "d": 0.6}, "spike": {"a": 0.9, "b": 0.3, "c": 0.3, "d": 0.3}}
    assert bench.leave_one_out(auc) == {"a": "steady", "b": "steady", "c": "steady", "d": "steady"}
    # held out b, the others' means: steady (0.5 + 0.6 + 0.6) / 3 = 0.567 < spike (2.0 + 0.3 + 0.3) / 3 = 0.867
    auc["spike"]["a"] = 2.0
    assert bench.leave_one_out(auc)["b"] == "spike" and bench.leave_one_out(auc)["a"] == "steady"
    with pytest.raises(ValueError, match="at least two sequences"):
        bench.leave_one_out({"x": {"a": 0.5}})


def test_without_real_sequences_the_script_skips_and_writes_nothing(tmp_path, capsys, load_benchmark):
    out = tmp_path / "tracking_real.md"
    assert load_benchmark("tracking_real").main(["--realdata", str(tmp_path / "absent"), "--out", str(out)]) == 0
    assert "skipped" in capsys.readouterr().out and not out.exists()


def test_the_table_on_the_real_sequences_reports_leave_one_out_rows(tmp_path, load_benchmark):
    bench = load_benchmark("tracking_real")
    root = bench.realdata_root()
    if root is None or len(bench.sequence_folders(root)) < 2:
        pytest.skip("../shared/realdata (otb_crossing, otb_dev) is absent")
    out = tmp_path / "tracking_real.md"
    assert bench.main(["--max-frames", "4", "--repeats", "2", "--out", str(out)]) == 0
    text = out.read_text()
    assert "**Development numbers**" in text and "cut to the first 4 frames" in text
    rows = out.with_suffix(".csv").read_text().splitlines()
    cd = [r for r in rows if ",DCF-CD," in r]
    assert len(cd) == len(bench.sequence_folders(root)) and all(r.split(",")[3] in bench.GRID for r in cd)
