"""Figures and notes of the HORKD dashboard (:mod:`widgets.horkd`): pure functions of images, relational views,
accuracy curves and error records, usable in notebooks (``from widgets.horkd import relations_figure`` still works)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import torch

from widgets._common import image_trace
from widgets._layout import title_band
from workbench.data.patches import downsample
from workbench.horkd import (
    METHOD_LABELS,
    FacePhotoReading,
    HorkdConfig,
    StudentErrors,
)

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
    sizes = ", ".join(f"{r}x{r}" for r in resolutions)
    return _views_mosaic(image, [downsample(image[None], r)[0] for r in resolutions],
                         f"HR {image.shape[-1]}x{image.shape[-1]}, then {sizes}", display)


def face_views_figure(reading: FacePhotoReading, display: int = 96) -> go.Figure:
    """A ``workbench.horkd.read_face_photo`` reading: the aligned face the teacher reads, then each student's view."""
    hr = reading.face.shape[-1]
    sizes = ", ".join(f"{r}x{r}" for r in reading.views)
    return _views_mosaic(reading.face, list(reading.views.values()),
                         f"aligned face {hr}x{hr} (found by {reading.finder}), then the students' {sizes}", display)


def _views_mosaic(hr_image: torch.Tensor, low_res: Sequence[torch.Tensor], title: str, display: int) -> go.Figure:
    """An HR image (bilinear) and its low-resolution views (nearest neighbour), all enlarged to ``display``."""
    hr = torch.nn.functional.interpolate(hr_image[None], size=(display, display), mode="bilinear", align_corners=False)
    views = [hr] + [torch.nn.functional.interpolate(v[None], size=(display, display), mode="nearest")
                    for v in low_res]
    mosaic = (torch.cat(views, dim=3)[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)
    if mosaic.shape[-1] == 1:
        mosaic = np.repeat(mosaic, 3, 2)
    fig = go.Figure(image_trace(mosaic))
    fig.update_layout(height=display + 70, width=max(display * len(views) + 20, 320), margin=dict(l=10, r=10, b=10))
    title_band(fig, title)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def face_answers_table(reading: FacePhotoReading) -> str:
    """HTML table of a face reading's answers: stream, its input, its top-k names with their probabilities."""
    label = {"teacher": "HR teacher", **METHOD_LABELS}
    body = "".join(
        f"<tr><td>{html.escape(label.get(a.stream, a.stream))}</td><td>{a.resolution}x{a.resolution}</td><td>"
        + ", ".join(f"<b>{html.escape(name)}</b> {p:.0%}" for name, p in a.top) + "</td></tr>"
        for a in reading.answers)
    k = max(len(a.top) for a in reading.answers)
    return (f"<table class='wb-horkd-face-answers'><tr><th>stream</th><th>input</th><th>top-{k}</th></tr>{body}"
            "</table>")


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
