"""What an image view shows before it has something to show, and training progress that leaves no trace.

* :func:`placeholder_png`: an ``ipywidgets.Image`` whose value is empty bytes draws the browser's broken-image icon;
  views that fill only after a button (relabel's samples, tracking's response maps) start with this light panel
  saying what will appear there.
* :func:`progress_in_page`: ``tqdm.auto``'s notebook bar (used by :func:`workbench.train.fit`) closes its widget
  when training ends (``leave=False``); in Voilà the cell output then still points at the closed widget and the page
  shows "Error displaying widget: model not found" above the dashboard. Inside this context the bar is drawn in an
  ``Output`` that is emptied and hidden afterwards, so the page keeps only the dashboard.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import ipywidgets as W
from PIL import Image as PILImage
from PIL import ImageDraw
from PIL.PngImagePlugin import PngInfo

PANEL_GREY = 244
MARK = b"workbench placeholder"
TEXT_GREY = 120


def placeholder_png(width: int = 360, height: int = 48, text: str = "") -> bytes:
    """A light grey ``width`` x ``height`` PNG with ``text`` (one short line) in its middle."""
    if width < 1 or height < 1:
        raise ValueError(f"placeholder size must be positive, got {width}x{height}")
    image = PILImage.new("L", (int(width), int(height)), PANEL_GREY)
    if text:
        draw = ImageDraw.Draw(image)
        left, top, right, bottom = draw.textbbox((0, 0), text)
        draw.text(((width - (right - left)) / 2, (height - (bottom - top)) / 2), text, fill=TEXT_GREY)
    info = PngInfo()
    info.add_text("Comment", MARK.decode())
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def is_placeholder(png: bytes | memoryview) -> bool:
    """Whether ``png`` is a :func:`placeholder_png` (nothing a user would want to save)."""
    return MARK in bytes(png[:256])


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


@contextlib.contextmanager
def progress_in_page() -> Iterator[None]:
    """Show the progress bars of the block (model training) in the page while it runs, and nothing afterwards."""
    if not _in_kernel():
        yield
        return
    from IPython.display import display

    area = W.Output()
    display(area)
    try:
        with area:
            yield
    finally:
        area.clear_output()
        area.outputs = ()
        area.layout.display = "none"
