"""The HTML report of a batch run (``python -m workbench report RUN_DIR``): what was asked, the scorecard (per
explainer x metric: mean, median, spread), and for each metric the worst and the best cases with their maps.

The report is made of named sections, :data:`RUN_SECTIONS`, called in order as ``section(report, run)``. A section
that needs more than the shards (e.g. the map clusters of ``workbench.strategies``) is added by appending
``("strategies", its_section)`` there; nothing here imports it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.report.html import HtmlReport

if TYPE_CHECKING:  # pandas is imported where a table is built: every dashboard imports this module (Save bar)
    import pandas as pd

#: worst and best cases shown per metric and explainer
N_CASES = 4
_SMALL = ["path", "label", "target", "explainer", "status", "seconds"]


@dataclass
class BatchRun:
    """A batch run's folder read back: ``request`` (its ``run.json``) and ``rows`` (every column but the maps)."""

    folder: Path
    request: dict[str, Any]
    rows: pd.DataFrame
    metrics: list[str] = field(default_factory=list)


def load_run(folder: str | Path) -> BatchRun:
    """The run in ``folder`` (the ``--out`` of ``python -m workbench explain``); a clear error when it is not one."""
    from workbench.batch import read_results

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a folder (expected the --out folder of python -m workbench explain)")
    manifest = folder / "run.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{folder}: not a batch-run folder (no run.json; expected the --out folder of "
                                "python -m workbench explain)")
    try:
        request = json.loads(manifest.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{manifest}: unreadable run manifest ({exc})") from None
    import pyarrow.dataset as pads

    names = pads.dataset(str(folder / "shards"), format="parquet").schema.names if (folder / "shards").is_dir() else []
    metrics = [c for c in names if c.startswith("metric_")]
    rows = read_results(folder, [c for c in [*_SMALL, *metrics] if c in names])
    if rows.empty:
        raise ValueError(f"{folder}: the run has no rows yet (no finished shard under {folder / 'shards'})")
    return BatchRun(folder, request, rows, metrics)


def scorecard(run: BatchRun) -> pd.DataFrame:
    """Per explainer x metric: images scored, mean, median, standard deviation (ok rows), and the metric's
    direction; plus rows / ok / failed counts and seconds per image (metric ``"(all)"``)."""
    import pandas as pd

    from workbench.batch import metric_higher_is_better

    table = []
    for explainer, group in run.rows.groupby("explainer", sort=False):
        ok = group[group["status"] == "ok"]
        table.append({"explainer": explainer, "metric": "(all)", "better": "", "n": len(group),
                      "mean": group["seconds"].mean(), "median": group["seconds"].median(), "std": np.nan,
                      "ok": int(len(ok)), "failed": int((group["status"] == "failed").sum())})
        for metric in run.metrics:
            values = ok[metric].dropna()
            table.append({"explainer": explainer, "metric": metric.removeprefix("metric_"),
                          "better": "higher" if metric_higher_is_better(metric) else "lower", "n": len(values),
                          "mean": values.mean(), "median": values.median(), "std": values.std(), "ok": np.nan,
                          "failed": np.nan})
    return pd.DataFrame(table)


def cases(run: BatchRun, metric: str, n: int = N_CASES) -> dict[str, pd.DataFrame]:
    """The ``n`` worst and ``n`` best ok rows of ``metric`` per explainer (by its declared direction)."""
    from workbench.batch import metric_higher_is_better

    higher = metric_higher_is_better(metric)
    ok = run.rows[(run.rows["status"] == "ok") & run.rows[metric].notna()]
    ordered = ok.sort_values(metric, ascending=not higher, kind="stable")  # best first
    by = ordered.groupby("explainer", sort=False)
    return {"best": by.head(n), "worst": ordered.iloc[::-1].groupby("explainer", sort=False).head(n)}


def heat_rgb(values: np.ndarray, shape: Any) -> np.ndarray:
    """A flattened (C, H, W) map -> (H, W, 3) uint8 heat image (|values| summed over channels, to its maximum)."""
    import cv2

    arr = np.abs(np.asarray(values, np.float32).reshape([int(v) for v in shape])).sum(0)
    top = float(arr.max()) if arr.size else 0.0
    gray = (arr / top * 255).astype(np.uint8) if top > 0 else np.zeros(arr.shape, np.uint8)
    return cv2.applyColorMap(gray, cv2.COLORMAP_INFERNO)[..., ::-1].copy()


def _case_images(run: BatchRun, rows: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(map, image or None) of each row, maps read for these rows only; images where the source still reads."""
    from workbench.batch import Item, load_item, read_results

    maps = read_results(run.folder, ["path", "explainer", "map", "map_shape"],
                        [("path", "in", list(rows["path"].unique()))])
    found = []
    for _, row in rows.iterrows():
        hit = maps[(maps["path"] == row["path"]) & (maps["explainer"] == row["explainer"])].iloc[0]
        shape = [int(v) for v in hit["map_shape"]]
        try:
            image = load_item(Item(str(row["path"]), int(row["label"])), tuple(shape)).permute(1, 2, 0).numpy()
            image = image[..., 0] if image.shape[2] == 1 else image
        except (OSError, ValueError, IndexError):
            image = None  # the source moved or is not readable here: the map alone is shown
        found.append((heat_rgb(hit["map"], shape), image))
    return found


def _add_cases(report: HtmlReport, run: BatchRun, frame: pd.DataFrame, metric: str) -> None:
    for (_, row), (heat, image) in zip(frame.iterrows(), _case_images(run, frame), strict=True):
        scale, name = max(1, 96 // heat.shape[1]), Path(str(row["path"])).name
        caption = f"{name} · {row['explainer']} · {metric.removeprefix('metric_')} {row[metric]:.3f}"
        if image is not None:
            report.add_image(np.clip(image, 0, 1), f"{name} (class {row['label']})", width=heat.shape[1] * scale)
        report.add_image(heat, caption, width=heat.shape[1] * scale)


def section_request(report: HtmlReport, run: BatchRun) -> None:
    """What was asked: data, model, explainers, metrics, size (``run.json``), and the model's shipped provenance."""
    report.add_heading("Run")
    asked = {k: v for k, v in run.request.items() if k not in ("classes",)}
    report.add_provenance(asked, "Request (run.json)")
    spec = run.request.get("model", {})
    model = "" if spec.get("smoke") or spec.get("weights") else str(spec.get("model", ""))  # shipped: full setting
    for sidecar in sorted((Path(__file__).resolve().parents[1] / "weights").glob(f"{model}-*.json") if model else []):
        meta = json.loads(sidecar.read_text())
        report.add_provenance({k: meta[k] for k in ("name", "recipe_hash", "metrics", "trained_on", "date", "source")
                               if k in meta}, f"Model provenance (shipped weights {sidecar.stem})")


def section_scorecard(report: HtmlReport, run: BatchRun) -> None:
    """The scorecard table (see :func:`scorecard`)."""
    report.add_heading("Scorecard")
    report.add_text(f"{len(run.rows)} rows from {run.folder}; metric rows summarise the ok rows; the '(all)' row's "
                    "mean / median are seconds per image.", note=True)
    table = scorecard(run)
    report.add_table(table)
    for metric, rows in table[table["metric"] != "(all)"].groupby("metric", sort=False):
        bar = {"type": "bar", "x": rows["explainer"].tolist(), "y": rows["mean"].tolist(), "name": metric,
               "error_y": {"type": "data", "array": rows["std"].fillna(0).tolist()}}
        layout = {"title": {"text": f"{metric} ({rows['better'].iloc[0]} is better): mean ± std per explainer"},
                  "height": 300, "margin": {"t": 40, "b": 40, "l": 50, "r": 10}}
        report.add_figure({"data": [bar], "layout": layout}, name=f"{run.folder.name}_scorecard_{metric}")


def section_cases(report: HtmlReport, run: BatchRun) -> None:
    """Worst and best cases of every metric and explainer, with their maps (and images where readable)."""
    report.add_heading("Worst and best cases")
    if not run.metrics:
        report.add_text("This run scored no metric (python -m workbench explain --metrics ...): no cases to rank.",
                        note=True)
    for metric in run.metrics:
        for kind, frame in cases(run, metric).items():
            for explainer, group in frame.groupby("explainer", sort=False):
                report.add_heading(f"{metric.removeprefix('metric_')}: {kind} of {explainer}", 3)
                _add_cases(report, run, group, metric)


#: the report's sections, in order; a later module (e.g. workbench.strategies) appends ("strategies", section)
RUN_SECTIONS: list[tuple[str, Callable[[HtmlReport, BatchRun], None]]] = [
    ("request", section_request), ("scorecard", section_scorecard), ("cases", section_cases)]


def run_report(folder: str | Path) -> HtmlReport:
    """The HTML report of the batch run in ``folder`` (every section of :data:`RUN_SECTIONS`)."""
    run = load_run(folder)
    report = HtmlReport(f"Batch run {run.folder.name}")
    for _name, section in RUN_SECTIONS:
        section(report, run)
    return report


def default_report_path(folder: str | Path) -> Path:
    """``<folder>/report.html``, or ``report-2.html``, ... when taken (nothing is overwritten)."""
    path, k = Path(folder) / "report.html", 1
    while path.exists():
        k += 1
        path = Path(folder) / f"report-{k}.html"
    return path

