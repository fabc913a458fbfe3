"""Views of hybrid-order relational KD (:mod:`workbench.horkd`): what the student sees, the relational structure of
the three streams, and accuracy against input resolution for every baseline.

``dashboard()`` trains (first use, cached: under a minute on a CPU in the smoke setting) or loads the default
teacher, assistants and students, evaluates every baseline over a range of input resolutions once, and then
re-draws on every move of the resolution slider (no training, a few tens of ms).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import torch
from plotly.subplots import make_subplots

from workbench.data.digits import ImageSet
from workbench.data.patches import downsample
from workbench.horkd import (
    METHOD_LABELS,
    METHODS,
    HorkdConfig,
    accuracy,
    assistant_model,
    count_parameters,
    load_horkd_data,
    lr_input,
    relational_views,
    teacher_model,
    train_students,
)
from workbench.train import smoke_mode

TEST_RESOLUTIONS: tuple[int, ...] = (4, 6, 8, 12, 16, 24, 32)
COLOURS = {"teacher_upsampled": "#444444", "assistant": "#8c564b", "scratch": "#1f77b4", "hinton": "#ff7f0e",
           "rkd": "#2ca02c", "horkd_no_assistant": "#9467bd", "horkd": "#d62728"}


@dataclass
class HorkdModels:
    """The dashboard's streams: the HR teacher, one assistant and one student per method for each trained
    resolution (seed 0), and the held-out HR test patches."""

    config: HorkdConfig
    teacher: torch.nn.Module
    assistants: dict[int, torch.nn.Module]
    students: dict[tuple[str, int], torch.nn.Module]
    test: ImageSet
    curves: dict[str, list[float]] = field(default_factory=dict)

    def nearest_trained(self, resolution: int) -> int:
        """The trained resolution closest (in log scale) to ``resolution``: whose models serve that input size."""
        return min(self.config.resolutions, key=lambda r: abs(math.log(resolution / r)))


def default_models(config: HorkdConfig | None = None, smoke: bool | None = None, device: str = "auto",
                   progress: bool = True) -> HorkdModels:
    """Train on first use (cached) or load the streams of ``config`` (default: the smoke setting on a CPU)."""
    config = config or HorkdConfig.preset(smoke_mode(smoke))
    teacher = teacher_model(config, device=device, progress=progress)
    assistants, students = {}, {}
    for r in config.resolutions:
        assistants[r] = assistant_model(config, r, device=device, progress=progress)
        for (method, _seed), model in train_students(config, r, METHODS, (0,), device, progress=progress).items():
            students[(method, r)] = model.cpu().eval()
    _, test = load_horkd_data(config)
    return HorkdModels(config, teacher.cpu().eval(), {r: a.cpu().eval() for r, a in assistants.items()}, students,
                       test)


def accuracy_curves(models: HorkdModels, resolutions: Sequence[int] = TEST_RESOLUTIONS) -> dict[str, list[float]]:
    """Top-1 on the test patches at each input resolution, for the teacher (on up-sampled input), the assistant and
    every student baseline (each served by the model trained at the nearest trained resolution)."""
    x, y = models.test.images, models.test.labels
    curves: dict[str, list[float]] = {name: [] for name in ("teacher_upsampled", "assistant", *METHODS)}
    for r in resolutions:
        near = models.nearest_trained(r)
        hr_view = lr_input(x, r, for_teacher_size=True)
        curves["teacher_upsampled"].append(accuracy(models.teacher, hr_view, y))
        curves["assistant"].append(accuracy(models.assistants[near], hr_view, y))
        lr = lr_input(x, r)
        for method in METHODS:
            curves[method].append(accuracy(models.students[(method, near)], lr, y))
    return curves


def figure_outputs(fig: go.Figure) -> tuple[dict, ...]:
    """``Output.outputs`` showing ``fig`` with plotly's mime renderer (what ``fig.show()`` in a kernel does)."""
    return ({"output_type": "display_data", "data": pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict()),
             "metadata": {}},)


def preview_figure(images: torch.Tensor, resolution: int, display: int = 96) -> go.Figure:
    """The patches as the student sees them at ``resolution`` (pixels enlarged by nearest neighbour), over the HR."""
    lr = downsample(images, resolution)
    big = torch.nn.functional.interpolate(lr, size=(display, display), mode="nearest")
    hr = torch.nn.functional.interpolate(images, size=(display, display), mode="bilinear", align_corners=False)
    rows = [torch.cat(list(t), dim=2) for t in (hr, big)]
    mosaic = (torch.cat(rows, dim=1).permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)
    fig = go.Figure(go.Image(z=mosaic))
    fig.update_layout(height=2 * display + 60, margin=dict(l=10, r=10, t=30, b=10),
                      title=dict(text=f"top: HR {images.shape[-1]}x{images.shape[-1]}; bottom: what the student "
                                      f"sees at {resolution}x{resolution}", font_size=13))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def relations_figure(views: dict[str, dict[str, np.ndarray]], labels: Sequence[str], anchor: int = 0) -> go.Figure:
    """Distance (top) and angle-at-``anchor`` (bottom) matrices of every stream, side by side, shared colour scales."""
    names = list(views)
    fig = make_subplots(rows=2, cols=len(names), subplot_titles=[f"{n}: distances" for n in names]
                        + [f"{n}: angles at sample {anchor}" for n in names],
                        horizontal_spacing=0.04, vertical_spacing=0.1)
    dmax = max(float(v["distance"].max()) for v in views.values())
    for col, name in enumerate(names, start=1):
        fig.add_trace(go.Heatmap(z=views[name]["distance"], x=labels, y=labels, zmin=0, zmax=dmax,
                                 colorscale="Viridis", showscale=col == len(names),
                                 colorbar=dict(len=0.45, y=0.78, title="d / mean d")), row=1, col=col)
        fig.add_trace(go.Heatmap(z=views[name]["angle"], x=labels, y=labels, zmin=-1, zmax=1, colorscale="RdBu",
                                 showscale=col == len(names), colorbar=dict(len=0.45, y=0.22, title="cos")),
                      row=2, col=col)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_layout(height=620, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def curves_figure(curves: dict[str, list[float]], resolutions: Sequence[int], trained: Sequence[int],
                  marker: int | None = None) -> go.Figure:
    """Top-1 against input resolution for every stream; trained resolutions dotted, the slider's one shaded."""
    fig = go.Figure()
    for name, values in curves.items():
        fig.add_trace(go.Scatter(x=list(resolutions), y=values, mode="lines+markers", name=METHOD_LABELS[name],
                                 line=dict(color=COLOURS.get(name), dash="dash" if name in ("teacher_upsampled",
                                                                                          "assistant") else None)))
    for r in trained:
        fig.add_vline(x=r, line=dict(color="#bbbbbb", dash="dot"))
    if marker is not None:
        fig.add_vrect(x0=marker * 0.93, x1=marker * 1.07, fillcolor="#ffd54f", opacity=0.4, line_width=0)
    fig.update_xaxes(type="log", tickvals=list(resolutions), title_text="input resolution (pixels per side)")
    fig.update_yaxes(range=[0, 1.02], title_text="top-1 on held-out patches")
    fig.update_layout(height=380, margin=dict(l=50, r=10, t=30, b=40), legend=dict(font_size=11),
                      title=dict(text="accuracy vs resolution (dotted: resolutions the students were trained at)",
                                 font_size=13))
    return fig


class HorkdDashboard:
    """The widget tree of ``dashboard()`` (kept as an object so tests can drive it in-process)."""

    def __init__(self, models: HorkdModels, per_class: int = 2, n_preview: int = 6) -> None:
        self.models = models
        test = models.test
        pick = torch.cat([torch.nonzero(test.labels == c).flatten()[:per_class] for c in range(len(test.classes))])
        self.batch = test.images[pick]
        labels = [test.classes[int(c)] for c in test.labels[pick]]
        self.batch_labels = [f"{name} {labels[:i].count(name) + 1}" for i, name in enumerate(labels)]  # unique
        step = max(1, len(pick) // n_preview)
        self.preview_images = self.batch[::step][:n_preview]
        if not models.curves:
            models.curves = accuracy_curves(models)
        self.resolution = W.SelectionSlider(options=list(TEST_RESOLUTIONS), value=8, continuous_update=False,
                                            description="resolution", layout=W.Layout(width="420px"))
        self.resolution.add_class("wb-horkd-resolution")
        self.method = W.Dropdown(options=[(METHOD_LABELS[m], m) for m in METHODS], value="horkd",
                                 description="student", layout=W.Layout(width="360px"))
        self.method.add_class("wb-horkd-method")
        self.stats = W.HTML()
        self.stats.add_class("wb-horkd-stats")
        self.preview, self.relations, self.curves = W.Output(), W.Output(), W.Output()
        self.preview.add_class("wb-horkd-preview")
        self.relations.add_class("wb-horkd-relations")
        self.curves.add_class("wb-horkd-curves")
        self.resolution.observe(lambda _change: self.redraw(), names="value")
        self.method.observe(lambda _change: self.redraw(), names="value")
        title = W.HTML("<h3>Hybrid-order relational KD: a small low-resolution student taught by an HR teacher "
                       "through an assistant</h3><p>Move the resolution: the preview shows what the student sees, "
                       "the matrices compare the batch's relational structure (pairwise distances, triplet angles) "
                       "in the teacher (HR input), the assistant (up-sampled LR) and the student (LR).</p>")
        self.widget = W.VBox([title, W.HBox([self.resolution, self.method]), self.stats, self.preview,
                              self.relations, self.curves])
        self.widget.add_class("wb-horkd")
        self.redraw()

    def redraw(self) -> None:
        """Re-draw every view for the current slider/dropdown values (inference on one small batch only)."""
        r, method, m = int(self.resolution.value), self.method.value, self.models
        near = m.nearest_trained(r)
        student = m.students[(method, near)]
        views = relational_views({"teacher": (m.teacher, True), "assistant": (m.assistants[near], True),
                                  "student": (student, False)}, self.batch, r)
        self.preview.outputs = figure_outputs(preview_figure(self.preview_images, r))
        self.relations.outputs = figure_outputs(relations_figure(views, self.batch_labels))
        self.curves.outputs = figure_outputs(curves_figure(m.curves, TEST_RESOLUTIONS, m.config.resolutions, r))
        gap = {k: float(np.abs(views[k]["distance"] - views["teacher"]["distance"]).mean())
               for k in ("assistant", "student")}
        acc = m.curves[method][TEST_RESOLUTIONS.index(r)]
        self.stats.value = (
            f"<b>{METHOD_LABELS[method]}</b> student (trained at {near}x{near}, fed {r}x{r}): top-1 {acc:.1%}; "
            f"{count_parameters(student):,} parameters vs the teacher's {count_parameters(m.teacher):,} "
            f"({count_parameters(m.teacher) / count_parameters(student):.1f}x smaller). Mean |distance difference| "
            f"to the teacher: assistant {gap['assistant']:.3f}, student {gap['student']:.3f}.")


def dashboard(config: HorkdConfig | None = None, smoke: bool | None = None, device: str = "auto") -> W.VBox:
    """The HORKD dashboard: resolution slider, student picker, preview, relational matrices, accuracy curves."""
    return HorkdDashboard(default_models(config, smoke, device)).widget
