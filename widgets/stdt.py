"""Spatiotemporal-dropout dashboard: what the bag-of-patches ViT keeps, where it looks, how sure it is
(:mod:`workbench.stdt`).

Views, one column per frame of a clip: the frames with the patches dropped by the current STD draw darkened (kept
ones as they are, a legend says so), the attention rollout over the kept patches overlaid on the frame, and the true
per-frame manipulation mask; the video-level score (no dropout) and the score of the current draw. Controls: the
clip, the two dropout ratios (``continuous_update=False``, explained next to them from the model's T and N), a
reseed button. Every control change runs one small forward pass.

:func:`clip_figure` is a pure function, usable in notebooks.
"""

from __future__ import annotations

import html
import time

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from widgets._common import figure_outputs, one_thread
from widgets.export import with_save_bar
from widgets.inputs import stdt_panel
from widgets.placeholder import progress_in_page
from workbench.data.clips import ClipSet, load_forgery_clips
from workbench.stdt import BagOfPatchesViT, dropout_draw, inspect_draw, recipe_of, trained_on

DROPPED_DARKEN = 0.3  # a dropped patch is drawn at this share of its brightness; a kept one as it is
#: rollout overlay: transparent at no attention (the kept patch stays plain), opaque orange-yellow at the most
ATTENTION_SCALE = [[0.0, "rgba(255,120,0,0)"], [0.5, "rgba(255,150,0,0.5)"], [1.0, "rgba(255,235,60,0.9)"]]
LEGEND = ("<span class='wb-stdt-legend'><b>darkened</b> = dropped by this draw (patches, or a whole frame marked "
          "<i>(dropped)</i>) &middot; <b>as is</b> = kept, seen by the model &middot; <b>orange</b> (attention row) = "
          "where the model looks among the kept patches</span>")


def _clip_layers(clip: np.ndarray, kept: np.ndarray, rollout: np.ndarray
                 ) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Per frame: the frame with dropped patches darkened, the rollout over kept patches (NaN elsewhere), the title."""
    t, size = clip.shape[0], clip.shape[-1]
    patch = size // kept.shape[-1]
    kept_px = np.kron(kept, np.ones((patch, patch))).astype(bool)
    shown = np.where(kept_px, clip, DROPPED_DARKEN * clip)
    roll = np.kron(rollout, np.ones((patch, patch)))
    roll = roll / max(float(roll.max()), 1e-12)
    return ([shown[k][::-1] for k in range(t)], [np.where(kept_px[k], roll[k], np.nan)[::-1] for k in range(t)],
            [f"t={k}{'' if kept[k].any() else ' (dropped)'}" for k in range(t)])


def clip_figure(clip: np.ndarray, kept: np.ndarray, rollout: np.ndarray, mask: np.ndarray, title: str = ""
                ) -> go.Figure:
    """Rows: frames with dropped patches darkened, rollout over kept patches on the frame, manipulation mask.

    ``clip`` (T, H, W) in [0, 1]; ``kept`` (T, h, w) bool; ``rollout`` (T, h, w); ``mask`` (T, H, W). Traces per
    frame k: ``4k`` kept patches, ``4k + 1`` the frame (dropped patches darkened too), ``4k + 2`` the rollout,
    ``4k + 3`` the mask
    (``update_clip_figure`` relies on this order).
    """
    t = clip.shape[0]
    shown, rolls, titles = _clip_layers(clip, kept, rollout)
    fig = make_subplots(rows=3, cols=t, horizontal_spacing=0.008, vertical_spacing=0.04, subplot_titles=titles,
                        row_titles=["kept patches", "attention", "mask"])
    for k in range(t):
        fig.add_trace(go.Heatmap(z=shown[k], colorscale="gray", zmin=0, zmax=1, showscale=False,
                                 hovertemplate="%{z:.2f}<extra></extra>"), row=1, col=k + 1)
        fig.add_trace(go.Heatmap(z=shown[k], colorscale="gray", zmin=0, zmax=1, showscale=False,
                                 hoverinfo="skip"), row=2, col=k + 1)
        fig.add_trace(go.Heatmap(z=rolls[k], colorscale=ATTENTION_SCALE, zmin=0, zmax=1, showscale=False,
                                 hovertemplate="rollout %{z:.2f}<extra></extra>"), row=2, col=k + 1)
        fig.add_trace(go.Heatmap(z=mask[k][::-1], colorscale="Reds", zmin=0, zmax=1, showscale=False,
                                 hovertemplate="mask %{z:.2f}<extra></extra>"), row=3, col=k + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=10)
    fig.update_layout(height=90 * 3 + 110, width=max(110 * t, 500), margin=dict(l=5, r=30, t=60, b=5),
                      title_text=title)
    return fig


def update_clip_figure(fig: go.Figure, clip: np.ndarray, kept: np.ndarray, rollout: np.ndarray, title: str = ""
                       ) -> go.Figure:
    """``fig`` (a ``clip_figure`` of the same clip) with another draw's kept patches, rollout and title, in place:
    the same figure ``clip_figure`` would build, without building a new subplot grid (~80 ms of a re-draw)."""
    shown, rolls, titles = _clip_layers(clip, kept, rollout)
    with fig.batch_update():
        for k in range(clip.shape[0]):
            fig.data[4 * k].z = shown[k]
            fig.data[4 * k + 1].z = shown[k]
            fig.data[4 * k + 2].z = rolls[k]
            fig.layout.annotations[k].text = titles[k]
        fig.layout.title.text = title
    return fig


def ratio_help(model: BagOfPatchesViT) -> str:
    """What the two sliders mean, in the terms of :class:`~workbench.stdt.SpatiotemporalDropout`, with the model's
    frame and patch counts."""
    frames, patches = model.frames, model.grid ** 2
    return (f"<small><b>rho_t</b>: share of the clip's {frames} frames dropped (whole frames); <b>rho_s</b>: share "
            f"of the {patches} patch positions dropped in each kept frame. A draw keeps round((1 - rho_t) x {frames}) "
            f"frames x round((1 - rho_s) x {patches}) patches (at least one of each); 0 and 0 = the model sees "
            "everything.</small>")


class StdtDashboard(W.VBox):
    """The STD explorer (a VBox); its controls are attributes so tests and notebooks can drive it."""

    def __init__(self, model: BagOfPatchesViT, data: ClipSet, seed: int = 0) -> None:
        self.model, self.data = model.eval(), data
        self.seed = seed
        options = [(f"{i}: {data.kinds[i]} (id {int(data.identities[i])})", i) for i in range(len(data))]
        self.clip_picker = W.Dropdown(options=options, value=0, description="clip")
        self.clip_picker.add_class("wb-stdt-clip")
        self.spatial_slider = W.FloatSlider(value=model.std.spatial_ratio or 0.25, min=0.0, max=0.9, step=0.05,
                                            description="rho_s", continuous_update=False)
        self.spatial_slider.add_class("wb-stdt-spatial")
        self.temporal_slider = W.FloatSlider(value=model.std.temporal_ratio or 0.25, min=0.0, max=0.875,
                                             step=0.125, description="rho_t", continuous_update=False)
        self.temporal_slider.add_class("wb-stdt-temporal")
        self.reseed_button = W.Button(description="reseed", icon="refresh")
        self.reseed_button.add_class("wb-stdt-reseed")
        self.stats = W.HTML()
        self.stats.add_class("wb-stdt-stats")
        self.view_out = W.Output()
        self.view_out.add_class("wb-stdt-view")
        for control in (self.clip_picker, self.spatial_slider, self.temporal_slider):
            control.observe(lambda _change: self.redraw(), names="value")
        self.reseed_button.on_click(lambda _b: self.reseed())
        self.ratio_help = W.HTML(ratio_help(model))
        self.ratio_help.add_class("wb-stdt-ratio-help")
        self.legend = W.HTML(LEGEND)
        self.trained_on = W.HTML(f"<small>{html.escape(trained_on(recipe_of(model)))}</small>")
        self.trained_on.add_class("wb-stdt-trained-on")
        super().__init__([W.HBox([self.clip_picker, self.spatial_slider, self.temporal_slider, self.reseed_button]),
                          self.ratio_help, self.stats, self.trained_on, self.legend, self.view_out])
        self.add_class("wb-stdt-dashboard")
        self.last_redraw_s = 0.0
        self._fig: go.Figure | None = None  # the shown clip's figure: another draw of it updates it in place
        self._fig_clip: tuple[int, int] = (-1, 0)
        self.redraw()

    def reseed(self) -> None:
        """A new dropout draw of the same clip."""
        self.seed += 1
        self.redraw()

    def draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The current draw's kept (t_idx, n_idx), each (1, K), from the sliders and the seed."""
        return dropout_draw(self.model, self.spatial_slider.value, self.temporal_slider.value, self.seed)

    def redraw(self) -> None:
        start = time.perf_counter()
        i = int(self.clip_picker.value)
        clip = self.data.clips[i:i + 1]
        keep = self.draw()
        with one_thread():
            seen = inspect_draw(self.model, clip, keep)
        label = self.data.classes[int(self.data.labels[i])] if int(self.data.labels[i]) >= 0 else "unknown"
        title = f"clip {i} ({html.escape(self.data.kinds[i])}, true: {label})"
        frames = clip[0, :, 0].numpy()
        if self._fig is None or self._fig_clip != (i, id(self.data)):
            self._fig = clip_figure(frames, seen.kept, seen.rollout, self.data.masks[i].numpy(), title)
            self._fig_clip = (i, id(self.data))
        else:  # same clip, another draw: only the kept patches, the rollout and the titles change
            update_clip_figure(self._fig, frames, seen.kept, seen.rollout, title)
        self.view_out.outputs = figure_outputs(self._fig)
        self.stats.value = (f"<b>video P(fake)</b> {seen.score:.3f} (no dropout) &middot; this draw: "
                            f"{seen.drawn_score:.3f} &middot; "
                            f"kept {keep[0].shape[1]} of {self.model.frames * self.model.grid**2} patches "
                            f"({len(keep[0][0].unique())} frames) &middot; draw seed {self.seed}")
        self.last_redraw_s = time.perf_counter() - start


def dashboard(model: BagOfPatchesViT | None = None, data: ClipSet | None = None, smoke: bool | None = None
              ) -> StdtDashboard:
    """The STD dashboard. Defaults: the full-setting STDT (shipped with the package; trained on first use if its recipe
    changed; ``smoke``: see :func:`workbench.weights.dashboard_models`) and the embedded test clips (held-out
    identities)."""
    from workbench.stdt import stdt_dashboard_models
    from workbench.weights import dashboard_models

    if model is None:
        with progress_in_page():  # first use trains: its bar must not outlive the training in the page
            model = dashboard_models(lambda s: stdt_dashboard_models(s, which=("STD",))["STD"], smoke)
    if data is None:
        data = load_forgery_clips("test", n_per_identity=1)
    board = StdtDashboard(model, data)
    board.children = (*board.children, stdt_panel(board))
    return with_save_bar(board, "stdt", lambda: board.clip_picker.label)
