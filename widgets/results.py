"""Browse a batch run's output (``python -m workbench explain``): filter rows, page through them, see maps side by side.

Only the small columns (path, explainer, target, status, metrics) are read to filter and count; the maps are read for
the rows of the page shown, so an output of 100,000 rows opens in seconds (:func:`workbench.batch.read_results`).
The counter and the status counts are those of the filtered rows; a metric's threshold is "at least" or "at most",
set to the metric's better side by its declared direction (:func:`workbench.batch.metric_higher_is_better`) and
switchable; pages count from 1; a Save bar (:mod:`widgets.export`) writes the page's maps.
"""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path

import ipywidgets as W
import numpy as np
import pandas as pd

from widgets._common import png_bytes
from widgets.export import safe_name, with_save_bar
from widgets.strategies import with_strategies
from workbench.batch import metric_higher_is_better, read_results

PAGE_ROWS = 8
_ALL = "(all)"
AT_LEAST, AT_MOST = "≥", "≤"


def heat_uint8(values: np.ndarray, shape: list[int] | np.ndarray) -> np.ndarray:
    """A (C, H, W) map flattened in a row -> (H, W) uint8, |values| summed over channels and scaled to its maximum."""
    arr = np.abs(np.asarray(values, np.float32).reshape([int(v) for v in shape])).sum(0)
    top = float(arr.max()) if arr.size else 0.0
    return (arr / top * 255).astype(np.uint8) if top > 0 else np.zeros(arr.shape, np.uint8)


def page_table(rows: pd.DataFrame, metrics: list[str]) -> str:
    """The page's rows as an HTML table (path, explainer, class, status, metrics)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["image", "explainer", "target", "status", *metrics])
    body = []
    for _, r in rows.iterrows():
        cells = [Path(str(r["path"])).name, r["explainer"], r["target"], r["status"] + (
            f" ({r['reason'][:60]})" if r.get("reason") else "")]
        cells += [f"{r[m]:.3f}" if pd.notna(r[m]) else "–" for m in metrics]
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return f"<table class='wb-results-table'><tr>{head}</tr>{''.join(body)}</table>"


class ResultsBrowser(W.VBox):
    """Filters (status, explainer, class, a metric's threshold), a page of rows, and their maps."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.index = read_results(self.out, ["path", "label", "target", "explainer", "status", "reason",
                                             *self._metric_columns()])
        self.metrics = [c for c in self.index.columns if c.startswith("metric_")]
        self.status = W.Dropdown(options=[_ALL, *sorted(self.index["status"].unique())], description="status")
        self.explainer = W.Dropdown(options=[_ALL, *self.index["explainer"].unique()], description="explainer")
        self.target = W.Dropdown(options=[_ALL, *sorted(int(t) for t in self.index["target"].unique())],
                                 description="class")
        self.metric = W.Dropdown(options=["(none)", *self.metrics], description="metric")
        self.bound = W.Dropdown(options=[AT_LEAST, AT_MOST], value=AT_LEAST, layout=W.Layout(width="56px"))
        self.threshold = W.FloatText(value=0.0, layout=W.Layout(width="90px"))
        self.direction = W.HTML()
        self.page = W.BoundedIntText(value=1, min=1, max=1, description="page", layout=W.Layout(width="160px"))
        self.pages = W.HTML()
        self.stats = W.HTML()
        self.table = W.HTML()
        self.maps = W.HBox()
        for el, css in ((self.stats, "wb-results-stats"), (self.table, "wb-results-rows"),
                        (self.maps, "wb-results-maps"), (self.explainer, "wb-results-explainer"),
                        (self.status, "wb-results-status"), (self.page, "wb-results-page"),
                        (self.metric, "wb-results-metric"), (self.bound, "wb-results-bound"),
                        (self.threshold, "wb-results-threshold"), (self.direction, "wb-results-direction")):
            el.add_class(css)
        self.metric.observe(self._on_metric, names="value")
        for control in (self.status, self.explainer, self.target, self.bound, self.threshold):
            control.observe(self._refilter, names="value")
        self.page.observe(lambda _change: self._show(), names="value")
        super().__init__([W.HBox([self.status, self.explainer, self.target], layout=W.Layout(flex_flow="row wrap")),
                          W.HBox([self.metric, self.bound, self.threshold, self.direction],
                                 layout=W.Layout(flex_flow="row wrap", align_items="center", gap="4px")),
                          W.HBox([self.page, self.pages], layout=W.Layout(align_items="center", gap="6px")),
                          self.stats, self.table, self.maps], layout=W.Layout(max_width="100%"))
        self.add_class("wb-results")
        self._refilter()

    def _metric_columns(self) -> list[str]:
        import pyarrow.parquet as pq

        first = next(iter(sorted((self.out / "shards").glob("*.parquet"))), None)
        return [] if first is None else [c for c in pq.read_schema(first).names if c.startswith("metric_")]

    def filtered(self) -> pd.DataFrame:
        rows = self.index
        for control, column in ((self.status, "status"), (self.explainer, "explainer"), (self.target, "target")):
            if control.value != _ALL:
                rows = rows[rows[column] == control.value]
        if self.metric.value in self.metrics:
            values, limit = rows[self.metric.value], self.threshold.value
            rows = rows[values >= limit if self.bound.value == AT_LEAST else values <= limit]
        return rows

    def _on_metric(self, change: dict) -> None:
        """A new metric: the threshold's side is set to the metric's better side (its declared direction)."""
        name = change["new"]
        if name in self.metrics:
            higher = metric_higher_is_better(name)
            self.direction.value = (f"<small>{html.escape(name.removeprefix('metric_'))}: "
                                    f"{'higher' if higher else 'lower'} is better</small>")
            self.bound.unobserve(self._refilter, names="value")  # one re-filter below, not two
            self.bound.value = AT_LEAST if higher else AT_MOST
            self.bound.observe(self._refilter, names="value")
        else:
            self.direction.value = ""
        self._refilter()

    def _refilter(self, _change: object = None) -> None:
        self.current = self.filtered()
        pages = max(1, -(-len(self.current) // PAGE_ROWS))
        self.page.max = pages
        self.page.value = min(self.page.value, pages)
        self.pages.value = f"of {pages}"
        counts = self.current["status"].value_counts().to_dict()  # the counts follow the filter
        self.stats.value = (f"<b>{len(self.current):,}</b> of {len(self.index):,} rows match"
                            + "".join(f" · {html.escape(str(k))}: {v:,}" for k, v in counts.items())
                            + f" · {pages} page{'s' if pages != 1 else ''}")
        self._show()

    def _show(self) -> None:
        start = (self.page.value - 1) * PAGE_ROWS
        rows = self.current.iloc[start:start + PAGE_ROWS]
        self.table.value = page_table(rows, self.metrics)
        if rows.empty:
            self.maps.children = ()
            return
        maps = read_results(self.out, ["path", "explainer", "map", "map_shape"],
                            [("path", "in", list(rows["path"].unique())),
                             ("explainer", "in", list(rows["explainer"].unique()))])
        maps = maps.set_index(["path", "explainer"])
        tiles = []
        for _, r in rows.iterrows():
            key = (r["path"], r["explainer"])
            if key in maps.index and len(maps.loc[key, "map"]):
                image = W.Image(value=png_bytes(heat_uint8(maps.loc[key, "map"], maps.loc[key, "map_shape"]), 4),
                                format="png", layout=W.Layout(width="72px"))
                image.add_class(f"wb-results-{safe_name(Path(str(r['path'])).stem, str(r['explainer']))}")  # file name
            else:
                image = W.HTML("<div style='width:72px'>no map</div>")
            tiles.append(W.VBox([image, W.HTML(f"<small>{html.escape(Path(str(r['path'])).name)}<br>"
                                               f"{html.escape(str(r['explainer']))}</small>")]))
        self.maps.children = tuple(tiles)


DEMO_NAME = "batch-demo-digits-v1"
SHIPPED_DEMO = Path(__file__).parent / "demo" / DEMO_NAME  #: made by :func:`make_demo_output` (widgets/demo/README.md)
DEMO_MODEL = "digits_classifier"  #: the embedded model the demo explains; ``made.json`` names its shipped weights


def make_demo_output(out: str | Path) -> Path:
    """Explain 64 embedded test digits with saliency and random maps, scored by deletion and insertion, into ``out``
    (in-process, no Ray), and record beside the output which shipped weights file explained them (``made.json``)."""
    from workbench.batch import explain_dataset
    from workbench.cache import SHIPPED_DIR

    out = Path(out)
    explain_dataset("digits", DEMO_MODEL, ["saliency", "random"], out, metrics=["deletion", "insertion"],
                    shard_size=32, limit=64, engine="local", device="cpu", progress=False)
    weights = _shipped_weights(SHIPPED_DIR)
    made = {"command": f"python -m widgets.results --make-demo {out}", "weights": weights and weights.name,
            "weights_sha256": weights and hashlib.sha256(weights.read_bytes()).hexdigest()}
    (out / "made.json").write_text(json.dumps(made, indent=1) + "\n")
    return out


def _shipped_weights(folder: Path) -> Path | None:
    return next(iter(sorted(folder.glob(f"{DEMO_MODEL}-*.pt"))), None)


def shipped_demo_matches(demo: Path = SHIPPED_DEMO) -> bool:
    """True when the package's demo output was made with the weights the package ships now (the file and its
    SHA-256 that ``made.json`` names), so its maps are those the page's model gives; False otherwise."""
    from workbench.cache import SHIPPED_DIR, shipping_enabled

    try:
        made = json.loads((demo / "made.json").read_text())
        weights = SHIPPED_DIR / str(made["weights"])
        return (shipping_enabled() and any((demo / "shards").glob("*.parquet")) and weights.is_file()
                and hashlib.sha256(weights.read_bytes()).hexdigest() == made["weights_sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def demo_output() -> Path:
    """A small output on the embedded digits (saliency and random maps of 64 test digits, deletion and insertion):
    the one the package ships (``widgets/demo``), read in place, when it was made with the shipped weights;
    otherwise built in-process once and cached beside the models, so the dashboard opens on data without a Ray run."""
    from workbench.cache import cache_dir

    if shipped_demo_matches():
        return SHIPPED_DEMO
    out = cache_dir() / DEMO_NAME
    if not (out / "shards").is_dir() or not any((out / "shards").glob("*.parquet")):
        make_demo_output(out)
    return out


def dashboard(out: str | Path | None = None) -> W.VBox:
    """The results browser on ``out`` (default: the embedded demo output), its strategies on demand
    (:mod:`widgets.strategies`), and a Save bar for what the page shows."""
    browser = ResultsBrowser(out if out is not None else demo_output())
    return with_save_bar(with_strategies(browser, browser.out), "results", lambda: f"page{browser.page.value}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Make the results dashboard's demo output (widgets/demo/README.md).")
    parser.add_argument("--make-demo", metavar="OUT", required=True, help="an empty or new folder")
    print(make_demo_output(parser.parse_args().make_demo))
