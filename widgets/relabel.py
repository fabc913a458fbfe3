"""Re-label distillation dashboard: the latent explorer over :class:`workbench.relabel.RelabelDistillation`.

Pick an image; nudge each VAE latent dimension and see the decoded image and the teacher's label live (decode one
latent + one teacher forward: a re-draw only); press **Explain** to search sigma, decode N re-labelled samples and fit
the linear student (the expensive part); **Compare with baselines** runs the baseline explainers of
:mod:`workbench.explainers` (Captum, lime) on the same image. The views: a grid of synthetic samples bordered green
(label kept) or red (label shifted) and, below it, which regions of those samples were kept from the image and
which were decoded; the student's signed map, the same student at the resolution it was fitted (grid cells), beside
the baselines' maps; flip rate / sigma / fidelity / status (with a note that compares the fidelity with the majority
rate and says by how many points: :attr:`~workbench.relabel.RelabelExplanation.fidelity_check`), and the
deletion / insertion curves (RISE, :func:`workbench.metrics.causal_curves`) of every map for the current image.
Below, the scorecard (:class:`widgets.scorecard.ScorecardView`) scores RLD and the baselines with the standard
metrics of :mod:`workbench.evaluation` on the chosen image and a few more, and draws the MPRT sanity check. Images
are named by their data set's classes ("digit 7" for the digits, "class brick" for the colour photograph patches).

The drawing helpers (:func:`sample_grid`, :func:`map_figure`, :func:`curves_figure`) are pure functions so they can
be tested and reused in notebooks; every computation lives in :mod:`workbench`.
"""

from __future__ import annotations

import html
import time
import warnings
from collections.abc import Sequence
from typing import Any

import ipywidgets as W
import torch

from widgets._common import busy, figure_outputs, one_thread, png_bytes
from widgets.compare import attach_compare, comparable_models
from widgets.export import with_save_bar
from widgets.inputs import relabel_panel
from widgets.placeholder import placeholder_png, progress_in_page
from widgets.relabel_draw import (
    KEPT_RGB,
    LATENT_RANGE,
    MAPS_PER_ROW,
    SHIFTED_RGB,
    curves_figure,
    fitted_map,
    kept_regions,
    map_figure,
    maps_note,
    sample_grid,
    stats_html,
    to_gray_uint8,
    to_uint8,
)
from widgets.scorecard import ScorecardView
from workbench.explainers import (
    DEFAULT_BASELINES,
    baseline_kwargs,
    baseline_maps,
    make_explainer,
)
from workbench.metrics import causal_curves
from workbench.relabel import RelabelDistillation, RelabelExplanation
from workbench.relabel.fidelity import BELOW_MAJORITY
from workbench.relabel.latent import LatentExplorer

#: the page's API and the figures drawn by :mod:`widgets.relabel_draw` (re-exported: notebooks import them here)
__all__ = [
    "curves_figure",
    "dashboard",
    "DATASET_NOUNS",
    "fitted_map",
    "kept_regions",
    "KEPT_RGB",
    "LATENT_RANGE",
    "map_figure",
    "MAPS_PER_ROW",
    "RelabelDashboard",
    "sample_grid",
    "SHIFTED_RGB",
    "to_gray_uint8",
    "to_uint8",
]




# ------------------------------------------------------------------------------------------------ the dashboard
class RelabelDashboard(W.VBox):
    """The latent explorer (a VBox); its controls are attributes so tests and notebooks can drive it.

    ``labels``: the images' true class indices (optional); ``classes``: the class names the teacher's outputs stand
    for (default: the indices); ``noun``: what an image is called in the picker ("digit", default "class").
    """

    def __init__(self, classifier: torch.nn.Module, vae: torch.nn.Module, images: torch.Tensor,
                 labels: Sequence[int] | None = None, explainer_kwargs: dict[str, Any] | None = None,
                 baselines: Sequence[str] = DEFAULT_BASELINES, classes: Sequence[str] | None = None,
                 noun: str = "class") -> None:
        self.classifier, self.vae = classifier.eval(), vae.eval()
        self.latent = LatentExplorer(self.classifier, self.vae)
        self.images = images.detach().float().cpu()
        self.labels = list(labels) if labels is not None else None
        self.classes, self.noun = (tuple(classes) if classes is not None else None), noun
        self.explainer_kwargs = dict(explainer_kwargs or {})
        self.baseline_names = tuple(baselines)
        self.explanation: RelabelExplanation | None = None
        self.baseline_results: dict[str, torch.Tensor] = {}
        self.last_redraw_s = 0.0
        self._target = 0
        self._build_controls()
        self._build_views()
        self.scorecard = ScorecardView(self.classifier, self.images, self._scorecard_explainers(), batch_size=4)
        super().__init__([*self._layout(), self.scorecard])
        self.layout.max_width = "100%"  # no sideways overflow inside JupyterLab: wide figures scroll in their box
        for out in (self.maps_out, self.curves_out):
            out.layout.max_width, out.layout.overflow_x = "100%", "auto"
        self.add_class("wb-relabel-dashboard")
        self._select(0)

    def _build_controls(self) -> None:
        options = [(self._image_label(i), i) for i in range(len(self.images))]
        self.image_picker = W.Dropdown(options=options, value=0, description="image",
                                       layout=W.Layout(width="260px"))
        self.image_picker.add_class("wb-relabel-image")
        self.auto_sigma = W.Checkbox(value=True, description="auto sigma (flip band)", indent=False,
                                     layout=W.Layout(width="190px"))
        self.sigma = W.FloatLogSlider(value=1.0, base=10, min=-2, max=1.3, step=0.05, description="sigma",
                                      disabled=True, continuous_update=False, readout_format=".3g")
        self.n_samples = W.IntSlider(value=int(self.explainer_kwargs.get("n_samples", 1000)), min=100, max=3000,
                                     step=100, description="N samples", continuous_update=False)
        self.explain_button = W.Button(description="Explain", button_style="primary", icon="play")
        self.explain_button.add_class("wb-relabel-explain")
        self.baselines_button = W.Button(description="Compare with baselines", icon="balance-scale",
                                         layout=W.Layout(width="200px"))
        self.baselines_button.add_class("wb-relabel-baselines")
        self.progress = W.IntProgress(value=0, min=0, max=4, layout=W.Layout(width="180px", visibility="hidden"))
        latent_dim = int(self.latent.encode(self.images[0])[0].numel())
        self.latent_sliders = [
            W.FloatSlider(value=0.0, min=-LATENT_RANGE, max=LATENT_RANGE, step=0.1, description=f"z{i}",
                          continuous_update=True, readout_format=".1f",
                          style={"description_width": "28px"}, layout=W.Layout(width="210px"))
            for i in range(latent_dim)
        ]
        for s in self.latent_sliders:
            s.add_class("wb-relabel-latent-slider")
            s.observe(self._on_latent, names="value")
        self.reset_latents = W.Button(description="Reset nudges", icon="undo", layout=W.Layout(width="130px"))
        self.image_picker.observe(self._on_image, names="value")
        self.auto_sigma.observe(lambda ch: setattr(self.sigma, "disabled", bool(ch["new"])), names="value")
        self.reset_latents.on_click(self._on_reset)
        self.explain_button.on_click(self._on_explain)
        self.baselines_button.on_click(self._on_baselines)

    def _build_views(self) -> None:
        views = {"original": W.Image(format="png", layout=W.Layout(width="96px", height="96px")),
                 "prediction": W.HTML(), "stats": W.HTML(layout=W.Layout(min_height="48px")),
                 "decoded": W.Image(format="png", layout=W.Layout(width="128px", height="128px")),
                 "decoded_label": W.HTML(), "samples": W.Image(format="png", layout=W.Layout(max_width="100%")),
                 "regions_view": W.Image(format="png", layout=W.Layout(max_width="100%")), "regions_note": W.HTML(),
                 "maps_out": W.Output(), "maps_note": W.HTML(), "curves_out": W.Output()}
        css = {"original": "original", "stats": "stats", "decoded": "latent", "decoded_label": "latent-pred",
               "samples": "samples", "maps_out": "maps", "curves_out": "curves", "regions_view": "regions",
               "regions_note": "regions-note", "maps_note": "maps-note"}
        for name, widget in views.items():
            setattr(self, name, widget)
            if name in css:
                widget.add_class(f"wb-relabel-{css[name]}")

    def _layout(self) -> list[W.Widget]:
        header = W.HBox([self.image_picker, self.original, self.prediction],
                        layout=W.Layout(align_items="center", gap="12px"))
        controls = W.HBox([self.auto_sigma, self.sigma, self.n_samples], layout=W.Layout(flex_flow="row wrap"))
        actions = W.HBox([self.explain_button, self.baselines_button, self.progress],
                         layout=W.Layout(align_items="center", gap="8px"))
        latent_grid = W.GridBox(self.latent_sliders, layout=W.Layout(  # 4 columns where they fit, fewer if not
            grid_template_columns="repeat(auto-fill, 215px)", grid_gap="0px 4px", width="min(100%, 880px)"))
        latent_panel = W.VBox([
            W.HTML("<b>Latent explorer</b>: nudge z = z0 + delta (delta in prior standard deviations); "
                   "the decoded image and the teacher's label update live."),
            W.HBox([latent_grid, W.VBox([self.decoded, self.decoded_label, self.reset_latents])],
                   layout=W.Layout(align_items="flex-start", gap="12px")),
        ])
        samples_panel = W.VBox([
            W.HTML("<b>Synthetic samples</b> (first 48): "
                   f"<span style='color:rgb{KEPT_RGB}'>green frame: label kept</span>, "
                   f"<span style='color:rgb{SHIFTED_RGB}'>red frame: label shifted</span>"),
            self.samples,
            self.regions_note,
            self.regions_view,
        ])
        return [header, controls, actions, self.stats,
                W.HBox([latent_panel, samples_panel], layout=W.Layout(flex_flow="row wrap", gap="8px 24px")),
                self.maps_out, self.maps_note, self.curves_out]

    def _scorecard_explainers(self, model: torch.nn.Module | None = None) -> dict[str, Any]:
        """RLD (the dashboard's settings) and every baseline that can be built here, at the same sample budget,
        around ``model`` (default: the teacher; the compare view builds them around model B too)."""
        n, model = int(self.n_samples.value), self.classifier if model is None else model
        explainers: dict[str, Any] = {"RLD": RelabelDistillation(model, self.vae,
                                                                 **{**self.explainer_kwargs, "n_samples": n})}
        for name in self.baseline_names:
            try:
                explainers[name] = make_explainer(name, model, **baseline_kwargs(name, n))
            except ImportError:  # an optional package (lime, captum) missing: that baseline is left out
                continue
        return explainers

    # -------------------------------------------------------------------------------------------- computations
    def class_name(self, index: int) -> str:
        """The name of class ``index`` (the index itself when no class names were given)."""
        return self.classes[index] if self.classes is not None and 0 <= index < len(self.classes) else str(index)

    def _image_label(self, i: int) -> str:
        return f"#{i}" + (f" ({self.noun} {self.class_name(self.labels[i])})" if self.labels is not None else "")

    @torch.no_grad()
    def _select(self, index: int) -> None:
        """Encode the picked image, reset the nudges and the explanation, re-draw."""
        image = self.images[index]
        with one_thread():
            self._z0, probs = self.latent.encode(image)
        self._target = int(probs.argmax())
        self.original.value = png_bytes(to_uint8(image), 8)
        truth = self.labels[index] if self.labels is not None else None
        self.prediction.value = (f"teacher: <b>{html.escape(self.class_name(self._target))}</b> "
                                 f"(p = {float(probs[self._target]):.2f})"
                                 + (f"<br>true {self.noun}: {html.escape(self.class_name(truth))}"
                                    if truth is not None else ""))
        self.explanation, self.baseline_results = None, {}
        self.scorecard.set_image(index)
        self.samples.value = placeholder_png(480, 96, "re-labelled samples appear here after Explain")
        self.regions_view.value = placeholder_png(480, 48, "regions kept / decoded appear here after Explain")
        self.regions_note.value = ""
        self.maps_out.outputs, self.curves_out.outputs, self.maps_note.value = (), (), ""
        self.stats.value = "<i>Press <b>Explain</b> to fit the linear student for this image.</i>"
        self._on_reset()
        self.redraw_latent()

    def redraw_latent(self) -> float:
        """Decode z0 + delta, classify it, draw it; returns the seconds it took (a re-draw, no fitting)."""
        t0 = time.perf_counter()
        delta = torch.tensor([s.value for s in self.latent_sliders], dtype=self._z0.dtype)
        with one_thread():
            decoded, probs = self.latent.decode(self._z0, delta)
        label = int(probs.argmax())
        self.decoded.value = png_bytes(to_uint8(decoded[0]), 8)
        colour = f"rgb{KEPT_RGB if label == self._target else SHIFTED_RGB}"
        verdict = "kept" if label == self._target else "shifted"
        self.decoded_label.value = (f"<span style='color:{colour}'>teacher: <b>{html.escape(self.class_name(label))}"
                                    f"</b> (p = {float(probs[label]):.2f}) — {verdict}</span>")
        self.last_redraw_s = time.perf_counter() - t0
        return self.last_redraw_s

    def explain(self) -> RelabelExplanation:
        """Run RLD on the current image with the current controls and update every view."""
        self.progress.value = 0
        with busy(self.explain_button, self.progress, self.stats, "Explain"):
            kwargs = {**self.explainer_kwargs, "n_samples": int(self.n_samples.value),
                      "sigma": "auto" if self.auto_sigma.value else float(self.sigma.value)}
            self.stats.value = (f"<i>Explaining: sigma search, {kwargs['n_samples']} samples decoded and re-labelled, "
                                "student fit…</i>")
            self.progress.value = 1
            image = self.images[self.image_picker.value]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                explanation = RelabelDistillation(self.classifier, self.vae, **kwargs).explain(image)
            self.explanation = explanation
            if self.auto_sigma.value:
                self.sigma.value = explanation.sigma
            self.progress.value = 2
            self.samples.value = png_bytes(sample_grid(explanation, n=48, cols=16), 3)
            self._draw_regions(explanation)
            self._show_stats(explanation, [str(w.message) for w in caught])
            self.progress.value = 3
            self._draw_maps()
            self.progress.value = 4
        return explanation

    def compare_baselines(self) -> dict[str, torch.Tensor]:
        """Run the baselines on the current image (target: the teacher's label) and re-draw maps and curves."""
        self.baselines_button.disabled = True
        note = self.stats.value
        self.stats.value = note + f"<br><i>Running baselines: {', '.join(self.baseline_names)}…</i>"
        try:
            image = self.images[self.image_picker.value]
            try:
                with warnings.catch_warnings():  # Captum notes that it switched requires_grad on: not news here
                    warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
                    maps, problems = baseline_maps(self.classifier, image, self._target, self.baseline_names,
                                                   int(self.n_samples.value))
            except ImportError as exc:
                maps, problems = {}, str(exc)
            self.baseline_results = maps
            self.stats.value = note + (f"<br><span style='color:#a60'>Baselines not run: {html.escape(problems)}"
                                       "</span>" if problems else "")
            self._draw_maps()
            return maps
        finally:
            self.baselines_button.disabled = False

    def _show_stats(self, e: RelabelExplanation, warned: list[str]) -> None:
        self.stats.value = stats_html(e, warned)

    def _draw_regions(self, e: RelabelExplanation) -> None:
        """The regions kept vs decoded of the samples drawn above (or why there are none)."""
        if e.keep is None or e.regions is None:
            self.regions_view.value = placeholder_png(480, 48, "no regions: every sample is a whole decode")
            self.regions_note.value = ("<i>Every sample is a whole VAE decode (no region mixing, as in the "
                                       "paper's variant).</i>")
            return
        self.regions_note.value = ("<b>Regions of the same samples</b>: white = kept from the image, dark = taken "
                                   f"from a VAE decode ({int(e.regions.max()) + 1} regions; each kept with "
                                   "probability keep_share, independently)")
        self.regions_view.value = png_bytes(sample_grid(e, n=48, cols=16, show="regions"), 3)

    def _current_maps(self) -> dict[str, torch.Tensor]:
        maps: dict[str, torch.Tensor] = {}
        if self.explanation is not None:
            maps["RLD student"] = self.explanation.attribution
        maps.update(self.baseline_results)
        return maps

    def _draw_maps(self) -> None:
        maps = self._current_maps()
        image = self.images[self.image_picker.value]
        shown: dict[str, Any] = dict(maps)
        e = self.explanation
        if e is not None:  # the student's map as painted, then (a student on regions) at the resolution it was fitted
            student = "RLD student" + (" ⚠ below majority" if e.status == BELOW_MAJORITY else "")
            shown = {student: maps["RLD student"]}
            if e.region_weight is not None:
                fitted, what = fitted_map(e)
                shown[f"RLD as fitted ({what})"] = fitted
            shown.update({k: v for k, v in maps.items() if k != "RLD student"})
        self.maps_out.outputs = figure_outputs(map_figure(shown, image)) if shown else ()
        self.maps_note.value = maps_note(e) if shown else ""
        drawable = {k: v for k, v in maps.items() if torch.isfinite(v).all() and v.abs().sum() > 0}
        self.curves_out.outputs = (figure_outputs(curves_figure(
            causal_curves(self.classifier, image, self._target, drawable))) if drawable else ())

    # -------------------------------------------------------------------------------------------- callbacks
    def _on_image(self, change: dict) -> None:
        self._select(int(change["new"]))

    def _on_latent(self, _change: dict) -> None:
        self.redraw_latent()

    def _on_reset(self, _button: W.Button | None = None) -> None:
        for s in self.latent_sliders:
            s.unobserve(self._on_latent, names="value")
            s.value = 0.0
            s.observe(self._on_latent, names="value")
        if _button is not None:
            self.redraw_latent()

    def _on_explain(self, _button: W.Button) -> None:
        self.explain()

    def _on_baselines(self, _button: W.Button) -> None:
        self.compare_baselines()


#: the data sets the dashboard opens on: what an image is called there, and its test images and default models
DATASET_NOUNS: dict[str, str] = {"digits": "digit", "patches": "class"}


def _default_data(dataset: str) -> tuple[Any, Any, Any]:
    """The held-out images, teacher and VAE of ``dataset`` (models cached; trained on first use)."""
    from workbench.data import load_digits, load_patches
    from workbench.models import pretrained

    if dataset == "digits":
        return (load_digits(pretrained.DIGITS_SIZE, "test"), pretrained.digits_classifier, pretrained.digits_vae)
    return (load_patches(pretrained.PATCHES_SIZE, "test"), pretrained.patches_classifier, pretrained.patches_vae)


def dashboard(classifier: torch.nn.Module | None = None, vae: torch.nn.Module | None = None,
              images: torch.Tensor | None = None, explainer_kwargs: dict[str, Any] | None = None,
              baselines: Sequence[str] = DEFAULT_BASELINES, dataset: str = "digits") -> RelabelDashboard:
    """The RLD latent explorer. Defaults: ``dataset``'s cached teacher and VAE (trained on first use) and its held-out
    images: ``"digits"`` (16x16 gray digits) or ``"patches"`` (32x32 colour photograph patches, 10 classes).
    ``explainer_kwargs`` go to :class:`~workbench.relabel.RelabelDistillation` (e.g. ``student="sgd"``,
    ``residual=True``); the dashboard's sigma and N controls override ``sigma`` and ``n_samples``."""
    if dataset not in DATASET_NOUNS:
        raise ValueError(f"dataset must be one of {tuple(DATASET_NOUNS)}; got {dataset!r}")
    test, make_classifier, make_vae = _default_data(dataset)
    labels = test.labels.tolist() if images is None else None
    images = test.images if images is None else images
    with progress_in_page():  # first use trains: its bars must not outlive the training in the page
        classifier = make_classifier() if classifier is None else classifier
        vae = make_vae() if vae is None else vae
    board = RelabelDashboard(classifier, vae, images, labels, explainer_kwargs, baselines, classes=test.classes,
                             noun=DATASET_NOUNS[dataset])
    board.children = (*board.children, relabel_panel(board))
    attach_compare(board.scorecard, comparable_models(dataset), board._scorecard_explainers)
    return with_save_bar(board, "rld", lambda: board.image_picker.label)
