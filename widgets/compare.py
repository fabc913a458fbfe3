"""Compare with model B: the scorecard's images, explainers and metrics on a second model, side by side.

Under a :class:`widgets.scorecard.ScorecardView` (model A: the scorecard's model), a **Compare with** dropdown
picks model B (another shipped model, or the user's own through the model-B row), **Compare** (behind a button,
with progress) runs :func:`workbench.evaluation.compare.compare_models` on the chosen image and the next ones, and
the view draws, per image, A's map, B's map and their difference, and the paired Wilcoxon test of every
explainer x metric (n, mean difference, p-value, which model is better) as a plotly table, so the Save bar writes
both. The numbers come from the library; this module only draws.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from widgets._common import busy, figure_outputs, one_thread
from widgets.inputs import PathRow
from workbench.evaluation.compare import MapDifference, ModelComparison, compare_models

ModelLoaders = Mapping[str, Callable[[], torch.nn.Module]]


def format_p(p: float) -> str:
    """A p-value as the page prints it (3 significant digits, "n/a" when undefined)."""
    return "n/a" if p != p else f"{p:.3g}"


def difference_figure(images: torch.Tensor, diff: MapDifference, explainer: str, indices: list[int],
                      height: int = 150) -> go.Figure:
    """Rows: image, A's map, B's map, A - B; one column per image, titled with its index and Spearman rho."""
    n = len(images)
    titles = [f"#{i} ρ {float(s):.2f}" for i, s in zip(indices, diff.similarity, strict=True)] + [""] * (3 * n)
    fig = make_subplots(rows=4, cols=n, subplot_titles=titles, horizontal_spacing=0.01, vertical_spacing=0.03,
                        row_titles=["image", "A", "B", "A − B"])
    for i in range(n):
        gray = images[i].detach().cpu().float().mean(0).numpy()
        fig.add_trace(go.Heatmap(z=gray, colorscale="gray", zmin=0, zmax=1, showscale=False, hoverinfo="skip"),
                      row=1, col=i + 1)
        for row, arr, bound in ((2, diff.maps_a[i], 1.0), (3, diff.maps_b[i], 1.0), (4, diff.difference[i], 2.0)):
            fig.add_trace(go.Heatmap(z=arr.numpy(), colorscale="RdBu_r", zmid=0, zmin=-bound, zmax=bound,
                                     showscale=False, hovertemplate="x %{x}, y %{y}: %{z:.3g}<extra></extra>"),
                          row=row, col=i + 1)
    for k in range(4 * n):
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{'' if k == 0 else k + 1}", showticklabels=False,
                         row=k // n + 1, col=k % n + 1)
        fig.update_xaxes(showticklabels=False, row=k // n + 1, col=k % n + 1)
    fig.update_layout(height=4 * height + 60, width=max(360, 110 * n + 80), margin=dict(l=10, r=60, t=70, b=10),
                      modebar=dict(orientation="v"),
                      title=dict(text=f"{explainer}: A vs B (each map scaled to its own maximum; ρ: Spearman)",
                                 font_size=13, x=0.01, xanchor="left"))
    fig.update_annotations(font_size=10)
    return fig


def signed_rgb(values: np.ndarray, bound: float) -> np.ndarray:
    """(H, W) signed values -> (H, W, 3) uint8: blue (-bound) through white (0) to red (+bound), as the maps' RdBu."""
    t = np.clip(np.asarray(values, np.float32) / bound, -1.0, 1.0)[..., None]
    white, red, blue = np.float32([247, 247, 247]), np.float32([178, 24, 43]), np.float32([33, 102, 172])
    rgb = np.where(t >= 0, white + t * (red - white), white - t * (blue - white))
    return rgb.round().astype(np.uint8)


def difference_mosaic(images: torch.Tensor, diff: MapDifference, cell: int = 6, gap: int = 2) -> np.ndarray:
    """RGB uint8 picture of :func:`difference_figure`'s panels for a report: rows image, A, B, A - B (maps on
    [-1, 1], the difference on [-2, 2]), one column per image, each pixel ``cell`` x ``cell``, ``gap`` white apart."""
    n, (h, w) = len(images), diff.difference.shape[-2:]
    out = np.full((4 * (h * cell + gap) - gap, n * (w * cell + gap) - gap, 3), 255, np.uint8)
    for i in range(n):
        x = images[i].detach().cpu().float().clamp(0, 1).numpy()
        shown = (x.transpose(1, 2, 0) if x.shape[0] == 3 else x.mean(0)[..., None].repeat(3, -1)) * 255
        rows = (shown.round().astype(np.uint8), signed_rgb(diff.maps_a[i].numpy(), 1.0),
                signed_rgb(diff.maps_b[i].numpy(), 1.0), signed_rgb(diff.difference[i].numpy(), 2.0))
        for r, panel in enumerate(rows):
            y0, x0 = r * (h * cell + gap), i * (w * cell + gap)
            out[y0:y0 + h * cell, x0:x0 + w * cell] = panel.repeat(cell, 0).repeat(cell, 1)
    return out


def tests_table(tests: Any, name_b: str) -> Any:
    """The paired tests as the page prints them (a pandas table of strings), for the HTML report."""
    import pandas as pd

    fig = tests_figure(tests, "A", name_b)
    cells = fig.data[0]
    return pd.DataFrame({h: list(v) for h, v in zip(cells.header.values, cells.cells.values, strict=True)})


def tests_figure(tests: Any, name_a: str, name_b: str) -> go.Figure:
    """The paired tests as a plotly table: explainer, metric, n, means, mean difference, p-value, verdict."""
    cols = {"explainer": tests["explainer"], "metric": tests["metric"], "n": tests["n"],
            f"mean A ({name_a})": [f"{v:.3g}" for v in tests["mean_a"]],
            f"mean B ({name_b})": [f"{v:.3g}" for v in tests["mean_b"]],
            "A − B": [f"{v:+.3g}" for v in tests["mean_difference"]],
            "p (Wilcoxon)": [format_p(p) for p in tests["p_value"]],
            "verdict": [b + ("" if s or b in ("same scores", "no pairs") else " (not significant)")
                        for b, s in zip(tests["better"], tests["significant"], strict=True)]}
    fig = go.Figure(go.Table(header=dict(values=list(cols), align="left"),
                             cells=dict(values=[list(v) for v in cols.values()], align="left")))
    fig.update_layout(height=80 + 28 * len(tests), width=900, margin=dict(l=10, r=10, t=40, b=10),
                      title=dict(text="paired test per explainer × metric (Wilcoxon signed-rank, two-sided)",
                                 font_size=13, x=0.01))
    return fig


def small_sample_note(n: int) -> str:
    """Why no cell can differ with few images: the exact two-sided Wilcoxon test of ``n`` pairs cannot give a p below
    ``2 / 2**n`` (every sign the same), which is 0.0625 at 5 images; empty from 6 images on."""
    floor = 2.0 / 2**n
    if floor < 0.05:
        return ""
    return (f"<br><span class='wb-compare-small-n' style='color:#b35900'>With {n} images the two-sided Wilcoxon test "
            f"cannot go below p = {floor:.3g} (all {n} differences of one sign), so no cell can differ at p < 0.05: "
            "compare 6 images or more.</span>")


class CompareView(W.VBox):
    """Model A (``scorecard.model``) vs a model B from ``models`` (name -> loader) or the user's model row.

    ``make_explainers(model) -> {name: explainer}`` builds the scorecard's explainers around a model.
    """

    def __init__(self, scorecard: Any, models: ModelLoaders, make_explainers: Callable[[Any], dict[str, Any]],
                 n_images: int = 8) -> None:
        if len(scorecard.images) < 2:  # the paired tests need two images; a slider with max < min would not draw
            raise ValueError(f"comparing two models needs a scorecard of at least 2 images (one paired test per "
                             f"metric); this scorecard has {len(scorecard.images)}")
        self.scorecard, self.loaders, self.make_explainers = scorecard, dict(models), make_explainers
        self.result: ModelComparison | None = None
        self.model_b: torch.nn.Module | None = None  # the Save bar's report names its provenance
        self.name_b = ""
        self.indices: list[int] = []
        self.model_pick = W.Dropdown(options=list(self.loaders), description="Compare with",
                                     style={"description_width": "95px"}, layout=W.Layout(width="380px"))
        names = list(make_explainers(scorecard.model))
        self.explainer_pick = W.Dropdown(options=names, value=names[0], description="explainer")
        self.which = W.Dropdown(options=["all", *names], value="all", description="explain with",
                                layout=W.Layout(width="260px"))  # one fast explainer: seconds, all: minutes
        self.n_images = W.IntSlider(value=min(n_images, len(scorecard.images)), min=2, max=len(scorecard.images),
                                    description="images", continuous_update=False)
        self.button = W.Button(description="Compare", icon="columns", button_style="primary")
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="180px", visibility="hidden"))
        self.status, self.maps_out, self.tests_out = W.HTML(), W.Output(), W.Output()
        self.model_row = PathRow("model B", "model.pt (TorchScript) or package.module:Class weights.pt",
                                 self._load_yours, ".pt,.pth,.ts", "wb-compare-yours", confine=False)
        for widget, part in ((self.model_pick, "model"), (self.explainer_pick, "explainer"), (self.button, "run"),
                             (self.which, "which"), (self.n_images, "images"),
                             (self.status, "status"), (self.maps_out, "difference-maps"),
                             (self.tests_out, "paired-tests")):
            widget.add_class(f"wb-compare-{part}")
        self.button.on_click(lambda _b: self.run())
        self.explainer_pick.observe(lambda _c: self.draw_maps(), names="value")
        super().__init__([W.HTML("<b>Two models side by side</b>: the same images, explainers and metrics on model "
                                 "B; a difference map per image and a paired test per metric."),
                          W.HBox([self.model_pick, self.which, self.n_images, self.button, self.progress],
                                 layout=W.Layout(flex_flow="row wrap", align_items="center")), self.model_row,
                          self.status, self.tests_out, self.explainer_pick, self.maps_out])
        self.add_class("wb-compare")

    def _load_yours(self, path: str) -> str:
        from workbench.inputs import load_classifier

        name, _, weights = path.partition(" ")
        shape = tuple(int(v) for v in self.scorecard.images.shape[1:])
        model = load_classifier(name, shape, None, weights or None)
        label = f"yours: {name}"
        self.loaders[label] = lambda: model
        self.model_pick.options = list(self.loaders)
        self.model_pick.value = label
        return f"model B is now {name}"

    def clear(self) -> None:
        """Forget the comparison (the chosen image changed): computes nothing."""
        self.result, self.maps_out.outputs, self.tests_out.outputs, self.status.value = None, (), (), ""
        self.model_b = None

    def run(self) -> ModelComparison:
        """Compare model A with the picked model B on the chosen image and the next ones, then draw."""
        with busy(self.button, self.progress, self.status, "Compare"):
            card, name_b = self.scorecard, self.model_pick.value
            model_a, model_b = card.model, self.loaders[name_b]()
            rest = [i for i in range(len(card.images)) if i != card.image]
            self.indices = [card.image] + rest[:self.n_images.value - 1]
            built = {id(model_a): self.make_explainers(model_a), id(model_b): self.make_explainers(model_b)}
            chosen = list(built[id(model_a)]) if self.which.value == "all" else [self.which.value]
            factories = {n: (lambda m, n=n: built[id(m)][n]) for n in chosen}
            self.progress.max, self.progress.value = 2 * len(factories) * len(card.metrics), 0

            def step(model: str, explainer: str, metric: str) -> None:
                self.progress.value += 1
                self.status.value = f"<i>Scoring model {model}: {html.escape(explainer)} × {html.escape(metric)}…</i>"

            self.model_b, self.name_b = model_b, name_b
            with one_thread():
                self.result = compare_models(model_a, model_b, card.images[self.indices], factories, card.metrics,
                                             on_step=step)
            tests = self.result.tests
            self.tests_out.outputs = figure_outputs(tests_figure(tests, "A", name_b))
            self.status.value = (f"model B: {html.escape(name_b)} · {len(self.indices)} images "
                                 f"({', '.join(f'#{i}' for i in self.indices)}) · "
                                 f"{int(tests['significant'].sum())} of {len(tests)} cells differ at p < 0.05"
                                 + small_sample_note(len(self.indices)))
            if self.explainer_pick.value not in self.result.maps:
                self.explainer_pick.value = next(iter(self.result.maps))  # its observer draws the maps
            self.draw_maps()
            return self.result

    def report_section(self, report: Any) -> None:
        """The Save bar's report of this view (a hook :func:`widgets.export.page_report` calls): nothing before a
        comparison; after one, the paired-test table (p-values as the page prints them) and, per explainer
        compared, its difference maps as one inline image."""
        if self.result is None:
            return
        report.add_heading("Two models side by side", 3)
        report.add_html(self.status.value)
        report.add_table(tests_table(self.result.tests, self.name_b))
        images = self.scorecard.images[self.indices]
        for name, diff in self.result.maps.items():
            rho = ", ".join(f"#{i} ρ {float(r):.2f}" for i, r in zip(self.indices, diff.similarity, strict=True))
            report.add_image(difference_mosaic(images, diff),
                             f"{name}: rows image, A, B, A − B (each map scaled to its own maximum); {rho}")

    def draw_maps(self) -> None:
        """Re-draw the picked explainer's difference maps; no computation."""
        if self.result is None or self.explainer_pick.value not in self.result.maps:
            return
        name = self.explainer_pick.value
        images = self.scorecard.images[self.indices]
        self.maps_out.outputs = figure_outputs(difference_figure(images, self.result.maps[name], name,
                                                                 self.indices))


def attach_compare(scorecard: Any, models: ModelLoaders, make_explainers: Callable[[Any], dict[str, Any]]
                   ) -> CompareView:
    """Add a :class:`CompareView` under ``scorecard`` (its ``set_image`` clears the comparison)."""
    view = CompareView(scorecard, models, make_explainers)
    scorecard.compare = view
    scorecard.children = (*scorecard.children, view)
    return view



def comparable_models(dataset: str) -> dict[str, Callable[[], torch.nn.Module]]:
    """Model B candidates for the relabel dashboard's ``dataset``: the same data set's classifier trained by its
    smoke recipe (fewer epochs; a narrower net for the patches), cached after a few seconds' training on first use."""
    from workbench.models import pretrained

    if dataset == "digits":
        return {"digits CNN, smoke recipe (2 epochs)": lambda: pretrained.digits_classifier(smoke=True,
                                                                                             progress=False)}
    return {"patches CNN, smoke recipe (width 8)": lambda: pretrained.patches_classifier(smoke=True, progress=False)}
