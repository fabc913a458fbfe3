"""Save what a view shows: its images (PNG), its plotly figures (SVG and PNG where ``kaleido`` is installed, always
the figure's own JSON) and the arrays behind them (NPY: each heat map's values, each curve's x and y).

:class:`SaveBar` walks a dashboard's widgets, so every view of every dashboard is covered without each one listing
what it draws: an ``ipywidgets.Image`` holding a PNG is written as it is, an ``Output`` showing a plotly figure is
written as the figure plus its traces' arrays. Files are named ``<image>_<method>_<view>.<ext>`` after the image the
dashboard shows and its method; an existing file is never overwritten (a ``-2``, ``-3`` ... is added instead).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path

import ipywidgets as W
import numpy as np

from widgets.placeholder import is_placeholder

PLOTLY_MIME = "application/vnd.plotly.v1+json"


def safe_name(*parts: str) -> str:
    """A file-name stem from ``parts`` (letters, digits, ``-`` and ``.`` kept; the rest become ``_``)."""
    text = "_".join(p for p in (str(part).strip() for part in parts) if p)
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_.") or "view"


def free_path(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/stem.suffix``, or ``stem-2``, ``stem-3`` ... when taken: nothing is overwritten."""
    path, k = folder / f"{stem}{suffix}", 1
    while path.exists():
        k += 1
        path = folder / f"{stem}-{k}{suffix}"
    return path


def _write(folder: Path, stem: str, suffix: str, data: bytes) -> Path:
    path = free_path(folder, stem, suffix)
    with open(path, "xb") as handle:  # exclusive: a file appearing meanwhile is not overwritten either
        handle.write(data)
    return path


def trace_arrays(figure: dict) -> dict[str, np.ndarray]:
    """The numbers behind a plotly figure (as a dict): ``z`` of every heat map, ``x``/``y`` of every curve."""
    arrays: dict[str, np.ndarray] = {}
    for k, trace in enumerate(figure.get("data", [])):
        label = safe_name(str(trace.get("name") or trace.get("type", "trace")), str(k))
        for key in ("z", "x", "y"):
            if key in trace and trace[key] is not None and not (key != "z" and "z" in trace):
                try:
                    arrays[f"{label}_{key}"] = np.asarray(_decoded(trace[key]), dtype=float)
                except (TypeError, ValueError):
                    continue  # categorical axes (names) are not numbers: the figure's JSON keeps them
    return arrays


def _decoded(value: object) -> object:
    """A trace's values, decoding plotly's typed-array form ``{"dtype", "bdata", "shape"}``."""
    if not (isinstance(value, dict) and "bdata" in value):
        return value
    import base64

    shape = value.get("shape")
    dims = [int(s) for s in (shape if isinstance(shape, list) else str(shape or "-1").split(","))]
    return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(dims)


def save_figure(folder: Path, stem: str, figure: dict) -> list[Path]:
    """The figure's JSON, its SVG and PNG when ``kaleido`` can render them, and its arrays as NPY."""
    written = [_write(folder, stem, ".json", json.dumps(figure).encode())]
    try:
        import plotly.io as pio

        fig = pio.from_json(json.dumps(figure))
        for fmt in ("svg", "png"):
            written.append(_write(folder, stem, f".{fmt}", fig.to_image(format=fmt)))
    except (ImportError, ValueError, RuntimeError):
        pass  # no kaleido: the JSON (plotly.io.read_json) and the figure's camera button still give a PNG
    for name, array in trace_arrays(figure).items():
        path = free_path(folder, f"{stem}_{name}", ".npy")
        with open(path, "xb") as handle:
            np.save(handle, array)
        written.append(path)
    return written


def views(widget: W.Widget, prefix: str = "") -> list[tuple[str, W.Widget]]:
    """Every Image (with a value) and Output (with a plotly figure) under ``widget``, named by CSS class or place."""
    found: list[tuple[str, W.Widget]] = []
    for k, child in enumerate(getattr(widget, "children", ())):
        name = next((c.split("-", 2)[-1] for c in getattr(child, "_dom_classes", ()) if c.startswith("wb-")),
                    f"{prefix}{k}")
        if isinstance(child, W.Image) and len(child.value) > 0 and not is_placeholder(child.value):
            found.append((name, child))
        elif isinstance(child, W.Output) and any(PLOTLY_MIME in o.get("data", {}) for o in child.outputs):
            found.append((name, child))
        else:
            found += views(child, f"{prefix}{k}.")
    return found


def save_views(widget: W.Widget, folder: str | Path, image: str, method: str) -> list[Path]:
    """Write every view under ``widget`` into ``folder`` (created), named after ``image`` and ``method``."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, view in views(widget):
        stem = safe_name(image, method, name)
        if isinstance(view, W.Image):
            written.append(_write(folder, stem, f".{view.format or 'png'}", bytes(view.value)))
        else:
            for output in view.outputs:
                if PLOTLY_MIME in output.get("data", {}):
                    written += save_figure(folder, stem, output["data"][PLOTLY_MIME])
    return written


class SaveBar(W.HBox):
    """``[folder] [Save views]`` and a message: saves every view of ``board`` (see :func:`save_views`)."""

    def __init__(self, board: W.Widget, method: str, image: Callable[[], str], folder: str = "~/workbench-exports"
                 ) -> None:
        self.board, self.method, self.image = board, method, image
        self.folder = W.Text(value=folder, description="save to", layout=W.Layout(width="360px"))
        self.save_button = W.Button(description="Save views", icon="download", layout=W.Layout(width="120px"))
        self.message = W.HTML()
        for widget, part in ((self.folder, "folder"), (self.save_button, "button"), (self.message, "message")):
            widget.add_class(f"wb-save-{part}")
        self.save_button.on_click(lambda _b: self.save())
        super().__init__([self.folder, self.save_button, self.message], layout=W.Layout(align_items="center"))
        self.add_class("wb-save")

    def save(self) -> list[Path]:
        """Save now; the message says what was written (or why nothing could be)."""
        try:
            written = save_views(self.board, self.folder.value.strip() or ".", self.image(), self.method)
        except OSError as exc:
            self.message.value = f"<span style='color:#b00'>Cannot save: {html.escape(str(exc))}</span>"
            return []
        kinds = sorted({p.suffix for p in written})
        self.message.value = (f"saved {len(written)} files ({', '.join(kinds) or 'nothing to save yet'}) in "
                              f"{html.escape(str(Path(self.folder.value).expanduser().resolve()))}")
        return written


def with_save_bar(board: W.Box, method: str, image: Callable[[], str] | None = None) -> W.Box:
    """``board`` with a :class:`SaveBar` appended; ``image`` names the shown image (default: the first dropdown's
    label)."""
    board.children = (*board.children, SaveBar(board, method, image or (lambda: _first_dropdown_label(board))))
    return board


def _first_dropdown_label(widget: W.Widget) -> str:
    for child in getattr(widget, "children", ()):
        if isinstance(child, W.Dropdown):
            return str(child.label or child.value)
        label = _first_dropdown_label(child)
        if label:
            return label
    return ""
