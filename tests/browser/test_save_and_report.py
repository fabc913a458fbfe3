"""Save bar in the browser: a served dashboard's Download lands in Chromium's download folder, and every dashboard's
HTML report opens from file:// with no server, draws every figure and asks nothing from outside (< 10 MB)."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = pytest.mark.browser
DASHBOARDS = ("relabel", "whitening", "stdt", "horkd", "tracking", "results")


def _downloads(driver, folder: Path) -> None:
    """Let the page save into ``folder`` without asking (several files at once too)."""
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})


def _wait_file(folder: Path, name: str, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (folder / name).is_file() and not list(folder.glob("*.crdownload")):
            return folder / name
        time.sleep(0.25)
    pytest.fail(f"{name} not in {folder} after {timeout:.0f} s; found {sorted(p.name for p in folder.iterdir())}")


@pytest.fixture(scope="module")
def reports(browser_available, workbench_cache, tmp_path_factory) -> dict[str, tuple[Path, int]]:
    """Each dashboard's HTML report as its Save bar writes it (default page), with the figures it holds."""
    from widgets.export import SaveBar, page_report
    from workbench.train import one_thread

    folder, found = tmp_path_factory.mktemp("reports"), {}
    for name in DASHBOARDS:
        with one_thread():
            board = importlib.import_module(f"widgets.{name}").dashboard()
        bar = next(c for c in board.children if isinstance(c, SaveBar))
        report = page_report(board, bar.method, bar.image())
        found[name] = (report.write(folder / f"{name}.html"), report.n_figures)
        if name == "relabel":  # and the state a user saves: after Explain (maps and deletion/insertion curves)
            from widgets.relabel import RelabelDashboard

            explorer = board if isinstance(board, RelabelDashboard) else next(
                c for c in board.children if isinstance(c, RelabelDashboard))
            with one_thread():
                explorer.explain()
            report = page_report(board, bar.method, bar.image())
            found["relabel-explained"] = (report.write(folder / "relabel-explained.html"), report.n_figures)
    return found


@pytest.mark.parametrize("name", [*DASHBOARDS, "relabel-explained"])
def test_the_report_opens_from_disk_and_draws_every_figure(reports, driver, outside_requests, console_errors, name):
    path, figures = reports[name]
    if name == "relabel-explained":
        assert figures >= 2, "the explained page's maps and curves are not in its report"
    assert path.stat().st_size < 10 * 2**20
    driver.get(path.as_uri())
    WebDriverWait(driver, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".wb-report-figure.js-plotly-plot .main-svg")) >= figures)
    assert len(driver.find_elements(By.CSS_SELECTOR, ".wb-report-figure")) == figures
    assert driver.find_elements(By.TAG_NAME, "table"), "no settings / provenance table"
    assert [u for u in outside_requests(driver) if u != path.as_uri()] == [] and console_errors(driver) == []


def test_relabel_and_stdt_pages_download_their_views_and_report(driver, voila_url, open_dashboard, tmp_path):
    from workbench.models.pretrained import digits_classifier, digits_vae

    digits_classifier(progress=False)
    digits_vae(progress=False)
    folder = tmp_path / "downloads"
    folder.mkdir()
    _downloads(driver, folder)
    open_dashboard(driver, voila_url, "relabel.ipynb", timeout=300, wait_for=".wb-save-download")
    _downloads(driver, folder)
    driver.find_element(By.CSS_SELECTOR, ".wb-save-download").click()
    message = driver.find_element(By.CSS_SELECTOR, ".wb-save-message")
    WebDriverWait(driver, 60).until(lambda d: "_views.zip" in message.text)
    zipped = _wait_file(folder, message.text.split(": ", 1)[1].split(" ")[0])
    assert zipped.name.endswith("_rld_views.zip") and zipped.stat().st_size > 0
    Select(driver.find_element(By.CSS_SELECTOR, ".wb-save-what select")).select_by_visible_text("report (.html)")
    driver.find_element(By.CSS_SELECTOR, ".wb-save-download").click()
    WebDriverWait(driver, 60).until(lambda d: "download 2: new names" in message.text)
    report = _wait_file(folder, message.text.split(": ", 2)[-1].split(" ")[0])
    assert report.name.endswith("_rld_report-2.html") and "Settings" in report.read_text()

    open_dashboard(driver, voila_url, "stdt.ipynb", timeout=300, wait_for=".wb-save-download")
    _downloads(driver, folder)
    Select(driver.find_element(By.CSS_SELECTOR, ".wb-save-what select")).select_by_visible_text("figures as PNG")
    driver.find_element(By.CSS_SELECTOR, ".wb-save-download").click()
    message = driver.find_element(By.CSS_SELECTOR, ".wb-save-message")
    WebDriverWait(driver, 60).until(lambda d: ".png" in message.text)
    png = _wait_file(folder, message.text.split(": ", 1)[1].split(" ")[0])
    assert png.read_bytes().startswith(b"\x89PNG") and "_stdt_view" in png.name
