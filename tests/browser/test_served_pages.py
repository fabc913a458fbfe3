"""A served dashboard is safe and quiet (Voilà + headless Chromium, fixtures in conftest.py): every page loads and
is driven with no console error and no request off 127.0.0.1; a server file outside the allowed roots given as an
image and ``os:abort`` given as a model are refused on the page (nothing read, imported or called: the kernel lives
on); a page that is left shuts its kernel down at once, without the culler and without a 403; the server log has no
ping-pair warning."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from widgets.serve import ServeSettings

pytestmark = pytest.mark.browser
RENDER_TIMEOUT = 300
#: page -> an element that appears once its kernel has built the view
PAGES = {"index.ipynb": ".wb-gallery-card", "relabel.ipynb": ".wb-relabel-stats", "stdt.ipynb": ".wb-stdt-stats",
         "whitening.ipynb": ".wb-whitening-stats", "horkd.ipynb": ".wb-horkd-stats",
         "tracking.ipynb": ".wb-tracking-stats", "results.ipynb": ".wb-results-stats"}


@pytest.fixture(scope="module")
def all_models(browser_available, workbench_cache):
    """Every dashboard's default models and the results demo in the shared cache, so the pages load in seconds."""
    from widgets.prepare import main as prepare
    from widgets.results import demo_output
    from workbench.train import one_thread

    with one_thread():
        prepare()
        demo_output()


def _quiet(driver, page: str, console_errors, outside_requests) -> None:
    errors, outside = console_errors(driver), outside_requests(driver)
    assert not errors, f"{page}: console errors {errors}"
    assert not outside, f"{page}: requests off 127.0.0.1 {outside}"


def test_every_dashboard_loads_with_no_console_error_and_no_outside_request(all_models, driver, voila_url,
                                                                            open_dashboard, console_errors,
                                                                            outside_requests):
    for page, ready in PAGES.items():
        open_dashboard(driver, voila_url, page, timeout=RENDER_TIMEOUT, wait_for=ready)
        time.sleep(2)  # late icon fonts, widget views, plotly
        _quiet(driver, page, console_errors, outside_requests)
    Select(driver.find_element(By.CSS_SELECTOR, ".wb-results-explainer select")).select_by_visible_text("random")
    WebDriverWait(driver, 60).until(lambda d: "64 of 128" in d.find_element(By.CSS_SELECTOR, ".wb-results-stats").text)
    _quiet(driver, "results.ipynb after a control moved", console_errors, outside_requests)


def _message_after(driver, row: str, value: str, wait: WebDriverWait) -> str:
    field = driver.find_element(By.CSS_SELECTOR, f".{row}-path input")
    field.clear()
    field.send_keys(value)
    driver.find_element(By.CSS_SELECTOR, f".{row}-load").click()
    wait.until(lambda d: "Cannot use this" in d.find_element(By.CSS_SELECTOR, f".{row}-message").text)
    return driver.find_element(By.CSS_SELECTOR, f".{row}-message").text


def test_served_page_refuses_a_server_file_outside_the_roots_and_a_module_class(all_models, driver, voila_url,
                                                                                open_dashboard):
    handle, name = tempfile.mkstemp(suffix=".png", prefix="wb-server-secret-")  # outside pytest's (allowed) temp
    secret = Path(name)
    try:
        cv2.imwrite(str(secret), np.full((16, 16), 200, np.uint8))  # a valid digit-sized image: only policy refuses
        open_dashboard(driver, voila_url, "relabel.ipynb", timeout=RENDER_TIMEOUT, wait_for=".wb-yours-image-path")
        wait = WebDriverWait(driver, 60, poll_frequency=0.25)
        said = _message_after(driver, "wb-yours-image", str(secret), wait)
        assert "reads only uploads" in said and "--allow-path" in said
        said = _message_after(driver, "wb-yours-model", "os:abort weights.pt", wait)  # called, it would kill the kernel
        assert "builds no classes outside its allowed packages" in said
        said = _message_after(driver, "wb-yours-model", "os:getpid", wait)  # the kernel is alive and answers
        assert "builds no classes" in said
        assert "yours:" not in driver.find_element(By.CSS_SELECTOR, ".wb-relabel-image select").text
    finally:
        os.close(handle)
        secret.unlink()


def test_a_page_that_is_left_shuts_its_kernel_down_at_once(voila_server, driver, open_dashboard, kernel_pids,
                                                           tmp_path):
    settings = ServeSettings(cull_idle_timeout=600, cull_interval=300)  # the culler cannot be what frees it
    proc, base = voila_server(settings)
    open_dashboard(driver, base, "index.ipynb", wait_for=".wb-gallery-card")
    assert len(kernel_pids(proc)) == 1
    driver.get("about:blank")
    start = time.monotonic()
    while kernel_pids(proc) and time.monotonic() - start < 20:
        time.sleep(0.25)
    log = (tmp_path / "voila0.log").read_text(errors="replace")
    assert not kernel_pids(proc), f"the kernel of the page left is still running:\n{log[-3000:]}"
    print(f"kernel of the page left gone after {time.monotonic() - start:.1f} s")
    assert "_xsrf" not in log and "403" not in log, log[-3000:]
    assert "cannot be longer than the websocket_ping_interval" not in log
