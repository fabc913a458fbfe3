"""The STD dashboard opened with an empty model cache: it trains its model in the kernel, then shows the dashboard
and nothing else — no "Error displaying widget: model not found" left behind by the closed training progress bar."""

from __future__ import annotations

import sys

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.browser
RENDER_TIMEOUT = 420  # the kernel trains the smoke STDT first (about a minute on two free cores)


def test_stdt_dashboard_from_empty_cache_shows_no_widget_error(browser_available, driver, tmp_path, screenshot,
                                                               open_dashboard, page_errors):
    harness = sys.modules[open_dashboard.__module__]  # this folder's conftest: a server on a cache of our own
    empty_cache = tmp_path / "empty-cache"
    empty_cache.mkdir()
    proc, base = harness.start_voila(tmp_path / "voila.log", empty_cache)
    try:
        # Voila sends the page only once the kernel has trained: navigate from script so no driver call blocks
        driver.get("about:blank")
        driver.execute_script("window.location.href = arguments[0]", f"{base}/voila/render/stdt.ipynb")
        WebDriverWait(driver, RENDER_TIMEOUT, poll_frequency=1.0).until(
            lambda d: "P(fake)" in " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, ".wb-stdt-stats")))
        WebDriverWait(driver, 30, poll_frequency=0.5).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".wb-stdt-view .plot-container"))
        body = driver.find_element(By.TAG_NAME, "body").text
        print(f"stdt fresh-cache screenshot: {screenshot(driver, 'stdt-fresh-cache')}")
        assert not page_errors(driver)
        assert "Error displaying widget" not in body, body[:500]
        assert "model not found" not in body, body[:500]
        assert any(empty_cache.iterdir()), "the kernel should have cached the model it trained"
    finally:
        harness._stop(proc)
