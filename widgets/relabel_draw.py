"""Figures and images of the relabel dashboard (:mod:`widgets.relabel`): pure functions of an explanation and its
maps, usable in notebooks (``from widgets.relabel import map_figure`` still works)."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from workbench.explainers import DEGENERATE_STATUSES
from workbench.metrics import curve_auc
from workbench.relabel import RelabelExplanation
from workbench.relabel.fidelity import BELOW_MAJORITY

KEPT_RGB = (34, 160, 60)
SHIFTED_RGB = (210, 40, 40)
LATENT_RANGE = 3.0  # latent nudges in units of the prior's standard deviation
MAPS_PER_ROW = 5  # 5 panels of 170 px fit a JupyterLab output beside its file browser


# ------------------------------------------------------------------------------------------------ pure helpers
def to_gray_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) image in [0, 1] -> (H, W) uint8 (channels averaged)."""
    arr = image.detach().cpu().float().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, np.float32)
    if arr.ndim == 3:
        arr = arr.mean(0)
    return (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(C, H, W) image in [0, 1] -> (H, W, 3) uint8 for 3 channels (colour kept), (H, W) uint8 otherwise."""
    arr = image.detach().cpu().float().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, np.float32)
    if arr.ndim == 3 and arr.shape[0] == 3:
        return (np.clip(arr.transpose(1, 2, 0), 0.0, 1.0) * 255).round().astype(np.uint8)
    return to_gray_uint8(arr)


def sample_grid(explanation: RelabelExplanation, n: int = 48, cols: int = 12, border: int = 2,
                gap: int = 1, show: str = "samples") -> np.ndarray:
    """RGB uint8 mosaic of the first ``n`` synthetic samples, each framed green (label kept) or red (shifted).

    Cell ``k`` (row-major) occupies rows ``r*(h+2b+g) .. `` and columns ``c*(w+2b+g) ..``; its frame colour is
    :data:`KEPT_RGB` when ``explanation.hard_labels[k] == 1`` else :data:`SHIFTED_RGB`. ``show="regions"`` draws,
    in the same cells, which regions of each sample were kept from the image (white) and which were taken from a VAE
    decode (dark gray), or a ValueError for an explanation without region mixing (the paper's variant).
    """
    n = min(n, explanation.samples.shape[0])
    if n < 1:
        raise ValueError("the explanation holds no samples")
    if show not in ("samples", "regions"):
        raise ValueError(f"show must be 'samples' or 'regions'; got {show!r}")
    if show == "regions" and (explanation.keep is None or explanation.regions is None):
        raise ValueError("this explanation has no region mixing (every sample is a whole decode)")
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    h, w = explanation.samples.shape[-2:]
    ch, cw = h + 2 * border + gap, w + 2 * border + gap
    grid = np.full((rows * ch - gap, cols * cw - gap, 3), 255, np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        y, x = r * ch, c * cw
        colour = KEPT_RGB if float(explanation.hard_labels[k]) > 0.5 else SHIFTED_RGB
        grid[y:y + h + 2 * border, x:x + w + 2 * border] = colour
        sample = to_uint8(explanation.samples[k]) if show == "samples" else kept_regions(explanation, k)
        grid[y + border:y + border + h, x + border:x + border + w] = sample[..., None] if sample.ndim == 2 else sample
    return grid


def kept_regions(explanation: RelabelExplanation, k: int) -> np.ndarray:
    """(H, W) uint8 of sample ``k``: 255 where its region was kept from the image, 64 where it came from a decode."""
    kept = explanation.keep[k][explanation.regions].cpu().numpy() > 0.5
    return np.where(kept, 255, 64).astype(np.uint8)


def fitted_map(explanation: RelabelExplanation) -> tuple[np.ndarray, str]:
    """The student's weights at the resolution it was fitted, summed over channels, and a name for it: a
    rows x cols array of grid-cell weights for a student on regions (``features="regions"`` or ``"mask"`` with
    grid regions), the (H, W) pixel weights for the paper's pixel student."""
    weight, labels = explanation.region_weight, explanation.regions
    if weight is None or labels is None:
        height, width = explanation.image.shape[-2:]
        return _as_map(explanation.student.weight), f"pixels ({height}x{width})"
    n_regions = int(labels.max()) + 1
    per_region = weight.reshape(-1, n_regions).sum(0).cpu().numpy()
    cols = int(labels[0].max()) + 1
    grid = torch.arange(n_regions).reshape(-1, cols) if n_regions % cols == 0 else None
    if grid is not None and torch.equal(grid[labels // cols, labels % cols], labels):  # a row-major grid
        return per_region.reshape(-1, cols), f"{n_regions // cols}x{cols} cells"
    return per_region[labels.cpu().numpy()], f"{n_regions} regions"


def _as_map(saliency: torch.Tensor | np.ndarray) -> np.ndarray:
    arr = saliency.detach().cpu().float().numpy() if isinstance(saliency, torch.Tensor) else np.asarray(saliency)
    return arr.sum(0) if arr.ndim == 3 else arr


def map_figure(maps: dict[str, torch.Tensor | np.ndarray], image: torch.Tensor | None = None,
               height: int = 260, per_row: int = MAPS_PER_ROW) -> go.Figure:
    """One heat map per entry ((C, H, W) summed over channels, or (H, W)), signed, on a diverging scale centred at 0
    (each map scaled to its own largest magnitude: explainers' units differ). ``image``: drawn first, in gray.
    At most ``per_row`` panels a row, so the figure fits a JupyterLab output; plotly's toolbar stands upright in the
    right margin, clear of the titles."""
    panels: list[tuple[str, np.ndarray, bool]] = []
    if image is not None:
        panels.append(("image", to_gray_uint8(image).astype(np.float32) / 255, False))
    panels += [(name, _as_map(m), True) for name, m in maps.items()]
    cols = min(per_row, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[p[0] for p in panels], horizontal_spacing=0.02,
                        vertical_spacing=0.12 if rows > 1 else 0.0)
    last_signed = max((k for k, p in enumerate(panels) if p[2]), default=-1)
    for k, (_, arr, signed) in enumerate(panels):
        row, col = k // cols + 1, k % cols + 1
        if signed:
            bound = float(np.abs(arr).max()) or 1.0
            bar = dict(title=dict(text="each map's<br>own scale", side="top", font_size=10), thickness=10, len=0.8,
                       tickvals=[-bound, 0, bound], ticktext=["-max<br>against", "0", "+max<br>towards"])
            fig.add_trace(go.Heatmap(z=arr, colorscale="RdBu_r", zmid=0, zmin=-bound, zmax=bound,
                                     showscale=k == last_signed, colorbar=bar,
                                     hovertemplate="x %{x}, y %{y}: %{z:.3g}<extra></extra>"), row=row, col=col)
        else:
            fig.add_trace(go.Heatmap(z=arr, colorscale="gray_r", reversescale=True, showscale=False, zmin=0, zmax=1,
                                     hoverinfo="skip"), row=row, col=col)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{'' if k == 0 else k + 1}", constrain="domain",
                         showticklabels=False, showgrid=False, zeroline=False, row=row, col=col)
        fig.update_xaxes(constrain="domain", showticklabels=False, showgrid=False, zeroline=False, row=row, col=col)
    fig.update_layout(height=height + (rows - 1) * (height - 60), width=max(320, 170 * cols + 110),
                      margin=dict(l=10, r=100, t=70, b=10), plot_bgcolor="white", modebar=dict(orientation="v"),
                      title=dict(text="maps (red: pushes towards the label, blue: against)",
                                 font_size=13, x=0.01, xanchor="left", y=0.98, yanchor="top"))
    fig.update_annotations(font_size=11)
    return fig


def curves_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], height: int = 280) -> go.Figure:
    """Deletion and insertion curves side by side, AUCs in the legend (deletion: lower is better)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("deletion (lower AUC is better)",
                                                        "insertion (higher AUC is better)"))
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"]
    for i, (name, (deletion, insertion)) in enumerate(curves.items()):
        colour = palette[i % len(palette)]
        aucs = [float(curve_auc(torch.as_tensor(scores)[None])[0]) for scores in (deletion, insertion)]
        label = f"{name} (deletion {aucs[0]:.3f}, insertion {aucs[1]:.3f})"
        for col, scores in ((1, deletion), (2, insertion)):
            fig.add_trace(go.Scatter(x=np.linspace(0, 1, len(scores)), y=scores, mode="lines", name=label,
                                     line=dict(color=colour, width=2), legendgroup=name, showlegend=col == 1),
                          row=1, col=col)
    fig.update_xaxes(title_text="share of pixels", range=[0, 1])
    fig.update_yaxes(title_text="p(explained class)", range=[0, 1.02], col=1)
    fig.update_yaxes(range=[0, 1.02], col=2)
    fig.update_layout(height=height, margin=dict(l=50, r=40, t=40, b=40), legend=dict(font_size=11),
                      modebar=dict(orientation="v"))
    return fig


def stats_html(e: RelabelExplanation, warned: Sequence[str] = ()) -> str:
    """The explanation's one-line summary (flip rate, sigma, fidelity against the majority rate, status, timings),
    the fidelity note for a fitted student and any warning the fit raised."""
    colour = "#1a7f37" if e.status == "ok" else "#b35900"
    seconds = sum(e.timings.values())
    check = e.fidelity_check
    text = (f"flip rate <b>{e.flip_rate:.1%}</b> · sigma <b>{e.sigma:.3g}</b> · "
            f"fidelity <b>{check.fidelity:.1f} %</b> (majority rate {check.majority_rate:.1f} %) · "
            f"status <b style='color:{colour}'>{e.status}</b> · {seconds:.2f} s "
            f"(sigma search {e.timings.get('sigma_search', 0):.2f}, decode {e.timings.get('decode', 0):.2f}, "
            f"teacher {e.timings.get('teacher_forward', 0):.2f}, student {e.timings.get('student_fit', 0):.2f})")
    if e.status not in DEGENERATE_STATUSES:  # a fitted student: how it compares with a constant answer
        style = "color:#b35900" if check.verdict != "above" else "color:#555"
        mark = "⚠ " if check.verdict != "above" else ""
        text += (f"<br><span style='{style}' class='wb-relabel-fidelity-note'>{mark}"
                 f"The {html.escape(check.sentence())}.</span>")
    if warned:
        text += "<br><span style='color:#b35900'>⚠ " + html.escape(" ".join(warned)) + "</span>"
    return text


def maps_note(e: RelabelExplanation | None) -> str:
    """What the map panels are and why the student appears twice."""
    note = ("<small>Each map is scaled to its own largest magnitude (explainers' units differ): compare where "
            "they are red or blue, not how strongly.")
    if e is not None and e.region_weight is not None:
        note += (" <b>RLD student</b> is the student's weights painted onto the pixels (the map the curves and "
                 "the scorecard score); <b>RLD as fitted</b> is the same weights, one per cell, as the student "
                 "was fitted: the two look alike by construction; the second shows the grid the student saw.")
    if e is not None and e.status == BELOW_MAJORITY:
        note += (f" <b style='color:#b35900'>⚠ The student's map is flagged</b>: the "
                 f"{html.escape(e.fidelity_check.sentence())}.")
    return note + "</small>"
