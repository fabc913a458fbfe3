"""Save what a page shows, into the user's browser: a zip of its views, one self-contained HTML report, or each
figure as PNG / SVG drawn by plotly.js in the browser itself (no kaleido needed).

:class:`SaveBar` walks a dashboard's widgets, so every view of every dashboard is covered without each one listing
what it draws: an ``ipywidgets.Image`` holding a PNG is saved as it is, an ``Output`` showing a plotly figure as the
figure's JSON plus one NPZ of its traces' arrays (SVG and PNG too where ``kaleido`` is installed). Files are named
``<image>_<method>_<view>.<ext>`` after the image the page shows, its method and the view's CSS class; a second save
gets new names (``-2``, ``-3`` ...) and says so. The files reach the browser as a download (a ``data:`` link that
the page clicks), so a visitor of a served Voilà page gets them too; writing into a folder on the kernel's machine
is offered only where the user owns the kernel (JupyterLab; see :mod:`workbench.access`). The HTML report
(:class:`workbench.report.HtmlReport`) holds the page's figures (interactive), images, texts, settings and the
provenance of its models (``model.workbench_meta``: recipe hash, reached metrics, where trained).
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import ipywidgets as W
import numpy as np

from widgets.placeholder import is_placeholder
from workbench.access import current_policy
from workbench.report import HtmlReport, model_provenance

PLOTLY_MIME = "application/vnd.plotly.v1+json"
KINDS = (("views (.zip)", "zip"), ("report (.html)", "html"), ("figures as PNG", "png"), ("figures as SVG", "svg"))


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


def trace_arrays(figure: dict) -> dict[str, np.ndarray]:
    """The numbers behind a plotly figure (as a dict): ``z`` of every heat map, ``x``/``y`` of every curve, keyed
    ``trace<k>_<axis>`` (the legend names are in the figure's JSON and in :func:`figure_npz`'s ``names``)."""
    arrays: dict[str, np.ndarray] = {}
    for k, trace in enumerate(figure.get("data", [])):
        for key in ("z", "x", "y"):
            if key in trace and trace[key] is not None and not (key != "z" and "z" in trace):
                try:
                    arrays[f"trace{k}_{key}"] = np.asarray(_decoded(trace[key]), dtype=float)
                except (TypeError, ValueError):
                    continue  # categorical axes (names) are not numbers: the figure's JSON keeps them
    return arrays


def _decoded(value: object) -> object:
    """A trace's values, decoding plotly's typed-array form ``{"dtype", "bdata", "shape"}``."""
    if not (isinstance(value, dict) and "bdata" in value):
        return value
    shape = value.get("shape")
    dims = [int(s) for s in (shape if isinstance(shape, list) else str(shape or "-1").split(","))]
    return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(dims)


def figure_npz(figure: dict) -> bytes | None:
    """One NPZ of a figure's arrays (see :func:`trace_arrays`) with ``names``, each trace's legend text; None when
    the figure holds no numbers."""
    arrays = trace_arrays(figure)
    if not arrays:
        return None
    names = np.array([str(t.get("name") or t.get("type", "trace")) for t in figure.get("data", [])])
    buf = io.BytesIO()
    np.savez(buf, names=names, **arrays)
    return buf.getvalue()


def figure_files(stem: str, figure: dict) -> dict[str, bytes]:
    """A figure's files: its JSON (``plotly.io.read_json`` re-opens it), NPZ of its arrays, SVG/PNG with kaleido."""
    files = {f"{stem}.json": json.dumps(figure).encode()}
    npz = figure_npz(figure)
    if npz is not None:
        files[f"{stem}.npz"] = npz
    try:
        import plotly.io as pio

        fig = pio.from_json(json.dumps(figure))
        for fmt in ("svg", "png"):
            files[f"{stem}.{fmt}"] = fig.to_image(format=fmt)
    except (ImportError, ValueError, RuntimeError):
        pass  # no kaleido: the browser draws PNG / SVG itself (SaveBar's "figures as PNG / SVG")
    return files


def views(widget: W.Widget, prefix: str = "") -> list[tuple[str, W.Widget]]:
    """Every Image (with a value) and Output (with a plotly figure) under ``widget``, named by CSS class or place."""
    found: list[tuple[str, W.Widget]] = []
    for k, child in enumerate(getattr(widget, "children", ())):
        name = next((c.split("-", 2)[-1] for c in _css(child)), f"{prefix}{k}")
        if isinstance(child, W.Image) and len(child.value) > 0 and not is_placeholder(child.value):
            found.append((name, child))
        elif isinstance(child, W.Output) and _figures(child):
            found.append((name, child))
        elif not isinstance(child, SaveBar):
            found += views(child, f"{prefix}{k}.")
    return found


def _css(widget: W.Widget) -> list[str]:
    return [c for c in getattr(widget, "_dom_classes", ()) if c.startswith("wb-")]


def _figures(output: W.Output) -> list[dict]:
    return [o["data"][PLOTLY_MIME] for o in output.outputs if PLOTLY_MIME in o.get("data", {})]


def view_files(widget: W.Widget, image: str, method: str) -> dict[str, bytes]:
    """Every view under ``widget`` as ``{file name: bytes}``, named ``<image>_<method>_<view>.<ext>``."""
    files: dict[str, bytes] = {}
    for name, view in views(widget):
        stem = safe_name(image, method, name)
        if isinstance(view, W.Image):
            files[f"{stem}.{view.format or 'png'}"] = bytes(view.value)
            continue
        figures = _figures(view)
        for k, figure in enumerate(figures, 1):
            files.update(figure_files(stem if len(figures) == 1 else f"{stem}-{k}", figure))
    return files


def save_views(widget: W.Widget, folder: str | Path, image: str, method: str) -> list[Path]:
    """Write every view under ``widget`` into ``folder`` (created), named after ``image`` and ``method``; a taken
    name gets ``-2``, ``-3`` ... (nothing is overwritten)."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return [_write(folder, name, data) for name, data in view_files(widget, image, method).items()]


def _write(folder: Path, name: str, data: bytes) -> Path:
    stem, dot, suffix = name.rpartition(".")
    path = free_path(folder, stem, dot + suffix)
    with open(path, "xb") as handle:  # exclusive: a file appearing meanwhile is not overwritten either
        handle.write(data)
    return path


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """One zip archive of ``files`` (name -> bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


def settings(widget: W.Widget) -> dict[str, str]:
    """The page's controls now (dropdowns by their label, sliders, boxes, texts), named by description or CSS
    class; buttons, uploads and the Save bar are left out."""
    found: dict[str, str] = {}
    for child in getattr(widget, "children", ()):
        if isinstance(child, SaveBar | W.Button | W.FileUpload):
            continue
        if isinstance(child, W.ValueWidget) and not isinstance(child, W.HTML | W.Label | W.Image | W.Valid):
            key = str(getattr(child, "description", "") or next(iter(_css(child)), "") or type(child).__name__)
            value = child.label if isinstance(child, W.Dropdown | W.ToggleButtons | W.RadioButtons) else child.value
            found[key if key not in found else f"{key} ({len(found)})"] = str(value)
        found.update(settings(child))
    return found


def page_models(widget: W.Widget) -> Iterator[tuple[str, object]]:
    """``(attribute, model)`` of every object with ``workbench_meta`` held by ``widget`` or a widget under it (a
    dashboard's classifier, VAE, detector ...), each once."""
    seen: set[int] = set()
    todo = [widget]
    while todo:
        current = todo.pop(0)
        todo += list(getattr(current, "children", ()))
        for name, value in vars(current).items():
            for item in value.values() if isinstance(value, dict) else [value]:
                if getattr(item, "workbench_meta", None) and id(item) not in seen:
                    seen.add(id(item))
                    yield name.strip("_"), item


def page_report(board: W.Widget, method: str, image: str) -> HtmlReport:
    """The HTML report of what ``board`` shows now: settings, models' provenance, then its texts, images and
    figures in page order."""
    report = HtmlReport(f"{method}: {image}" if image else method)
    report.add_provenance(settings(board), "Settings")
    for name, model in page_models(board):
        report.add_provenance(model_provenance(model), f"Model: {name}")
    report.add_heading("What the page shows")
    _add_views(report, board, safe_name(image, method))
    return report


def _add_views(report: HtmlReport, widget: W.Widget, stem: str) -> None:
    for child in getattr(widget, "children", ()):
        css = _css(child)
        view = css[0].split("-", 2)[-1] if css else ""
        if isinstance(child, SaveBar):
            continue
        if callable(getattr(child, "report_section", None)):  # a view that writes its own part of the report
            child.report_section(report)
        elif isinstance(child, W.HTML) and css and child.value.strip():
            report.add_html(child.value)
        elif isinstance(child, W.Image) and child.value and not is_placeholder(child.value) \
                and bytes(child.value[:4]) == b"\x89PNG":
            report.add_image(bytes(child.value), view)
        elif isinstance(child, W.Output) and _figures(child):
            for figure in _figures(child):
                report.add_figure(figure, name=safe_name(stem, view))
        else:
            _add_views(report, child, stem)


def download_html(name: str, data: bytes, mime: str, serial: int) -> str:
    """A ``data:`` link to ``name`` that the page clicks once when drawn, and that the user may click again;
    ``serial`` makes each download a new element."""
    href = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    click = "var a=this.previousElementSibling;this.remove();a.click();"
    return (f"<a class='wb-save-link' data-serial='{serial}' download='{html.escape(name)}' href='{href}'>"
            f"{html.escape(name)}</a><img alt='' style='display:none' src='data:image/png;base64,' "
            f"onerror=\"{click}\">")


def browser_images_html(targets: list[tuple[str, str]], fmt: str, serial: int) -> str:
    """A script (run once when drawn) that has plotly.js in the page save each figure under ``targets``
    (``(CSS class of its view, file stem)``) as ``fmt`` (png / svg), via the figure's own camera button."""
    script = ("var root=this.closest('.wb-save').parentElement;this.remove();"
              f"{json.dumps(targets)}.forEach(function(t){{root.querySelectorAll('.'+t[0]+' .js-plotly-plot')"
              ".forEach(function(gd,k,all){var name=all.length>1?t[1]+'-'+(k+1):t[1];"
              f"gd._context.toImageButtonOptions={{format:'{fmt}',filename:name}};"
              "var b=gd.querySelector('.modebar-btn[data-title^=\"Download\"]');if(b){b.click();}});});")
    return (f"<span data-serial='{serial}'></span><img alt='' style='display:none' src='data:image/png;base64,' "
            f"onerror='{html.escape(script, quote=True)}'>")


class SaveBar(W.HBox):
    """``[what] [Download]`` (+ ``[folder] [Save to folder]`` where the user owns the kernel) and a message naming
    exactly what was downloaded or written."""

    def __init__(self, board: W.Widget, method: str, image: Callable[[], str], folder: str = "~/workbench-exports"
                 ) -> None:
        self.board, self.method, self.image = board, method, image
        self.what = W.Dropdown(options=KINDS, value="zip", layout=W.Layout(width="170px"))
        self.download_button = W.Button(description="Download", icon="download", layout=W.Layout(width="110px"))
        self.folder = W.Text(value=folder, description="or save to", layout=W.Layout(width="320px"))
        self.save_button = W.Button(description="Save to folder", icon="save", layout=W.Layout(width="120px"))
        self.message, self.link = W.HTML(), W.HTML()
        self.downloads = 0
        for widget, part in ((self.what, "what"), (self.download_button, "download"), (self.folder, "folder"),
                             (self.save_button, "button"), (self.message, "message"), (self.link, "link")):
            widget.add_class(f"wb-save-{part}")
        self.download_button.on_click(lambda _b: self.download())
        self.save_button.on_click(lambda _b: self.save())
        served = current_policy().served  # a visitor of a served page writes nothing on the server
        local = [] if served else [self.folder, self.save_button]
        super().__init__([self.what, self.download_button, *local, self.message, self.link],
                         layout=W.Layout(align_items="center", flex_flow="row wrap"))
        self.add_class("wb-save")

    def _names(self) -> tuple[str, str]:
        return str(self.image() or ""), safe_name(self.image() or "", self.method)

    def download(self, kind: str | None = None) -> list[str]:
        """Send ``kind`` (default: the dropdown's) to the browser; returns the file names the browser gets."""
        kind = kind or self.what.value
        image, stem = self._names()
        self.downloads += 1
        suffix = "" if self.downloads == 1 else f"-{self.downloads}"
        if kind in ("png", "svg"):
            targets = [(next(iter(_css(v)), ""), safe_name(stem, name) + suffix) for name, v in views(self.board)
                       if isinstance(v, W.Output) and _css(v)]
            names = [f"{t[1]}.{kind}" for t in targets]
            self.link.value = browser_images_html(targets, kind, self.downloads)
        else:
            if kind == "zip":
                data, mime = zip_bytes(view_files(self.board, image, self.method)), "application/zip"
            else:
                data, mime = page_report(self.board, self.method, image).to_html().encode(), "text/html"
            names = [f"{stem}_{'views' if kind == 'zip' else 'report'}{suffix}.{kind}"]
            self.link.value = download_html(names[0], data, mime, self.downloads)
        again = f" (download {self.downloads}: new names)" if self.downloads > 1 else ""
        self.message.value = (f"downloading {len(names)} file{'s' * (len(names) != 1)}{again}: "
                              f"{html.escape(', '.join(names)) or 'no figure on the page yet'} "
                              "(to your browser's download folder)")
        return names

    def save(self) -> list[Path]:
        """Write the views and the HTML report into the folder (on the kernel's machine); the message names them."""
        image, stem = self._names()
        try:
            written = save_views(self.board, self.folder.value.strip() or ".", image, self.method)
            written.append(_write(Path(self.folder.value.strip() or ".").expanduser(), f"{stem}_report.html",
                                  page_report(self.board, self.method, image).to_html().encode()))
        except OSError as exc:
            self.message.value = f"<span style='color:#b00'>Cannot save: {html.escape(str(exc))}</span>"
            return []
        folder = html.escape(str(Path(self.folder.value).expanduser().resolve()))
        self.message.value = (f"saved {len(written)} files in {folder}: "
                              f"{html.escape(', '.join(p.name for p in written))}")
        return written


def with_save_bar(board: W.Box, method: str, image: Callable[[], str] | None = None) -> W.Box:
    """``board`` with a :class:`SaveBar` appended; ``image`` names the shown image (default: the first dropdown's
    label)."""
    board.children = (*board.children, SaveBar(board, method, image or (lambda: _first_dropdown_label(board))))
    return board


def _first_dropdown_label(widget: W.Widget) -> str:
    for child in getattr(widget, "children", ()):
        if isinstance(child, SaveBar):
            continue
        if isinstance(child, W.Dropdown):
            return str(child.label or child.value)
        label = _first_dropdown_label(child)
        if label:
            return label
    return ""
