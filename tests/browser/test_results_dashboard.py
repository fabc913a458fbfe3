"""Browser test of the batch-results dashboard in Voilà with headless Chromium (fixtures in conftest.py)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = pytest.mark.browser
RENDER_TIMEOUT = 300  # a cold cache trains the digits model and builds the demo output first


@pytest.fixture(scope="module")
def demo(browser_available, workbench_cache):
    """Build the dashboard's demo output here, in the shared cache, so the page loads in seconds."""
    from widgets.results import demo_output
    from workbench.train import one_thread

    with one_thread():
        return demo_output()


def test_results_dashboard_filters_by_explainer(demo, driver, voila_url, open_dashboard, screenshot):
    open_dashboard(driver, voila_url, "results.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-results-stats")
    wait = WebDriverWait(driver, 60, poll_frequency=0.25)
    stats = lambda d: d.find_element(By.CSS_SELECTOR, ".wb-results-stats").text  # noqa: E731
    wait.until(lambda d: "128 of 128 rows match" in stats(d))
    assert len(driver.find_elements(By.CSS_SELECTOR, ".wb-results-maps img")) == 8
    Select(driver.find_element(By.CSS_SELECTOR, ".wb-results-explainer select")).select_by_visible_text("random")
    wait.until(lambda d: "64 of 128 rows match" in stats(d))
    table = driver.find_element(By.CSS_SELECTOR, ".wb-results-rows").text
    assert "random" in table and "saliency" not in table
    print(f"results dashboard screenshot: {screenshot(driver, 'results-dashboard')}")
