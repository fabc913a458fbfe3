"""Browser test of the results dashboard's strategies view in Voilà with headless Chromium (fixtures in conftest.py):
open the "Strategies" section, find the demo run's strategies, see the gallery and the embedding, list a cluster."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.browser
RENDER_TIMEOUT = 300  # a cold cache trains the digits model and builds the demo output first


@pytest.fixture(scope="module")
def demo(browser_available, workbench_cache):
    """Build the dashboard's demo output here, in the shared cache, so the page loads in seconds."""
    from widgets.results import demo_output
    from workbench.train import one_thread

    with one_thread():
        return demo_output()


def test_the_strategies_of_the_demo_run_are_found_and_drawn(demo, driver, voila_url, open_dashboard, screenshot):
    open_dashboard(driver, voila_url, "results.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-results-stats")
    wait = WebDriverWait(driver, 120, poll_frequency=0.25)
    assert not driver.find_elements(By.CSS_SELECTOR, ".wb-strategies-gallery")  # nothing drawn until asked
    driver.find_element(By.XPATH, "//*[contains(text(), 'Strategies (SpRAy')]").click()
    wait.until(lambda d: "no strategies yet" in d.find_element(By.CSS_SELECTOR, ".wb-strategies-progress").text)
    driver.find_element(By.CSS_SELECTOR, ".wb-strategies-find").click()
    wait.until(lambda d: "found" in d.find_element(By.CSS_SELECTOR, ".wb-strategies-progress").text)
    progress = driver.find_element(By.CSS_SELECTOR, ".wb-strategies-progress").text
    clusters = int(progress.split("found ")[1].split(" ")[0])
    assert "among 64 maps" in progress
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".wb-strategies-gallery img")) == clusters)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".wb-strategies-embedding .js-plotly-plot"))
    driver.find_elements(By.XPATH, "//button[contains(., 'show members')]")[0].click()
    wait.until(lambda d: "cluster 0" in d.find_element(By.CSS_SELECTOR, ".wb-strategies-members").text)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".wb-strategies-member-maps img"))
    print(f"strategies screenshot: {screenshot(driver, 'results-strategies')}")
