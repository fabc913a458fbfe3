"""Bad input in the "Your data" rows gives a message on the page and the dashboard keeps working (Voilà + headless
Chromium, fixtures in conftest.py): a colour image for the grey digits model and a text file as a model (relabel), a
video with no face (STDT), a photo with no face (whitening), an OTB folder without ground truth (tracking). Image
views that fill only after a button show a placeholder, not a broken image, before it is pressed."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = pytest.mark.browser
RENDER_TIMEOUT = 300


@pytest.fixture(scope="module")
def default_models(browser_available, workbench_cache):
    """The relabel and STDT dashboards' default models in the shared cache, so the pages load in seconds."""
    from workbench.models.pretrained import digits_classifier, digits_vae
    from workbench.stdt import stdt_detector
    from workbench.train import one_thread, smoke_mode

    with one_thread():
        digits_classifier(smoke=smoke_mode(None), progress=False)
        digits_vae(smoke=smoke_mode(None), progress=False)
        stdt_detector(True, smoke=smoke_mode(None), progress=False)


def _text(driver, css: str) -> str:
    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))


def _type_and_load(driver, row: str, value: str) -> None:
    field = driver.find_element(By.CSS_SELECTOR, f".{row}-path input")
    field.clear()
    field.send_keys(value)
    driver.find_element(By.CSS_SELECTOR, f".{row}-load").click()


def _refused(driver, row: str, value: str, what: str, reason: str) -> None:
    """Type ``value`` into the row and load it: the row's message says it cannot use this ``what``, for ``reason``."""
    _type_and_load(driver, row, value)
    WebDriverWait(driver, 60, poll_frequency=0.25).until(lambda d: f"Cannot use this {what}" in
                                                         _text(d, f".{row}-message"))
    assert reason in _text(driver, f".{row}-message")


def _image_loaded(driver, css: str) -> bool:
    """The first <img> under ``css`` decoded to a real picture (a broken-image icon has natural width 0)."""
    return bool(driver.execute_script(
        "const el = document.querySelector(arguments[0]);"
        "const img = el && (el.tagName === 'IMG' ? el : el.querySelector('img'));"
        "return !!img && img.complete && img.naturalWidth > 0;", css))


def test_relabel_refuses_a_colour_image_and_a_text_model_and_keeps_working(default_models, driver, voila_url,
                                                                           open_dashboard, tmp_path, screenshot):
    colour = tmp_path / "colour.png"
    cv2.imwrite(str(colour), np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8))
    text = tmp_path / "notes.pt"
    text.write_text("a text file, not a model\n")
    open_dashboard(driver, voila_url, "relabel.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-yours-image-path")
    wait = WebDriverWait(driver, 60, poll_frequency=0.25)
    wait.until(lambda d: _image_loaded(d, ".wb-relabel-samples"))  # placeholder before Explain, not a broken icon

    _refused(driver, "wb-yours-image", str(colour), "image", "colour (RGB) image")
    _refused(driver, "wb-yours-model", str(text), "model", "not a TorchScript file")

    before = driver.find_element(By.CSS_SELECTOR, ".wb-relabel-latent").get_attribute("src")  # still alive
    handle = driver.find_element(By.CSS_SELECTOR, ".wb-relabel-latent-slider .noUi-handle")
    handle.click()
    for _ in range(10):
        handle.send_keys(Keys.ARROW_RIGHT)
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".wb-relabel-latent").get_attribute("src") != before)
    print(f"relabel your-data screenshot: {screenshot(driver, 'relabel-your-data')}")


def test_stdt_reports_a_video_with_no_face_and_keeps_working(default_models, driver, voila_url, open_dashboard,
                                                             tmp_path):
    video = tmp_path / "noface.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    for k in range(12):
        writer.write(np.full((64, 64, 3), 20 * k, np.uint8))
    writer.release()
    open_dashboard(driver, voila_url, "stdt.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-yours-video-path")
    wait = WebDriverWait(driver, 60, poll_frequency=0.25)
    wait.until(lambda d: "draw seed 0" in _text(d, ".wb-stdt-stats"))
    _refused(driver, "wb-yours-video", str(video), "video", "no face found")
    driver.find_element(By.CSS_SELECTOR, ".wb-stdt-reseed").click()
    wait.until(lambda d: "draw seed 1" in _text(d, ".wb-stdt-stats"))


@pytest.fixture(scope="module")
def whitening_models(browser_available, workbench_cache):
    """The whitening dashboard's default detectors in the shared cache, so the page loads in seconds."""
    from workbench.train import one_thread
    from workbench.whitening import whitening_detector

    with one_thread():
        whitening_detector(True, progress=False)
        whitening_detector(False, progress=False)


def test_whitening_reports_a_photo_with_no_face_and_keeps_working(whitening_models, driver, voila_url,
                                                                  open_dashboard, tmp_path):
    photo = tmp_path / "gradient.png"
    cv2.imwrite(str(photo), np.tile(np.linspace(0, 255, 96).astype(np.uint8), (80, 1)))
    open_dashboard(driver, voila_url, "whitening.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-yours-face-path")
    wait = WebDriverWait(driver, 60, poll_frequency=0.25)
    wait.until(lambda d: "P(fake)" in _text(d, ".wb-whitening-stats"))
    _refused(driver, "wb-yours-face", str(photo), "face photo", "no face found")
    handle = driver.find_element(By.CSS_SELECTOR, ".wb-whitening-channel .noUi-handle")  # the dashboard still works
    handle.click()
    for _ in range(2):
        handle.send_keys(Keys.ARROW_RIGHT)
    wait.until(lambda d: "ch 2" in _text(d, ".wb-whitening-stats"))


def test_tracking_reports_an_otb_folder_without_ground_truth_and_keeps_working(driver, voila_url, open_dashboard,
                                                                               tmp_path):
    folder = tmp_path / "MySequence"
    (folder / "img").mkdir(parents=True)
    for k in range(3):
        cv2.imwrite(str(folder / "img" / f"{k + 1:04d}.jpg"), np.full((48, 48, 3), 40 * k, np.uint8))
    open_dashboard(driver, voila_url, "tracking.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-tracking-stats")
    wait = WebDriverWait(driver, 60, poll_frequency=0.25)
    wait.until(lambda d: _image_loaded(d, ".wb-tracking-response"))  # placeholder before Run, not a broken icon
    select = Select(driver.find_element(By.CSS_SELECTOR, ".wb-tracking-source select"))
    select.select_by_visible_text("your OTB folder…")
    field = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, ".wb-tracking-folder input"))
    field.send_keys(str(folder))
    driver.find_element(By.CSS_SELECTOR, ".wb-tracking-load").click()
    wait.until(lambda d: "Cannot load this folder" in _text(d, ".wb-tracking-message"))
    assert "groundtruth_rect.txt" in _text(driver, ".wb-tracking-message")
    select.select_by_visible_text("generated: distractor")  # the dashboard still works
    wait.until(lambda d: "frames" in _text(d, ".wb-tracking-message"))
    assert "Run trackers" in _text(driver, ".wb-tracking-stats")
