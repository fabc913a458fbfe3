"""The compare view: model B's difference maps and the paired test on the page are the library's numbers."""

from __future__ import annotations

import base64
import html
import re

import ipywidgets as W
import numpy as np
import pytest
import torch

from widgets.compare import attach_compare, format_p, signed_rgb
from widgets.export import PLOTLY_MIME, page_report, views, with_save_bar
from widgets.scorecard import ScorecardView
from workbench.evaluation.compare import compare_models
from workbench.explainers import make_explainer
from workbench.models.classifier import SmallCNN


def _models():
    torch.manual_seed(0)
    a = SmallCNN(1, 10, width=4, depth=2).eval()
    torch.manual_seed(1)
    return a, SmallCNN(1, 10, width=4, depth=2).eval()


def _explainers(model):
    return {"saliency": make_explainer("saliency", model), "random": make_explainer("random", model)}


def test_compare_view_shows_the_librarys_p_values_and_difference_maps_and_clears_on_a_new_image():
    model_a, model_b = _models()
    images = torch.rand(10, 1, 12, 12)
    card = ScorecardView(model_a, images, _explainers(model_a), metrics=["Sparseness", "Complexity"], image=2)
    view = attach_compare(card, {"other CNN": lambda: model_b}, _explainers)
    assert view in card.children
    view.n_images.value = 6
    result = view.run()
    assert view.indices == [2, 0, 1, 3, 4, 5]
    table = view.tests_out.outputs[0]["data"][PLOTLY_MIME]["data"][0]
    header, cells = table["header"]["values"], table["cells"]["values"]
    shown_p = cells[header.index("p (Wilcoxon)")]
    expected = compare_models(model_a, model_b, images[view.indices],
                              {n: (lambda m, n=n: _explainers(m)[n]) for n in ("saliency", "random")},
                              ["Sparseness", "Complexity"]).tests
    assert shown_p == [format_p(p) for p in expected["p_value"]]
    assert shown_p == [format_p(p) for p in result.tests["p_value"]]
    maps = view.maps_out.outputs[0]["data"][PLOTLY_MIME]
    assert maps["layout"]["title"]["text"].startswith("saliency: A vs B")
    assert len(maps["data"]) == 4 * 6, "image, A, B and A - B for each of the 6 images"
    saved = dict(views(card))
    assert "paired-tests" in saved and "difference-maps" in saved, "the Save bar finds the comparison's figures"
    view.which.value = "random"
    view.run()
    assert view.explainer_pick.value == "random" and set(view.result.maps) == {"random"}
    assert view.maps_out.outputs[0]["data"][PLOTLY_MIME]["layout"]["title"]["text"].startswith("random: A vs B")
    card.set_image(4)
    assert view.result is None and view.tests_out.outputs == () and view.maps_out.outputs == ()


def _first_table(text: str) -> dict[str, list[str]]:
    """The first HTML table in ``text`` as {header: cells} (unescaped)."""
    part = text[text.index("<table"):text.index("</table>")]
    header = [html.unescape(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", part, re.S)]
    rows = [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
            for r in re.findall(r"<tr[^>]*>(.*?)</tr>", part, re.S)]
    rows = [r for r in rows if r]
    return {h: [r[k] for r in rows] for k, h in enumerate(header)}


def _report_images(text: str) -> list[np.ndarray]:
    """The inline PNGs of a report, decoded to RGB arrays."""
    import cv2

    found = re.findall(r"<img src='data:image/png;base64,([^']+)'", text)
    return [cv2.imdecode(np.frombuffer(base64.b64decode(b), np.uint8), cv2.IMREAD_COLOR)[..., ::-1] for b in found]


def test_the_save_bar_report_holds_the_comparison_table_and_difference_maps_once_compared():
    model_a, model_b = _models()
    model_b.workbench_meta = {"name": "model_b_smoke", "config": {"recipe": "b", "epochs": 1}, "test_acc": 0.5}
    images = torch.rand(6, 1, 12, 12)
    card = ScorecardView(model_a, images, _explainers(model_a), metrics=["Sparseness", "Complexity"], image=1)
    view = attach_compare(card, {"other CNN": lambda: model_b}, _explainers)
    board = with_save_bar(W.VBox([card]), "rld", lambda: "#1")
    before = page_report(board, "rld", "#1").to_html()
    assert "Two models side by side" not in before and "data:image/png" not in before, "nothing compared yet"

    view.n_images.value = 3
    view.run()
    text = page_report(board, "rld", "#1").to_html()
    assert "<h3>Two models side by side</h3>" in text and "model_b_smoke" in text, "the comparison and model B"
    table = _first_table(text[text.index("Two models side by side"):])
    expected = compare_models(model_a, model_b, images[[1, 0, 2]],
                              {n: (lambda m, n=n: _explainers(m)[n]) for n in ("saliency", "random")},
                              ["Sparseness", "Complexity"])
    assert list(table["metric"]) == list(expected.tests["metric"])
    assert list(table["p (Wilcoxon)"]) == [format_p(p) for p in expected.tests["p_value"]]
    pictures = _report_images(text)
    assert len(pictures) == 2, "one picture of difference maps per explainer compared"
    for picture, (name, diff) in zip(pictures, expected.maps.items(), strict=True):
        assert picture.shape == (4 * (12 * 6 + 2) - 2, 3 * (12 * 6 + 2) - 2, 3), name
        for i in range(3):  # the A - B row of image i: the library's difference, coloured as the page does
            y0, x0 = 3 * (12 * 6 + 2), i * (12 * 6 + 2)
            shown = picture[y0:y0 + 72:6, x0:x0 + 72:6]
            assert np.abs(shown.astype(int) - signed_rgb(diff.difference[i].numpy(), 2.0)).max() <= 1, (name, i)
    card.set_image(4)
    assert "Two models side by side" not in page_report(board, "rld", "#4").to_html()


def test_the_page_says_when_too_few_images_can_never_differ():
    """The smallest exact two-sided Wilcoxon p of n pairs is 2 / 2**n: the page says so up to 5 images, and that
    floor is what scipy gives when every difference has one sign."""
    from scipy.stats import wilcoxon

    from widgets.compare import small_sample_note

    for n in range(2, 8):
        floor = wilcoxon(list(range(1, n + 1)), alternative="two-sided").pvalue
        assert floor == pytest.approx(2 / 2**n)
        assert (small_sample_note(n) != "") == (floor >= 0.05), n
    assert "cannot go below p = 0.5" in small_sample_note(2)


def test_a_scorecard_of_one_image_is_refused_with_what_a_comparison_needs():
    """A paired test needs two images: a one-image scorecard gets a clear error, not a slider whose max < min."""
    model_a, model_b = _models()
    card = ScorecardView(model_a, torch.rand(1, 1, 12, 12), _explainers(model_a), metrics=["Sparseness"], image=0)
    with pytest.raises(ValueError, match="at least 2 images.*has 1"):
        attach_compare(card, {"other CNN": lambda: model_b}, _explainers)
