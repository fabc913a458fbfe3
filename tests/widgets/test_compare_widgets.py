"""The compare view: model B's difference maps and the paired test on the page are the library's numbers."""

from __future__ import annotations

import torch

from widgets.compare import attach_compare, format_p
from widgets.export import PLOTLY_MIME, views
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
