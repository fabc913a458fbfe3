"""Scorecard view: every explainer x metric of :func:`workbench.evaluation.scorecard` as a heat table, the maps behind
a cell, and the MPRT sanity-check picture (Adebayo et al., NeurIPS 2018).

**Score** (behind a button, with progress) explains a batch (the chosen image first, then the next images of the
set) with every explainer and scores it with every metric; the table shows the chosen image or the batch mean.
Colours are direction-aware: in each metric's column the best explainer is green and the worst red, whether the
metric is higher- or lower-is-better. Picking a cell (the explainer and metric dropdowns, robust in Voilà) shows that
explainer's maps with that metric's score per image. **Sanity check (MPRT)** re-explains the chosen image under the
model randomised layer by layer, top-down, and draws the maps side by side with their rank correlation to the
trained model's map (a map that does not change explains little of the model).

:func:`heat_table_figure`, :func:`maps_figure` and :func:`mprt_figure` only draw; the numbers come from
:mod:`workbench.evaluation`.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from widgets._common import figure_outputs, one_thread
from workbench.evaluation import (
    MPRT,
    Metric,
    MPRTResult,
    as_explain_fn,
    cheap_metrics,
    scorecard,
)
from workbench.runtime import model_device
from workbench.train import predict

if TYPE_CHECKING:  # pandas is needed once a scorecard has run, not to open a dashboard
    import pandas as pd

SCOPES = (("chosen image", "image"), ("batch mean", "batch"))


# ------------------------------------------------------------------------------------------------ pure drawing
def pivot_scores(table: pd.DataFrame, image: int | None = None) -> tuple[pd.DataFrame, dict[str, bool]]:
    """Explainer x metric means of ``table``'s ok rows (only ``image``'s rows when given) and each metric's
    direction; a cell with no ok row is NaN."""
    rows = table if image is None else table[table["image"] == image]
    ok = rows[rows["status"] == "ok"]
    means = ok.pivot_table(index="explainer", columns="metric", values="score", aggfunc="mean")
    order_e = list(dict.fromkeys(table["explainer"]))
    order_m = list(dict.fromkeys(table["metric"]))
    direction = dict(zip(table["metric"], table["higher_is_better"], strict=False))
    return means.reindex(index=order_e, columns=order_m), direction


def goodness(means: pd.DataFrame, direction: Mapping[str, bool]) -> np.ndarray:
    """Each cell's place in its metric's column, 1 = best explainer, 0 = worst, whatever the metric's direction
    (0.5 when every explainer scores the same; NaN where there is no score)."""
    out = np.full(means.shape, np.nan)
    for j, metric in enumerate(means.columns):
        col = means[metric].to_numpy(dtype=float)
        finite = col[np.isfinite(col)]
        if finite.size == 0:
            continue
        lo, hi = finite.min(), finite.max()
        scaled = (col - lo) / (hi - lo) if hi > lo else np.where(np.isfinite(col), 0.5, np.nan)
        out[:, j] = scaled if direction.get(metric, True) else 1 - scaled
    return out


def failures(table: pd.DataFrame, image: int | None = None) -> dict[tuple[str, str], str]:
    """``(explainer, metric) -> why`` for every cell with failed rows (only ``image``'s rows when given): the
    scorecard's recorded reason, with how many of the cell's images failed when not all did."""
    rows = table if image is None else table[table["image"] == image]
    out: dict[tuple[str, str], str] = {}
    for (explainer, metric), cell in rows.groupby(["explainer", "metric"], sort=False):
        failed = cell[cell["status"] != "ok"]
        if len(failed):
            share = "" if len(failed) == len(cell) else f" ({len(failed)} of {len(cell)} images)"
            out[(str(explainer), str(metric))] = f"{failed['reason'].iloc[0] or 'no reason recorded'}{share}"
    return out


def heat_table_figure(table: pd.DataFrame, image: int | None = None, title: str = "") -> go.Figure:
    """The heat table: rows explainers, columns metrics (arrow: direction), cells the mean score, coloured red (worst)
    to green (best) within each column; a cell without a score says "failed" and, on hover, why."""
    means, direction = pivot_scores(table, image)
    good = goodness(means, direction)
    why = failures(table, image)
    values = means.to_numpy(dtype=float)
    text = [[f"{v:.3g}" if np.isfinite(v) else "failed" for v in row] for row in values]
    hover = [[f"{v:.4g}" + (f" ({why[(e, m)]})" if (e, m) in why else "") if np.isfinite(v)
              else f"failed: {why.get((e, m), 'no score')}" for v, m in zip(row, means.columns, strict=True)]
             for row, e in zip(values, means.index, strict=True)]
    columns = [f"{m} {'↑' if direction.get(m, True) else '↓'}" for m in means.columns]
    fig = go.Figure(go.Heatmap(z=good, x=columns, y=list(means.index), text=text, texttemplate="%{text}",
                               colorscale="RdYlGn", zmin=0, zmax=1, showscale=False, xgap=2, ygap=2,
                               customdata=hover, hovertemplate="%{y} · %{x}: %{customdata}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(side="top", tickangle=-30)
    fig.update_layout(height=90 + 34 * len(means.index), width=max(420, 150 + min(110, 720 // max(1, len(columns)))
                                                                   * len(columns)),
                      margin=dict(l=10, r=40, t=110, b=10), plot_bgcolor="#eee", modebar=dict(orientation="v"),
                      title=dict(text=title, font_size=13, x=0.01, xanchor="left", y=0.99, yanchor="top"))
    return fig


def table_notes(table: pd.DataFrame, metrics: Sequence[Metric], shape: tuple[int, ...],
                image: int | None = None) -> str:
    """HTML under the heat table: why each failed cell failed, then each metric's direction, meaning and range
    (from the metric's declaration: :meth:`workbench.evaluation.Metric.scale`)."""
    why = failures(table, image)
    parts = []
    if why:
        items = "".join(f"<li><b>{html.escape(e)} × {html.escape(m)}</b>: {html.escape(r)}</li>"
                        for (e, m), r in why.items())
        parts.append(f"<div class='wb-scorecard-failures'><b>Failed cells</b><ul>{items}</ul></div>")
    legend = "".join(f"<li><b>{html.escape(m.name)}</b> {'↑ higher' if m.higher_is_better else '↓ lower'} is better"
                     f": {html.escape(m.scale(shape))}</li>" for m in metrics)
    parts.append(f"<div class='wb-scorecard-legend'><b>What the columns measure</b><ul>{legend}</ul></div>")
    return "<small>" + "".join(parts) + "</small>"


def _signed_heatmap(arr: np.ndarray) -> go.Heatmap:
    bound = float(np.abs(arr).max()) or 1.0
    return go.Heatmap(z=arr, colorscale="RdBu_r", zmid=0, zmin=-bound, zmax=bound, showscale=False,
                      hovertemplate="x %{x}, y %{y}: %{z:.3g}<extra></extra>")


def _square_axes(fig: go.Figure, rows: int, cols: int) -> None:
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{'' if k == 0 else k + 1}", showticklabels=False,
                         showgrid=False, zeroline=False, row=r + 1, col=c + 1)
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, row=r + 1, col=c + 1)


def _plane(t: torch.Tensor) -> np.ndarray:
    arr = t.detach().cpu().float().numpy()
    return arr.sum(0) if arr.ndim == 3 else arr


def maps_figure(images: torch.Tensor, maps: torch.Tensor, scores: Sequence[float], explainer: str, metric: str,
                height: int = 230, indices: Sequence[int] | None = None) -> go.Figure:
    """Row 1: the images (channel mean, gray) titled with their index in the data set (``indices``, default
    0, 1, ...), as the picker and the table name them; row 2: the explainer's signed maps, titled with the metric's
    score ("failed" where there is none)."""
    n = len(images)
    names = list(indices) if indices is not None else list(range(n))
    titles = [f"#{i}" for i in names] + [f"{metric} {s:.3g}" if s == s else f"{metric} failed" for s in scores]
    fig = make_subplots(rows=2, cols=n, subplot_titles=titles, horizontal_spacing=0.01, vertical_spacing=0.12)
    for i in range(n):
        gray = images[i].detach().cpu().float().mean(0).numpy()
        fig.add_trace(go.Heatmap(z=gray, colorscale="gray", zmin=0, zmax=1, showscale=False, hoverinfo="skip"),
                      row=1, col=i + 1)
        fig.add_trace(_signed_heatmap(_plane(maps[i])), row=2, col=i + 1)
    _square_axes(fig, 2, n)
    fig.update_layout(height=2 * height, width=max(360, 120 * n + 40), margin=dict(l=10, r=40, t=70, b=10),
                      modebar=dict(orientation="v"),
                      title=dict(text=f"{explainer}: maps (red: for the class, blue: against)", font_size=13, x=0.01,
                                 xanchor="left"))
    fig.update_annotations(font_size=10)
    return fig


def mprt_figure(result: MPRTResult, explainer: str, image: int = 0, height: int = 210) -> go.Figure:
    """The MPRT picture of one image: the trained model's map, then the map after randomising each further layer
    (top-down), each titled with the layer and its Spearman correlation to the trained model's map."""
    if result.maps is None:
        raise ValueError("the MPRT result holds no maps; call MPRT.curve(batch, keep_maps=True)")
    names = ["trained" if n == "original" else f"+ {n}" for n in result.layers]
    sim = result.similarity[image].tolist()
    titles = [f"{n}<br>ρ {s:.2f}" for n, s in zip(names, sim, strict=True)]
    cols = len(titles)
    fig = make_subplots(rows=1, cols=cols, subplot_titles=titles, horizontal_spacing=0.005)
    for k, m in enumerate(result.maps):
        fig.add_trace(_signed_heatmap(_plane(m[image])), row=1, col=k + 1)
    _square_axes(fig, 1, cols)
    fig.update_layout(height=height, width=max(400, 105 * cols + 40), margin=dict(l=10, r=40, t=80, b=10),
                      modebar=dict(orientation="v"),
                      title=dict(text=f"{explainer}: MPRT, layers randomised top-down (|map|, ρ: Spearman with the "
                                      "trained model's map; lower is a better sanity check)", font_size=13))
    fig.update_annotations(font_size=9)
    return fig


# ------------------------------------------------------------------------------------------------ the view
class ScorecardView(W.VBox):
    """Heat table, cell maps and MPRT picture of ``explainers`` (name -> explainer with ``.attribute`` or
    ``explain_fn(model, inputs, targets)``) scored by ``metrics`` on ``batch_size`` images of ``images``.

    ``metrics``: a callable ``(image shape) -> list of metrics`` or a list (default :func:`cheap_metrics`).
    """

    def __init__(self, model: torch.nn.Module, images: torch.Tensor, explainers: Mapping[str, Any],
                 metrics: Sequence[Metric | str] | Callable[[tuple[int, ...]], list[Metric]] | None = None,
                 batch_size: int = 8, image: int = 0) -> None:
        self.model, self.images = model, images.detach().float()
        self.explainers = dict(explainers)
        chosen = metrics if metrics is not None else cheap_metrics
        self.metrics = list(chosen(tuple(self.images.shape[1:]))) if callable(chosen) else list(chosen)
        self.batch_size, self.image = max(1, min(batch_size, len(self.images))), image
        self.table: pd.DataFrame | None = None
        self.maps: dict[str, torch.Tensor] = {}
        self.indices: list[int] = []
        self.mprt: MPRTResult | None = None
        self.compare: Any = None  # a widgets.compare.CompareView under this view (attach_compare), if any
        self._build()
        super().__init__([
            W.HTML("<b>Scorecard</b>: every explainer × metric (Quantus's definitions, "
                   "<code>workbench.evaluation</code>); green = better whatever the metric's direction."),
            W.HBox([self.score_button, self.scope, self.progress], layout=W.Layout(align_items="center", gap="8px")),
            self.status, self.table_out, self.notes,
            W.HBox([self.explainer_pick, self.metric_pick], layout=W.Layout(gap="8px")), self.maps_out,
            W.HBox([self.mprt_button], layout=W.Layout(align_items="center", gap="8px")), self.mprt_out])
        self.add_class("wb-scorecard")

    def _build(self) -> None:
        self.score_button = W.Button(description="Score explainers", icon="table", button_style="primary",
                                     layout=W.Layout(width="170px"))
        self.score_button.add_class("wb-scorecard-run")
        self.scope = W.ToggleButtons(options=SCOPES, value="image", style={"button_width": "110px"})
        self.scope.add_class("wb-scorecard-scope")
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="180px", visibility="hidden"))
        self.status = W.HTML()
        self.status.add_class("wb-scorecard-status")
        self.notes = W.HTML()
        self.notes.add_class("wb-scorecard-notes")
        names = list(self.explainers)
        self.explainer_pick = W.Dropdown(options=names, value=names[0], description="explainer")
        self.explainer_pick.add_class("wb-scorecard-explainer")
        metric_names = [m.name if isinstance(m, Metric) else str(m) for m in self.metrics]
        self.metric_pick = W.Dropdown(options=metric_names, value=metric_names[0], description="metric")
        self.metric_pick.add_class("wb-scorecard-metric")
        self.mprt_button = W.Button(description="Sanity check (MPRT)", icon="random", layout=W.Layout(width="190px"))
        self.mprt_button.add_class("wb-scorecard-mprt")
        self.table_out, self.maps_out, self.mprt_out = W.Output(), W.Output(), W.Output()
        for name, out in (("table", self.table_out), ("maps", self.maps_out), ("mprt-picture", self.mprt_out)):
            out.add_class(f"wb-scorecard-{name}")
        self.score_button.on_click(lambda _b: self.run())
        self.mprt_button.on_click(lambda _b: self.run_mprt())
        self.scope.observe(lambda _c: self.draw_table(), names="value")
        for pick in (self.explainer_pick, self.metric_pick):
            pick.observe(lambda _c: self.draw_maps(), names="value")
        self._hint()

    def _hint(self) -> None:
        self.status.value = (f"<i>Press <b>Score explainers</b> to score {len(self.explainers)} explainers × "
                             f"{len(self.metrics)} metrics on image #{self.image} and {self.batch_size - 1} more.</i>")

    # -------------------------------------------------------------------------------------------- state
    def set_image(self, index: int) -> None:
        """Choose the image (called by the dashboard's picker): clears the results, computes nothing."""
        self.image, self.table, self.maps, self.mprt = int(index), None, {}, None
        for out in (self.table_out, self.maps_out, self.mprt_out):
            out.outputs = ()
        self.notes.value = ""
        self._hint()
        if self.compare is not None:
            self.compare.clear()

    def set_model(self, model: torch.nn.Module, explainers: Mapping[str, Any]) -> None:
        """Score another model (the dashboard's "Your model"): its explainers, built around it, replace the old
        ones, and the results of the old model are cleared (as :meth:`set_image` does)."""
        self.model, self.explainers = model, dict(explainers)
        names = list(self.explainers)
        self.explainer_pick.options = names
        self.explainer_pick.value = names[0]
        self.set_image(self.image)

    def _batch(self) -> tuple[torch.Tensor, list[int]]:
        rest = [i for i in range(len(self.images)) if i != self.image]
        indices = [self.image] + rest[:self.batch_size - 1]
        return self.images[indices], indices

    def _device(self) -> torch.device:
        return model_device(self.model)

    def _targets(self, x: torch.Tensor) -> torch.Tensor:
        """The model's labels of ``x`` (the explained classes), on ``x``'s device."""
        with torch.no_grad():
            return predict(self.model, x).argmax(-1).to(x.device)

    # -------------------------------------------------------------------------------------------- work
    def run(self) -> pd.DataFrame:
        """Explain the batch with every explainer and score every map with every metric, then draw."""
        with self._busy(self.score_button, "Scoring"):
            self.progress.layout.visibility = "visible"
            steps = len(self.explainers) * (1 + len(self.metrics))  # explain each, then score each explainer x metric
            self.progress.max, self.progress.value = steps, 0
            x, self.indices = self._batch()
            x = x.to(self._device())
            t = self._targets(x)
            self.maps = {}
            with one_thread():
                for name, explainer in self.explainers.items():
                    self._step(f"Explaining {len(x)} images with {html.escape(name)}")
                    self.maps[name] = self._explain(explainer, x, t)
                fixed = {name: _Fixed(self.maps[name], self.model, x, t, as_explain_fn(e, self.model))
                         for name, e in self.explainers.items()}
                self.table = scorecard(self.model, x, t, fixed, self.metrics, progress=False, on_step=lambda e, m:
                                       self._step(f"Scoring {html.escape(e)} × {html.escape(m)} on {len(x)} images"))
            self.progress.value = self.progress.max
            failed = int((self.table["status"] != "ok").sum())
            self.status.value = (f"{len(self.table)} scores, {failed} failed · images "
                                 f"{', '.join(f'#{i}' for i in self.indices)} · "
                                 f"{self.table['seconds'].sum():.2f} s per image in the metrics")
            self.draw_table()
            self.draw_maps()
            return self.table

    def _step(self, what: str) -> None:
        """Show what runs now and how far the run is (step k of the progress bar's max)."""
        self.progress.value += 1
        self.status.value = f"<i>{what}… (step {self.progress.value} of {self.progress.max})</i>"

    @contextlib.contextmanager
    def _busy(self, button: W.Button, what: str) -> Iterator[None]:
        """Disable ``button`` while the work runs; a failure is shown in the status line (and raised)."""
        button.disabled = True
        try:
            yield
        except Exception as exc:
            self.status.value = f"<span style='color:#b00'>{what} failed: {html.escape(str(exc))}</span>"
            raise
        finally:
            button.disabled = False
            self.progress.layout.visibility = "hidden"

    def _explain(self, explainer: Any, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor | None:
        try:
            return torch.as_tensor(as_explain_fn(explainer, self.model)(self.model, x, t)).detach().float()
        except Exception:  # noqa: BLE001 - the scorecard retries and reports the reason in its rows
            return None

    def run_mprt(self) -> MPRTResult:
        """MPRT of the picked explainer on the chosen image: maps under the model randomised top-down."""
        name = self.explainer_pick.value
        self.status.value = f"<i>Randomising the model layer by layer and re-explaining with {html.escape(name)}…</i>"
        with self._busy(self.mprt_button, "MPRT"):
            x = self.images[self.image][None].to(self._device())
            t = self._targets(x)
            explain = as_explain_fn(self.explainers[name], self.model)
            with one_thread():
                maps = explain(self.model, x, t)
                metric = MPRT()
                self.mprt = metric.curve(metric.batch(self.model, x, t, maps, explain=explain), keep_maps=True)
            self.mprt_out.outputs = figure_outputs(mprt_figure(self.mprt, name))
            last = float(self.mprt.similarity[0, -1])
            self.status.value = (f"MPRT of {html.escape(name)} on #{self.image}: Spearman ρ with the fully randomised "
                                 f"model {last:.2f} ({len(self.mprt.layers) - 1} layers)")
            return self.mprt

    # -------------------------------------------------------------------------------------------- drawing
    def draw_table(self) -> None:
        """Re-draw the heat table for the scope (chosen image or batch mean); no computation."""
        if self.table is None:
            return
        image = 0 if self.scope.value == "image" else None
        title = (f"image #{self.image}" if image is not None else f"mean over {len(self.indices)} images")
        self.table_out.outputs = figure_outputs(heat_table_figure(self.table, image, title))
        self.notes.value = table_notes(self.table, self.metrics, tuple(self.images.shape[1:]), image)

    def draw_maps(self) -> None:
        """Re-draw the maps of the picked explainer with the picked metric's scores; no computation."""
        if self.table is None:
            return
        name, metric = self.explainer_pick.value, self.metric_pick.value
        maps = self.maps.get(name)
        if maps is None:
            self.maps_out.outputs = ()
            return
        rows = self.table[(self.table["explainer"] == name) & (self.table["metric"] == metric)].sort_values("image")
        x, _ = self._batch()
        self.maps_out.outputs = figure_outputs(maps_figure(x, maps.cpu(), rows["score"].tolist(), name, metric,
                                                           indices=self.indices))


class _Fixed:
    """An explain_fn that returns the maps already drawn for the scored batch (so the view shows exactly what was
    scored) and re-explains anything else (perturbed inputs, randomised models) with ``explain``."""

    def __init__(self, maps: torch.Tensor | None, model: Any, inputs: torch.Tensor, targets: torch.Tensor,
                 explain: Callable[..., torch.Tensor]) -> None:
        self.maps, self.model, self.inputs, self.targets, self.explain = maps, model, inputs, targets, explain

    def __call__(self, model: Any, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        same = (model is self.model and x.shape == self.inputs.shape and torch.equal(x, self.inputs)
                and torch.equal(torch.as_tensor(t).to(self.targets), self.targets))
        return self.maps if same and self.maps is not None else self.explain(model, x, t)

