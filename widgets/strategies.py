"""The strategies of a batch run (SpRAy, :mod:`workbench.strategies`): a gallery of the clusters' mean maps with
their size and class mix, a 2-D spectral embedding of the maps coloured by cluster or by class, and the member images
of the cluster selected.

Views only draw: the clustering is read from ``RUN/strategies.npz``, only the arrays drawn (labels, embedding, mean
maps, classes: a 100,000-map run opens in about a second); the member paths are read when members are first listed,
and the maps of one page of members from the shards. Where a run has no strategies yet, "Find strategies" computes
them with :func:`workbench.strategies.analyze_run` and says how far it got.
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from widgets._common import figure_outputs, png_bytes
from workbench.batch import Item, load_item, read_results
from workbench.batch.sources import EMBEDDED
from workbench.report.run import heat_rgb
from workbench.strategies import VIEW_FIELDS, Strategies, analyze_run, has_strategies, load_run_strategies

MEMBER_PAGE = 12     #: member images shown per page
MAX_GROUPS = 20      #: above this many classes the scatter colours by a continuous scale and the table lists top ones
TOP_CLASSES = 3      #: classes named on a gallery tile
_TABLE_STYLE = ("<style>.wb-strategies td,.wb-strategies th{padding:1px 8px;text-align:right}"
                ".wb-strategies-member-table td{text-align:left}</style>")
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def class_names(run: str | Path) -> dict[int, str]:
    """Class number -> name from the run's ``run.json`` (``classes``); numbers stand for themselves otherwise."""
    try:
        names = json.loads((Path(run) / "run.json").read_text()).get("classes") or []
    except (OSError, ValueError):
        names = []
    return {k: str(name) for k, name in enumerate(names)}


def mix_html(result: Strategies, names: dict[int, str]) -> str:
    """The class mix of every cluster (:meth:`Strategies.class_mix_frame`) as an HTML table."""
    frame = result.class_mix_frame(names, MAX_GROUPS)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns[1:])
    rows = "".join(f"<tr><th>cluster {int(row[0])}</th>" + "".join(f"<td>{int(v)}</td>" for v in row[1:]) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"{_TABLE_STYLE}<table class='wb-strategies-mix-table'><tr><th></th>{head}</tr>{rows}</table>"


def embedding_figure(result: Strategies, by: str, names: dict[int, str]) -> go.Figure:
    """The maps' 2-D spectral embedding, one colour per cluster (``by="cluster"``) or per class (``"class"``)."""
    groups = result.labels if by == "cluster" else result.classes
    values = np.unique(groups)
    fig = go.Figure()
    x, y = result.embedding[:, 0], result.embedding[:, 1]
    if len(values) > MAX_GROUPS:
        fig.add_trace(go.Scattergl(x=x, y=y, mode="markers", name=by, marker={
            "size": 3, "color": groups, "colorscale": "Viridis", "colorbar": {"title": {"text": by}}}))
    for k, value in enumerate(values if len(values) <= MAX_GROUPS else []):
        keep = groups == value
        label = f"cluster {value}" if by == "cluster" else f"class {names.get(int(value), value)}"
        fig.add_trace(go.Scattergl(x=x[keep], y=y[keep], mode="markers", name=f"{label} ({int(keep.sum()):,})",
                                   marker={"size": 4, "color": COLOURS[k % len(COLOURS)], "opacity": 0.7}))
    fig.update_layout(title={"text": f"spectral embedding of {len(x):,} maps, coloured by {by}"}, height=380,
                      margin={"t": 40, "b": 30, "l": 40, "r": 10}, xaxis_title="eigenvector 2",
                      yaxis_title="eigenvector 3", legend={"itemsizing": "constant"})
    return fig


def source_image(path: str, label: int, shape: list[int]) -> np.ndarray | None:
    """A member's input image as (H, W) or (H, W, 3) uint8, or None where its source is not readable here (moved,
    another machine's path): then its map alone is shown."""
    if path.split("/")[0] not in EMBEDDED and not Path(path).is_file():
        return None
    try:
        image = load_item(Item(path, label), tuple(shape)).permute(1, 2, 0).numpy()
    except (OSError, ValueError, IndexError):
        return None
    image = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    return image[..., 0] if image.shape[2] == 1 else image


class StrategiesView(W.VBox):
    """Gallery of clusters, the embedding (colour by cluster / class) and the selected cluster's members."""

    def __init__(self, run: str | Path, result: Strategies | None = None) -> None:
        self.run = Path(run)
        self.result = result if result is not None else load_run_strategies(self.run, VIEW_FIELDS)
        self.names = class_names(self.run)
        self.values, self.counts = self.result.class_table()
        self._paths: np.ndarray | None = None if not len(self.result.paths) else self.result.paths
        n, k = len(self.result.labels), self.result.n_clusters
        self.stats = W.HTML(f"<b>{k}</b> strategies (clusters) among <b>{n:,}</b> maps of "
                            f"<b>{html.escape(self.result.explainer or 'the run')}</b>, the count chosen by the "
                            "eigengap of the maps' k-NN graph (SpRAy, Lapuschkin et al. 2019)")
        self.gallery = W.HBox([self._tile(c) for c in range(k)], layout=W.Layout(flex_flow="row wrap", gap="8px"))
        self.mix = W.HTML(mix_html(self.result, self.names))
        self.colour = W.ToggleButtons(options=["cluster", "class"], value="cluster", description="colour by")
        self.embedding = W.Output()
        self.cluster = W.Dropdown(options=[("(choose a cluster)", -1)] + [
            (f"cluster {c} · {int(s):,} maps", c) for c, s in enumerate(self.result.sizes)], description="members")
        self.page = W.BoundedIntText(value=1, min=1, max=1, description="page", layout=W.Layout(width="160px"))
        self.pages, self.members, self.member_maps = W.HTML(), W.HTML(), W.HBox(layout=W.Layout(flex_flow="row wrap"))
        for el, css in ((self.stats, "stats"), (self.gallery, "gallery"), (self.mix, "mix"), (self.colour, "colour"),
                        (self.embedding, "embedding"), (self.cluster, "cluster"), (self.page, "page"),
                        (self.members, "members"), (self.member_maps, "member-maps")):
            el.add_class(f"wb-strategies-{css}")
        self.colour.observe(lambda _c: self._draw_embedding(), names="value")
        self.cluster.observe(lambda _c: self._select(), names="value")
        self.page.observe(lambda _c: self._show_members(), names="value")
        super().__init__([self.stats, self.gallery, self.mix, self.colour, self.embedding,
                          W.HBox([self.cluster, self.page, self.pages], layout=W.Layout(align_items="center")),
                          self.members, self.member_maps], layout=W.Layout(max_width="100%"))
        self.add_class("wb-strategies")
        self._draw_embedding()

    def _tile(self, cluster: int) -> W.VBox:
        size, share = int(self.result.sizes[cluster]), self.result.sizes[cluster] / max(1, len(self.result.labels))
        mean = self.result.mean_maps[cluster]
        image = W.Image(value=png_bytes(heat_rgb(mean.ravel(), [1, *mean.shape]), max(1, 96 // mean.shape[1])),
                        format="png", layout=W.Layout(width="96px"))
        image.add_class(f"wb-strategies-mean-{cluster}")
        row = self.counts[cluster]
        top = [j for j in np.argsort(-row, kind="stable")[:TOP_CLASSES] if row[j] > 0]
        mix = ", ".join(f"{html.escape(self.names.get(int(self.values[j]), str(self.values[j])))}: {int(row[j])}"
                        for j in top)
        more = len(np.flatnonzero(row)) - len(top)
        button = W.Button(description="show members", layout=W.Layout(width="120px"))
        button.on_click(lambda _b, c=cluster: setattr(self.cluster, "value", c))
        caption = W.HTML(f"<small><b>cluster {cluster}</b> · {size:,} maps ({share:.0%})<br>classes {mix}"
                         f"{f' +{more} more' if more > 0 else ''}</small>")
        return W.VBox([image, caption, button], layout=W.Layout(width="140px"))

    def _draw_embedding(self) -> None:
        self.embedding.outputs = figure_outputs(embedding_figure(self.result, self.colour.value, self.names))

    def member_paths(self) -> np.ndarray:
        """The path of every clustered map (read from ``strategies.npz`` the first time members are listed)."""
        if self._paths is None:
            self._paths = load_run_strategies(self.run, ("paths",)).paths
        return self._paths

    def _select(self) -> None:
        cluster = self.cluster.value
        count = int(self.result.sizes[cluster]) if cluster >= 0 else 0
        shown = self.page.value != 1
        self.page.value = 1  # when it changes, its observer shows the new cluster's first page (once)
        self.page.max = max(1, -(-count // MEMBER_PAGE))
        self.pages.value = f"of {self.page.max}"
        if not shown:
            self._show_members()

    def _show_members(self) -> None:
        cluster = self.cluster.value
        if cluster < 0:
            self.members.value, self.member_maps.children = "", ()
            return
        members = self.result.members(cluster)
        start = (self.page.value - 1) * MEMBER_PAGE
        page = members[start:start + MEMBER_PAGE]
        paths = self.member_paths()[page]
        classes = [self.names.get(int(v), str(v)) for v in self.result.classes[page]]
        rows = "".join(f"<tr><td>{start + i + 1}</td><td>{html.escape(str(p))}</td>"
                       f"<td>{html.escape(c)}</td></tr>" for i, (p, c) in enumerate(zip(paths, classes, strict=True)))
        self.members.value = (f"<b>cluster {cluster}</b>: {len(members):,} maps, {start + 1}-{start + len(page)} "
                              f"shown{_TABLE_STYLE}<table class='wb-strategies-member-table'><tr><th>#</th>"
                              f"<th>image</th><th>class</th></tr>{rows}</table>")
        self.member_maps.children = tuple(self._member_tiles([str(p) for p in paths]))

    def _member_tiles(self, paths: list[str]) -> list[W.VBox]:
        """Input image (where its source reads here) and map of each member shown; maps of these rows only."""
        filters = [("path", "in", paths)] + ([("explainer", "==", self.result.explainer)] if self.result.explainer
                                             else [])
        found = read_results(self.run, ["path", "label", "map", "map_shape"], filters).drop_duplicates("path")
        found = found.set_index("path")
        tiles = []
        for path in paths:
            if path not in found.index:
                tiles.append(W.HTML(f"<small>{html.escape(Path(path).name)}: not in the shards</small>"))
                continue
            hit = found.loc[path]
            shape = [int(v) for v in hit["map_shape"]]
            heat = heat_rgb(hit["map"], shape)
            scale = max(1, 72 // heat.shape[1])
            views = [W.Image(value=png_bytes(heat, scale), format="png", layout=W.Layout(width="72px"))]
            image = source_image(path, int(hit["label"]), shape)
            if image is not None:
                views.insert(0, W.Image(value=png_bytes(image, scale), format="png", layout=W.Layout(width="72px")))
            tiles.append(W.VBox([W.HBox(views), W.HTML(f"<small>{html.escape(Path(path).name)}</small>")]))
        return tiles


def may_write(run: Path) -> bool:
    """Whether "Find strategies" saves beside ``run``: not in a read-only folder, nor inside the installed package
    (the results dashboard reads its shipped demo run in place)."""
    package = Path(__file__).resolve().parent
    return os.access(run, os.W_OK) and package not in run.resolve().parents


class StrategiesPanel(W.VBox):
    """The strategies of a run, opened on demand: drawn from ``strategies.npz`` when the run has one, otherwise a
    "Find strategies" button that clusters the chosen explainer's maps (and saves them beside the run)."""

    def __init__(self, run: str | Path) -> None:
        self.run = Path(run)
        try:
            explainers = [str(e) for e in json.loads((self.run / "run.json").read_text()).get("explainers", [])]
        except (OSError, ValueError):
            explainers = []
        self.explainer = W.Dropdown(options=explainers or ["(first)"], description="explainer")
        self.find = W.Button(description="Find strategies", icon="search", layout=W.Layout(width="150px"))
        self.progress = W.HTML()
        self.body = W.VBox()
        self.view: StrategiesView | None = None
        self.opened = False
        self.find.add_class("wb-strategies-find")
        self.progress.add_class("wb-strategies-progress")
        self.find.on_click(lambda _b: self.compute())
        super().__init__([W.HBox([self.explainer, self.find, self.progress], layout=W.Layout(align_items="center",
                                                                                              flex_flow="row wrap")),
                          self.body])

    def open_view(self) -> None:
        """Draw the saved strategies, or say how to find them (once; later calls do nothing)."""
        if self.opened:
            return
        self.opened = True
        if not has_strategies(self.run):
            self.progress.value = ("no strategies yet for this run: <b>Find strategies</b> clusters the maps of "
                                   "the chosen explainer (SpRAy) and saves them beside the run (strategies.npz)")
            return
        started = time.perf_counter()
        self._show(StrategiesView(self.run))
        self.progress.value = f"read {self.run.name}/strategies.npz in {time.perf_counter() - started:.1f} s"

    def compute(self) -> Strategies:
        """Cluster the chosen explainer's maps now, saying how far it got, then draw the result."""
        self.find.disabled, started = True, time.perf_counter()
        explainer = None if self.explainer.value == "(first)" else self.explainer.value
        save = may_write(self.run)
        try:
            result = analyze_run(self.run, explainer, save=save, progress=lambda line: setattr(
                self.progress, "value", f"{html.escape(line)} ({time.perf_counter() - started:.0f} s)"))
        except (OSError, ValueError) as exc:
            self.progress.value = f"<span style='color:#b00'>Find strategies failed: {html.escape(str(exc))}</span>"
            raise
        finally:
            self.find.disabled = False
        self._show(StrategiesView(self.run, result))
        where = "saved as strategies.npz" if save else "not saved: the run's folder is read-only or the package's own"
        self.progress.value = (f"found {result.n_clusters} strategies among {len(result.labels):,} maps in "
                               f"{time.perf_counter() - started:.1f} s ({where})")
        return result

    def _show(self, view: StrategiesView) -> None:
        self.view = view
        self.body.children = (view,)
        if view.result.explainer in self.explainer.options:
            self.explainer.value = view.result.explainer
        self.find.description = "Find again"


def with_strategies(board: W.Box, run: str | Path) -> W.Box:
    """``board`` with a "Strategies" accordion appended, drawn (or offered to compute) when first opened."""
    panel = StrategiesPanel(run)
    accordion = W.Accordion(children=[panel], titles=("Strategies (SpRAy: clusters of the run's maps)",))
    accordion.selected_index = None
    accordion.add_class("wb-strategies-accordion")
    accordion.observe(lambda change: panel.open_view() if change["new"] == 0 else None, names="selected_index")
    board.children = (*board.children, accordion)
    return board
