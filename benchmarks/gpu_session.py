"""One GPU session: every GPU measurement the project needs, each section in its own process under a time limit.

The GPU machine is lent for minutes at a time and has only torch, torchvision, numpy, scipy, scikit-learn,
scikit-image, opencv and pandas. This runs, in order of priority, each section with a wall-clock budget (a section
that overruns is killed and reported; the next one still runs) and writes everything under ``--out``::

    PYTHONPATH=. python3 benchmarks/gpu_session.py --out "$OUT" [--plan weights:150,horkd:200,...] [--smoke]

Sections:
  weights    train every dashboard's full-setting models (``workbench.weights.export``); ``weights.NAME`` one
  horkd      the harder HORKD benchmark, >= 5 seeds (``benchmarks/horkd.py:gpu_benchmark``)
  relabel    RLD explanations/s on 100 digits and at 128 px, peak memory (``benchmarks/relabel.py:gpu_benchmark``)
  whitening  the SBI detector's training cell at 128 px (``benchmarks/whitening.py:gpu_benchmark``)
  stdt       the video model's training cell (``benchmarks/stdt.py:gpu_benchmark``)
  check      every training cell's full setting for a few steps, CPU/GPU agreement (``benchmarks/gpu_check.py``)

``--smoke`` runs every section with a few seconds of budget on whatever device there is (the test uses it).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PLAN = ("weights.relabel:50,weights.whitening:30,weights.stdt:40,weights.tracking:20,horkd:170,"
                "weights.horkd:30,relabel:90,stdt:80,check:45,whitening:25")


def _run_benchmark(section: str, out: Path, budget: float) -> list[dict]:
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    module = importlib.import_module(f"benchmarks.{section}")
    return module.gpu_benchmark(device, out, budget)


def run_section(section: str, out: Path, budget: float, tiny: bool) -> None:
    """The body of one section (runs in the child process)."""
    out.mkdir(parents=True, exist_ok=True)
    if section.split(".")[0] == "weights":  # "weights" = every dashboard, "weights.horkd" = one
        from workbench.weights import DASHBOARD_MODELS, export

        names = section.split(".")[1:] or list(DASHBOARD_MODELS)
        names = [] if tiny else names  # tiny: the code path only (full recipes take minutes)
        # HORKD's benchmark section trains the dashboard's seed-0 models into horkd/models: ship those, don't retrain
        trained = out.parent / "horkd" / "models"
        cache = trained if names == ["horkd"] and trained.is_dir() else None
        rows = [{"file": p.name, "bytes": p.stat().st_size} for p in export(out, names, cache)]
    elif section == "check":
        from benchmarks import gpu_check

        code = gpu_check.main(["--max-steps", "3" if tiny else "50", "--out", str(out / "gpu_check.md"),
                               "--only", *(["horkd"] if tiny else list(gpu_check.SECTIONS))])
        rows = [{"exit_status": code}]
    else:
        rows = _run_benchmark(section, out, budget)
    (out / "rows.json").write_text(json.dumps(rows, indent=1, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--plan", default=DEFAULT_PLAN, help="section:seconds,... in the order to run")
    parser.add_argument("--smoke", action="store_true", help="a few seconds per section (tests, CPU)")
    parser.add_argument("--tiny", dest="smoke", action="store_true", help=argparse.SUPPRESS)  # tests/benchmarks use it
    parser.add_argument("--section", help=argparse.SUPPRESS)  # child process: run this one section
    parser.add_argument("--budget", type=float, default=60, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.section:
        run_section(args.section, out / args.section, args.budget, args.smoke)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "WORKBENCH_SMOKE": "1" if args.smoke else "0"}
    summary = ["| section | budget s | wall s | status |", "|---|---|---|---|"]
    for item in args.plan.split(","):
        section, _, seconds = item.partition(":")
        budget = 3.0 if args.smoke else float(seconds or 60)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--out", str(out), "--section", section,
               "--budget", str(budget)] + (["--smoke"] if args.smoke else [])
        t0 = time.perf_counter()
        with open(out / f"{section}.log", "w") as log:
            try:  # the child gets its budget plus a margin to write its table; past that it is killed
                code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                      timeout=None if args.smoke else budget + 30).returncode
                status = "ok" if code == 0 else f"exit {code}"
            except subprocess.TimeoutExpired:
                status = "killed: over budget"
        wall = time.perf_counter() - t0
        summary.append(f"| {section} | {budget:.0f} | {wall:.0f} | {status} |")
        print(f"[{section}] {status} in {wall:.0f} s", flush=True)
        (out / "summary.md").write_text("\n".join(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
