"""Views of channel-distillation tracking (:mod:`workbench.tracking`): a sequence player with the boxes, the response
maps, which channels the distilled tracker keeps over time and what they look like, what its quality check read on
each frame (the PSR it compared, the threshold, fired, fallback; a timeline over all frames), and OTB success /
precision plots of the distilled (CD) tracker against the same tracker with all channels.

``dashboard()`` picks a sequence (a generated one by attribute, the real development OTB sequence when it is there,
or a user's OTB folder), runs the full-channel and the CD tracker once behind **Run trackers** (with a progress bar)
through the library's :func:`~workbench.tracking.run_sequence`, recording each frame's telemetry (response map,
channel weights, kept channels, the kept channels' feature maps and what each stage of each tracker cost on that
frame: features, FFT, filter solve, scale search, channel scoring), and draws every frame once. Moving the frame
slider (or pressing play) then only swaps pre-drawn images: no tracking, no encoding.

The drawing helpers live in :mod:`widgets.tracking_draw` (re-exported here) and are reused by the tutorial notebook.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping

import ipywidgets as W
import numpy as np

from widgets._common import busy, figure_outputs, png_bytes, single_threaded
from widgets.export import with_save_bar
from widgets.placeholder import placeholder_png
from widgets.tracking_draw import (
    CD_RGB,
    CONFIDENCE_NOTE,
    FULL_RGB,
    TIMELINE_LEGEND,
    TIMELINE_SIZE,
    TRUTH_RGB,
    channel_label,
    channel_mosaic,
    confidence_figure,
    confidence_text,
    curves_figure,
    draw_frame,
    heat_image,
    quality_html,
    quality_timeline,
    responses_image,
    side_by_side,
    stats_html,
    telemetry_html,
    timeline_at,
    view_scale,
    weights_figure,
)
from workbench.access import current_policy
from workbench.tracking import (
    ATTRIBUTES,
    ChannelDistillation,
    DCFTracker,
    ECOTracker,
    FeatureExtractor,
    HOGColorFeatures,
    Sequence,
    Tracker,
    TrackingResult,
    development_sequence_path,
    load_otb,
    make_sequence,
    run_sequence,
)
from workbench.tracking.distill import QualityCheck

__all__ = [
    "FEATURES",
    "TRACKERS",
    "TrackingDashboard",
    "channel_label",
    "channel_mosaic",
    "confidence_figure",
    "curves_figure",
    "dashboard",
    "draw_frame",
    "heat_image",
    "side_by_side",
    "weights_figure",
]

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
#: the CD tracker's quality check when "quality check" is ticked: the real-sequence bench's "+ check" variants' own
QUALITY = QualityCheck()
_FOLDER_CHOICE = "your OTB folder…"
_REAL_CHOICE = "real OTB: otb_crossing"


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
        self.real_folder = development_sequence_path()
        self.sequence: Sequence | None = None
        self.records: dict[str, TrackingResult] = {}
        self.last_redraw_s = 0.0
        self._frames_png: list[bytes] = []
        self._response_png: list[bytes] = []
        self._maps_png: list[bytes] = []
        self._telemetry_html: list[str] = []
        self._quality_html: list[str] = []
        self._timeline_png: list[bytes] = []
        self._check_used: QualityCheck | None = None
        self._features: dict[str, FeatureExtractor] = {}
        self._build_sequence_controls()
        self._build_tracking_controls()
        self._build_views()
        super().__init__(self._layout())
        self.add_class("wb-tracking-dashboard")
        self._select(self.source.value)

    # -------------------------------------------------------------------------------------------- widgets
    def _build_sequence_controls(self) -> None:
        options = ([f"given: {self.given.name}"] if self.given is not None else [])
        options += [f"generated: {a}" for a in ATTRIBUTES]
        options += [_REAL_CHOICE] if self.real_folder is not None else []
        options += [_FOLDER_CHOICE]
        default = options[0] if self.given is not None else "generated: distractor"
        self.source = _tagged(W.Dropdown(options=options, value=default, description="sequence",
                                         layout=W.Layout(width="300px")), "source")
        self.folder = _tagged(W.Text(placeholder="/path/to/OTB/Sequence (img/ + groundtruth_rect.txt)",
                                     layout=W.Layout(width="380px", display="none")), "folder")
        self.load_button = _tagged(W.Button(description="Load folder", icon="folder-open",
                                            layout=W.Layout(width="120px", display="none")), "load")
        self.message = _tagged(W.HTML(), "message")
        self.source.observe(self._on_source, names="value")
        self.load_button.on_click(self._on_load)

    def _build_tracking_controls(self) -> None:
        self.family = _tagged(W.Dropdown(options=list(self.trackers), value=list(self.trackers)[0],
                                         description="tracker", layout=W.Layout(width="180px")), "tracker")
        self.feature_choice = _tagged(W.Dropdown(options=list(FEATURES), value=list(FEATURES)[0],
                                                 description="features", layout=W.Layout(width="380px")), "features")
        self.keep = _tagged(W.IntSlider(value=25, min=5, max=100, step=5, description="keep ≤ %",
                                        continuous_update=False, layout=W.Layout(width="260px")), "keep")
        self.check = _tagged(W.Checkbox(value=True, indent=False, description=f"quality check ({QUALITY})",
                                        layout=W.Layout(width="auto")), "check")
        self.run_button = _tagged(W.Button(description="Run trackers", button_style="primary", icon="play"), "run")
        self.progress = _tagged(W.IntProgress(value=0, min=0, max=1,
                                              layout=W.Layout(width="220px", visibility="hidden")), "progress")
        self.stats = _tagged(W.HTML(layout=W.Layout(min_height="40px")), "stats")
        self.run_button.on_click(self._on_run)

    def _build_views(self) -> None:
        self.frame = _tagged(W.IntSlider(value=0, min=0, max=1, description="frame", continuous_update=True,
                                         layout=W.Layout(width="520px")), "frame")
        self.play = _tagged(W.Play(value=0, min=0, max=1, interval=120, description="play"), "play")
        W.jslink((self.play, "value"), (self.frame, "value"))
        natural = dict(width="auto", height="auto", align_self="flex-start", object_fit="contain")  # never stretched
        self.view = _tagged(W.Image(format="png", layout=W.Layout(**natural)), "view")
        self.info = _tagged(W.HTML(), "info")
        self.response = _tagged(W.Image(format="png", layout=W.Layout(**natural)), "response")
        self.channels = _tagged(W.Image(format="png", layout=W.Layout(**natural)), "channels")
        self.telemetry = _tagged(W.HTML(), "telemetry")
        self.quality = _tagged(W.HTML(), "quality")
        self.timeline = _tagged(W.Image(format="png", layout=W.Layout(**natural)), "timeline")
        self.confidence_out = _tagged(W.Output(), "confidence")
        self.weights_out = _tagged(W.Output(), "weights")
        self.curves_out = _tagged(W.Output(), "curves")
        self.frame.observe(self._on_frame, names="value")

    def _layout(self) -> list[W.Widget]:
        legend = (f"<span style='color:rgb{TRUTH_RGB}'>■ ground truth</span> &nbsp; "
                  f"<span style='color:rgb{FULL_RGB}'>■ all channels</span> &nbsp; "
                  f"<span style='color:rgb{CD_RGB}'>■ channel distillation (CD)</span>")
        row = W.Layout(flex_flow="row wrap", gap="8px")
        return [
            W.HBox([self.source, self.folder, self.load_button], layout=row),
            self.message,
            W.HBox([self.family, self.feature_choice, self.keep, self.check], layout=row),
            W.HBox([self.run_button, self.progress], layout=W.Layout(align_items="center", gap="8px")),
            self.stats,
            W.HBox([self.play, self.frame], layout=W.Layout(align_items="center")),
            W.HTML(TIMELINE_LEGEND), self.timeline, self.quality,
            W.HBox([
                W.VBox([W.HTML(legend), self.view, self.info]),
                W.VBox([W.HTML("<b>response maps</b> (all channels | CD; one colour scale, bar at the right)"),
                        self.response,
                        W.HTML("<b>kept channels at this frame</b> (CD tracker's features at the tracked box; "
                               "each tile on its own scale)"),
                        self.channels, self.telemetry]),
            ], layout=W.Layout(flex_flow="row wrap", gap="8px 24px", align_items="flex-start")),
            self.confidence_out, self.weights_out, self.curves_out,
        ]

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
            sequence = load_otb(self.real_folder)  # type: ignore[arg-type]
        else:
            attribute = choice.split(": ", 1)[1]
            sequence = make_sequence(attribute, n_frames=self.n_frames, size=self.size, seed=self.seed)
        self.set_sequence(sequence)  # type: ignore[arg-type]

    def set_sequence(self, sequence: Sequence) -> None:
        """Show ``sequence`` (ground truth only) and clear the previous run."""
        self.sequence = sequence
        self.records = {}
        self._frames_png, self._response_png, self._maps_png, self._telemetry_html = [], [], [], []
        self._quality_html, self._timeline_png = [], []
        self.telemetry.value = self.quality.value = ""
        self.timeline.value = placeholder_png(*TIMELINE_SIZE, "the CD run's channels and quality check per frame "
                                                              "appear after Run trackers")
        description = sequence.metadata.get("description", "")
        self.message.value = (f"<b>{html.escape(sequence.name)}</b>: {len(sequence)} frames"
                              + (f" — {html.escape(str(description))}" if description else ""))
        self.stats.value = "<i>Press <b>Run trackers</b> to track this sequence with all channels and with CD.</i>"
        self.response.value = placeholder_png(290, 140, "response maps appear after Run trackers")
        self.channels.value = placeholder_png(290, 72, "kept channels appear after Run trackers")
        self.weights_out.outputs, self.curves_out.outputs, self.confidence_out.outputs = (), (), ()
        last = len(sequence) - 1
        self.frame.unobserve(self._on_frame, names="value")
        self.frame.value, self.play.value = 0, 0
        self.frame.max, self.play.max = last, last
        self.frame.observe(self._on_frame, names="value")
        self.redraw(0)

    def load_folder(self, path: str) -> Sequence | None:
        """Load a user's OTB folder; a bad folder is reported in the message line (not raised) and returns None."""
        try:
            sequence = load_otb(current_policy().check_path(path, "folder"))
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

    def run(self) -> dict[str, TrackingResult]:
        """Track the current sequence with the chosen family, all channels and CD, and pre-draw every frame."""
        if self.sequence is None:
            raise RuntimeError("no sequence loaded: pick one or load an OTB folder first")
        n = len(self.sequence)
        self.progress.max, self.progress.value = 2 * n + 1, 0
        with busy(self.run_button, self.progress, self.stats, "Run"):
            self.stats.value = f"<i>Preparing {html.escape(self.feature_choice.value)} features…</i>"
            features = self.features()
            self.records = self._track(features)
            self._predraw(features)
            self.progress.value = self.progress.max
            self._show_results(features)
            self.redraw(self.frame.value)
        return self.records

    def _track(self, features: FeatureExtractor) -> dict[str, TrackingResult]:
        """The library runner, once with all channels and once with CD, recording each frame's telemetry (and the
        CD tracker's kept channel maps); single-threaded, as the benchmark times trackers."""
        sequence, family = self.sequence, self.family.value
        assert sequence is not None
        n = len(sequence)
        self._check_used = QUALITY if self.check.value else None
        distill = ChannelDistillation(keep_ratio=self.keep.value / 100.0, quality=self._check_used)
        records = {}
        for offset, (label, cd) in enumerate(((family, None), (f"{family}-CD", distill))):
            self.stats.value = f"<i>Tracking with {html.escape(label)} ({n} frames)…</i>"

            def tick(index: int, _box: np.ndarray, _telemetry: object, offset: int = offset) -> None:
                if index % 5 == 0 or index == n - 1:
                    self.progress.value = offset * n + index + 1

            tracker = self.trackers[family](features, cd)
            with single_threaded():
                result = run_sequence(tracker, sequence, on_frame=tick, record=True, channel_maps=cd is not None)
            result.tracker = label
            records[label] = result
        return records

    def _predraw(self, features: FeatureExtractor) -> None:
        """Every frame's view, response pair and kept-channel mosaic, as PNG bytes, so a slider move only swaps."""
        full, cd = self.records.values()
        sequence = self.sequence
        assert sequence is not None and full.telemetry is not None and cd.telemetry is not None
        scale = view_scale(sequence.frame(0).shape[1])
        self._frames_png, self._response_png, self._maps_png, self._telemetry_html = [], [], [], []
        strip, n, check = quality_timeline(cd, features.channels), len(sequence), self._check_used
        self._quality_html = [quality_html(i, seen, features.channels, check) for i, seen in enumerate(cd.telemetry)]
        self._timeline_png = [png_bytes(timeline_at(strip, i, n)) for i in range(n)]
        for i, (seen_full, seen_cd) in enumerate(zip(full.telemetry, cd.telemetry, strict=True)):
            kept = [features.channel_names[c] for c in seen_cd.kept_channels]
            stages = {full.tracker: seen_full.stage_seconds, cd.tracker: seen_cd.stage_seconds}
            self._telemetry_html.append(telemetry_html(i, stages, kept, features.channels))
            boxes = {full.tracker: (full.boxes[i], FULL_RGB), cd.tracker: (cd.boxes[i], CD_RGB),
                     "truth": (sequence.ground_truth[i], TRUTH_RGB)}  # truth drawn last, on top
            self._frames_png.append(png_bytes(draw_frame(sequence.frame(i), boxes, scale)))
            pair = responses_image([seen_full.response, seen_cd.response])
            self._response_png.append(b"" if pair is None else png_bytes(pair))
            if seen_cd.channel_maps is None:
                mosaic = np.full((8, 8, 3), 255, np.uint8)
            else:
                names = [features.channel_names[c] for c in seen_cd.kept_channels]
                mosaic = channel_mosaic(seen_cd.channel_maps, names)
            self._maps_png.append(png_bytes(mosaic))

    def _show_results(self, features: FeatureExtractor) -> None:
        self.stats.value = stats_html(self.records, features.channels)
        cd = list(self.records.values())[1]
        self.confidence_out.outputs = figure_outputs(confidence_figure(self.records))
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
        if self.records and len(self._frames_png) == len(sequence):
            self.view.value = self._frames_png[index]
            self.response.value = self._response_png[index]
            self.channels.value = self._maps_png[index]
            self.telemetry.value = self._telemetry_html[index]
            self.quality.value, self.timeline.value = self._quality_html[index], self._timeline_png[index]
            full, cd = self.records.values()
            self.info.value = (
                f"frame {index}: IoU {full.tracker} <b>{full.score.overlaps[index]:.2f}</b>, "
                f"{cd.tracker} <b>{cd.score.overlaps[index]:.2f}</b> · CD keeps {cd.channels_used[index]} channels"
                f"<br>confidence {full.tracker} <b>{confidence_text(full, index)}</b>, {cd.tracker} "
                f"<b>{confidence_text(cd, index)}</b><br><small>{html.escape(CONFIDENCE_NOTE)}</small>")
        else:
            frame = sequence.frame(index)
            boxes = {"truth": (sequence.ground_truth[index], TRUTH_RGB)}
            self.view.value = png_bytes(draw_frame(frame, boxes, view_scale(frame.shape[1])))
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


def _tagged(widget: W.Widget, name: str) -> W.Widget:
    """``widget`` with the CSS class ``wb-tracking-<name>`` (the browser test finds controls by it)."""
    widget.add_class(f"wb-tracking-{name}")
    return widget


def dashboard(sequence: Sequence | None = None, trackers: Mapping[str, TrackerFactory] | None = None,
              n_frames: int = 60) -> TrackingDashboard:
    """The channel-distillation sequence player. Default: generated sequences (``n_frames`` frames of 160x160) by
    attribute, the real development OTB sequence (:func:`~workbench.tracking.development_sequence_path`) when
    present, or a user's OTB folder; ``trackers`` maps a family name to
    ``factory(features, channel_distillation_or_None) -> tracker`` (default :data:`TRACKERS`: DCF and ECO)."""
    board = TrackingDashboard(sequence, trackers, n_frames=n_frames)
    return with_save_bar(board, "cd", lambda: f"{board.source.value}_frame{board.frame.value}")
