"""Browser tests of the relabel dashboard and the gallery, in Voilà with headless Chromium (see conftest.py)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = pytest.mark.browser
RENDER_TIMEOUT = 300  # a cold cache trains the default models in the kernel first


@pytest.fixture(scope="module")
def relabel_models(browser_available, workbench_cache):
    """Train (or load) the dashboard's default models here, in the shared cache, so the page loads in seconds."""
    from workbench.models.pretrained import digits_classifier, digits_vae

    digits_classifier(progress=False)
    digits_vae(progress=False)


def _src(driver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f"{css} img, img{css}").get_attribute("src")


def test_relabel_dashboard_renders_reacts_and_explains(relabel_models, driver, voila_url, open_dashboard,
                                                        screenshot):
    open_dashboard(driver, voila_url, "relabel.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-relabel-stats")
    wait = WebDriverWait(driver, 60, poll_frequency=0.25)
    wait.until(lambda d: _src(d, ".wb-relabel-latent").startswith("blob:") or "base64" in _src(d, ".wb-relabel-latent"))
    sliders = driver.find_elements(By.CSS_SELECTOR, ".wb-relabel-latent-slider")
    assert len(sliders) == 16
    stats = driver.find_element(By.CSS_SELECTOR, ".wb-relabel-stats")
    assert "Explain" in stats.text

    # a latent nudge re-decodes: move slider z0's handle with the keyboard
    decoded_before = _src(driver, ".wb-relabel-latent")
    label_before = driver.find_element(By.CSS_SELECTOR, ".wb-relabel-latent-pred").text
    handle = sliders[0].find_element(By.CSS_SELECTOR, ".noUi-handle")
    handle.click()
    for _ in range(25):
        handle.send_keys(Keys.ARROW_RIGHT)
    wait.until(lambda d: _src(d, ".wb-relabel-latent") != decoded_before)
    readout = sliders[0].find_element(By.CSS_SELECTOR, ".widget-readout").text
    assert float(readout) > 0, f"slider readout {readout!r} did not move"
    print(f"decoded label before/after the nudge: {label_before!r} / "
          f"{driver.find_element(By.CSS_SELECTOR, '.wb-relabel-latent-pred').text!r}")

    # picking another image changes the original and the decoded views
    original_before = _src(driver, ".wb-relabel-original")
    Select(driver.find_element(By.CSS_SELECTOR, ".wb-relabel-image select")).select_by_index(3)
    wait.until(lambda d: _src(d, ".wb-relabel-original") != original_before)

    # Explain: the expensive path fills the stats, the sample grid, the maps and the curves
    driver.find_element(By.CSS_SELECTOR, ".wb-relabel-explain").click()
    WebDriverWait(driver, 120, poll_frequency=0.5).until(
        lambda d: "flip rate" in d.find_element(By.CSS_SELECTOR, ".wb-relabel-stats").text)
    text = driver.find_element(By.CSS_SELECTOR, ".wb-relabel-stats").text
    assert "fidelity" in text and "sigma" in text and "status" in text
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".wb-relabel-curves .plot-container"))
    assert driver.find_elements(By.CSS_SELECTOR, ".wb-relabel-maps .plot-container")
    # what the new samples look like: the regions kept vs decoded, and the student at the resolution it was fitted
    assert "kept from the image" in driver.find_element(By.CSS_SELECTOR, ".wb-relabel-regions-note").text
    regions_src = _src(driver, ".wb-relabel-regions")
    assert regions_src.startswith("blob:") or "base64" in regions_src
    assert "RLD as fitted (8x8 cells)" in driver.find_element(By.CSS_SELECTOR, ".wb-relabel-maps").text

    # baselines join the student's map
    driver.find_element(By.CSS_SELECTOR, ".wb-relabel-baselines").click()
    WebDriverWait(driver, 120, poll_frequency=0.5).until(
        lambda d: "saliency" in d.find_element(By.CSS_SELECTOR, ".wb-relabel-curves").text)
    print(f"relabel dashboard screenshot: {screenshot(driver, 'relabel-dashboard')}")

    # the scorecard section: score, then the heat table and the RLD maps; picking a cell and the scope re-draw
    run = driver.find_element(By.CSS_SELECTOR, ".wb-scorecard-run")
    driver.execute_script("arguments[0].scrollIntoView()", run)
    run.click()
    WebDriverWait(driver, 300, poll_frequency=0.5).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".wb-scorecard-table .plot-container")
        and "RLD:" in d.find_element(By.CSS_SELECTOR, ".wb-scorecard-maps").text)
    assert "scores" in driver.find_element(By.CSS_SELECTOR, ".wb-scorecard-status").text
    assert "image #3" in driver.find_element(By.CSS_SELECTOR, ".wb-scorecard-table").text
    Select(driver.find_element(By.CSS_SELECTOR, ".wb-scorecard-explainer select")).select_by_visible_text("saliency")
    wait.until(lambda d: "saliency:" in d.find_element(By.CSS_SELECTOR, ".wb-scorecard-maps").text)
    driver.find_element(By.XPATH, "//*[contains(@class, 'wb-scorecard-scope')]//button[contains(., 'batch mean')]"
                        ).click()
    wait.until(lambda d: "mean over" in d.find_element(By.CSS_SELECTOR, ".wb-scorecard-table").text)
    print(f"scorecard screenshot: {screenshot(driver, 'relabel-scorecard')}")


def test_gallery_lists_every_method_and_links_relabel(driver, voila_url, open_dashboard, screenshot):
    open_dashboard(driver, voila_url, "index.ipynb", wait_for=".wb-gallery-card")
    cards = driver.find_elements(By.CSS_SELECTOR, ".wb-gallery-card")
    assert [c.get_attribute("data-dashboard") for c in cards] == ["relabel", "whitening", "stdt", "horkd", "tracking",
                                                                   "results"]
    link = cards[0].find_element(By.TAG_NAME, "a")
    assert link.get_attribute("href").endswith("/voila/render/relabel.ipynb")
    print(f"gallery screenshot: {screenshot(driver, 'gallery')}")
    link.click()
    WebDriverWait(driver, RENDER_TIMEOUT).until(lambda d: d.current_url.endswith("/voila/render/relabel.ipynb"))
