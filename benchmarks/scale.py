"""Scale-out benchmark: explanations per second in-process vs on Ray Data with 1 and 2 workers (ratios, one run).

Each configuration explains the same digits (``--images``, embedded test split) with RLD (its VAE, N samples) and
Saliency into a fresh output folder, through :func:`workbench.batch.explain_dataset`; Ray is started once per
configuration and its start-up is timed separately (it is paid once per job, not per image)::

    .venv/bin/python benchmarks/scale.py [--images 256] [--n-samples 500] [--out benchmarks/results/scale.md]

Targets (issue "Scale out"): on a 2-core CPU, 2 Ray workers >= 1.6x the explanations/s of 1 worker, and the Ray
overhead at 1 worker < 15 % of the in-process throughput.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.batch import ModelSpec, explain_dataset  # noqa: E402
from workbench.batch.run import start_local_ray  # noqa: E402


def run(engine: str, workers: int | None, explainers: list[str], images: int, n_samples: int, shard: int) -> dict:
    import ray

    out = Path(tempfile.mkdtemp(prefix=f"wb-scale-{engine}{workers or ''}-")) / "out"
    startup = 0.0
    if engine == "ray":
        t0 = time.perf_counter()
        start_local_ray(num_cpus=workers)
        startup = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        summary = explain_dataset("digits", ModelSpec("digits_classifier"), explainers, out, shard_size=shard,
                                  limit=images, engine=engine, workers=workers, device="cpu", progress=False,
                                  explainer_kwargs={"relabel": {"n_samples": n_samples}})
        seconds = time.perf_counter() - t0
    finally:
        if engine == "ray":
            ray.shutdown()
    rows = int(summary["rows"].sum())
    return {"engine": engine if engine == "local" else f"ray x{workers}", "explainers": "+".join(explainers),
            "rows": rows, "failed": int(summary["failed"].sum()), "seconds": seconds, "startup_s": startup,
            "per_s": rows / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--n-samples", type=int, default=500)
    parser.add_argument("--shard-size", type=int, default=32)
    parser.add_argument("--out", default="benchmarks/results/scale.md")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = []
    for explainers in (["relabel"], ["saliency"]):
        for engine, workers in (("local", None), ("ray", 1), ("ray", 2)):
            results.append(run(engine, workers, explainers, args.images, args.n_samples, args.shard_size))
            print(results[-1], flush=True)
    lines = [f"# Scale-out on {os.cpu_count()} CPUs (`benchmarks/scale.py`, {args.images} digits, RLD N = "
             f"{args.n_samples})", "",
             "| explainer | engine | rows | failed | seconds | Ray start-up s | explanations/s | vs in-process | vs 1 "
             "Ray worker |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        base = next(b for b in results if b["explainers"] == r["explainers"] and b["engine"] == "local")
        one = next(b for b in results if b["explainers"] == r["explainers"] and b["engine"] == "ray x1")
        lines.append(f"| {r['explainers']} | {r['engine']} | {r['rows']} | {r['failed']} | {r['seconds']:.1f} | "
                     f"{r['startup_s']:.1f} | {r['per_s']:.1f} | {r['per_s'] / base['per_s']:.2f} | "
                     f"{r['per_s'] / one['per_s']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
