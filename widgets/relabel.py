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
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from widgets._common import busy, figure_outputs, one_thread, png_bytes
from widgets.compare import attach_compare, comparable_models
from widgets.export import with_save_bar
from widgets.inputs import relabel_panel
from widgets.placeholder import placeholder_png, progress_in_page
from widgets.scorecard import ScorecardView
from workbench.explainers import (
    DEFAULT_BASELINES,
    DEGENERATE_STATUSES,
    baseline_kwargs,
    baseline_maps,
    make_explainer,
)
from workbench.metrics import causal_curves, curve_auc
from workbench.relabel import RelabelDistillation, RelabelExplanation
from workbench.relabel.fidelity import BELOW_MAJORITY
from workbench.runtime import model_device

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
        self.images = images.detach().float().cpu()
        self.labels = list(labels) if labels is not None else None
        self.classes, self.noun = (tuple(classes) if classes is not None else None), noun
        self.explainer_kwargs = dict(explainer_kwargs or {})
        self.baseline_names = tuple(baselines)
        self.device = model_device(vae)
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
        latent_dim = int(self.vae.encode(self.images[:1].to(self.device))[0].shape[1])
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
    def _teacher(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x.to(model_device(self.classifier))).float().softmax(-1)[0].cpu()

    @torch.no_grad()
    def _select(self, index: int) -> None:
        """Encode the picked image, reset the nudges and the explanation, re-draw."""
        image = self.images[index]
        with one_thread():
            self._z0 = self.vae.encode(image[None].to(self.device))[0][0].float()
            probs = self._teacher(image[None])
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

    @torch.no_grad()
    def redraw_latent(self) -> float:
        """Decode z0 + delta, classify it, draw it; returns the seconds it took (a re-draw, no fitting)."""
        t0 = time.perf_counter()
        delta = torch.tensor([s.value for s in self.latent_sliders], dtype=self._z0.dtype, device=self._z0.device)
        with one_thread():
            decoded = self.vae.decode((self._z0 + delta)[None]).clamp(0, 1)
            probs = self._teacher(decoded)
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
        self.stats.value = text

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
        self.maps_note.value = self._maps_note(e) if shown else ""
        drawable = {k: v for k, v in maps.items() if torch.isfinite(v).all() and v.abs().sum() > 0}
        self.curves_out.outputs = (figure_outputs(curves_figure(
            causal_curves(self.classifier, image, self._target, drawable))) if drawable else ())

    @staticmethod
    def _maps_note(e: RelabelExplanation | None) -> str:
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
