"""Views of channel-distillation tracking (:mod:`workbench.tracking`): a sequence player with the boxes, the response
maps, which channels the distilled tracker keeps over time and what they look like, and OTB success / precision plots
of the distilled (CD) tracker against the same tracker with all channels.

``dashboard()`` picks a sequence (a generated one by attribute, the real OTB sequence next to the repository when it
is there, or a user's OTB folder), runs the full-channel and the CD tracker once behind **Run trackers** (with a
progress bar) and records, per frame, the boxes, the response maps, the channel weights, the kept channels and the
kept channels' feature maps, already drawn. Moving the frame slider (or pressing play) then only swaps pre-drawn
images: no tracking, no encoding.

The drawing helpers (:func:`draw_frame`, :func:`heat_image`, :func:`channel_mosaic`, :func:`weights_figure`,
:func:`curves_figure`) and :func:`track_with_views` are plain functions, reused by the tutorial notebook.
"""

from __future__ import annotations

import contextlib
import html
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from workbench.tracking import (
    ATTRIBUTES,
    ChannelDistillation,
    DCFTracker,
    ECOTracker,
    FeatureExtractor,
    HOGColorFeatures,
    OPEResult,
    Sequence,
    Tracker,
    evaluate,
    load_otb,
    make_sequence,
    run_sequence,
)
from workbench.tracking.base import sample_patch
from workbench.tracking.evaluation import PRECISION_THRESHOLDS, SUCCESS_THRESHOLDS
from workbench.train import one_thread

#: the real OTB sequence shipped beside the repository for development (used when present)
REAL_OTB = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "otb_crossing"
TRUTH_RGB, FULL_RGB, CD_RGB = (40, 200, 60), (40, 120, 255), (255, 70, 30)
VIEW_WIDTH = 360  # pixels the frame is drawn at (at least)

TrackerFactory = Callable[[FeatureExtractor, "ChannelDistillation | None"], Tracker]
#: tracker families the dashboard offers: each builds the full-channel (cd=None) or the distilled tracker
TRACKERS: dict[str, TrackerFactory] = {
    "DCF": lambda features, cd: DCFTracker(features, channel_distillation=cd),
    "ECO": lambda features, cd: ECOTracker(features, channel_distillation=cd),
}


def _project_cnn() -> FeatureExtractor:
    from workbench.tracking.pretrained import project_cnn_features

    return project_cnn_features(progress=False)


#: feature extractors the dashboard offers (the CNN is trained on first use and cached)
FEATURES: dict[str, Callable[[], FeatureExtractor]] = {
    "HOG + colour (40 channels)": HOGColorFeatures,
    "project CNN (64 channels, trained on first use)": _project_cnn,
}
_FOLDER_CHOICE = "your OTB folder…"
_REAL_CHOICE = "real OTB: otb_crossing"


# ------------------------------------------------------------------------------------------------ pure helpers
def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an (H, W) or (H, W, 3) RGB uint8 array."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return buf.tobytes()


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


def channel_mosaic(maps: np.ndarray, names: list[str], tile: int = 72, cols: int = 8) -> np.ndarray:
    """Each channel of ``maps`` (h, w, k) as its own normalised heat tile, captioned with its name, in a grid."""
    k = maps.shape[2]
    if k == 0:
        return np.full((tile, tile, 3), 255, np.uint8)
    cols = min(cols, k)
    rows = (k + cols - 1) // cols
    caption = 14
    out = np.full((rows * (tile + caption + 4), cols * (tile + 4), 3), 255, np.uint8)
    for i in range(k):
        r, c = divmod(i, cols)
        heat = cv2.resize(heat_image(maps[:, :, i], tile), (tile, tile), interpolation=cv2.INTER_NEAREST)
        y, x = r * (tile + caption + 4), c * (tile + 4)
        cv2.putText(out, names[i][:10], (x + 1, y + caption - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1,
                    cv2.LINE_AA)
        out[y + caption: y + caption + tile, x: x + tile] = heat
    return out


def figure_outputs(fig: go.Figure) -> tuple[dict, ...]:
    """``Output.outputs`` showing ``fig`` with plotly's mime renderer (works inside and outside a kernel)."""
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
    return ({"output_type": "display_data", "data": bundle, "metadata": {}},)


@dataclass
class TrackRecord:
    """One tracker's run with what the views draw: boxes ``(N, 4)``, tracker seconds per frame, the response map per
    frame (centred; None at the first frame), channel weights ``(N, D)``, kept channel indices per frame and, when
    recorded, the kept channels' feature maps at the tracked position ``(h, w, k)`` per frame."""

    name: str
    boxes: np.ndarray
    times: np.ndarray
    responses: list[np.ndarray | None]
    weights: np.ndarray
    kept: list[np.ndarray]
    channel_maps: list[np.ndarray] | None
    score: OPEResult | None = None

    @property
    def fps(self) -> float:
        """Frames per second of the tracker alone (first frame, the initialisation, excluded)."""
        tracked = self.times[1:] if len(self.times) > 1 else self.times
        return float(len(tracked) / max(tracked.sum(), 1e-12))

    @property
    def channels_per_frame(self) -> float:
        """Mean number of channels extracted and used per tracked frame."""
        counts = [len(k) for k in self.kept[1:]] or [len(self.kept[0])]
        return float(np.mean(counts))


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch, BLAS and OpenCV on one thread inside the block (restored after).

    The trackers work on small arrays: on a busy or small machine, thread pools only add waiting at their barriers
    (a tiny CNN forward measured 30x slower with 2 torch threads than with 1 on a loaded 2-core machine), and they
    blur the FPS comparison of CD against all channels. ``benchmarks/tracking.py`` does the same.
    """
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # BLAS stays as it is
            limits: contextlib.AbstractContextManager = contextlib.nullcontext()
        else:
            limits = threadpool_limits(1)
        with limits, one_thread():
            yield
    finally:
        cv2.setNumThreads(cv_threads)


def track_with_views(tracker: Tracker, sequence: Sequence, record_maps: bool = False,
                     on_frame: Callable[[int], None] | None = None) -> TrackRecord:
    """Run ``tracker`` over ``sequence`` (OTB one-pass, single-threaded) and record what the views draw.

    Only ``initialize``/``track`` are timed (image loading and recording are not). ``record_maps`` re-extracts the
    kept channels at the new position after each frame (outside the timed region) to show them.
    """
    with single_threaded():
        return _track_with_views(tracker, sequence, record_maps, on_frame)


def _track_with_views(tracker: Tracker, sequence: Sequence, record_maps: bool,
                      on_frame: Callable[[int], None] | None) -> TrackRecord:
    n = len(sequence)
    responses: list[np.ndarray | None] = []
    kept: list[np.ndarray] = []
    features: FeatureExtractor | None = getattr(tracker, "features", None)
    weights = np.zeros((n, features.channels if features is not None else 0))
    maps: list[np.ndarray] | None = [] if record_maps and features is not None else None

    def record_frame(index: int, frame: np.ndarray) -> None:
        response = getattr(tracker, "response", None)
        responses.append(None if index == 0 or response is None else np.array(response, dtype=np.float32))
        index_kept = np.array(getattr(tracker, "kept_channels", []), dtype=int)
        kept.append(index_kept)
        if features is not None:
            weights[index] = getattr(tracker, "channel_weights", np.ones(features.channels))
        if maps is not None:
            window = tracker.window_size * tracker.scale  # type: ignore[attr-defined]
            patch = sample_patch(frame, tracker.pos, window, tracker.template)  # type: ignore[attr-defined]
            maps.append(features.extract(patch, index_kept))  # type: ignore[union-attr]
        if on_frame is not None:
            on_frame(index)

    result = run_sequence(tracker, sequence, on_frame=record_frame)
    boxes, times = result.boxes, result.times
    record = TrackRecord(getattr(tracker, "name", type(tracker).__name__), boxes, times, responses, weights, kept,
                         maps)
    record.score = evaluate(boxes, sequence.ground_truth)
    return record


def weights_figure(record: TrackRecord, names: list[str], height: int = 300) -> go.Figure:
    """Channel weights over time (channels x frames, 0 = dropped, not computed), for the channels ever kept."""
    ever = np.flatnonzero((record.weights > 0).any(axis=0))
    z = record.weights[:, ever].T
    fig = go.Figure(go.Heatmap(z=z, x=np.arange(len(record.weights)), y=[names[c] for c in ever],
                               colorscale="Viridis", colorbar=dict(title="w", thickness=12),
                               hovertemplate="frame %{x}, %{y}: w = %{z:.3g}<extra></extra>"))
    fig.update_layout(height=max(height, 14 * len(ever) + 90), margin=dict(l=90, r=10, t=40, b=40),
                      title=dict(text=f"{record.name}: channel weights over time "
                                      f"({len(ever)} of {record.weights.shape[1]} channels ever kept; "
                                      "0 = dropped, not computed)", font_size=13),
                      xaxis_title="frame", yaxis=dict(type="category", autorange="reversed"))
    return fig


def curves_figure(records: Mapping[str, TrackRecord], height: int = 300) -> go.Figure:
    """OTB success and precision plots, success AUC and precision at 20 px in the legend."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("success plot", "precision plot"))
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for i, (name, record) in enumerate(records.items()):
        score = record.score
        if score is None:
            continue
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
    fig.update_layout(height=height, margin=dict(l=50, r=10, t=40, b=40),
                      legend=dict(orientation="h", y=-0.25, font_size=11))
    return fig


# ------------------------------------------------------------------------------------------------ the dashboard
class TrackingDashboard(W.VBox):
    """The sequence player (a VBox); its controls are attributes so tests and notebooks can drive it."""

    def __init__(self, sequence: Sequence | None = None, trackers: Mapping[str, TrackerFactory] | None = None,
                 n_frames: int = 60, size: tuple[int, int] = (160, 160), seed: int = 0) -> None:
        self.trackers = dict(trackers or TRACKERS)
        if not self.trackers:
            raise ValueError("trackers must name at least one tracker family")
        self.n_frames, self.size, self.seed = int(n_frames), tuple(size), int(seed)
        self.given = sequence
        self.sequence: Sequence | None = None
        self.records: dict[str, TrackRecord] = {}
        self.last_redraw_s = 0.0
        self._frames_png: list[bytes] = []
        self._response_png: list[bytes] = []
        self._maps_png: list[bytes] = []
        self._features: dict[str, FeatureExtractor] = {}

        options = ([f"given: {sequence.name}"] if sequence is not None else [])
        options += [f"generated: {a}" for a in ATTRIBUTES]
        options += [_REAL_CHOICE] if REAL_OTB.is_dir() else []
        options += [_FOLDER_CHOICE]
        default = options[0] if sequence is not None else "generated: distractor"
        self.source = W.Dropdown(options=options, value=default, description="sequence",
                                 layout=W.Layout(width="300px"))
        self.source.add_class("wb-tracking-source")
        self.folder = W.Text(placeholder="/path/to/OTB/Sequence (img/ + groundtruth_rect.txt)",
                             layout=W.Layout(width="380px", display="none"))
        self.folder.add_class("wb-tracking-folder")
        self.load_button = W.Button(description="Load folder", icon="folder-open",
                                    layout=W.Layout(width="120px", display="none"))
        self.load_button.add_class("wb-tracking-load")
        self.message = W.HTML()
        self.message.add_class("wb-tracking-message")

        self.family = W.Dropdown(options=list(self.trackers), value=list(self.trackers)[0], description="tracker",
                                 layout=W.Layout(width="180px"))
        self.family.add_class("wb-tracking-tracker")
        self.feature_choice = W.Dropdown(options=list(FEATURES), value=list(FEATURES)[0], description="features",
                                         layout=W.Layout(width="380px"))
        self.feature_choice.add_class("wb-tracking-features")
        self.keep = W.IntSlider(value=25, min=5, max=100, step=5, description="keep ≤ %", continuous_update=False,
                                layout=W.Layout(width="260px"))
        self.keep.add_class("wb-tracking-keep")
        self.run_button = W.Button(description="Run trackers", button_style="primary", icon="play")
        self.run_button.add_class("wb-tracking-run")
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="220px", visibility="hidden"))
        self.progress.add_class("wb-tracking-progress")
        self.stats = W.HTML(layout=W.Layout(min_height="40px"))
        self.stats.add_class("wb-tracking-stats")

        self.frame = W.IntSlider(value=0, min=0, max=1, description="frame", continuous_update=True,
                                 layout=W.Layout(width="520px"))
        self.frame.add_class("wb-tracking-frame")
        self.play = W.Play(value=0, min=0, max=1, interval=120, description="play")
        self.play.add_class("wb-tracking-play")
        W.jslink((self.play, "value"), (self.frame, "value"))
        self.view = W.Image(format="png")
        self.view.add_class("wb-tracking-view")
        self.info = W.HTML()
        self.info.add_class("wb-tracking-info")
        self.response = W.Image(format="png")
        self.response.add_class("wb-tracking-response")
        self.channels = W.Image(format="png")
        self.channels.add_class("wb-tracking-channels")
        self.weights_out = W.Output()
        self.weights_out.add_class("wb-tracking-weights")
        self.curves_out = W.Output()
        self.curves_out.add_class("wb-tracking-curves")

        self.source.observe(self._on_source, names="value")
        self.load_button.on_click(self._on_load)
        self.run_button.on_click(self._on_run)
        self.frame.observe(self._on_frame, names="value")

        legend = (f"<span style='color:rgb{TRUTH_RGB}'>■ ground truth</span> &nbsp; "
                  f"<span style='color:rgb{FULL_RGB}'>■ all channels</span> &nbsp; "
                  f"<span style='color:rgb{CD_RGB}'>■ channel distillation (CD)</span>")
        super().__init__([
            W.HBox([self.source, self.folder, self.load_button], layout=W.Layout(flex_flow="row wrap", gap="8px")),
            self.message,
            W.HBox([self.family, self.feature_choice, self.keep], layout=W.Layout(flex_flow="row wrap", gap="8px")),
            W.HBox([self.run_button, self.progress], layout=W.Layout(align_items="center", gap="8px")),
            self.stats,
            W.HBox([self.play, self.frame], layout=W.Layout(align_items="center")),
            W.HBox([
                W.VBox([W.HTML(legend), self.view, self.info]),
                W.VBox([W.HTML("<b>response maps</b> (all channels | CD)"), self.response,
                        W.HTML("<b>kept channels at this frame</b> (CD tracker's features at the tracked box)"),
                        self.channels]),
            ], layout=W.Layout(flex_flow="row wrap", gap="8px 24px", align_items="flex-start")),
            self.weights_out, self.curves_out,
        ])
        self.add_class("wb-tracking-dashboard")
        self._select(self.source.value)

    # -------------------------------------------------------------------------------------------- sequences
    def _select(self, choice: str) -> None:
        folder_mode = choice == _FOLDER_CHOICE
        self.folder.layout.display = "" if folder_mode else "none"
        self.load_button.layout.display = "" if folder_mode else "none"
        if folder_mode:
            self.message.value = "<i>Type an OTB sequence folder and press <b>Load folder</b>.</i>"
            return
        if choice.startswith("given: "):
            sequence = self.given
        elif choice == _REAL_CHOICE:
            sequence = load_otb(REAL_OTB)
        else:
            attribute = choice.split(": ", 1)[1]
            sequence = make_sequence(attribute, n_frames=self.n_frames, size=self.size, seed=self.seed)
        self.set_sequence(sequence)  # type: ignore[arg-type]

    def set_sequence(self, sequence: Sequence) -> None:
        """Show ``sequence`` (ground truth only) and clear the previous run."""
        self.sequence = sequence
        self.records = {}
        self._frames_png, self._response_png, self._maps_png = [], [], []
        description = sequence.metadata.get("description", "")
        self.message.value = (f"<b>{html.escape(sequence.name)}</b>: {len(sequence)} frames"
                              + (f" — {html.escape(str(description))}" if description else ""))
        self.stats.value = "<i>Press <b>Run trackers</b> to track this sequence with all channels and with CD.</i>"
        self.response.value, self.channels.value = b"", b""
        self.weights_out.outputs, self.curves_out.outputs = (), ()
        last = len(sequence) - 1
        self.frame.unobserve(self._on_frame, names="value")
        self.frame.value, self.play.value = 0, 0
        self.frame.max, self.play.max = last, last
        self.frame.observe(self._on_frame, names="value")
        self.redraw(0)

    def load_folder(self, path: str) -> Sequence | None:
        """Load a user's OTB folder; a bad folder is reported in the message line (not raised) and returns None."""
        try:
            sequence = load_otb(Path(path.strip()).expanduser())
        except (OSError, ValueError) as exc:
            self.message.value = f"<span style='color:#b00'>Cannot load this folder: {html.escape(str(exc))}</span>"
            return None
        self.set_sequence(sequence)
        return sequence

    # -------------------------------------------------------------------------------------------- tracking
    def features(self) -> FeatureExtractor:
        """The chosen feature extractor (built once per choice)."""
        choice = self.feature_choice.value
        if choice not in self._features:
            self._features[choice] = FEATURES[choice]()
        return self._features[choice]

    def run(self) -> dict[str, TrackRecord]:
        """Track the current sequence with the chosen family, all channels and CD, and pre-draw every frame."""
        if self.sequence is None:
            raise RuntimeError("no sequence loaded: pick one or load an OTB folder first")
        sequence, family = self.sequence, self.family.value
        n = len(sequence)
        self.run_button.disabled = True
        self.progress.layout.visibility = "visible"
        self.progress.max, self.progress.value = 2 * n + 1, 0
        try:
            self.stats.value = f"<i>Preparing {html.escape(self.feature_choice.value)} features…</i>"
            features = self.features()
            distill = ChannelDistillation(keep_ratio=self.keep.value / 100.0)
            records = {}
            for offset, (label, cd) in enumerate(((family, None), (f"{family}-CD", distill))):
                self.stats.value = f"<i>Tracking with {html.escape(label)} ({n} frames)…</i>"

                def tick(index: int, offset: int = offset) -> None:
                    if index % 5 == 0 or index == n - 1:
                        self.progress.value = offset * n + index + 1

                tracker = self.trackers[family](features, cd)
                records[label] = track_with_views(tracker, sequence, record_maps=cd is not None, on_frame=tick)
                records[label].name = label
            self.records = records
            self._predraw(features)
            self.progress.value = self.progress.max
            self._show_results(features)
            self.redraw(self.frame.value)
            return records
        except Exception as exc:
            self.stats.value = f"<span style='color:#b00'>Run failed: {html.escape(str(exc))}</span>"
            raise
        finally:
            self.run_button.disabled = False
            self.progress.layout.visibility = "hidden"

    def _predraw(self, features: FeatureExtractor) -> None:
        """Every frame's view, response pair and kept-channel mosaic, as PNG bytes, so a slider move only swaps."""
        full, cd = self.records.values()
        sequence = self.sequence
        assert sequence is not None
        scale = view_scale(sequence.frame(0).shape[1])
        self._frames_png, self._response_png, self._maps_png = [], [], []
        for i in range(len(sequence)):
            boxes = {full.name: (full.boxes[i], FULL_RGB), cd.name: (cd.boxes[i], CD_RGB),
                     "truth": (sequence.ground_truth[i], TRUTH_RGB)}  # truth drawn last, on top
            self._frames_png.append(encode_png(draw_frame(sequence.frame(i), boxes, scale)))
            maps = [full.responses[i], cd.responses[i]]
            if maps[0] is None or maps[1] is None:
                self._response_png.append(b"")
            else:
                bound = max(float(np.abs(m).max()) for m in maps)
                self._response_png.append(encode_png(side_by_side([heat_image(m, 140, bound) for m in maps])))
            kept = cd.kept[i]
            mosaic = channel_mosaic(cd.channel_maps[i], [features.channel_names[c] for c in kept]) \
                if cd.channel_maps is not None else np.full((8, 8, 3), 255, np.uint8)
            self._maps_png.append(encode_png(mosaic))

    def _show_results(self, features: FeatureExtractor) -> None:
        rows = []
        for name, r in self.records.items():
            assert r.score is not None
            rows.append(f"<tr><td><b>{html.escape(name)}</b></td><td>{r.score.success_auc:.3f}</td>"
                        f"<td>{r.score.precision_at_20:.3f}</td><td>{r.fps:.1f}</td>"
                        f"<td>{r.channels_per_frame:.1f} / {features.channels}</td></tr>")
        full, cd = self.records.values()
        ratio = cd.fps / max(full.fps, 1e-9)
        self.stats.value = (
            "<table style='border-collapse:collapse' cellpadding='3'><tr><th>tracker</th><th>success AUC</th>"
            "<th>P@20</th><th>FPS</th><th>channels / frame</th></tr>" + "".join(rows) + "</table>"
            f"CD runs at <b>{ratio:.2f}x</b> the FPS of all channels (tracker time only; this machine's load "
            "varies)")
        self.weights_out.outputs = figure_outputs(weights_figure(cd, features.channel_names))
        self.curves_out.outputs = figure_outputs(curves_figure(self.records))

    # -------------------------------------------------------------------------------------------- drawing
    def redraw(self, index: int) -> float:
        """Show frame ``index``: pre-drawn images after a run, the frame with its true box before; returns seconds."""
        start = time.perf_counter()
        sequence = self.sequence
        if sequence is None:
            return 0.0
        index = int(np.clip(index, 0, len(sequence) - 1))
        truth = sequence.ground_truth[index]
        if self.records and len(self._frames_png) == len(sequence):
            self.view.value = self._frames_png[index]
            self.response.value = self._response_png[index]
            self.channels.value = self._maps_png[index]
            full, cd = self.records.values()
            assert full.score is not None and cd.score is not None
            self.info.value = (
                f"frame {index}: IoU {full.name} <b>{full.score.overlaps[index]:.2f}</b>, "
                f"{cd.name} <b>{cd.score.overlaps[index]:.2f}</b> · CD keeps {len(cd.kept[index])} channels")
        else:
            frame = sequence.frame(index)
            boxes = {"truth": (truth, TRUTH_RGB)}
            self.view.value = encode_png(draw_frame(frame, boxes, view_scale(frame.shape[1])))
            self.info.value = f"frame {index} (ground truth only: run the trackers to see their boxes)"
        self.last_redraw_s = time.perf_counter() - start
        return self.last_redraw_s

    # -------------------------------------------------------------------------------------------- callbacks
    def _on_source(self, change: dict) -> None:
        self._select(change["new"])

    def _on_load(self, _button: W.Button) -> None:
        self.load_folder(self.folder.value)

    def _on_run(self, _button: W.Button) -> None:
        self.run()

    def _on_frame(self, change: dict) -> None:
        self.redraw(int(change["new"]))


def dashboard(sequence: Sequence | None = None, trackers: Mapping[str, TrackerFactory] | None = None,
              n_frames: int = 60) -> TrackingDashboard:
    """The channel-distillation sequence player. Default: generated sequences (``n_frames`` frames of 160x160) by
    attribute, the real OTB sequence ``../shared/realdata/otb_crossing`` when present, or a user's OTB folder;
    ``trackers`` maps a family name to ``factory(features, channel_distillation_or_None) -> tracker``
    (default :data:`TRACKERS`: DCF and ECO)."""
    return TrackingDashboard(sequence, trackers, n_frames=n_frames)
