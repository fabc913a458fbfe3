"""Browser test of the tracking dashboard in Voilà with headless Chromium (fixtures in conftest.py)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.browser
RENDER_TIMEOUT = 180  # the default view needs no trained model: a generated sequence and hand-crafted features


def _src(driver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f"{css} img, img{css}").get_attribute("src") or ""


def test_tracking_dashboard_runs_and_the_frame_slider_redraws(driver, voila_url, open_dashboard, screenshot):
    open_dashboard(driver, voila_url, "tracking.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-tracking-stats")
    wait = WebDriverWait(driver, 60, poll_frequency=0.25)
    wait.until(lambda d: _src(d, ".wb-tracking-view").startswith(("blob:", "data:")))
    assert "Run trackers" in driver.find_element(By.CSS_SELECTOR, ".wb-tracking-stats").text

    driver.find_element(By.CSS_SELECTOR, ".wb-tracking-run").click()
    WebDriverWait(driver, 180, poll_frequency=0.5).until(
        lambda d: "success AUC" in d.find_element(By.CSS_SELECTOR, ".wb-tracking-stats").text)
    stats = driver.find_element(By.CSS_SELECTOR, ".wb-tracking-stats").text
    assert "DCF-CD" in stats and "FPS" in stats
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".wb-tracking-curves .plot-container"))
    assert driver.find_elements(By.CSS_SELECTOR, ".wb-tracking-weights .plot-container")

    # move the frame slider's handle with the keyboard: the frame, its info and the kept-channel maps change
    view_before = _src(driver, ".wb-tracking-view")
    info_before = driver.find_element(By.CSS_SELECTOR, ".wb-tracking-info").text
    timeline_before = _src(driver, ".wb-tracking-timeline")
    quality_before = driver.find_element(By.CSS_SELECTOR, ".wb-tracking-quality").text
    assert "frame 0: CD tracks with" in quality_before and "initialisation" in quality_before
    handle = driver.find_element(By.CSS_SELECTOR, ".wb-tracking-frame .noUi-handle")
    handle.click()
    for _ in range(20):
        handle.send_keys(Keys.ARROW_RIGHT)
    wait.until(lambda d: _src(d, ".wb-tracking-view") != view_before)
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".wb-tracking-info").text != info_before)
    wait.until(lambda d: _src(d, ".wb-tracking-timeline") not in ("", timeline_before))  # its frame line moved
    readout = driver.find_element(By.CSS_SELECTOR, ".wb-tracking-frame .widget-readout").text
    assert int(readout) > 0, f"frame readout {readout!r} did not move"
    info = driver.find_element(By.CSS_SELECTOR, ".wb-tracking-info").text
    assert "IoU" in info and "confidence DCF" in info and "may have lost the target" in info
    assert driver.find_elements(By.CSS_SELECTOR, ".wb-tracking-confidence .plot-container")
    for css in (".wb-tracking-response", ".wb-tracking-view", ".wb-tracking-timeline"):  # the PNG's own aspect
        shown, natural = driver.execute_script(
            "const i = document.querySelector(arguments[0] + ' img, img' + arguments[0]);"
            "return [i.clientWidth / i.clientHeight, i.naturalWidth / i.naturalHeight];", css)
        assert abs(shown - natural) < 0.02 * natural, f"{css} drawn at {shown:.3f}, its PNG is {natural:.3f}"
    assert _src(driver, ".wb-tracking-response") and _src(driver, ".wb-tracking-channels")
    telemetry = driver.find_element(By.CSS_SELECTOR, ".wb-tracking-telemetry").text
    assert f"frame {readout}: stage costs (ms)" in telemetry and "channel scoring" in telemetry
    assert "CD kept" in telemetry
    quality = driver.find_element(By.CSS_SELECTOR, ".wb-tracking-quality").text  # the check's reading of this frame
    assert f"frame {readout}: CD tracks with" in quality and "quality check" in quality and "PSR" in quality
    print(f"tracking dashboard screenshot: {screenshot(driver, 'tracking-dashboard')}")
