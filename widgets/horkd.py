"""Views of hybrid-order relational KD (:mod:`workbench.horkd`): what the student sees, the relational structure of
the three streams, accuracy against input resolution for every baseline, and where the students' errors differ
(per-class accuracy, the disagreement matrix, images one student gets right and another wrong).

``dashboard()`` loads the full-setting teacher, assistants and students (shipped or cached weights; the smoke
setting under ``WORKBENCH_SMOKE=1``), evaluates every baseline over a range of input resolutions once, and then
re-draws on every control move (no training; the error views of a trained resolution are computed once). Its "Your
data" row (``horkd_panel``) takes an image, resizes it to HR and to every trained resolution and
tabulates each stream's top-1 (:func:`predictions_table`, :func:`views_figure`).
"""

from __future__ import annotations

import copy
import html
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import torch

from widgets._common import figure_outputs, image_trace, one_thread
from widgets._layout import title_band
from widgets.export import with_save_bar
from widgets.inputs import PathRow, _panel
from widgets.placeholder import progress_in_page
from workbench.data.patches import downsample
from workbench.horkd import (
    METHOD_LABELS,
    METHODS,
    TEST_RESOLUTIONS,
    HorkdConfig,
    HorkdModels,
    StudentErrors,
    accuracy_curves,
    cached_accuracy_curves,
    count_parameters,
    default_models,
    distance_gaps,
    errors_at,
    per_class_batch,
    relational_views,
)
from workbench.weights import dashboard_models

COLOURS = {"teacher_upsampled": "#444444", "assistant": "#8c564b", "scratch": "#1f77b4", "hinton": "#ff7f0e",
           "rkd": "#2ca02c", "horkd_no_assistant": "#9467bd", "horkd": "#d62728"}


def preview_mosaic(images: torch.Tensor, resolution: int, display: int = 96) -> np.ndarray:
    """(H, W, 3) uint8: the HR patches in a row over what the student sees of them at ``resolution``."""
    low_res = downsample(images, resolution)
    big = torch.nn.functional.interpolate(low_res, size=(display, display), mode="nearest")
    hr = torch.nn.functional.interpolate(images, size=(display, display), mode="bilinear", align_corners=False)
    rows = [torch.cat(list(t), dim=2) for t in (hr, big)]
    return (torch.cat(rows, dim=1).permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)


def preview_title(images: torch.Tensor, resolution: int) -> str:
    return f"top: HR {images.shape[-1]}x{images.shape[-1]}; bottom: what the student sees at {resolution}x{resolution}"


def preview_figure(images: torch.Tensor, resolution: int, display: int = 96) -> go.Figure:
    """The patches as the student sees them at ``resolution`` (pixels enlarged by nearest neighbour), over the HR."""
    fig = go.Figure(image_trace(preview_mosaic(images, resolution, display)))
    fig.update_layout(height=2 * display + 70, margin=dict(l=10, r=10, b=10))
    title_band(fig, preview_title(images, resolution))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def views_figure(image: torch.Tensor, resolutions: Sequence[int], display: int = 96) -> go.Figure:
    """One HR image and what the students see of it at each of ``resolutions`` (enlarged by nearest neighbour)."""
    hr = torch.nn.functional.interpolate(image[None], size=(display, display), mode="bilinear", align_corners=False)
    views = [hr] + [torch.nn.functional.interpolate(downsample(image[None], r), size=(display, display),
                                                    mode="nearest") for r in resolutions]
    mosaic = (torch.cat(views, dim=3)[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)
    fig = go.Figure(image_trace(mosaic))
    sizes = ", ".join(f"{r}x{r}" for r in resolutions)
    fig.update_layout(height=display + 70, width=max(display * len(views) + 20, 320), margin=dict(l=10, r=10, b=10))
    title_band(fig, f"HR {image.shape[-1]}x{image.shape[-1]}, then {sizes}")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def predictions_table(rows: Sequence[dict], classes: Sequence[str] | None = None) -> str:
    """HTML table of ``workbench.horkd.predict_image`` rows: stream, its input, its top-1 class and probability;
    with ``classes`` (the models' training classes) the header says that the top-1 is one of them and gives chance."""
    label = {"teacher": "HR teacher", **METHOD_LABELS}
    body = "".join(f"<tr><td>{html.escape(label.get(r['stream'], r['stream']))}</td>"
                   f"<td>{r['resolution']}x{r['resolution']}</td><td><b>{html.escape(str(r['class']))}</b></td>"
                   f"<td>{r['p']:.0%}</td></tr>" for r in rows)
    top = f"top-1 of the {len(classes)} training classes" if classes else "top-1 (a training class)"
    chance = f"p (chance {1 / len(classes):.1%})" if classes else "p"
    return (f"<table class='wb-horkd-predictions'><tr><th>stream</th><th>input</th><th>{top}</th><th>{chance}</th>"
            f"</tr>{body}</table>")


def known_classes_note(classes: Sequence[str]) -> str:
    """What the models can answer, said next to a user's image: only their training classes (patches of the
    photographs and textures scikit-image and scikit-learn ship), so a face or a holiday photo still gets one of
    them, and a probability near chance (1 / classes) means the model has no idea."""
    names = ", ".join(html.escape(c) for c in classes)
    return (f"<p class='wb-horkd-known-classes' style='color:#8a5a00'><b>These models know only their "
            f"{len(classes)} training classes</b> (patches of the photographs and textures scikit-image and "
            f"scikit-learn ship): {names}. Whatever your image shows, each stream answers with one of them; a "
            f"probability near chance ({1 / len(classes):.1%}) means it does not recognise the image at all.</p>")


def relation_mosaics(views: dict[str, dict[str, np.ndarray]], gap: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The streams' distance and angle matrices side by side, ``gap`` empty (NaN) columns between them: the two
    ``z`` of :func:`relations_figure`."""
    mats = [np.asarray(v["distance"], np.float64) for v in views.values()]
    angles = [np.asarray(v["angle"], np.float64) for v in views.values()]
    n = mats[0].shape[0]
    out = []
    for parts in (mats, angles):
        z = np.full((n, len(parts) * (n + gap) - gap), np.nan)
        for k, m in enumerate(parts):
            z[:, k * (n + gap):k * (n + gap) + n] = m
        out.append(z)
    return out[0], out[1]


def relations_figure(views: dict[str, dict[str, np.ndarray]], labels: Sequence[str], vertex: int = 0) -> go.Figure:
    """Distance (top row) and angle-at-``vertex`` (bottom row) matrices of every stream, side by side, one colour
    scale per row (``views`` from ``workbench.horkd.relational_views``, whose ``vertex`` it names).

    Each row is one heat map of the streams' matrices tiled with a gap (:func:`relation_mosaics`), both on one pair
    of axes: six heat-map subplots took most of a resolution move's browser time (issue 29); hovering a cell
    names the stream and the two samples."""
    names = list(views)
    n, gap = len(labels), 2
    dist, angle = relation_mosaics(views, gap)
    dmax = max(float(v["distance"].max()) for v in views.values())
    who = np.full(dist.shape, "", dtype=object)
    for k, name in enumerate(names):
        for i in range(n):
            for j in range(n):
                who[i, k * (n + gap) + j] = f"{name}: {labels[i]} / {labels[j]}"
    fig = go.Figure([
        go.Heatmap(z=dist, customdata=who, y0=0, zmin=0, zmax=dmax, colorscale="Viridis",
                   colorbar=dict(len=0.45, y=0.78, title="d / mean d"),
                   hovertemplate="%{customdata}<br>distance %{z:.2f}<extra></extra>"),
        go.Heatmap(z=angle, customdata=who, y0=n + 2 * gap, zmin=-1, zmax=1, colorscale="RdBu",
                   colorbar=dict(len=0.45, y=0.22, title="cos"),
                   hovertemplate=f"%{{customdata}}<br>cos of the angle at sample {vertex}: %{{z:.2f}}<extra></extra>")])
    for k, name in enumerate(names):
        for row, what in ((0, "distances"), (n + 2 * gap, f"angles at sample {vertex}")):
            fig.add_annotation(x=k * (n + gap) + (n - 1) / 2, y=row - 0.5, text=f"{name}: {what}", showarrow=False,
                               yanchor="bottom", font=dict(size=12))
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_layout(height=560, margin=dict(l=10, r=10, b=10), plot_bgcolor="white")
    return title_band(fig, "relations the student is taught: pairwise distances (2nd order) and angles (3rd order) "
                           "of one batch")


def curves_figure(curves: dict[str, list[float]], resolutions: Sequence[int], trained: Sequence[int],
                  marker: int | None = None, n_test: int | None = None) -> go.Figure:
    """Top-1 (on ``n_test`` held-out patches) against input resolution for every stream; trained resolutions
    dotted, the slider's one shaded."""
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
    fig.update_layout(height=390, margin=dict(l=50, r=10, b=40), legend=dict(font_size=11))
    on = f" on the {n_test} held-out patches" if n_test else ""
    return title_band(fig, f"top-1 vs input resolution{on} (dotted: resolutions the students were trained at)")


def per_class_figure(errors: StudentErrors) -> go.Figure:
    """Top-1 of every student (rows) on every class (columns) at the errors' resolution."""
    names = [METHOD_LABELS[n] for n in errors.names]
    z = np.stack([errors.per_class[n] for n in errors.names])
    fig = go.Figure(go.Heatmap(z=z, x=list(errors.classes), y=names, zmin=0, zmax=1, colorscale="Viridis",
                               colorbar=dict(title="top-1")))
    longest = max((len(c) for c in errors.classes), default=4)
    fig.update_layout(height=260 + 7 * longest, margin=dict(l=10, r=10, b=10))
    fig.update_xaxes(tickangle=-50, tickfont_size=12)
    fig.update_yaxes(tickfont_size=12)
    return title_band(fig, f"per-class top-1 of each student at {errors.resolution}x{errors.resolution} "
                           f"({len(errors.labels) // max(len(errors.classes), 1)} held-out patches per class)")


def disagreement_figure(errors: StudentErrors) -> go.Figure:
    """Row student right, column student wrong: the share of held-out images (``disagreement_matrix``)."""
    names = [METHOD_LABELS[n] for n in errors.names]
    fig = go.Figure(go.Heatmap(z=errors.disagreement, x=names, y=names, colorscale="Reds", zmin=0,
                               text=np.round(errors.disagreement * 100, 1), texttemplate="%{text}%",
                               colorbar=dict(title="share")))
    fig.update_layout(height=380, margin=dict(l=10, r=10, b=10))
    fig.update_yaxes(autorange="reversed")
    return title_band(fig, "right (row) but wrong (column): share of held-out images")


def examples_figure(images: torch.Tensor, resolution: int, display: int = 72) -> go.Figure:
    """Held-out patches (top: HR, bottom: the student's low-resolution view); an empty note when there are none."""
    if len(images) == 0:
        fig = go.Figure()
        fig.add_annotation(text="no such image: the first student is never right where the second is wrong",
                           showarrow=False)
        fig.update_layout(height=120, margin=dict(l=10, r=10, t=10, b=10))
        return fig.update_xaxes(visible=False).update_yaxes(visible=False)
    return title_band(preview_figure(images, resolution, display), f"top: HR; bottom: the {resolution}x{resolution} "
                                                                   "input")


def _z_json(z: np.ndarray, trace: type = go.Heatmap) -> object:
    """A heat map's (or image's) ``z`` as plotly's JSON writes it in a figure (what ``figure_outputs`` holds)."""
    return json.loads(pio.to_json(go.Figure(trace(z=z)).to_dict(), validate=False))["data"][0]["z"]


def setting_note(config: HorkdConfig) -> str:
    """Which setting the page shows: a warning when the models are the smoke setting's (the full weights not
    shipped or cached), so that nobody reads the smoke students' accuracies as the method's."""
    if config != HorkdConfig.smoke():
        return ""
    full = HorkdConfig.full()
    return (f"<p style='color:#8a5a00'><b>Smoke-setting models</b> ({len(config.classes)} classes, a width-"
            f"{config.teacher_width} teacher, trained in seconds on a CPU): their accuracies say nothing about the "
            f"method. The full setting ({len(full.classes)} classes, width {full.teacher_width}) is not shipped "
            "yet: it trains in minutes on a GPU (<code>python -m workbench.weights export OUT --only horkd</code>, "
            "then <code>install OUT</code>).</p>")


class HorkdDashboard(W.VBox):
    """The HORKD dashboard: resolution slider, student picker, preview, relational matrices, accuracy curves, and
    where the students' errors differ (trained-resolution toggle, a right/wrong student pair).

    Built from trained streams (``workbench.horkd.default_models``); the accuracy curves are computed once on the
    whole held-out set, the set of the error views, so a student has one accuracy on the page (the header's at a
    trained resolution is the error views' and the one its weights' sidecar records); the error views are computed
    once per trained resolution, then every control move only re-draws (inference on one small batch at most).
    ``curve_per_class`` (quick tests only) measures the curves on that many patches per class instead: the header's
    number is then not the error views'.
    """

    def __init__(self, models: HorkdModels, per_class: int = 2, n_preview: int = 6,
                 curve_per_class: int | None = None) -> None:
        self.models = models
        self.batch, self.batch_labels = per_class_batch(models.test, per_class)
        step = max(1, len(self.batch) // n_preview)
        self.preview_images = self.batch[::step][:n_preview]
        self.curve_n = len(models.test.labels) if curve_per_class is None else curve_per_class * len(
            models.test.classes)
        if not models.curves:
            with one_thread():
                models.curves = (cached_accuracy_curves(models) if curve_per_class is None
                                 else accuracy_curves(models, per_class=curve_per_class))
        self._errors: dict[int, StudentErrors] = {}
        self._drawn: dict[tuple[int, str], tuple] = {}  # (resolution, method) -> what redraw shows: drawn once
        self._at_resolution: dict[int, tuple] = {}  # resolution -> (preview, curves) outputs
        self._figures: dict[str, tuple[dict, ...]] = {}  # the first relations / curves figure: later ones edit a copy
        with one_thread():  # the teacher sees the HR batch whatever the slider says: its matrices once
            self._teacher_view = relational_views({"teacher": (models.teacher, True)}, self.batch, 8)["teacher"]
        self.resolution = W.SelectionSlider(options=list(TEST_RESOLUTIONS), value=8, continuous_update=False,
                                            description="resolution", layout=W.Layout(width="420px"))
        self.method = W.Dropdown(options=[(METHOD_LABELS[m], m) for m in METHODS], value="horkd",
                                 description="student", layout=W.Layout(width="360px"))
        trained = sorted(models.config.resolutions)
        self.compare_at = W.ToggleButtons(options=[(f"{r}x{r}", r) for r in trained], value=trained[0],
                                          description="trained at")
        students = [(METHOD_LABELS[m], m) for m in METHODS]
        self.right = W.Dropdown(options=students, value="horkd", description="right:")
        self.wrong = W.Dropdown(options=students, value="scratch", description="wrong:")
        self.stats, self.error_stats = W.HTML(), W.HTML()
        self.preview, self.relations, self.curves = W.Output(), W.Output(), W.Output()
        self.per_class, self.disagreement, self.examples = W.Output(), W.Output(), W.Output()
        for name in ("resolution", "method", "stats", "preview", "relations", "curves", "compare_at", "right",
                     "wrong", "error_stats", "per_class", "disagreement", "examples"):
            getattr(self, name).add_class(f"wb-horkd-{name.replace('_', '-')}")
        for control in (self.resolution, self.method):
            control.observe(lambda _change: self.redraw(), names="value")
        for control in (self.compare_at, self.right, self.wrong):
            control.observe(lambda _change: self.redraw_errors(), names="value")
        self.setting_note = W.HTML(setting_note(models.config))
        self.setting_note.add_class("wb-horkd-setting")
        super().__init__([W.HTML(INTRO), self.setting_note, W.HBox([self.resolution, self.method]), self.stats,
                          self.preview, self.relations, self.curves, W.HTML(ERRORS_INTRO), self.compare_at,
                          W.HBox([self.right, self.wrong]), self.error_stats, self.examples,
                          W.HBox([self.disagreement]), self.per_class])
        self.add_class("wb-horkd")
        self._lock = threading.Lock()  # one draw at a time: the page's redraws and the precompute below
        self.redraw()
        self.redraw_errors()
        # the opening student at the other resolutions (~0.14 s each), after the page is up: drawing them before
        # took ~1 s of the first render (issue 29); a move that comes first waits for its draw only, not for all
        self.precomputed = threading.Thread(target=self._precompute, args=(self.method.value,))
        self.precomputed.start()

    def _precompute(self, method: str) -> None:
        for r in TEST_RESOLUTIONS:
            self._views(r, method)

    def redraw(self) -> None:
        """Re-draw the resolution views for the current slider/dropdown values: inference on one small batch the
        first time a (resolution, student) pair is shown, then only the stored figures (the models are frozen)."""
        shown = self._views(int(self.resolution.value), self.method.value)
        self.preview.outputs, self.relations.outputs, self.curves.outputs, self.stats.value = shown

    def _views(self, r: int, method: str) -> tuple:
        """What ``redraw`` shows for (resolution, student), drawn on first request."""
        with self._lock:
            if (r, method) not in self._drawn:
                self._drawn[(r, method)] = self._draw(r, method)
            return self._drawn[(r, method)]

    def _draw(self, r: int, method: str) -> tuple:
        m = self.models
        near = m.nearest_trained(r)
        student = m.students[(method, near)]
        with one_thread():  # a shared CPU: one thread is several times faster than two contended ones
            views = {"teacher": self._teacher_view,
                     **relational_views({"assistant": (m.assistants[near], True), "student": (student, False)},
                                        self.batch, r)}
        if r not in self._at_resolution:  # the preview and the curves do not depend on the student
            self._at_resolution[r] = (self._preview_at(r), self._curves_at(r))
        preview, curves = self._at_resolution[r]
        return (preview, self._relations(views), curves,
                self._stats_html(method, r, near, student, distance_gaps(views)))

    def _relations(self, views: dict[str, dict[str, np.ndarray]]) -> tuple[dict, ...]:
        """``relations_figure`` of ``views`` as outputs: built once, then a copy with the matrices and the shared
        distance scale replaced (the subplot grid is most of a figure's cost; the result is the same figure)."""
        if "relations" not in self._figures:
            self._figures["relations"] = figure_outputs(relations_figure(views, self.batch_labels))
            return self._figures["relations"]
        out = copy.deepcopy(self._figures["relations"])
        data = out[0]["data"]["application/vnd.plotly.v1+json"]["data"]
        dist, angle = relation_mosaics(views)
        data[0]["z"], data[0]["zmax"] = _z_json(dist), max(float(v["distance"].max()) for v in views.values())
        data[1]["z"] = _z_json(angle)
        return out

    def _preview_at(self, r: int) -> tuple[dict, ...]:
        """``preview_figure`` at ``r`` as outputs: a copy of the first one with the mosaic and the title replaced."""
        if "preview" not in self._figures:
            self._figures["preview"] = figure_outputs(preview_figure(self.preview_images, r))
            return self._figures["preview"]
        out = copy.deepcopy(self._figures["preview"])
        plot = out[0]["data"]["application/vnd.plotly.v1+json"]
        plot["data"][0]["source"] = image_trace(preview_mosaic(self.preview_images, r)).source
        plot["layout"]["title"]["text"] = preview_title(self.preview_images, r)
        return out

    def _curves_at(self, r: int) -> tuple[dict, ...]:
        """``curves_figure`` with resolution ``r`` shaded, as outputs: a copy of the first one with the band moved."""
        m = self.models
        if "curves" not in self._figures:
            self._figures["curves"] = figure_outputs(curves_figure(m.curves, TEST_RESOLUTIONS, m.config.resolutions,
                                                                   r, self.curve_n))
        out = copy.deepcopy(self._figures["curves"])
        band = out[0]["data"]["application/vnd.plotly.v1+json"]["layout"]["shapes"][-1]  # add_vrect: the last shape
        band["x0"], band["x1"] = r * 0.93, r * 1.07
        return out

    def errors(self, resolution: int) -> StudentErrors:
        """The error views of the students trained at ``resolution`` (computed on first request)."""
        if resolution not in self._errors:
            with one_thread():
                self._errors[resolution] = errors_at(self.models, resolution)
        return self._errors[resolution]

    def redraw_errors(self) -> None:
        """Re-draw where the students' errors differ for the trained resolution and the right/wrong pair."""
        errors, right, wrong = self.errors(int(self.compare_at.value)), self.right.value, self.wrong.value
        picked = errors.examples(right, wrong)
        self.examples.outputs = figure_outputs(examples_figure(self.models.test.images[picked], errors.resolution))
        self.disagreement.outputs = figure_outputs(disagreement_figure(errors))
        self.per_class.outputs = figure_outputs(per_class_figure(errors))
        i, j = errors.names.index(right), errors.names.index(wrong)
        names, wrong_guess = errors.classes, errors.predictions[wrong]
        guesses = ", ".join(f"{names[errors.labels[k]]} (taken for {names[wrong_guess[k]]})" for k in picked)
        self.error_stats.value = (
            f"At {errors.resolution}x{errors.resolution}: <b>{METHOD_LABELS[right]}</b> {errors.accuracy(right):.1%}, "
            f"<b>{METHOD_LABELS[wrong]}</b> {errors.accuracy(wrong):.1%} on {len(errors.labels)} held-out patches. "
            f"The first is right where the second is wrong on {errors.disagreement[i, j]:.1%} of them, the reverse "
            f"on {errors.disagreement[j, i]:.1%}. Shown: {guesses or 'none'}.")

    def _stats_html(self, method: str, resolution: int, near: int, student: torch.nn.Module,
                    gap: dict[str, float]) -> str:
        m, r = self.models, resolution
        acc = m.curves[method][TEST_RESOLUTIONS.index(r)]
        p_student, p_teacher = count_parameters(student), count_parameters(m.teacher)
        n, k = self.curve_n, len(m.test.classes)
        return (f"<b>{METHOD_LABELS[method]}</b> student (trained at {near}x{near}, fed {r}x{r}): top-1 "
                f"<b class='wb-horkd-top1'>{acc:.1%}</b> on the {n} held-out patches of {k} classes (chance "
                f"{1 / k:.1%}); {p_student:,} parameters vs the teacher's {p_teacher:,} "
                f"({p_teacher / p_student:.1f}x smaller). "
                f"Mean |distance difference| to the teacher's matrix (0: the same pairwise structure): "
                f"assistant {gap['assistant']:.3f}, student {gap['student']:.3f}.")


INTRO = ("<h3>Hybrid-order relational KD: a small low-resolution student taught by an HR teacher through an "
         "assistant</h3><p>Move the resolution: the preview shows what the student sees, the matrices compare the "
         "batch's relational structure (pairwise distances, triplet angles) in the teacher (HR input), the assistant "
         "(up-sampled low resolution) and the student (low resolution).</p>")
ERRORS_INTRO = ("<h4>Where the students' errors differ</h4><p>Pick a trained resolution and two students: the images "
                "the first classifies correctly and the second does not, the share of such images for every pair, "
                "and each student's accuracy per class.</p>")


def dashboard(config: HorkdConfig | None = None, smoke: bool | None = None, device: str = "auto") -> HorkdDashboard:
    """The HORKD dashboard (an ``ipywidgets.VBox``) for the default streams of ``config`` (default: the full
    setting, ``HorkdConfig.full()``, whose weights the package ships; ``smoke``: see
    :func:`workbench.weights.dashboard_models`)."""
    with progress_in_page():  # first use trains: its bars must not outlive the training in the page
        models = dashboard_models(lambda s: default_models(config, s, device), smoke)
    board = HorkdDashboard(models)
    panel = horkd_panel(board)
    panel.children = (*panel.children, W.HTML(known_classes_note(models.test.classes)))
    board.children = (*board.children, panel)
    return with_save_bar(board, "horkd")


# ------------------------------------------------------------------------------------------------ HORKD
def horkd_panel(board: Any) -> W.VBox:
    """A row that reads an image: resized to HR and to each trained resolution, every stream's top-1 in a table."""
    models = board.models
    hr, resolutions = models.config.hr_size, tuple(models.config.resolutions)
    channels = int(models.test.images.shape[1])
    view, table = W.Output(), W.HTML()
    view.add_class("wb-yours-views")
    table.add_class("wb-yours-predictions")

    def add_image(path: str) -> str:
        from workbench.horkd import predict_image
        from workbench.inputs import load_image

        image = load_image(path, (channels, hr, hr), resize=True)
        with one_thread():
            rows = predict_image(models, image)
        table.value = predictions_table(rows)
        view.outputs = figure_outputs(views_figure(image, resolutions))
        return f"{Path(path).name} resized to {hr}x{hr}: the HR teacher says {rows[0]['class']} ({rows[0]['p']:.0%})"

    return _panel([PathRow("image", f"/path/to/image.png (any size; resized to {hr}x{hr})", add_image, "image/*",
                           "wb-yours-image")], [view, table])
