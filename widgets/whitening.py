"""Feature-whitening dashboard: look inside the whitened face-forgery detector (:mod:`workbench.whitening`).

Views: the channel gallery (each whitened channel's mean map over real faces, titled with its concept and the
facial region it answers to most), the channel maps of one real and one manipulated face of the same person with
the true manipulation mask outlined, and the channel correlation matrices of the layer's input and output (before /
after whitening; the plain BatchNorm detector beside it with the model toggle). Controls: the face pair, the
channel, the model. Picking a pair runs one forward pass; moving the channel slider only re-draws.

``dashboard()`` adds the "Your data" row (``whitening_panel``): a face photo, its face found and
cropped like the training faces, both detectors' P(fake) and channel maps for the slider's channel, read by default
with the self-blended colour 64 px detectors (a toggle: the grey 32 px ones of the views above), and which model
read it, trained on what (from the model's recipe); and
:func:`real_faces_section`: a button that opens the same views on the self-blended colour 64 px detectors.

The figure builders live in :mod:`widgets.whitening_draw` (re-exported here: :func:`gallery_figure`,
:func:`pair_figure`, :func:`correlation_figure`, :func:`explanation_figure`, :func:`your_face_figure`); they are pure
functions, usable in notebooks; faces may be grey or colour (self-blended images at real resolution,
``workbench.data.face_sbi``).
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import torch

from widgets._common import busy, figure_outputs, one_thread
from widgets.export import with_save_bar
from widgets.inputs import PathRow, _panel
from widgets.placeholder import progress_in_page
from widgets.whitening_draw import (
    GALLERY_REGIONS,
    channel_label,
    correlation_figure,
    explanation_figure,
    face_image,
    gallery_figure,
    pair_figure,
    your_face_figure,
)
from workbench.data.faces import ForgerySet, load_forgery_faces
from workbench.whitening import (
    WhiteningDetector,
    all_channel_maps,
    layer_correlations,
    pointing_game,
    predict_fake_proba,
)

#: the page's API and the figures drawn by :mod:`widgets.whitening_draw` (re-exported: notebooks import them here)
__all__ = [
    "channel_label",
    "correlation_figure",
    "dashboard",
    "explanation_figure",
    "face_image",
    "gallery_figure",
    "GALLERY_REGIONS",
    "pair_figure",
    "pair_verdict",
    "reader_note",
    "reader_set_label",
    "REAL_FACES_INTRO",
    "real_faces_section",
    "weights_record",
    "whitening_panel",
    "WhiteningDashboard",
    "your_face_figure",
]



class WhiteningDashboard(W.VBox):
    """The whitening dashboard (a VBox); its controls are attributes so tests and notebooks can drive it."""

    def __init__(self, models: dict[str, WhiteningDetector], data: ForgerySet) -> None:
        if not models:
            raise ValueError("pass at least one detector")
        self.models = {k: m.eval() for k, m in models.items()}
        self.data = data
        self.fake_index = [i for i in range(len(data)) if int(data.labels[i]) == 1]
        if not self.fake_index:
            raise ValueError("the data set holds no manipulated faces")
        self.real_images = data.images[data.labels == 0]
        self.pair_picker = W.Dropdown(options=[(f"{k}: person {int(data.identities[i])}, {data.kinds[i]}", k)
                                               for k, i in enumerate(self.fake_index)], value=0,
                                      description="face pair")
        self.pair_picker.add_class("wb-whitening-image")
        self.model_picker = W.ToggleButtons(options=list(self.models), description="detector")
        self.model_picker.add_class("wb-whitening-model")
        first = next(iter(self.models.values()))
        self.channel_slider = W.IntSlider(0, 0, first.norm_layer.num_features - 1, description="channel",
                                          continuous_update=True)
        self.channel_slider.add_class("wb-whitening-channel")
        self.stats = W.HTML()
        self.stats.add_class("wb-whitening-stats")
        self.maps_out = W.Output()
        self.maps_out.add_class("wb-whitening-maps")
        self.gallery_out = W.Output()
        self.gallery_out.add_class("wb-whitening-gallery")
        self.corr_out = W.Output()
        self.corr_out.add_class("wb-whitening-corr")
        self.last_redraw_s = 0.0
        self._pair_maps: dict[str, np.ndarray] = {}
        self._pair_fig: go.Figure | None = None  # the picked pair's figure: a channel move replaces two maps in it
        super().__init__([
            W.HTML("<b>Feature whitening</b>: channels of the detector's whitened layer, decorrelated and aligned "
                   "with concepts (channel 0 = manipulated pixels, then eyes / nose / mouth)."),
            W.HBox([self.pair_picker, self.model_picker]), self.channel_slider, self.stats, self.maps_out,
            self.gallery_out, self.corr_out])
        self.add_class("wb-whitening-dashboard")
        self.pair_picker.observe(lambda _c: self._on_pair(), names="value")
        self.channel_slider.observe(lambda _c: self.redraw(), names="value")
        self.model_picker.observe(lambda _c: self._on_model(), names="value")
        self._on_model()

    def faces_label(self) -> str:
        """Which faces this page measures on: '136 faces shown here (68 real, 68 manipulated; 32 px grey)'."""
        real = int((self.data.labels == 0).sum())
        kind = "grey" if self.data.images.shape[1] == 1 else "colour"
        return (f"the {len(self.data)} faces of this page ({real} real, {len(self.data) - real} manipulated; "
                f"{self.data.images.shape[-1]} px {kind})")

    @property
    def model(self) -> WhiteningDetector:
        return self.models[self.model_picker.value]

    def pair(self) -> tuple[int, int]:
        """(real index, fake index) of the picked pair: the fake and the nearest real sample of the same person."""
        fake = self.fake_index[self.pair_picker.value]
        return self.data.nearest_real(fake), fake

    def _on_model(self) -> None:
        with one_thread():
            model = self.model
            self.channel_slider.max = model.norm_layer.num_features - 1
            corr = layer_correlations(model, self.data.images)
            self.corr_out.outputs = figure_outputs(correlation_figure(corr["before"], corr["after"],
                                                                      self.model_picker.value, self.faces_label()))
            self.gallery_out.outputs = figure_outputs(gallery_figure(model, self.real_images))
        self._on_pair()

    def _on_pair(self) -> None:
        real, fake = self.pair()
        with one_thread():
            x = self.data.images[[real, fake]]
            maps = all_channel_maps(self.model, x).numpy()
            self._proba = predict_fake_proba(self.model, x).tolist()
        self._pair_maps = {"real": maps[0], "fake": maps[1]}
        self._pair_fig = None
        self.redraw()

    def redraw(self) -> None:
        """Re-draw the pair's channel maps for the slider's channel (no forward pass)."""
        start = time.perf_counter()
        real, fake = self.pair()
        c = self.channel_slider.value
        label = channel_label(self.model, c)
        title = f"{self.model_picker.value} detector, {label}"
        if self._pair_fig is None:
            self._pair_fig = pair_figure(face_image(self.data.images[real]), face_image(self.data.images[fake]),
                                         self._pair_maps["real"][c], self._pair_maps["fake"][c],
                                         self.data.masks[fake, 0].numpy(), title=title)
        else:  # same pair and detector: only the two channel maps and the title change (no new subplot grid)
            with self._pair_fig.batch_update():
                self._pair_fig.data[1].z = self._pair_maps["real"][c][::-1]
                self._pair_fig.data[3].z = self._pair_maps["fake"][c][::-1]
                self._pair_fig.layout.title.text = title
        self.maps_out.outputs = figure_outputs(self._pair_fig)
        hit = pointing_game(torch.from_numpy(self._pair_maps["fake"][c][None]), self.data.masks[fake]) == 1.0
        self.stats.value = (
            f"<b>{html.escape(label)}</b> of the {html.escape(self.model_picker.value)} detector &middot; "
            f"P(fake): real face {self._proba[0]:.2f}, manipulated face ({html.escape(self.data.kinds[fake])}) "
            f"{self._proba[1]:.2f} &middot; map peak inside the true mask: {'yes' if hit else 'no'}"
            f"<br>{pair_verdict(self._proba[0], self._proba[1], self.model)}")
        self.last_redraw_s = time.perf_counter() - start


def pair_verdict(p_real: float, p_fake: float, model: WhiteningDetector) -> str:
    """What the pair's two P(fake) say, with the margin: the manipulated face scored higher (right on this pair) or
    not (wrong on it), and the detector's validation AUC from its weights' record, so one pair is read in scale."""
    gap = p_fake - p_real
    metrics = weights_record(model).get("metrics", {})
    auc = metrics.get("val_auc_calibrated", metrics.get("val_auc"))
    scale = (f" One pair is one draw: over its validation faces this detector ranks a manipulated face above a "
             f"real one with probability {auc:.2f} (AUC, from its weights' record).") if auc is not None else ""
    if gap > 0:
        return (f"<span class='wb-whitening-verdict'>Right on this pair: the manipulated face scores "
                f"{gap:.2f} higher than the real one.{scale}</span>")
    return (f"<span class='wb-whitening-verdict' style='color:#b00'>Wrong on this pair: the real face scores "
            f"{-gap:.2f} {'higher than' if gap < 0 else 'the same as'} the manipulated one: this detector ranks "
            f"the real face as the likelier fake.{scale}</span>")


def weights_record(model: torch.nn.Module) -> dict[str, Any]:
    """The record of a cached model's weights (:func:`workbench.report.weights_record` of ``model.workbench_meta``:
    the shipped sidecar ``workbench/weights/<name>-<hash>.json`` when the package ships them, else what the cache
    stored), with the recipe under ``"recipe"`` in both cases."""
    from workbench.report import weights_record as record_of

    meta = dict(getattr(model, "workbench_meta", None) or {})
    record = record_of(meta)
    record.setdefault("recipe", meta.get("config", {}))
    return record


def reader_note(models: Mapping[str, torch.nn.Module]) -> str:
    """"Which models read your photo": each detector's weights, what it was trained on (``trained_on`` of the recipe
    in its weights' record, ``weights_record``), how your photo is fed to it and its validation AUC, so nobody takes
    a small model's P(fake) for a verdict."""
    from workbench.whitening import reading_domain, trained_on

    lines = []
    for label, model in models.items():
        record = weights_record(model)
        recipe = record.get("recipe") or {}
        auc = record.get("metrics", {}).get("val_auc_calibrated")
        lines.append(f"<li><b>{html.escape(label)}</b>: weights <code>{html.escape(str(record.get('name')))}</code>"
                     f" (seed {recipe.get('seed', 0)}, {recipe.get('epochs', '?')} epochs), trained on "
                     f"{html.escape(trained_on(recipe))}{f'; validation AUC {auc:.2f}' if auc is not None else ''}"
                     ".</li>")
    first = next(iter(models.values()))
    size, grey = getattr(first, "image_size", "?"), getattr(first, "in_channels", 1) == 1
    tinted = (", then mapped to their training colours (tinted grey: its luminance times the mean skin tint of "
              "their training faces; ours, not the paper's)") if reading_domain(first) == "tinted_grey" else ""
    return ("<div class='wb-whitening-reader'><b>Which models read your photo</b>: "
            f"{len(models)} detectors. They never saw a real photograph at full resolution; your face is cropped and "
            f"reduced to {size} px {'grey' if grey else 'colour'} like their training faces{html.escape(tinted)}, "
            f"so P(fake) is what these small models make of it, not a verdict.<ul>{''.join(lines)}</ul></div>")


REAL_FACES_INTRO = ("<b>Self-blended real faces, 64 px colour</b>: the same views on the colour detectors trained on "
                    "self-blended images (SBI) of the embedded real faces (scikit-image's LFW subset, tinted, and the "
                    "astronaut; shipped weights), shown on held-out faces and their self-blends with the true blend "
                    "masks. Your own face folder: <code>whitening_detector(True, data='sbi', face_source=...)</code>.")


def real_faces_section(smoke: bool = False, n_per_face: int = 2) -> W.VBox:
    """A button that opens a second :class:`WhiteningDashboard` on the self-blended colour detectors
    (``whitening_detector(..., data="sbi")``) and the embedded colour faces' held-out split; built on the first
    click, so the page's first render does not pay for it. A failure is said under the button."""
    from workbench.data.face_sbi import load_sbi_faces
    from workbench.whitening import detector_config, whitening_detector

    button = W.Button(description="Open the real-face detectors (64 px colour)", icon="user",
                      layout=W.Layout(width="auto"))
    button.add_class("wb-whitening-sbi-open")
    progress = W.IntProgress(value=1, max=1, description="loading", bar_style="info",
                             layout=W.Layout(visibility="hidden"))
    note, area = W.HTML(), W.VBox()
    note.add_class("wb-whitening-sbi-note")
    area.add_class("wb-whitening-sbi")

    def open_board(_button: W.Button | None = None) -> None:
        with busy(button, progress, note, "Opening the real-face detectors"):
            with progress_in_page():
                models = {"whitened": whitening_detector(True, smoke=smoke, data="sbi", progress=False),
                          "plain (BatchNorm)": whitening_detector(False, smoke=smoke, data="sbi", progress=False)}
            data = load_sbi_faces("test", detector_config(True, smoke, data="sbi").size, n_per_face)
            board = WhiteningDashboard(models, data)
        area.children = (board,)
        half, size = len(data) // 2, data.images.shape[-1]
        note.value = (f"{half} held-out real faces and {half} self-blends ({size} px colour). The README's mean "
                      "|off-diagonal| (0.032 ± 0.004) is another measurement: the same recipe trained and tested on "
                      "61 real development crops, 3 seeds; the numbers here are these shipped weights (trained on "
                      "the embedded faces) on the faces of this section.")
        button.layout.display = "none"

    button.on_click(open_board)
    section = W.VBox([W.HTML(REAL_FACES_INTRO), W.HBox([button, progress]), note, area])
    section.open_board = open_board  # for notebooks and tests: what the button does
    return section


def dashboard(whitened: WhiteningDetector | None = None, plain: WhiteningDetector | None = None,
              data: ForgerySet | None = None, smoke: bool = False) -> WhiteningDashboard:
    """The whitening dashboard. Defaults: the cached whitened and plain detectors (full setting, trained on first
    use, about a minute each on a CPU; ``smoke=True``: seconds) and the embedded test faces (held-out identities).
    A user's photo is read by default with the self-blended colour 64 px detectors (shipped weights; fed in their
    tinted-grey training domain), the grey ones a toggle away: on real fakes (deepfake_dev, a development check)
    the colour ones so fed are not inverted and the grey ones call every real photo fake
    (``benchmarks/results/whitening_domain.md``)."""
    from workbench.whitening import whitening_detector

    with progress_in_page():  # first use trains: its bars must not outlive the training in the page
        whitened = whitening_detector(True, smoke=smoke) if whitened is None else whitened
        plain = whitening_detector(False, smoke=smoke) if plain is None else plain
        # the photo row's default readers, whatever data the views show
        colour = {"whitened": whitening_detector(True, smoke=smoke, data="sbi", progress=False),
                  "plain (BatchNorm)": whitening_detector(False, smoke=smoke, data="sbi", progress=False)}
    if data is None:
        data = load_forgery_faces("test")
    board = WhiteningDashboard({"whitened": whitened, "plain (BatchNorm)": plain}, data)
    board.children = (*board.children, whitening_panel(board, {reader_set_label(colour): colour,
                                                               reader_set_label(board.models): board.models}))
    board = with_save_bar(board, "whitening")
    board.children = (*board.children, real_faces_section(smoke))
    return board


# ------------------------------------------------------------------------------------------------ whitening
def reader_set_label(models: Mapping[str, WhiteningDetector]) -> str:
    """A detector set by its input, e.g. "64 px colour detectors" (the "read with" toggle of ``whitening_panel``)."""
    first = next(iter(models.values()))
    return f"{first.image_size} px {'grey' if first.in_channels == 1 else 'colour'} detectors"


def whitening_panel(board: Any, readers: Mapping[str, Mapping[str, WhiteningDetector]] | None = None) -> W.VBox:
    """A row that reads a face photo: the face found and cropped like the detectors' training faces (and fed in
    their training domain, ``workbench.whitening.read_face``), then each detector's P(fake) and its map of the
    slider's channel (re-drawn when the channel moves), and which model read it, trained on what (the reading's
    ``reader``, derived from the model's recipe). ``readers``: the detector sets a photo may be read with, by label
    (default: the board's own); a "read with" toggle picks one and re-reads the photo."""
    readers = dict(readers or {reader_set_label(board.models): board.models})
    picker = W.ToggleButtons(options=list(readers), description="read with")
    picker.add_class("wb-yours-face-readers")
    picker.layout.display = "" if len(readers) > 1 else "none"
    note, said = W.HTML(), W.HTML()
    note.add_class("wb-yours-face-note")
    said.add_class("wb-yours-face-reader")
    view = W.Output()
    view.add_class("wb-yours-face-view")
    shown: dict[str, Any] = {}

    def models() -> Mapping[str, WhiteningDetector]:
        return readers[picker.value]

    def draw(_change: object = None) -> None:
        if not shown:
            return
        c = int(board.channel_slider.value)
        maps = {f"{name}: {channel_label(shown['models'][name], c)}<br>P(fake) {r.p_fake:.2f}": r.maps[c].numpy()
                for name, r in shown["readings"].items() if c < r.maps.shape[0]}
        view.outputs = figure_outputs(your_face_figure(face_image(shown["face"]), maps, title=shown["name"]))

    def add_face(path: str) -> str:
        from workbench.inputs import CHANNEL_NAMES, load_face
        from workbench.whitening import read_face

        chosen = models()
        first = next(iter(chosen.values()))
        channels, size = int(first.in_channels), int(first.image_size)
        face = load_face(path, channels, size)
        with one_thread():
            readings = read_face(chosen, face)
        shown.update(face=face, readings=readings, models=chosen, name=f"yours: {Path(path).name}", path=path)
        draw()
        said.value = "<ul>" + "".join(f"<li>{html.escape(r.reader)}</li>" for r in readings.values()) + "</ul>"
        p_fake = ", ".join(f"{name} {r.p_fake:.2f}" for name, r in readings.items())
        return f"face found in {Path(path).name} ({size}x{size}, {CHANNEL_NAMES[channels]}); P(fake): {p_fake}"

    def on_readers(_change: object = None) -> None:
        chosen = models()
        first = next(iter(chosen.values()))
        note.value = reader_note(chosen)
        row.path.placeholder = (f"/path/to/photo.jpg (a frontal face; cropped to {first.image_size}x"
                                f"{first.image_size})")
        if shown:
            row.load(shown["path"])

    row = PathRow("face photo", "", add_face, "image/*", "wb-yours-face")
    on_readers()
    picker.observe(on_readers, names="value")
    board.channel_slider.observe(draw, names="value")
    panel = _panel([row], [picker, note, said, view])
    panel.readers, panel.reader_lines = picker, said  # for notebooks and tests: the toggle, who read the photo
    return panel
