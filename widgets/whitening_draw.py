"""Figures of the feature-whitening dashboard (:mod:`widgets.whitening`): pure functions of a detector's maps and
faces, usable in notebooks (``from widgets.whitening import gallery_figure`` still works)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from widgets._layout import LINE_PX, title_band
from workbench.whitening import (
    WhiteningDetector,
    channel_gallery,
    mean_abs_offdiagonal,
)

GALLERY_REGIONS: tuple[str, ...] = ("eyes", "nose", "mouth")


def channel_label(model: WhiteningDetector, channel: int) -> str:
    """'ch 3' or 'ch 0 = manipulated' when the channel is aligned with a concept."""
    concept = model.concepts[channel] if channel < len(model.concepts) else None
    return f"ch {channel}" + (f" = {concept}" if concept else "")


def gallery_figure(model: WhiteningDetector, images: torch.Tensor, n_channels: int = 16, cols: int = 8,
                   regions: Sequence[str] = GALLERY_REGIONS) -> go.Figure:
    """Mean map of each of the first ``n_channels`` channels over ``images``, labelled with the best facial region.

    One heatmap of the maps tiled ``cols`` to a row (gaps left empty), each tile labelled under its map: a grid of
    16 subplots with square axes took ~2 s of the browser's first render (issue 29) and its titles ran into the
    figure's own. Each map keeps its own colour range (centred on 0, scaled to its largest |value|), as the tiles
    did; hovering a tile names the channel and its value."""
    fmap, best_regions = channel_gallery(model, images, regions)
    n = min(n_channels, fmap.shape[0])
    rows = (n + cols - 1) // cols
    h, w = fmap.shape[-2:]
    gap, vgap = max(1, w // 8), max(2, h // 2)  # room under each tile for its two-line label
    z = np.full((rows * (h + vgap), cols * (w + gap) - gap), np.nan, dtype=np.float32)
    names = np.full(z.shape, "", dtype=object)
    for c in range(n):
        tile = fmap[c].numpy()
        scale = float(np.abs(tile).max()) or 1.0
        top, left = (c // cols) * (h + vgap), (c % cols) * (w + gap)
        z[top:top + h, left:left + w] = tile / scale
        names[top:top + h, left:left + w] = channel_label(model, c)
    fig = go.Figure(go.Heatmap(z=z[::-1], customdata=names[::-1], colorscale="RdBu_r", zmid=0, zmin=-1, zmax=1,
                               colorbar=dict(title=dict(text="map / its max |value|", side="right"), len=0.9),
                               hovertemplate="%{customdata}: %{z:.2f} of its max<extra></extra>"))
    for c in range(n):
        fig.add_annotation(x=(c % cols) * (w + gap) + (w - 1) / 2, y=z.shape[0] - (c // cols) * (h + vgap) - h - 0.5,
                           text=f"{channel_label(model, c)}<br>~{best_regions[c]}", showarrow=False,
                           yanchor="top", font=dict(size=11))
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, scaleanchor="x", constrain="domain")
    fig.update_layout(height=190 * rows + 40, margin=dict(l=5, r=5, b=5), plot_bgcolor="white")
    return title_band(fig, "channel gallery: mean channel map over real faces (~ region it fires most on)")


def _contour(mask: np.ndarray, colour: str) -> go.Contour:
    return go.Contour(z=mask[::-1], contours=dict(start=0.3, end=0.3, size=1, coloring="none"),
                      line=dict(color=colour, width=2), showscale=False, hoverinfo="skip")


def face_image(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """A (C, H, W) face tensor as what the figures draw: (H, W) grey or (H, W, 3) colour, in [0, 1]."""
    arr = np.asarray(image, dtype=np.float32)
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


def _face_trace(img: np.ndarray, scale: str = "gray") -> go.BaseTraceType:
    """A face (grey heatmap, or an RGB image drawn bottom-up like the heatmaps) or a map (heatmap)."""
    if img.ndim == 3:
        return go.Image(z=(np.clip(img[::-1], 0, 1) * 255).astype(np.uint8), hoverinfo="skip")
    return go.Heatmap(z=img[::-1], colorscale=scale, zmin=0, zmax=1, showscale=False,
                      hovertemplate="%{z:.2f}<extra></extra>")


def pair_figure(real: np.ndarray, fake: np.ndarray, real_map: np.ndarray, fake_map: np.ndarray,
                mask: np.ndarray, title: str = "") -> go.Figure:
    """Real face, its channel map, manipulated face, its channel map; the true mask outlined on the fake.
    Faces are (H, W) grey or (H, W, 3) colour (``face_image``)."""
    fig = make_subplots(rows=1, cols=4, horizontal_spacing=0.02,
                        subplot_titles=("real face", "channel map (real)", "manipulated face", "channel map (fake)"))
    for col, (img, scale) in enumerate(((real, "gray"), (real_map, "Inferno"), (fake, "gray"),
                                        (fake_map, "Inferno")), start=1):
        fig.add_trace(_face_trace(img, scale), row=1, col=col)
    for col in (3, 4):
        fig.add_trace(_contour(mask, "#00e676"), row=1, col=col)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_layout(height=320, margin=dict(l=5, r=5, b=5), showlegend=False)
    fig.update_yaxes(autorange=True)  # go.Image flips the y axis; the faces are already drawn bottom-up
    return title_band(fig, title, extra=LINE_PX)


def explanation_figure(faces: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                       maps: dict[str, Sequence[np.ndarray]], title: str = "") -> go.Figure:
    """One row per manipulated face: the face, its true (per-pixel) blend mask, then each named map (e.g. the
    concept channel and Grad-CAM), the true mask outlined on the maps. Faces grey (H, W) or colour (H, W, 3)."""
    names = ["face", "true mask", *maps]
    fig = make_subplots(rows=len(faces), cols=len(names), horizontal_spacing=0.01, vertical_spacing=0.02,
                        subplot_titles=names + [""] * (len(names) * (len(faces) - 1)))
    for row, (face, mask) in enumerate(zip(faces, masks, strict=True), start=1):
        panels = [face, mask, *[m[row - 1] for m in maps.values()]]
        for col, img in enumerate(panels, start=1):
            fig.add_trace(_face_trace(img, "gray" if col == 2 else "Inferno"), row=row, col=col)
            if col > 2:
                fig.add_trace(_contour(mask, "#00e676"), row=row, col=col)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", autorange=True)
    fig.update_layout(height=150 * len(faces) + 80, margin=dict(l=5, r=5, b=5), showlegend=False)
    return title_band(fig, title, extra=LINE_PX)


def your_face_figure(face: np.ndarray, maps: dict[str, np.ndarray], title: str = "") -> go.Figure:
    """A user's face (``face_image``) and each named channel map (e.g. one per detector) side by side."""
    fig = make_subplots(rows=1, cols=1 + len(maps), horizontal_spacing=0.02, subplot_titles=["your face", *maps])
    for col, (img, scale) in enumerate(((face, "gray"), *((m, "Inferno") for m in maps.values())), start=1):
        fig.add_trace(_face_trace(img, scale), row=1, col=col)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", autorange=True)
    fig.update_layout(height=320, width=max(220 * (1 + len(maps)), 420), margin=dict(l=5, r=5, b=5),
                      showlegend=False)
    fig.update_annotations(font_size=11)
    return title_band(fig, title, extra=2 * LINE_PX)


def correlation_figure(before: torch.Tensor, after: torch.Tensor, name: str = "layer", faces: str = "") -> go.Figure:
    """|correlation| heatmaps of a layer's channels before (input) and after (output), with mean |off-diagonal|;
    ``faces`` says which faces the correlations were measured on (the number depends on them)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=(
        f"before ({name} input): mean |off-diag| {mean_abs_offdiagonal(before):.3f}",
        f"after ({name} output): mean |off-diag| {mean_abs_offdiagonal(after):.3f}"))
    for col, corr in enumerate((before, after), start=1):
        fig.add_trace(go.Heatmap(z=corr.abs().numpy(), colorscale="Viridis", zmin=0, zmax=1, showscale=col == 2,
                                 hovertemplate="ch %{y} / ch %{x}: |r| = %{z:.2f}<extra></extra>"), row=1, col=col)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    fig.update_xaxes(constrain="domain")  # square matrices, no empty margins beside them
    fig.update_layout(height=400, margin=dict(l=30, r=10, b=30))
    return title_band(fig, f"channel correlations{' on ' + faces if faces else ''}", extra=LINE_PX)
