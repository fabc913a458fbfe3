"""The command lines report a user's mistake in one line on stderr with exit status 2, before any work (Ray
included) starts; ``--debug`` shows the traceback; a bug keeps its traceback (see workbench/cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from workbench.cache import SHIPPED_DIR
from workbench.cli import run_command

REPO = Path(__file__).resolve().parents[2]
WB, WEIGHTS = ["-m", "workbench"], ["-m", "workbench.weights"]

#: name -> (arguments, a fragment of the one line); {tmp} is a scratch folder holding a file "file" and a folder
#: "other" with something in it
CASES = {
    "missing data folder": ([*WB, "explain", "--data", "{tmp}/nowhere", "--out", "{tmp}/o1"], "nowhere: not a folder"),
    "--out is a file": ([*WB, "explain", "--data", "digits", "--out", "{tmp}/file"], "file is a file"),
    "--out holds something else": ([*WB, "explain", "--data", "digits", "--out", "{tmp}/other"],
                                   "not a batch-run folder"),
    "unknown explainer": ([*WB, "explain", "--data", "digits", "--out", "{tmp}/o2", "--explainers", "nope"],
                          "unknown explainer(s) ['nope']; valid: relabel"),
    "unknown model": ([*WB, "explain", "--data", "digits", "--out", "{tmp}/o3", "--model", "nomodel"],
                      "model 'nomodel': neither an embedded model"),
    "unknown metric": ([*WB, "explain", "--data", "digits", "--out", "{tmp}/o4", "--metrics", "nope"],
                       "unknown metric(s) ['nope']"),
    "--input-shape of two numbers": ([*WB, "explain", "--data", "digits", "--out", "{tmp}/o5", "--input-shape", "3",
                                      "32"], "--input-shape: expected 3 arguments"),
    "--input-shape not the model's": ([*WB, "explain", "--data", "digits", "--out", "{tmp}/o5", "--input-shape",
                                       "3", "32", "32"], "takes inputs of shape 1 16 16"),
    "--input-shape of zero": ([*WB, "explain", "--data", "digits", "--out", "{tmp}/o5", "--input-shape", "0", "1",
                               "1"], "at least 1, got 0"),
    "unknown device": ([*WB, "explain", "--data", "digits", "--out", "{tmp}/o6", "--device", "nonsense"],
                       "device 'nonsense'"),
    "unknown recipe": ([*WB, "train", "nope"], "invalid choice: 'nope'"),
    "weights: missing folder": ([*WEIGHTS, "install", "{tmp}/nowhere"], "nowhere: no such folder"),
    "weights: folder without exports": ([*WEIGHTS, "install", "{tmp}/other"], "holds no exported .pt file"),
    "weights: export into a file": ([*WEIGHTS, "export", "{tmp}/file", "--only", "tracking"], "file is a file"),
    "weights: a corrupt export": ([*WEIGHTS, "install", "{tmp}/corrupt"], "digits_classifier-abc.pt is corrupt"),
    "weights: a sidecar of another file": ([*WEIGHTS, "install", "{tmp}/mismatch"], "names 'other-abc', not"),
    "a model file that is not TorchScript": ([*WB, "explain", "--data", "digits", "--out", "{tmp}/o8", "--model",
                                              "{tmp}/file", "--input-shape", "1", "16", "16"], "not a TorchScript"),
}


def _run(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    # a Ray started by mistake would try this address and fail with another message than the expected one
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_ADDRESS": "127.0.0.1:9", "WORKBENCH_SMOKE": "1"}
    return subprocess.run([sys.executable, *(a.format(tmp=tmp) for a in args)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every case, run as its own process, a few at a time."""
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "file").write_text("a user's file")
    (tmp / "other").mkdir()
    (tmp / "other" / "notes.txt").write_text("a user's notes")
    for folder, sidecar_name in (("corrupt", "digits_classifier"), ("mismatch", "other")):  # exports gone wrong
        (tmp / folder).mkdir()
        (tmp / folder / "digits_classifier-abc.pt").write_bytes(b"not a checkpoint")
        (tmp / folder / "digits_classifier-abc.json").write_text(f'{{"name": "{sidecar_name}", "recipe_hash": "abc"}}')
    cases = {**CASES, "--debug": ([*WB, "explain", "--data", "{tmp}/nowhere", "--out", "{tmp}/o7", "--debug"], "")}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(_run, args, tmp) for name, (args, _) in cases.items()}
        done = {name: future.result() for name, future in futures.items()}
    assert (tmp / "file").read_text() == "a user's file" and (tmp / "other" / "notes.txt").exists()  # untouched
    assert not list(SHIPPED_DIR.glob("digits_classifier-abc.*"))  # a refused install copied nothing
    return done


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_input_is_one_line_on_stderr_with_exit_status_2(outcomes, case):
    out = outcomes[case]
    lines = out.stderr.splitlines()
    assert out.returncode == 2, out.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert lines[0].startswith("python -m workbench") and ": error: " in lines[0]
    assert CASES[case][1] in lines[0]
    assert out.stdout == ""


def test_debug_shows_the_traceback(outcomes):
    out = outcomes["--debug"]
    assert out.returncode == 1
    assert "Traceback (most recent call last)" in out.stderr
    assert out.stderr.rstrip().splitlines()[-1].startswith("FileNotFoundError: ") and "nowhere" in out.stderr


def test_a_bug_keeps_its_traceback_and_a_user_error_becomes_one_line(capsys):
    def bug() -> int:
        raise KeyError("a bug")

    def mistake() -> int:
        raise ValueError("give a positive\nnumber")

    with pytest.raises(KeyError):
        run_command("prog", bug)
    assert run_command("prog", mistake) == 2
    assert capsys.readouterr().err == "prog: error: give a positive number\n"
    with pytest.raises(ValueError, match="positive"):
        run_command("prog", mistake, debug=True)
    assert run_command("prog", lambda: None) == 0 and run_command("prog", lambda: 3) == 3


def test_debug_and_smoke_are_accepted_before_or_after_the_command():
    from workbench.__main__ import _parser

    parser = _parser()
    assert parser.parse_args(["--debug", "train", "digits_vae"]).debug
    assert parser.parse_args(["train", "digits_vae", "--debug", "--smoke"]).debug
    late = parser.parse_args(["train", "digits_vae", "--smoke"])
    assert late.smoke and not late.debug
