"""The relabel dashboard's Save-bar report names its models' provenance (issue 30 item 3): the classifier's and the
VAE's recipe hash, reached metrics and where they were trained are the shipped weights' own sidecar values."""

from __future__ import annotations

import html
import json
import re

import pytest

from widgets.export import SaveBar, page_report
from widgets.relabel import dashboard
from workbench.cache import SHIPPED_DIR, shipping_enabled


def _table_after(text: str, heading: str) -> dict[str, str]:
    """The two-column provenance table under ``<h3>heading</h3>`` as {row name: value}."""
    part = text[text.index(f"<h3>{heading}</h3>"):]
    part = part[:part.index("</table>")]
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*</tr>", part, re.S)
    return {html.unescape(k): html.unescape(v) for k, v in rows}


def _sidecar(name: str) -> dict:
    found = sorted(SHIPPED_DIR.glob(f"{name}-*.json"))
    assert len(found) == 1, f"expected one shipped {name} sidecar, found {found}"
    return json.loads(found[0].read_text())


@pytest.mark.skipif(not shipping_enabled(), reason="WORKBENCH_SHIPPED=0: the dashboard trains its own models")
def test_the_report_names_the_shipped_classifier_and_vae_with_their_sidecar_values():
    board = dashboard(baselines=("saliency",))
    bar = next(c for c in board.children if isinstance(c, SaveBar))
    text = page_report(board, bar.method, bar.image()).to_html()
    for attribute, name in (("classifier", "digits_classifier"), ("vae", "digits_vae")):
        shipped, shown = _sidecar(name), _table_after(text, f"Model: {attribute}")
        assert shown["recipe_hash"] == shipped["recipe_hash"] and shown["name"] == name
        assert shown["trained_on"] == shipped["trained_on"] and shown["date"] == shipped["date"]
        for metric, value in shipped["metrics"].items():
            assert shown[f"metrics.{metric}"] == str(value), f"{name}: {metric}"
        for key, value in shipped["recipe"].items():
            assert shown[f"recipe.{key}"] == str(value), f"{name}: recipe {key}"
