"""Browser test of the relabel dashboard's Compare-with view (issue 30 item 2): pick model B, compare on the fewest
images the view allows, and check what the page claims against :func:`workbench.evaluation.compare.compare_models`
run here on the same images: every p-value and mean difference of the paired-test table, and the per-image
difference maps (image, A, B, A - B for each image, titled with the library's rank correlation)."""

from __future__ import annotations

import math
import re
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = pytest.mark.browser
RENDER_TIMEOUT = 300  # a cold cache trains the default models in the kernel first
EXPLAINER = "saliency"  # the fastest of the dashboard's explainers: the comparison takes seconds
TABLE_JS = "return document.querySelector('.wb-compare-paired-tests .js-plotly-plot').data[0]"
MAPS_JS = ("var gd=document.querySelector('.wb-compare-difference-maps .js-plotly-plot');"
           "return [gd.data.length, gd.layout.annotations.map(a => a.text), "
           "gd.querySelectorAll('.hm image, .heatmaplayer image').length]")


@pytest.fixture(scope="module")
def compare_models_ready(browser_available, workbench_cache):
    """The dashboard's models and model B in the shared cache, so the page opens and compares in seconds."""
    from workbench.models.pretrained import digits_classifier, digits_vae

    digits_classifier(progress=False)
    digits_vae(progress=False)
    digits_classifier(smoke=True, progress=False)


def _close(shown: str, expected: float) -> bool:
    """A number printed with 3 significant digits is the library's number (up to that rounding)."""
    return math.isclose(float(shown), expected, rel_tol=6e-3, abs_tol=1e-9)


def _library_comparison(indices: list[int]):
    from widgets.compare import comparable_models
    from workbench.data import load_digits
    from workbench.evaluation import cheap_metrics
    from workbench.evaluation.compare import compare_models
    from workbench.explainers import baseline_kwargs, make_explainer
    from workbench.models.pretrained import DIGITS_SIZE, digits_classifier

    images = load_digits(DIGITS_SIZE, "test").images[indices]
    model_b = next(iter(comparable_models("digits").values()))()
    factory = {EXPLAINER: lambda m: make_explainer(EXPLAINER, m, **baseline_kwargs(EXPLAINER, 1000))}
    return compare_models(digits_classifier(progress=False), model_b, images, factory,
                          cheap_metrics(tuple(images.shape[1:])))


def test_compare_view_shows_the_librarys_paired_tests_and_difference_maps(compare_models_ready, driver, voila_url,
                                                                         open_dashboard, screenshot, page_errors):
    open_dashboard(driver, voila_url, "relabel.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-compare-run")
    Select(driver.find_element(By.CSS_SELECTOR, ".wb-compare-which select")).select_by_visible_text(EXPLAINER)
    handle = driver.find_element(By.CSS_SELECTOR, ".wb-compare-images .noUi-handle")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", handle)
    handle.click()
    for _ in range(10):  # down to the slider's minimum: the cheapest comparison the view allows
        handle.send_keys(Keys.ARROW_LEFT)
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.CSS_SELECTOR, ".wb-compare-images .widget-readout").text.strip() == "2")
    time.sleep(1.0)  # the slider syncs its last key press to the kernel on release: let it land before Compare
    driver.find_element(By.CSS_SELECTOR, ".wb-compare-run").click()
    WebDriverWait(driver, 300, poll_frequency=0.5).until(
        lambda d: page_errors(d) or (d.find_elements(By.CSS_SELECTOR, ".wb-compare-paired-tests .plot-container")
                                     and d.find_elements(By.CSS_SELECTOR,
                                                         ".wb-compare-difference-maps .plot-container")))
    assert not page_errors(driver)
    status = driver.find_element(By.CSS_SELECTOR, ".wb-compare-status").text
    found = re.search(r"· (\d+) images \(([#\d, ]+)\)", status)
    assert found, status
    indices = [int(v) for v in re.findall(r"#(\d+)", found.group(2))]
    assert indices[0] == 0 and len(indices) == int(found.group(1)) <= 3, f"not the fewest images: {status}"
    n = int(found.group(1))
    assert ("cannot go below p = " in status) == (n <= 5), f"the small-sample note is wrong for {n} images: {status}"

    expected = _library_comparison(indices)
    table = driver.execute_script(TABLE_JS)
    header, cells = table["header"]["values"], table["cells"]["values"]
    column = {name: cells[k] for k, name in enumerate(header)}
    tests = expected.tests
    assert column["explainer"] == [EXPLAINER] * len(tests) and column["metric"] == list(tests["metric"])
    shown_text = driver.find_element(By.CSS_SELECTOR, ".wb-compare-paired-tests").text
    for k, row in enumerate(tests.itertuples()):
        p, diff = column["p (Wilcoxon)"][k], column["A − B"][k]
        assert (p == "n/a") if row.p_value != row.p_value else _close(p, row.p_value), f"{row.metric}: p {p}"
        assert _close(diff, row.mean_difference), f"{row.metric}: A - B {diff} vs {row.mean_difference}"
        if k == 0:  # plotly draws the rows that fit the table's height: the first one at least
            assert p in shown_text and diff in shown_text, f"{row.metric}: the table does not draw {p} / {diff}"

    traces, titles, drawn = driver.execute_script(MAPS_JS)
    similarity = expected.maps[EXPLAINER].similarity
    n = len(indices)
    assert traces == 4 * n and drawn == 4 * n, f"image, A, B and A - B for each of the {n} images, drawn"
    for i, rho in zip(indices, similarity.tolist(), strict=True):
        title = next(t for t in titles if t.startswith(f"#{i} ρ "))
        assert abs(float(title.split("ρ ")[1]) - rho) <= 0.006, f"image #{i}: {title} vs the library's ρ {rho:.3f}"
    assert "A vs B" in driver.find_element(By.CSS_SELECTOR, ".wb-compare-difference-maps").text
    print(f"compare status: {status}; screenshot: {screenshot(driver, 'relabel-compare')}")
