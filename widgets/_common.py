"""What every view shares: a plotly figure as an ``Output``'s outputs, PNG encoding, and the thread limits.

Views only draw: computations live in :mod:`workbench`; this module holds the few drawing helpers that more than
one dashboard needs, so each dashboard module is about its own method only.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
from collections.abc import Iterator

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from PIL import Image as PILImage

from workbench.runtime import one_thread, single_threaded

__all__ = ["busy", "figure_outputs", "image_trace", "png_bytes", "one_thread", "single_threaded"]


def figure_outputs(fig: go.Figure) -> tuple[dict, ...]:
    """``Output.outputs`` showing ``fig`` with plotly's mime renderer: what ``fig.show()`` inside ``with out:`` does in
    a kernel, but also outside one, so the views can be driven and tested in-process.

    The bundle is built as plotly's ``plotly_mimetype`` renderer builds it (same JSON), without ``plotly.io``'s
    renderer registry: importing that registry pulls nbformat and jsonschema, whose URI grammar alone takes 2-4 s to
    compile, on every dashboard's first render."""
    figure = json.loads(pio.to_json(fig.to_dict(), validate=False, remove_uids=False))
    return ({"output_type": "display_data", "data": {"application/vnd.plotly.v1+json": figure}, "metadata": {}},)


def png_bytes(image: np.ndarray, scale: int = 1) -> bytes:
    """PNG of an (H, W) gray or (H, W, 3) RGB uint8 array, up-scaled ``scale`` times with nearest neighbours."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"png_bytes expects an (H, W) or (H, W, 3) uint8 array, got {image.dtype} {image.shape}")
    if scale > 1:
        image = image.repeat(scale, 0).repeat(scale, 1)
    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def image_trace(image: np.ndarray, **kwargs: object) -> go.Image:
    """A plotly image trace of an (H, W, 3) uint8 array, sent as a PNG (``source``) rather than as ``z``.

    Plotly.js paints a ``z`` image one ``fillRect`` per pixel: a 200 x 600 mosaic took about 5 s of a first render's
    browser time on a 2-core CPU (issue 29), and its JSON is ~20x the PNG's size. A ``source`` image is drawn as is,
    with the same axes, pixel grid and hover."""
    return go.Image(source="data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii"), **kwargs)


@contextlib.contextmanager
def busy(button: object, progress: object, stats: object, what: str) -> Iterator[None]:
    """Behind a button: disable it and show ``progress`` while the block runs; if it fails, say so in ``stats``
    ("<what> failed: ...") and re-raise; always re-enable the button and hide the progress bar."""
    button.disabled = True
    progress.layout.visibility = "visible"
    try:
        yield
    except Exception as exc:
        stats.value = f"<span style='color:#b00'>{html.escape(what)} failed: {html.escape(str(exc))}</span>"
        raise
    finally:
        button.disabled = False
        progress.layout.visibility = "hidden"
