"""One self-contained HTML file of figures, images, tables and provenance: a result that travels without a server.

explainerdashboard exports a dashboard to static HTML; here the same is a small builder the Save bar, a notebook and
``python -m workbench report`` share. Plotly figures stay interactive: plotly.js is inlined once (read from the
installed ``plotly`` package's own bundle, never a CDN), each figure is its JSON and one ``Plotly.newPlot`` call.
Images are inline ``data:`` URIs. Nothing in the file asks for anything outside it.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is imported where a table is built: every dashboard imports this module (Save bar)
    import pandas as pd

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1200px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}h3{font-size:15px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f4f4f4}.wb-report-figure{margin:8px 0}figure{display:inline-block;margin:6px 10px 6px 0}
figcaption{font-size:12px;color:#555}img{image-rendering:pixelated}.wb-report-note{color:#555;font-size:13px}
"""


def plotly_js() -> str:
    """The installed plotly package's minified plotly.js, read as a file (plotly itself is not imported)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("an HTML report with figures needs the plotly package (pip install plotly): its bundled "
                          "plotly.min.js is inlined so that the file opens without a server")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: plotly.min.js not found in the installed plotly package")
    return path.read_text(encoding="utf-8")


def _figure_dict(figure: Any) -> dict:
    """A plotly figure (``go.Figure``, anything with ``to_plotly_json``/``to_dict``, or its dict) as a dict."""
    for method in ("to_plotly_json", "to_dict"):
        if hasattr(figure, method):
            figure = getattr(figure, method)()
            break
    if not isinstance(figure, Mapping) or "data" not in figure:
        raise ValueError(f"add_figure expects a plotly figure or its dict with a 'data' list, got {type(figure)}")
    return dict(figure)


def png_data_uri(image: bytes | np.ndarray) -> str:
    """``data:image/png;base64,...`` of PNG bytes or of an (H, W) / (H, W, 3) RGB array (uint8, or floats in
    [0, 1])."""
    if isinstance(image, bytes | bytearray | memoryview):
        data = bytes(image)
        if not data.startswith(b"\x89PNG"):
            raise ValueError("add_image expects PNG bytes (they start with the PNG signature) or an image array")
    else:
        data = encode_png(np.asarray(image))
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an (H, W) gray or (H, W, 3) RGB array: uint8, or floats in [0, 1]."""
    import cv2

    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3) or image.size == 0:
        raise ValueError(f"an image must be an (H, W) or (H, W, 3) array, got shape {image.shape}")
    if image.dtype != np.uint8:
        if not np.issubdtype(image.dtype, np.floating) or not np.isfinite(image).all() or image.min() < 0 \
                or image.max() > 1:
            raise ValueError(f"an image array must be uint8 or finite floats in [0, 1], got {image.dtype}")
        image = (image * 255).round().astype(np.uint8)
    ok, buf = cv2.imencode(".png", image[..., ::-1] if image.ndim == 3 else image)
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return buf.tobytes()


def _script_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` or ``<!--`` can end it early)."""
    return json.dumps(value, separators=(",", ":"), default=_json_default).replace("<", "\\u003c")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"metrics": {"acc": 0.9}}`` -> ``{"metrics.acc": 0.9}`` (the rows of a provenance table)."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def weights_record(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The record of a cached model's weights from its ``workbench_meta``: the shipped sidecar
    (``workbench/weights/<name>-<hash>.json``: recipe, hash, reached metrics, where trained) when the package ships
    the weights of that recipe, else what the cache stored with them (the recipe's hash, the scalar metrics)."""
    from workbench.cache import config_key, shipped_path

    record = dict(meta)
    if "name" in meta and "config" in meta:
        key = config_key(meta["config"])
        shipped = shipped_path(str(meta["name"]), key)
        if shipped is not None and shipped.with_suffix(".json").is_file():
            return {**record, **json.loads(shipped.with_suffix(".json").read_text(encoding="utf-8"))}
        record.setdefault("recipe_hash", key)
        record.setdefault("source", "trained into the cache (no shipped weights of this recipe)")
    scalars = {k: v for k, v in meta.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if scalars:
        record.setdefault("metrics", scalars)
    return record


def model_provenance(model: Any) -> dict[str, Any]:
    """What a report says of a cached or shipped model (``model.workbench_meta``, or the mapping itself): name,
    recipe hash, reached metrics, where and when trained, read through :func:`weights_record`; its config left
    out."""
    meta = getattr(model, "workbench_meta", None) if not isinstance(model, Mapping) else model
    if not meta:
        return {"model": type(model).__name__, "provenance": "not a workbench-trained model (no workbench_meta)"}
    meta = weights_record(meta)
    keys = ("name", "setting", "recipe_hash", "metrics", "trained_on", "date", "source", "torch", "recipe")
    return {k: meta[k] for k in keys if k in meta}


class HtmlReport:
    """Sections appended in order, then :meth:`to_html` (one string) or :meth:`write` (one file, atomically)."""

    def __init__(self, title: str) -> None:
        self.title = str(title)
        self._parts: list[str] = []
        self._figures = 0

    @property
    def n_figures(self) -> int:
        """How many plotly figures the report holds (each becomes one interactive plot)."""
        return self._figures

    def add_heading(self, text: str, level: int = 2) -> HtmlReport:
        """A section heading (``level`` 1-4)."""
        if level not in (1, 2, 3, 4):
            raise ValueError(f"heading level must be 1-4, got {level}")
        self._parts.append(f"<h{level}>{html.escape(str(text))}</h{level}>")
        return self

    def add_text(self, text: str, note: bool = False) -> HtmlReport:
        """A paragraph of plain text (escaped); ``note``: in grey."""
        cls = " class='wb-report-note'" if note else ""
        self._parts.append(f"<p{cls}>{html.escape(str(text))}</p>")
        return self

    def add_html(self, fragment: str) -> HtmlReport:
        """A fragment of the caller's own HTML (e.g. a dashboard's stats panel), kept as it is."""
        self._parts.append(f"<div class='wb-report-html'>{fragment}</div>")
        return self

    def add_figure(self, figure: Any, title: str | None = None, name: str | None = None) -> HtmlReport:
        """An interactive plotly figure; ``name`` is the file name its camera button saves a PNG under."""
        fig = _figure_dict(figure)
        if title:
            self.add_heading(title, 3)
        self._figures += 1
        div = f"wb-figure-{self._figures}"
        config = {"responsive": True, "displaylogo": False, "toImageButtonOptions": {"filename": name or div}}
        self._parts.append(
            f"<div class='wb-report-figure' id='{div}'></div><script>Plotly.newPlot({_script_json(div)}, "
            f"{_script_json(fig.get('data', []))}, {_script_json(fig.get('layout', {}))}, {_script_json(config)});"
            "</script>")
        return self

    def add_image(self, image: bytes | np.ndarray, caption: str = "", width: int | None = None) -> HtmlReport:
        """An image inline (PNG bytes or an array, see :func:`png_data_uri`), with a caption."""
        size = f" width='{int(width)}'" if width else ""
        self._parts.append(f"<figure><img src='{png_data_uri(image)}'{size} alt='{html.escape(caption)}'>"
                           f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        return self

    def add_table(self, table: pd.DataFrame, float_format: str = "{:.3f}") -> HtmlReport:
        """A table (its cells escaped), numbers with ``float_format``."""
        import pandas as pd

        if not isinstance(table, pd.DataFrame):
            raise ValueError(f"add_table expects a pandas DataFrame, got {type(table).__name__}")
        self._parts.append(table.to_html(index=False, border=0, float_format=float_format.format, na_rep="–",
                                         classes="wb-report-table"))
        return self

    def add_provenance(self, provenance: Mapping[str, Any], title: str = "Model") -> HtmlReport:
        """Settings or a model's provenance (see :func:`model_provenance`) as a two-column table."""
        rows = [{"": key, "value": "–" if value is None else str(value)} for key, value in flatten(provenance).items()]
        self.add_heading(title, 3)
        import pandas as pd

        return self.add_table(pd.DataFrame(rows, columns=["", "value"]))

    def to_html(self) -> str:
        """The whole file: plotly.js inlined once (only when there are figures), the sections in order."""
        script = f"<script>{plotly_js()}</script>" if self._figures else ""
        return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style>{script}</head><body>"
                f"<h1>{html.escape(self.title)}</h1>\n" + "\n".join(self._parts) + "\n</body></html>\n")

    def write(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the file atomically (temp file + rename); an existing file is refused unless ``overwrite``."""
        path = Path(path).expanduser()
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder; give a file name for the report")
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; give another file name (nothing is overwritten)")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"{path.parent}: no such folder for the report")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.to_html())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # a report is a document to share, not mkstemp's private 0600
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
