"""The dashboard gallery: one card per method, linking the Voilà dashboard notebook next to the gallery."""

from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as W

DASHBOARDS: tuple[tuple[str, str, str], ...] = (
    ("relabel", "Re-label distillation",
     "Explain a classifier's prediction with a linear student fitted on VAE-perturbed, re-labelled samples."),
    ("whitening", "Feature whitening",
     "Detect face manipulation with decorrelated, constrained channels, and look inside the detector."),
    ("stdt", "Spatiotemporal dropout transformer",
     "Detect deepfake videos from a bag of face patches with patch-level dropout."),
    ("horkd", "Hybrid-order relational KD",
     "Recognise low-resolution images with a student taught by a high-resolution teacher through an assistant."),
    ("tracking", "Channel distillation",
     "Track an object with a correlation-filter tracker that keeps only the informative deep channels."),
    ("results", "Batch results",
     "Browse the explanations of a whole data set (python -m workbench explain): filter, page, compare maps."),
)

_STYLE = """<style>
.wb-gallery {display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 14px;
  font-family: sans-serif;}
.wb-gallery-card {border: 1px solid #ccd; border-radius: 8px; padding: 12px 14px; background: #fafbff;}
.wb-gallery-card h3 {margin: 0 0 6px 0; font-size: 16px;}
.wb-gallery-card p {margin: 0 0 8px 0; font-size: 13px; color: #333;}
.wb-gallery-card a {color: #1a5fb4; text-decoration: underline; font-size: 14px;}
.wb-gallery-card.wb-soon {background: #f3f3f3; color: #777;}
.wb-gallery-card .wb-soon-label {font-size: 12px; font-style: italic; color: #888;}
</style>"""


def gallery_html(folder: str | Path) -> str:
    """The gallery's HTML: a card per method; a card links ``./<name>.ipynb`` only if that file is in ``folder``."""
    folder = Path(folder)
    cards = []
    for name, title, description in DASHBOARDS:
        text = f"<h3>{html.escape(title)}</h3><p>{html.escape(description)}</p>"
        if (folder / f"{name}.ipynb").is_file():
            cards.append(f'<div class="wb-gallery-card" data-dashboard="{name}">{text}'
                         f'<a href="./{name}.ipynb">Open the {html.escape(title)} dashboard</a></div>')
        else:
            cards.append(f'<div class="wb-gallery-card wb-soon" data-dashboard="{name}">{text}'
                         '<span class="wb-soon-label">coming soon</span></div>')
    return _STYLE + '<div class="wb-gallery">' + "".join(cards) + "</div>"


def gallery(folder: str | Path = ".") -> W.HTML:
    """The gallery widget. ``folder``: where the dashboard notebooks live (the gallery notebook's own folder, which
    is the kernel's working directory under Voilà). Links are relative, so they work in Voilà's tree mode
    (``/voila/render/index.ipynb`` -> ``/voila/render/relabel.ipynb``) and in JupyterLab."""
    widget = W.HTML(gallery_html(folder))
    widget.add_class("wb-gallery-index")
    return widget
