"""The strategies section of a batch run's report (``python -m workbench report RUN_DIR``): when the run has its
SpRAy clustering (``RUN/strategies.npz``, :func:`workbench.strategies.analyze_run`), the gallery of the clusters' mean
maps as inline images, the class mix table and the maps' 2-D spectral embedding; runs without one get no section.

Importing this module appends ``("strategies", section_strategies)`` to :data:`workbench.report.run.RUN_SECTIONS`
(``workbench.report`` imports it, so every run report has it).
"""

from __future__ import annotations

import numpy as np

from workbench.report.html import HtmlReport
from workbench.report.run import RUN_SECTIONS, BatchRun, heat_rgb
from workbench.strategies import VIEW_FIELDS, Strategies, has_strategies, load_run_strategies

#: the embedding figure draws at most this many maps (a seeded sample), so a 100,000-map run's report stays small
MAX_POINTS = 5000
TOP_CLASSES = 3


def section_strategies(report: HtmlReport, run: BatchRun) -> None:
    """Gallery (mean map, size, top classes of each cluster), class mix table and embedding of the run's
    strategies; nothing when the run has none."""
    if not has_strategies(run.folder):
        return
    result = load_run_strategies(run.folder, VIEW_FIELDS)
    names = {k: str(v) for k, v in enumerate(run.request.get("classes") or [])}
    n, sizes = len(result.labels), result.sizes
    report.add_heading("Strategies (SpRAy)")
    report.add_text(f"{result.n_clusters} clusters among {n:,} maps of {result.explainer or 'the run'}, the count "
                    "chosen by the eigengap of the maps' k-NN graph (spectral relevance analysis, Lapuschkin et al. "
                    "2019). Each image is a cluster's mean map.", note=True)
    frame = result.class_mix_frame(names)
    classes = [c for c in frame.columns if c not in ("cluster", "maps", "other")]
    for c, mean in enumerate(result.mean_maps):
        row = frame.iloc[c]
        top = sorted(((int(row[k]), k) for k in classes if row[k] > 0), reverse=True)[:TOP_CLASSES]
        mix = ", ".join(f"{k}: {v}" for v, k in top)
        report.add_image(heat_rgb(mean.ravel(), [1, *mean.shape]),
                         f"cluster {c} · {int(sizes[c]):,} maps ({sizes[c] / max(1, n):.0%}) · {mix}",
                         width=96)
    report.add_heading("Class mix of each cluster", 3)
    report.add_table(frame, float_format="{:.0f}")
    report.add_figure(_embedding(result), name=f"{run.folder.name}_strategies_embedding")


def _embedding(result: Strategies) -> dict:
    """The spectral embedding as a plotly figure dict, one trace per cluster, at most :data:`MAX_POINTS` maps."""
    n = len(result.labels)
    keep = np.sort(np.random.default_rng(0).choice(n, MAX_POINTS, replace=False)) if n > MAX_POINTS else np.arange(n)
    data = []
    for c in range(result.n_clusters):
        pick = keep[result.labels[keep] == c]
        data.append({"type": "scattergl", "mode": "markers", "name": f"cluster {c}", "marker": {"size": 4},
                     "x": np.round(result.embedding[pick, 0], 5), "y": np.round(result.embedding[pick, 1], 5)})
    shown = f"{len(keep):,} of {n:,}" if n > MAX_POINTS else f"{n:,}"
    layout = {"title": {"text": f"spectral embedding of {shown} maps, coloured by cluster"}, "height": 380,
              "margin": {"t": 40, "b": 30, "l": 40, "r": 10}}
    return {"data": data, "layout": layout}


RUN_SECTIONS.append(("strategies", section_strategies))
