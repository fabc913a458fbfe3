"""Browser test of the whitening dashboard in Voilà with headless Chromium (fixtures in conftest.py)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = pytest.mark.browser
RENDER_TIMEOUT = 300  # a cold cache trains the default detectors in the kernel first


@pytest.fixture(scope="module")
def whitening_models(browser_available, workbench_cache):
    """Train (or load) the dashboard's default detectors here, in the shared cache, so the page loads in seconds."""
    from workbench.whitening import whitening_detector

    for data in ("embedded", "sbi"):  # the page's views (grey) and its photo readers (colour SBI, shipped)
        whitening_detector(True, data=data, progress=False)
        whitening_detector(False, data=data, progress=False)


def _stats(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, ".wb-whitening-stats").text


def test_whitening_dashboard_renders_and_reacts(whitening_models, driver, voila_url, open_dashboard, screenshot):
    open_dashboard(driver, voila_url, "whitening.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-whitening-stats")
    wait = WebDriverWait(driver, 60, poll_frequency=0.25)
    wait.until(lambda d: "P(fake)" in _stats(d))
    for view in (".wb-whitening-maps", ".wb-whitening-gallery", ".wb-whitening-corr"):
        wait.until(lambda d, v=view: d.find_elements(By.CSS_SELECTOR, f"{v} .plot-container"))
    assert "ch 0 = manipulated" in _stats(driver)

    # move the channel slider with the keyboard: the maps are re-drawn for channel 2 (aligned with the nose)
    handle = driver.find_element(By.CSS_SELECTOR, ".wb-whitening-channel .noUi-handle")
    handle.click()
    for _ in range(2):
        handle.send_keys(Keys.ARROW_RIGHT)
    wait.until(lambda d: "ch 2 = nose" in _stats(d))

    # another face pair changes the stats line (another manipulation kind / probabilities)
    before = _stats(driver)
    Select(driver.find_element(By.CSS_SELECTOR, ".wb-whitening-image select")).select_by_index(5)
    wait.until(lambda d: _stats(d) != before)

    # the plain detector: the stats name it
    driver.find_element(By.XPATH, "//div[contains(@class,'wb-whitening-model')]//button[contains(., 'plain')]").click()
    wait.until(lambda d: "plain" in _stats(d))
    print(f"whitening dashboard screenshot: {screenshot(driver, 'whitening-dashboard')}")


def test_the_photo_row_names_the_detectors_that_read_a_photo(whitening_models, driver, voila_url, open_dashboard):
    """Issue 24: a user's photo is read by the colour SBI detectors by default, and the page says so (weights, what
    they were trained on, the tinted-grey input step); the "read with" toggle switches to the grey ones."""
    open_dashboard(driver, voila_url, "whitening.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-yours-face-note")
    wait = WebDriverWait(driver, 60, poll_frequency=0.25)
    note = lambda d: d.find_element(By.CSS_SELECTOR, ".wb-yours-face-note").text  # noqa: E731
    wait.until(lambda d: "whitening_detector_sbi_white" in note(d))
    assert "self-blends of tinted-grey LFW faces" in note(driver) and "tinted grey" in note(driver)
    driver.find_element(By.XPATH, "//div[contains(@class,'wb-yours-face-readers')]//button[contains(., 'grey')]"
                        ).click()
    wait.until(lambda d: "grey 32 px synthetic forgeries" in note(d) and "sbi" not in note(d))


def test_the_real_face_detectors_open_on_a_click(whitening_models, driver, voila_url, open_dashboard, screenshot):
    """The colour 64 px (self-blended) detectors open under the page on a click, from the shipped weights, with
    their own controls that react."""
    open_dashboard(driver, voila_url, "whitening.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-whitening-sbi-open")
    wait = WebDriverWait(driver, 120, poll_frequency=0.25)
    driver.find_element(By.CSS_SELECTOR, ".wb-whitening-sbi-open").click()
    inner = ".wb-whitening-sbi .wb-whitening-stats"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, inner) and "P(fake)" in
               d.find_element(By.CSS_SELECTOR, inner).text)
    assert "64 px colour" in driver.find_element(By.CSS_SELECTOR, ".wb-whitening-sbi-note").text
    before = driver.find_element(By.CSS_SELECTOR, inner).text
    Select(driver.find_element(By.CSS_SELECTOR, ".wb-whitening-sbi .wb-whitening-image select")).select_by_index(3)
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, inner).text != before)
    print(f"real-face section screenshot: {screenshot(driver, 'whitening-real-faces')}")
