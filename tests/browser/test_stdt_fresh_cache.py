"""The STD dashboard opened with an empty model cache: it trains its model in the kernel, then shows the dashboard
and nothing else — no "Error displaying widget: model not found" left behind by the closed training progress bar."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.browser
RENDER_TIMEOUT = 900  # the kernel trains the smoke STDT first: about a minute on two free cores, 8+ on a shared box


def _harness(open_dashboard) -> SimpleNamespace:
    """tests/browser/conftest.py's functions, found through one of its fixtures: by module name "conftest" alone
    the whole suite would find tests/conftest.py first."""
    return SimpleNamespace(**open_dashboard.__globals__)


@pytest.fixture
def patient_driver(browser_available, tmp_path, open_dashboard):
    """Chromium that does not block on a page Voilà sends only once the kernel has trained (page load: none)."""
    harness = _harness(open_dashboard)
    options = webdriver.ChromeOptions()
    options.binary_location = str(harness.CHROMIUM)
    options.page_load_strategy = "none"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--window-size=1400,1100", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    drv = webdriver.Chrome(service=Service(str(harness.CHROMEDRIVER)), options=options)
    try:
        yield drv
    finally:
        drv.quit()


def _text(driver, css: str) -> str:
    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))


def test_stdt_dashboard_from_empty_cache_shows_no_widget_error(patient_driver, tmp_path, screenshot, open_dashboard,
                                                               page_errors):
    harness = _harness(open_dashboard)  # this folder's conftest: a server on a cache of our own
    empty_cache = tmp_path / "empty-cache"
    empty_cache.mkdir()
    # shipped weights off: the kernel must train (the smoke recipe, as WORKBENCH_SMOKE=1 says) with its bar in the page
    proc, base = harness.start_voila(tmp_path / "voila.log", empty_cache, env={"WORKBENCH_SHIPPED": "0"})
    driver = patient_driver
    try:
        driver.get(f"{base}/voila/render/stdt.ipynb")
        try:
            WebDriverWait(driver, RENDER_TIMEOUT, poll_frequency=1.0).until(
                lambda d: "P(fake)" in _text(d, ".wb-stdt-stats"))
        except TimeoutException:
            pytest.fail(f"no STDT stats after {RENDER_TIMEOUT} s; model cached: {any(empty_cache.iterdir())}; "
                        f"screenshot {screenshot(driver, 'stdt-fresh-cache-timeout')}")
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
