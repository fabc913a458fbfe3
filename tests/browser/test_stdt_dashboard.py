"""Browser test of the STD dashboard in Voilà with headless Chromium (fixtures in conftest.py)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.browser
RENDER_TIMEOUT = 300  # a cold cache trains the default model in the kernel first


@pytest.fixture(scope="module")
def stdt_model(browser_available, workbench_cache):
    """Train (or load) the dashboard's default model (smoke on a CPU) in the shared cache so the page loads fast."""
    from workbench.stdt import stdt_detector
    from workbench.train import one_thread, smoke_mode

    with one_thread():
        stdt_detector(True, smoke=smoke_mode(None), progress=False)


def _stats(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, ".wb-stdt-stats").text


def test_stdt_dashboard_renders_and_reacts(stdt_model, driver, voila_url, open_dashboard, screenshot):
    open_dashboard(driver, voila_url, "stdt.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-stdt-stats")
    wait = WebDriverWait(driver, 60, poll_frequency=0.25)
    wait.until(lambda d: "P(fake)" in _stats(d))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".wb-stdt-view .plot-container"))
    assert "draw seed 0" in _stats(driver) and "(6 frames)" in _stats(driver)
    said = driver.find_element(By.CSS_SELECTOR, ".wb-stdt-trained-on").text  # the default model's own recipe
    assert "grey 32x32" in said and "Not trained on real videos" in said, said

    driver.find_element(By.CSS_SELECTOR, ".wb-stdt-reseed").click()
    wait.until(lambda d: "draw seed 1" in _stats(d))

    handle = driver.find_element(By.CSS_SELECTOR, ".wb-stdt-temporal .noUi-handle")
    handle.click()
    for _ in range(2):
        handle.send_keys(Keys.ARROW_RIGHT)
    wait.until(lambda d: "(4 frames)" in _stats(d))
    print(f"stdt dashboard screenshot: {screenshot(driver, 'stdt-dashboard')}")
