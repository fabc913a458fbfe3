"""Views of hybrid-order relational KD (:mod:`workbench.horkd`): what the student sees, the relational structure of
the three streams, accuracy against input resolution for every baseline, and where the students' errors differ
(per-class accuracy, the disagreement matrix, images one student gets right and another wrong).

``dashboard()`` loads the full-setting teacher, assistants and students (shipped or cached weights; the smoke
setting under ``WORKBENCH_SMOKE=1``), evaluates every baseline over a range of input resolutions once, and then
re-draws on every control move (no training; the error views of a trained resolution are computed once). Its "Your
data" row (``horkd_panel``) takes an image, resizes it to HR and to every trained resolution and
tabulates each stream's top-1 (:func:`predictions_table`, :func:`views_figure`), and takes a face photo: the face
found and aligned, the students' views, what the models were trained on and every stream's top-3
(``workbench.horkd.read_face_photo``, :func:`face_views_figure`, :func:`face_answers_table`).
"""

from __future__ import annotations

import copy
import html
import threading
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import torch

from widgets._common import figure_outputs, image_trace, one_thread
from widgets.export import with_save_bar
from widgets.horkd_draw import (
    COLOURS,
    _z_json,
    curves_figure,
    disagreement_figure,
    examples_figure,
    face_answers_table,
    face_views_figure,
    known_classes_note,
    per_class_figure,
    predictions_table,
    preview_figure,
    preview_mosaic,
    preview_title,
    relation_mosaics,
    relations_figure,
    setting_note,
    views_figure,
)
from widgets.inputs import PathRow, _panel
from widgets.placeholder import progress_in_page
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

#: the page's API and the figures drawn by :mod:`widgets.horkd_draw` (re-exported: notebooks import them here)
__all__ = [
    "COLOURS",
    "curves_figure",
    "dashboard",
    "disagreement_figure",
    "ERRORS_INTRO",
    "examples_figure",
    "face_answers_table",
    "face_views_figure",
    "horkd_panel",
    "HorkdDashboard",
    "INTRO",
    "known_classes_note",
    "per_class_figure",
    "predictions_table",
    "preview_figure",
    "preview_mosaic",
    "preview_title",
    "relation_mosaics",
    "relations_figure",
    "setting_note",
    "views_figure",
]




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
    """Two rows: one reads any image (resized to HR and to each trained resolution, every stream's top-1 in a
    table); one reads a face photo (``workbench.horkd.read_face_photo``: the face found and aligned, the students'
    views, what the models were trained on and every stream's top-3), in the box of CSS class ``wb-yours-face``."""
    models = board.models
    hr, resolutions = models.config.hr_size, tuple(models.config.resolutions)
    channels = int(models.test.images.shape[1])
    view, table = W.Output(), W.HTML()
    view.add_class("wb-yours-views")
    table.add_class("wb-yours-predictions")
    face_trained_on, face_view, face_table = W.HTML(), W.Output(), W.HTML()
    face_box = W.VBox([face_trained_on, face_view, face_table])
    for widget, css in ((face_box, "wb-yours-face"), (face_trained_on, "wb-yours-face-trained-on"),
                        (face_view, "wb-yours-face-views"), (face_table, "wb-yours-face-answers")):
        widget.add_class(css)

    def add_image(path: str) -> str:
        from workbench.horkd import predict_image
        from workbench.inputs import load_image

        image = load_image(path, (channels, hr, hr), resize=True)
        with one_thread():
            rows = predict_image(models, image)
        table.value = predictions_table(rows)
        view.outputs = figure_outputs(views_figure(image, resolutions))
        return f"{Path(path).name} resized to {hr}x{hr}: the HR teacher says {rows[0]['class']} ({rows[0]['p']:.0%})"

    def add_face(path: str) -> str:
        from workbench.horkd import read_face_photo

        with one_thread():
            reading = read_face_photo(models, path)
        face_trained_on.value = f"<p style='color:#8a5a00'>{html.escape(reading.trained_on)}</p>"
        face_view.outputs = figure_outputs(face_views_figure(reading))
        face_table.value = face_answers_table(reading)
        name, p = reading.answers[0].top[0]
        return (f"face found in {Path(path).name} by {reading.finder}, aligned to {hr}x{hr}: the HR teacher says "
                f"{name} ({p:.0%})")

    sizes = " and ".join(f"{r}x{r}" for r in resolutions)
    return _panel([PathRow("image", f"/path/to/image.png (any size; resized to {hr}x{hr})", add_image, "image/*",
                           "wb-yours-image"),
                   PathRow("face photo", f"/path/to/photo.jpg (a frontal face; aligned to {hr}x{hr}, seen at "
                           f"{sizes})", add_face, "image/*", "wb-yours-face")],
                  [view, table, face_box])
