"""Browser test of the HORKD dashboard in Voilà with headless Chromium (fixtures in conftest.py): the resolution
slider and the right/wrong student pair of the error views."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = pytest.mark.browser
RENDER_TIMEOUT = 300  # a cold cache trains the default models in the kernel first


@pytest.fixture(scope="module")
def horkd_models(browser_available, workbench_cache):
    """Train (or load) the dashboard's default models here, in the shared cache, so the page loads in seconds."""
    from widgets.horkd import default_models
    from workbench.train import one_thread

    with one_thread():  # faster than contended threads on a small shared CPU
        default_models(progress=False)


def _text(driver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def test_horkd_dashboard_resolution_slider_changes_the_views(horkd_models, driver, voila_url, open_dashboard,
                                                            screenshot, page_errors):
    open_dashboard(driver, voila_url, "horkd.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-horkd-stats")
    wait = WebDriverWait(driver, 60, poll_frequency=0.25)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".wb-horkd-relations .plot-container"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".wb-horkd-curves .plot-container"))
    wait.until(lambda d: "8x8" in _text(d, ".wb-horkd-preview"))
    assert not page_errors(driver)
    stats_before = _text(driver, ".wb-horkd-stats")
    assert "fed 8x8" in stats_before and "smaller" in stats_before
    relations = _text(driver, ".wb-horkd-relations")
    assert "teacher" in relations and "assistant" in relations and "student" in relations

    handle = driver.find_element(By.CSS_SELECTOR, ".wb-horkd-resolution .noUi-handle")
    handle.click()
    handle.send_keys(Keys.ARROW_LEFT)  # 8 -> 6 pixels per side
    wait.until(lambda d: "6x6" in _text(d, ".wb-horkd-preview"))
    wait.until(lambda d: _text(d, ".wb-horkd-stats") != stats_before)
    assert "fed 6x6" in _text(driver, ".wb-horkd-stats")
    readout = driver.find_element(By.CSS_SELECTOR, ".wb-horkd-resolution .widget-readout").text
    assert readout.strip() == "6"

    # where the students' errors differ: pick another "wrong" student and the comparison follows
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".wb-horkd-disagreement .plot-container"))
    errors_before = _text(driver, ".wb-horkd-error-stats")
    assert "student from scratch" in errors_before
    Select(driver.find_element(By.CSS_SELECTOR, ".wb-horkd-wrong select")).select_by_visible_text("Hinton KD")
    wait.until(lambda d: _text(d, ".wb-horkd-error-stats") != errors_before)
    assert "Hinton KD" in _text(driver, ".wb-horkd-error-stats")
    assert not page_errors(driver)
    print(f"horkd dashboard screenshot: {screenshot(driver, 'horkd-dashboard')}")
