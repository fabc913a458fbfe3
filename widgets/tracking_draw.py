"""Drawing helpers of the tracking views (:mod:`widgets.tracking`): frames with boxes, response heat maps, the kept
channels' mosaic, channel weights over time, the CD run's quality check per frame and over all frames, and OTB
success / precision plots. Plain functions on the library's
:class:`~workbench.tracking.TrackingResult`, reused by the tutorial notebook."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

import cv2
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from widgets._layout import LINE_PX, title_band
from workbench.tracking import TrackingResult
from workbench.tracking.base import FrameTelemetry
from workbench.tracking.distill import QualityCheck
from workbench.tracking.evaluation import PRECISION_THRESHOLDS, SUCCESS_THRESHOLDS

TRUTH_RGB, FULL_RGB, CD_RGB = (40, 200, 60), (40, 120, 255), (255, 70, 30)
VIEW_WIDTH = 360  # pixels the frame is drawn at (at least)


_LAB = {"L": "Lab L (lightness)", "a": "Lab a (green-red)", "b": "Lab b (blue-yellow)"}
CONFIDENCE_NOTE = ("confidence: the response's peak-to-sidelobe ratio (how far its peak stands out); "
                   "low: the tracker may have lost the target")


def channel_caption(name: str) -> tuple[str, str]:
    """A feature channel's library name (:attr:`~workbench.tracking.FeatureExtractor.channel_names`) as two short
    readable lines: ``hog20`` (a contrast-sensitive HOG orientation bin, 0-360 degrees) -> ("HOG 20 deg", "signed"),
    ``hog|20|`` (contrast-insensitive, 0-180) -> ("HOG 20 deg", "unsigned"), ``hue45`` -> ("hue 45 deg", "colour"),
    ``L``/``a``/``b`` -> CIE Lab; any other name (``energy``, ``saturation``, a CNN's ``cnn3``) as it is."""
    found = re.fullmatch(r"hog(\|?)(\d+)\|?", name)
    if found:
        return f"HOG {found.group(2)} deg", "unsigned" if found.group(1) else "signed"
    found = re.fullmatch(r"hue(\d+)", name)
    if found:
        return f"hue {found.group(1)} deg", "colour"
    if name in _LAB:
        return f"Lab {name}", _LAB[name].split("(")[1].rstrip(")")
    if name == "energy":
        return "gradient", "energy"
    found = re.fullmatch(r"([A-Za-z_-]+?)(\d+)", name)
    if found:
        return f"{found.group(1)} {found.group(2)}", "channel"
    return name, ""


def channel_label(name: str) -> str:
    """A feature channel's readable one-line label, e.g. ``hog|80|`` -> "HOG 80 deg (unsigned)"."""
    first, second = channel_caption(name)
    return f"{first} ({second})" if second else first


def view_scale(frame_width: int) -> int:
    """Whole-number up-scaling that draws a frame at least :data:`VIEW_WIDTH` pixels wide."""
    return max(1, int(np.ceil(VIEW_WIDTH / max(frame_width, 1))))


def draw_frame(frame: np.ndarray, boxes: Mapping[str, tuple[np.ndarray, tuple[int, int, int]]],
               scale: int = 1) -> np.ndarray:
    """``frame`` (RGB uint8) up-scaled ``scale`` times with each ``(x, y, w, h)`` box drawn in its colour.

    ``boxes`` maps a name to ``(box, rgb)``; boxes that are NaN (no annotation) are skipped.
    """
    image = cv2.resize(frame, (frame.shape[1] * scale, frame.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    for box, colour in boxes.values():
        box = np.asarray(box, dtype=float)
        if not np.isfinite(box).all():
            continue
        x0, y0 = int(round(box[0] * scale)), int(round(box[1] * scale))
        x1, y1 = int(round((box[0] + box[2]) * scale)), int(round((box[1] + box[3]) * scale))
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, 2)
    return image


def heat_image(values: np.ndarray, size: int = 96, bound: float | None = None) -> np.ndarray:
    """A 2-D map as an RGB (viridis) image about ``size`` pixels tall; scaled to [min, max] or to [-bound, bound]."""
    arr = np.asarray(values, dtype=np.float32)
    if bound is None:
        low, high = float(arr.min()), float(arr.max())
    else:
        low, high = -bound, bound
    norm = np.clip((arr - low) / max(high - low, 1e-12), 0, 1)
    grey = (norm * 255).astype(np.uint8)
    scale = max(1, size // max(arr.shape[0], 1))
    grey = cv2.resize(grey, (arr.shape[1] * scale, arr.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)


def side_by_side(images: list[np.ndarray], gap: int = 6) -> np.ndarray:
    """Images of any heights in one row on white, tops aligned."""
    height = max(im.shape[0] for im in images)
    width = sum(im.shape[1] for im in images) + gap * (len(images) - 1)
    out = np.full((height, width, 3), 255, np.uint8)
    x = 0
    for im in images:
        out[: im.shape[0], x: x + im.shape[1]] = im
        x += im.shape[1] + gap
    return out


def response_bound(responses: list[np.ndarray | None]) -> float | None:
    """The shared colour scale of response maps, ``[-bound, bound]``: their largest magnitude (None if any is
    missing)."""
    if not responses or any(r is None for r in responses):
        return None
    return max(float(np.abs(r).max()) for r in responses)  # type: ignore[union-attr]


def colour_bar(height: int, bound: float, width: int = 12) -> np.ndarray:
    """A vertical viridis bar ``height`` pixels tall, ``+bound`` at the top, ``-bound`` at the bottom, labelled."""
    ramp = np.linspace(bound, -bound, max(height, 2))[:, None].repeat(width, axis=1)
    bar = heat_image(ramp, height, bound)[:height]
    out = np.full((height, width + 46, 3), 255, np.uint8)
    out[:, :width] = bar
    for text, y in ((f"{bound:+.2g}", 10), ("0", height // 2 + 4), (f"{-bound:+.2g}", height - 3)):
        cv2.putText(out, text, (width + 3, y), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def responses_image(responses: list[np.ndarray | None], size: int = 200) -> np.ndarray | None:
    """Response maps side by side on one colour scale, each cell square (the map's own aspect ratio), with the
    scale's colour bar at the right (None when any is missing, as at the first frame)."""
    bound = response_bound(responses)
    if bound is None:
        return None
    maps = [heat_image(r, size, bound) for r in responses]  # type: ignore[arg-type]
    return side_by_side([*maps, colour_bar(max(m.shape[0] for m in maps), bound)])


MOSAIC_CAPTION_PX = 28  # two lines of a tile's caption (:func:`channel_caption`)


def channel_mosaic(maps: np.ndarray, names: list[str], tile: int = 72, cols: int = 8) -> np.ndarray:
    """Each channel of ``maps`` (h, w, k) as its own normalised heat tile, captioned with its readable name
    (:func:`channel_caption` of the library's ``names``), in a grid."""
    k = maps.shape[2]
    if k == 0:
        return np.full((tile, tile, 3), 255, np.uint8)
    cols = min(cols, k)
    rows = (k + cols - 1) // cols
    caption = MOSAIC_CAPTION_PX
    out = np.full((rows * (tile + caption + 4), cols * (tile + 4), 3), 255, np.uint8)
    for i in range(k):
        r, c = divmod(i, cols)
        heat = cv2.resize(heat_image(maps[:, :, i], tile), (tile, tile), interpolation=cv2.INTER_NEAREST)
        y, x = r * (tile + caption + 4), c * (tile + 4)
        for line, text in enumerate(channel_caption(names[i])):
            cv2.putText(out, text[:11], (x + 1, y + 11 + 12 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 0), 1,
                        cv2.LINE_AA)
        out[y + caption: y + caption + tile, x: x + tile] = heat
    return out


def weights_figure(result: TrackingResult, names: list[str], height: int = 300) -> go.Figure:
    """Channel weights over time (channels x frames, 0 = dropped, not computed), for the channels ever kept, from a
    run that recorded telemetry."""
    weights = result.channel_weights
    ever = np.flatnonzero((weights > 0).any(axis=0))
    fig = go.Figure(go.Heatmap(z=weights[:, ever].T, x=np.arange(len(weights)),
                               y=[channel_label(names[c]) for c in ever],
                               colorscale="Viridis", colorbar=dict(title="w", thickness=12),
                               hovertemplate="frame %{x}, %{y}: w = %{z:.3g}<extra></extra>"))
    fig.update_layout(height=max(height, 14 * len(ever) + 90), margin=dict(l=170, r=10, b=40),
                      xaxis_title="frame", yaxis=dict(type="category", autorange="reversed"))
    return title_band(fig, f"{result.tracker}: channel weights over time ({len(ever)} of {weights.shape[1]} "
                           "channels ever kept; 0 = dropped, not computed)")


def confidence_figure(results: Mapping[str, TrackingResult], height: int = 220) -> go.Figure:
    """Each run's per-frame confidence (:attr:`~workbench.tracking.TrackingResult.confidence`, the response's
    peak-to-sidelobe ratio; NaN at initialisation, drawn as a gap) against the frame index."""
    fig = go.Figure()
    palette = [f"rgb{FULL_RGB}", f"rgb{CD_RGB}", "#2ca02c", "#9467bd"]
    for i, (name, result) in enumerate(results.items()):
        fig.add_trace(go.Scatter(x=np.arange(len(result.confidence)), y=result.confidence, mode="lines", name=name,
                                 line=dict(color=palette[i % len(palette)], width=2),
                                 hovertemplate="frame %{x}: confidence %{y:.2f}<extra>" + name + "</extra>"))
    fig.update_layout(height=height, margin=dict(l=50, r=10, b=40), xaxis_title="frame",
                      yaxis_title="confidence (PSR)", legend=dict(orientation="h", y=-0.35, font_size=11))
    return title_band(fig, "per-frame confidence (peak-to-sidelobe ratio of the response); low: the tracker may "
                           "have lost the target", font_size=12)


def curves_figure(results: Mapping[str, TrackingResult], height: int = 300) -> go.Figure:
    """OTB success and precision plots, success AUC and precision at 20 px in the legend."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("success plot", "precision plot"))
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for i, (name, result) in enumerate(results.items()):
        score = result.score
        colour = palette[i % len(palette)]
        label = f"{name} (AUC {score.success_auc:.3f}, P@20 {score.precision_at_20:.3f})"
        fig.add_trace(go.Scatter(x=SUCCESS_THRESHOLDS, y=score.success, mode="lines", name=label, legendgroup=name,
                                 line=dict(color=colour, width=2)), row=1, col=1)
        fig.add_trace(go.Scatter(x=PRECISION_THRESHOLDS, y=score.precision, mode="lines", name=label,
                                 legendgroup=name, showlegend=False, line=dict(color=colour, width=2)), row=1, col=2)
    fig.update_xaxes(title_text="overlap threshold", range=[0, 1], row=1, col=1)
    fig.update_xaxes(title_text="location error threshold (px)", range=[0, 50], row=1, col=2)
    fig.update_yaxes(range=[0, 1.02], title_text="fraction of frames", col=1)
    fig.update_yaxes(range=[0, 1.02], col=2)
    fig.update_layout(height=height, margin=dict(l=50, r=10, b=40),
                      legend=dict(orientation="h", y=-0.25, font_size=11))
    return title_band(fig, extra=LINE_PX)


def confidence_text(result: TrackingResult, index: int) -> str:
    """The run's confidence at frame ``index`` as shown ("n/a" at initialisation or where the tracker gives none)."""
    value = float(result.confidence[index]) if index < len(result.confidence) else float("nan")
    return f"{value:.2f}" if np.isfinite(value) else "n/a (initialisation)" if index == 0 else "n/a"


def stats_html(records: Mapping[str, TrackingResult], channels: int) -> str:
    """The runs' table (success AUC, P@20, FPS, channels per frame of ``channels``) and the CD run's FPS ratio to
    the full-channel run (the first two of ``records``)."""
    rows = []
    for name, r in records.items():
        rows.append(f"<tr><td><b>{html.escape(name)}</b></td><td>{r.score.success_auc:.3f}</td>"
                    f"<td>{r.score.precision_at_20:.3f}</td><td>{r.fps:.1f}</td>"
                    f"<td>{r.channels_per_frame:.1f} / {channels}</td></tr>")
    full, cd = list(records.values())[:2]
    ratio = cd.fps / max(full.fps, 1e-9)
    return ("<table style='border-collapse:collapse' cellpadding='3'><tr><th>tracker</th><th>success AUC</th>"
            "<th>P@20</th><th>FPS</th><th>channels / frame</th></tr>" + "".join(rows) + "</table>"
            f"CD runs at <b>{ratio:.2f}x</b> the FPS of all channels (tracker time only; this machine's load "
            "varies)")


def telemetry_html(index: int, stages: Mapping[str, Mapping[str, float]], kept: list[str], total: int) -> str:
    """One frame's telemetry as HTML: what each stage cost per tracker (ms, from the runs' ``stage_seconds``) and the
    readable names (:func:`channel_label`) of the channels the CD tracker kept (``total`` channels in all)."""
    from workbench.tracking import STAGES

    head = "".join(f"<th>{html.escape(stage)}</th>" for stage in STAGES)
    rows = []
    for name, seconds in stages.items():
        cells = "".join(f"<td>{1e3 * seconds.get(stage, 0.0):.2f}</td>" for stage in STAGES)
        rows.append(f"<tr><td><b>{html.escape(name)}</b></td>{cells}"
                    f"<td>{1e3 * sum(seconds.values()):.2f}</td></tr>")
    shown = ", ".join(html.escape(channel_label(k)) for k in kept[:24]) + (" …" if len(kept) > 24 else "")
    return (f"<div><b>frame {index}: stage costs (ms)</b>"
            f"<table style='border-collapse:collapse' cellpadding='2'><tr><th>tracker</th>{head}<th>sum</th></tr>"
            + "".join(rows) + "</table>"
            f"<b>CD kept {len(kept)} of {total} channels:</b> {shown}</div>")


# ------------------------------------------------------------------------------------------------ the quality check
FIRED_RGB, FALLBACK_RGB, THRESHOLD_RGB = (220, 0, 0), (255, 200, 150), (90, 90, 90)
_VERDICT = {
    "passed": "passed: CD keeps its distilled channels",
    "fired": "<b style='color:#d00'>FIRED</b>: CD falls back to all channels and locates this frame again with them",
}


def quality_html(index: int, seen: FrameTelemetry, total: int, check: QualityCheck | None) -> str:
    """One frame's quality-check line for the CD run: the channels kept, what the check
    (:class:`~workbench.tracking.distill.QualityCheck`) read on that frame (:attr:`FrameTelemetry.quality`: the PSR
    it compared, ``drop`` x the median it compared it with), whether it fired and whether the tracker is on its
    fallback channels; says plainly when no check runs."""
    kept = len(seen.kept_channels)
    head = (f"<b>frame {index}: CD tracks with {kept} of {total} channels</b>"
            + (" <b style='color:#c60'>(fallback: all channels)</b>" if seen.fallback else " (distilled)"))
    if check is None:
        return f"<div class='wb-quality'>{head}<br>quality check: <b>none runs</b> (the paper's CD: no fallback)</div>"
    rule = (f"fires when the distilled response's PSR falls below {check.drop:g} x its median over the last "
            f"{check.window} distilled frames, then tracks with all channels for {check.hold} frames")
    reading = seen.quality
    if reading is None:
        text = "initialisation: CD selected its channels; the check starts on the next frame"
    elif reading.state in ("passed", "fired"):
        sign = "&lt;" if reading.state == "fired" else "&ge;"
        text = (f"read PSR <b>{reading.psr:.2f}</b> {sign} threshold <b>{reading.threshold:.2f}</b> "
                f"({check.drop:g} x median {reading.median:.2f} of {reading.history} frames): "
                + _VERDICT[reading.state])
        if reading.state == "fired" and seen.confidence is not None:
            text += f" (re-located PSR {seen.confidence:.2f})"
    elif reading.state == "warming up":
        text = (f"read PSR <b>{reading.psr:.2f}</b>; not compared yet: {reading.history} of the "
                f"{reading.needed} distilled frames it needs")
    elif reading.state == "fallback":
        text = f"on the fallback channels: not compared; {reading.hold_left} more frame(s) of fallback"
    elif reading.state == "restore":
        text = "fallback over: CD selects its channels afresh (the check starts a new PSR history)"
    else:
        text = "no PSR on this frame: nothing compared"
    return (f"<div class='wb-quality'>{head}<br><b>quality check</b> ({html.escape(rule)}):<br>{text}</div>")


TIMELINE_SIZE = (720, 150)  # width, height in pixels
_LEFT, _RIGHT, _TOP, _SPLIT, _BOTTOM = 44, 8, 6, 58, 18


def _frame_x(index: np.ndarray | int, n: int, width: int) -> np.ndarray:
    return np.round(_LEFT + (np.asarray(index) + 0.5) * (width - _LEFT - _RIGHT) / max(n, 1)).astype(int)


def quality_timeline(result: TrackingResult, total: int) -> np.ndarray:
    """The CD run over all frames as an RGB strip: kept-channel count per frame (bars; fallback frames shaded),
    confidence (the response's PSR) with the check's threshold (grey dots) below, and the frames where the check
    fired marked in red at the PSR it read. Mark the current frame with :func:`timeline_at`."""
    width, height = TIMELINE_SIZE
    n = len(result.channels_used)
    out = np.full((height, width, 3), 255, np.uint8)
    xs = _frame_x(np.arange(n), n, width)
    bar = max(1, int((width - _LEFT - _RIGHT) / max(n, 1)) - 1)
    top, split, bottom = _TOP, _SPLIT, height - _BOTTOM
    for i, x in enumerate(xs):
        if result.fallback[i]:
            cv2.rectangle(out, (int(x - bar / 2), top), (int(x + bar / 2), bottom), FALLBACK_RGB, -1)
        y = int(round(split - (split - top) * result.channels_used[i] / max(total, 1)))
        cv2.rectangle(out, (int(x - bar / 2), y), (int(x + bar / 2), split), CD_RGB, -1)
    readings = [t.quality for t in result.telemetry or []]
    read = np.array([r.psr if r is not None and r.psr is not None else np.nan for r in readings] or [np.nan] * n)
    limit = np.array([r.threshold if r is not None and r.threshold is not None else np.nan for r in readings]
                     or [np.nan] * n)
    values = np.concatenate([result.confidence, read, limit])
    high = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0

    def y_of(v: float) -> int:
        return int(round(bottom - (bottom - split - 6) * v / max(high, 1e-9)))

    points = [(int(x), y_of(v)) for x, v in zip(xs, result.confidence, strict=True) if np.isfinite(v)]
    if len(points) > 1:
        cv2.polylines(out, [np.array(points, np.int32)], False, CD_RGB, 1, cv2.LINE_AA)
    for x, v in zip(xs, limit, strict=True):
        if np.isfinite(v):
            cv2.circle(out, (int(x), y_of(v)), 1, THRESHOLD_RGB, -1)
    for i in np.flatnonzero(result.quality_fired):
        cv2.line(out, (int(xs[i]), top), (int(xs[i]), bottom), FIRED_RGB, 1)
        if np.isfinite(read[i]):
            cv2.drawMarker(out, (int(xs[i]), y_of(read[i])), FIRED_RGB, cv2.MARKER_TRIANGLE_DOWN, 9, 2)
    labels = ((f"{total} ch", top + 9), ("kept", (top + split) // 2 + 4), ("0", split - 1),
              (f"PSR {high:.0f}", split + 14), ("0", bottom))
    for text, y in labels:
        cv2.putText(out, text, (2, y), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.line(out, (_LEFT, split + 2), (width - _RIGHT, split + 2), (200, 200, 200), 1)
    return out


def timeline_at(strip: np.ndarray, index: int, n: int) -> np.ndarray:
    """A copy of :func:`quality_timeline`'s ``strip`` (``n`` frames) with frame ``index`` marked by a black line."""
    out = strip.copy()
    x = int(_frame_x(index, n, strip.shape[1]))
    cv2.line(out, (x, _TOP - 4), (x, strip.shape[0] - _BOTTOM + 2), (0, 0, 0), 2)
    label = f"frame {index} of {n}"
    where = (min(max(x - 30, 2), strip.shape[1] - 100), strip.shape[0] - 4)
    cv2.putText(out, label, where, cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 0), 1, cv2.LINE_AA)
    return out


TIMELINE_LEGEND = (f"<b>CD over all frames</b>: <span style='color:rgb{CD_RGB}'>■ kept channels (top) and "
                   f"confidence, PSR (bottom)</span> · <span style='color:rgb{THRESHOLD_RGB}'>• the check's "
                   f"threshold</span> · <span style='color:rgb{FIRED_RGB}'>▼ | fired (at the PSR it read)</span> · "
                   f"<span style='background:rgb{FALLBACK_RGB}'>&nbsp;fallback: all channels&nbsp;</span> · "
                   "black line: this frame")
