"""Strategies (SpRAy) at data-set scale: how long ``workbench.strategies.analyze_run`` takes on a 50,000-map batch run
streamed from its shards, and how long the strategies view (``widgets.strategies.StrategiesView``) takes to open a
100,000-row run and to list a cluster's members::

    .venv/bin/python benchmarks/strategies.py [--cluster-rows 50000] [--view-rows 100000] \
        [--out benchmarks/results/strategies.md]

The runs are synthetic, written in the schema of ``python -m workbench explain`` (16x16 maps, 10 classes, one
explainer, 2,048-row shards): each map is one of six planted "strategies" (a Gaussian blob at a strategy's place,
its centre jittered, random amplitude) plus uniform noise, so the table also says whether the planted
strategies came back (adjusted Rand index). A real 50k run is not made here: explaining 50,000 images on this
2-core CPU alone takes longer than the clustering target.

Targets (issue 30): 50,000 maps cluster in <= 5 min on this CPU; the view opens a 100,000-row run in < 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from widgets.strategies import MEMBER_PAGE, StrategiesView  # noqa: E402
from workbench.strategies import analyze_run  # noqa: E402

SIZE, SHARD_ROWS, STRATEGIES = 16, 2048, 6
PLACES = np.array([(3, 3), (3, 12), (12, 3), (12, 12), (8, 8), (3, 8)], np.float32)


def planted_maps(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` maps (n, 1, 16, 16) and the planted strategy of each: a Gaussian blob (sigma 2 px) at the strategy's
    place, its centre jittered continuously (sigma 1 px), random amplitude, on uniform noise."""
    strategy = rng.integers(0, STRATEGIES, n)
    centre = PLACES[strategy] + rng.normal(0, 1.0, (n, 2)).astype(np.float32)
    grid = np.arange(SIZE, dtype=np.float32)
    dy = (grid[None, :] - centre[:, :1]) ** 2
    dx = (grid[None, :] - centre[:, 1:]) ** 2
    blob = np.exp(-(dy[:, :, None] + dx[:, None, :]) / (2 * 2.0 ** 2))
    amplitude = rng.uniform(1.0, 3.0, (n, 1, 1)).astype(np.float32)
    maps = rng.random((n, SIZE, SIZE), dtype=np.float32) * 0.5 + amplitude * blob
    return maps[:, None].astype(np.float32), strategy


def write_run(folder: Path, n: int, seed: int = 0) -> np.ndarray:
    """A synthetic batch run of ``n`` rows in ``folder`` (run.json + shards); returns the planted strategies."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    (folder / "shards").mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"data": "synthetic", "explainers": ["saliency"], "metrics": [],
                                                 "classes": [str(k) for k in range(10)]}))
    planted = []
    for k, start in enumerate(range(0, n, SHARD_ROWS)):
        m = min(SHARD_ROWS, n - start)
        maps, strategy = planted_maps(m, rng)
        planted.append(strategy)
        target = np.where(rng.random(m) < 0.7, strategy, rng.integers(0, 10, m))  # classes follow strategies loosely
        table = pa.table({
            "path": [f"/data/synthetic/train/img_{start + i:07d}.png" for i in range(m)],
            "label": pa.array(target, pa.int64()), "target": pa.array(target, pa.int64()),
            "explainer": ["saliency"] * m,
            "map": pa.ListArray.from_arrays(np.arange(0, (m + 1) * SIZE * SIZE, SIZE * SIZE, dtype=np.int32),
                                            pa.array(maps.ravel(), pa.float32())),
            "map_shape": [[1, SIZE, SIZE]] * m, "status": ["ok"] * m, "reason": [""] * m,
            "seconds": np.full(m, 0.01)})
        pq.write_table(table, folder / "shards" / f"shard-{k:06d}.parquet")
    return np.concatenate(planted)


def cluster_run(n: int, root: Path) -> dict:
    """Write an ``n``-row run, time :func:`analyze_run` on it (stream + cluster + save)."""
    from sklearn.metrics import adjusted_rand_score

    folder = root / f"run-{n}"
    t0 = time.perf_counter()
    planted = write_run(folder, n)
    written = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = analyze_run(folder)
    seconds = time.perf_counter() - t0
    return {"rows": n, "write_s": written, "cluster_s": seconds, "clusters": result.n_clusters,
            "ari": adjusted_rand_score(planted, result.labels), "folder": folder}


def open_view(folder: Path) -> dict:
    """Seconds to build the strategies view of ``folder`` (read strategies.npz, gallery, embedding figure as sent
    to the browser) and to list the biggest cluster's first page of members (paths, shards' maps)."""

    t0 = time.perf_counter()
    view = StrategiesView(folder)
    opened = time.perf_counter() - t0
    t0 = time.perf_counter()
    view.cluster.value = int(np.argmax(view.result.sizes))
    listed = time.perf_counter() - t0
    figure = len(json.dumps(view.embedding.outputs[0]["data"]))
    return {"open_s": opened, "members_s": listed, "figure_mb": figure / 2**20,
            "npz_mb": (folder / "strategies.npz").stat().st_size / 2**20}


def verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "**not met**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster-rows", type=int, default=50_000)
    parser.add_argument("--view-rows", type=int, default=100_000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "strategies.md"))
    ns = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wb-strategies-"))
    load = os.getloadavg()[0]
    big = cluster_run(ns.cluster_rows, root)
    print(f"clustered {big['rows']:,} maps in {big['cluster_s']:.1f} s", flush=True)
    view_run = big if ns.view_rows == ns.cluster_rows else cluster_run(ns.view_rows, root)
    print(f"clustered {view_run['rows']:,} maps in {view_run['cluster_s']:.1f} s", flush=True)
    open_view(view_run["folder"])  # first open pays the imports and plotly's validators once
    view = open_view(view_run["folder"])
    print(f"view of {view_run['rows']:,} rows opened in {view['open_s']:.2f} s", flush=True)
    rows = [f"| cluster {r['rows']:,} maps (stream shards + k-NN graph + eigsh + k-means + save) | "
            f"{r['cluster_s']:.1f} s | {r['clusters']} (6 planted), ARI {r['ari']:.2f} | "
            f"{verdict(r['cluster_s'], 300) + ' (<= 300 s at 50k)' if r is big else 'no target'} |"
            for r in ([big] if view_run is big else [big, view_run])]
    rows += [f"| open the view of a {view_run['rows']:,}-row run (npz {view['npz_mb']:.1f} MB; embedding figure "
             f"{view['figure_mb']:.1f} MB JSON) | {view['open_s']:.2f} s | gallery + class mix + embedding | "
             f"{verdict(view['open_s'], 3)} (< 3 s) |",
             f"| list the biggest cluster's first {MEMBER_PAGE} members (paths + their maps from the shards) | "
             f"{view['members_s']:.2f} s | | no target |"]
    text = "\n".join([
        "# Strategies (SpRAy) at scale", "",
        f"`benchmarks/strategies.py --cluster-rows {ns.cluster_rows} --view-rows {ns.view_rows}`: synthetic runs "
        "(16x16 maps of six planted strategies + noise, written as the shards of `python -m workbench explain`), "
        f"one process on this CPU ({os.cpu_count()} cores, shared; load average {load:.1f} at start). Development "
        "numbers: synthetic maps, not a real run. The view is timed in-process (Python side: the widgets and the "
        "figure JSON sent to the browser), not the browser's drawing.", "",
        "| step | time | result | target |", "| --- | --- | --- | --- |", *rows, ""])
    Path(ns.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
