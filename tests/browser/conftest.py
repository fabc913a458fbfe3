"""Shared browser-test harness: dashboards served by Voilà, driven by Debian's headless Chromium through Selenium.

Every ``tests/browser/test_<method>_dashboard.py`` uses these fixtures (never download a browser or a driver):

* ``voila_url`` (session) -> ``str`` such as ``"http://127.0.0.1:38211"``: Voilà in tree mode on
  ``notebooks/dashboards``, started once per session on a free port, stopped at the end (also after failures).
  Its kernels inherit the environment: ``WORKBENCH_CACHE`` (kept if set, else a session temp folder) and the
  repository root on ``PYTHONPATH``. The server log is ``<tmp>/voila.log`` (its tail is shown if start-up fails).
* ``driver`` (function) -> ``selenium.webdriver.Chrome``: headless ``/usr/bin/chromium`` with
  ``/usr/bin/chromedriver``, a fresh profile, window 1400x1100. When the test fails a screenshot is saved to
  ``$BROWSER_SCREENSHOTS`` (or a temp folder) as ``<test name>-failure.png`` and its path printed.
* ``open_dashboard`` (fixture returning the function below), ``screenshot`` (same).

Module-level helpers (also reachable as fixtures of the same name, so test files need not import conftest)::

    open_dashboard(driver, base_url, name, timeout=DEFAULT_TIMEOUT, wait_for=".widget-box") -> None
    screenshot(driver, name, full_page=True) -> pathlib.Path   # saved in $BROWSER_SCREENSHOTS or a temp dir
    page_errors(driver) -> list[str]        # error/traceback texts rendered in the page
    console_errors(driver) -> list[str]     # console errors since the last call
    outside_requests(driver) -> list[str]   # URLs requested off 127.0.0.1/localhost since the last call

Example::

    import pytest
    from selenium.webdriver.common.by import By

    @pytest.mark.browser
    def test_my_dashboard(driver, voila_url, open_dashboard):
        open_dashboard(driver, voila_url, "mymethod.ipynb", wait_for=".wb-mymethod-stats")
        stats = driver.find_element(By.CSS_SELECTOR, ".wb-mymethod-stats")
        ...

Without ``/usr/bin/chromium`` or ``/usr/bin/chromedriver`` the browser tests are skipped with the reason, unless
``CI=true``, where they fail (CI must really run them). Models the dashboards need are trained on first use in the
kernel; warm the cache in a fixture of your test module (same ``WORKBENCH_CACHE``) so the page loads in seconds.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "notebooks" / "dashboards"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DEFAULT_TIMEOUT = float(os.environ.get("BROWSER_TIMEOUT", "180"))
ERROR_SELECTORS = ("[data-mime-type='application/vnd.jupyter.error']",)  # stderr (warnings, tqdm) is not an error


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _skip_or_fail(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: browser tests must run)")
    pytest.skip(reason)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test in tests/browser is a browser test (``-m "not browser"`` deselects them)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Remember each phase's report on the item so the ``driver`` fixture knows whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# ------------------------------------------------------------------------------------------------ helpers
def screenshot_dir() -> Path:
    """``$BROWSER_SCREENSHOTS`` (created) or a temp folder."""
    path = Path(os.environ.get("BROWSER_SCREENSHOTS") or Path(tempfile.gettempdir()) / "browser_screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


_PAGE_HEIGHT_JS = """
const rects = Array.from(document.querySelectorAll('body *'), el => el.getBoundingClientRect());
return Math.max(document.documentElement.clientHeight, ...rects.filter(r => r.height > 0).map(r => r.bottom));
"""


def screenshot(driver, name: str, full_page: bool = True) -> Path:
    """Save a PNG named ``<name>.png`` in :func:`screenshot_dir` and return its path.

    ``full_page``: grow the window to the page's height first (Voilà scrolls an inner panel, so a plain screenshot
    shows only the top), then restore the window size.
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    path = screenshot_dir() / f"{safe}.png"
    size = driver.get_window_size()
    if full_page:
        height = int(driver.execute_script(_PAGE_HEIGHT_JS))
        driver.set_window_size(size["width"], min(max(size["height"], height + 200), 8000))
    try:
        driver.save_screenshot(str(path))
    finally:
        if full_page:
            driver.set_window_size(size["width"], size["height"])
    return path


def page_errors(driver) -> list[str]:
    """Texts of error outputs (tracebacks) Voilà rendered in the page, plus its own error banners."""
    from selenium.webdriver.common.by import By

    texts = []
    for selector in ERROR_SELECTORS:
        texts += [el.text for el in driver.find_elements(By.CSS_SELECTOR, selector) if el.text.strip()]
    body = driver.find_element(By.TAG_NAME, "body").text
    for marker in ("Traceback (most recent call last)", "There was an error when executing cell", "Kernel error"):
        if marker in body:
            texts.append(body[body.index(marker):][:2000])
    return texts


LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def console_errors(driver) -> list[str]:
    """The page's console errors (level SEVERE) since the last call: uncaught exceptions, failed loads, error logs."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def outside_requests(driver) -> list[str]:
    """URLs the browser requested (HTTP and websockets) from any host but 127.0.0.1 / localhost since the last
    call (Chromium's performance log); ``data:``, ``blob:`` and ``about:`` URLs stay in the page."""
    import json
    from urllib.parse import urlparse

    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.append(message["params"]["url"])
    return [url for url in urls if urlparse(url).scheme not in ("data", "blob", "about", "chrome")
            and urlparse(url).hostname not in LOCAL_HOSTS]


def open_dashboard(driver, base_url: str, name: str, timeout: float = DEFAULT_TIMEOUT,
                   wait_for: str = ".widget-box") -> None:
    """Load ``/voila/render/<name>`` and wait until the kernel has rendered an element matching ``wait_for``.

    Fails early, with the page's error text, if Voilà shows a traceback while we wait.
    """
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base_url}/voila/render/{name}")

    def ready(drv) -> bool:
        if page_errors(drv):
            return True
        return bool(drv.find_elements(By.CSS_SELECTOR, wait_for))

    try:
        WebDriverWait(driver, timeout, poll_frequency=0.5).until(ready)
    except TimeoutException:
        shot = screenshot(driver, f"timeout-{name}")
        pytest.fail(f"{name}: no element {wait_for!r} after {timeout:.0f} s (screenshot {shot})")
    errors = page_errors(driver)
    if errors:
        shot = screenshot(driver, f"error-{name}")
        pytest.fail(f"{name} rendered an error (screenshot {shot}):\n" + "\n---\n".join(errors))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Pids of every live descendant of ``pid`` (read from /proc), so kernels in their own sessions are found too."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _stop(proc: subprocess.Popen) -> None:
    """Stop Voilà (SIGTERM lets it shut its kernels down), then kill anything of ours still alive."""
    leftovers = _descendants(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _log_tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def browser_available() -> None:
    """Skip (or fail under CI=true) when Debian's chromium/chromedriver or selenium/voila are missing."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            _skip_or_fail(f"{path} not found (install Debian's chromium and chromium-driver)")
    for module in ("selenium", "voila"):
        try:
            __import__(module)
        except ImportError:
            _skip_or_fail(f"python package {module!r} is not installed")


@pytest.fixture(scope="session")
def workbench_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The model cache the Voilà kernels and the tests share: inherited ``$WORKBENCH_CACHE`` or a session temp."""
    previous = os.environ.get("WORKBENCH_CACHE")
    path = Path(previous) if previous else tmp_path_factory.mktemp("wbcache")
    os.environ["WORKBENCH_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("WORKBENCH_CACHE", None)


def start_voila(log_path: Path, cache: Path, settings: object | None = None, env: dict[str, str] | None = None,
                allow_paths: tuple[Path, ...] = ()) -> tuple[subprocess.Popen, str]:
    """Start Voilà (tree mode on notebooks/dashboards, 127.0.0.1, free port) the way ``make dashboard`` does
    (:func:`widgets.serve.voila_args` with culling ``settings`` or the defaults, :func:`widgets.serve.serve_env`:
    the project's template, served pages confined to ``allow_paths``); wait until it answers.

    Its kernels inherit the environment (plus ``env``), ``WORKBENCH_CACHE=cache`` and the repository root on
    ``PYTHONPATH``.
    """
    from widgets.serve import serve_env, voila_args

    port = _free_port()
    env = dict(serve_env(allow_paths), **(env or {}), WORKBENCH_CACHE=str(cache), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "widgets.serve", "--voila", *voila_args(DASHBOARDS, port, settings),
           "--show_tracebacks=True"]
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"voila exited with code {proc.returncode}:\n{_log_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{base}/voila/tree", timeout=5) as resp:
                if resp.status == 200:
                    return proc, base
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"voila did not answer on {base} within 90 s:\n{_log_tail(log_path)}")
        time.sleep(0.5)


def kernel_pids(proc: subprocess.Popen) -> list[int]:
    """Pids of the live IPython kernels Voilà ``proc`` started (its descendants running ipykernel)."""
    pids = []
    for pid in _descendants(proc.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"ipykernel" in cmdline and state != "Z":
            pids.append(pid)
    return pids


@pytest.fixture(scope="session")
def voila_url(browser_available: None, workbench_cache: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a Voilà server (tree mode on notebooks/dashboards, 127.0.0.1, free port) for the session; its
    pages may read the tests' temporary files (``--allow-path`` of pytest's base temp folder), nothing else."""
    proc, base = start_voila(tmp_path_factory.mktemp("voila") / "voila.log", workbench_cache,
                             allow_paths=(tmp_path_factory.getbasetemp(),))
    try:
        yield base
    finally:
        _stop(proc)


@pytest.fixture
def driver(browser_available: None, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """Headless Chromium (Debian's binary and driver, fresh profile); screenshot saved if the test fails."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1400,1100", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})  # console_errors et al.
    drv = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield drv
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            try:
                print(f"\nscreenshot of the failure: {screenshot(drv, f'{request.node.name}-failure')}")
            except Exception as exc:  # the screenshot must never hide the test's own failure
                print(f"\ncould not save a failure screenshot: {exc}")
        drv.quit()


@pytest.fixture(name="open_dashboard")
def open_dashboard_fixture() -> Callable[..., None]:
    """:func:`open_dashboard`, as a fixture."""
    return open_dashboard


@pytest.fixture(name="screenshot")
def screenshot_fixture() -> Callable[..., Path]:
    """:func:`screenshot`, as a fixture."""
    return screenshot


@pytest.fixture(name="page_errors")
def page_errors_fixture() -> Callable[..., list[str]]:
    """:func:`page_errors`, as a fixture."""
    return page_errors


@pytest.fixture(name="console_errors")
def console_errors_fixture() -> Callable[..., list[str]]:
    """:func:`console_errors`, as a fixture."""
    return console_errors


@pytest.fixture(name="outside_requests")
def outside_requests_fixture() -> Callable[..., list[str]]:
    """:func:`outside_requests`, as a fixture."""
    return outside_requests


@pytest.fixture
def voila_server(browser_available: None, workbench_cache: Path, tmp_path: Path) -> Iterator[Callable[..., tuple]]:
    """A starter ``(settings) -> (process, base_url)`` of test-owned Voilà servers (:func:`start_voila`), each
    stopped at the end of the test."""
    started: list[subprocess.Popen] = []

    def start(settings: object | None = None) -> tuple[subprocess.Popen, str]:
        proc, base = start_voila(tmp_path / f"voila{len(started)}.log", workbench_cache, settings)
        started.append(proc)
        return proc, base

    try:
        yield start
    finally:
        for proc in started:
            _stop(proc)


@pytest.fixture(name="kernel_pids")
def kernel_pids_fixture() -> Callable[..., list[int]]:
    """:func:`kernel_pids`, as a fixture."""
    return kernel_pids


@pytest.fixture(name="descendants")
def descendants_fixture() -> Callable[[int], list[int]]:
    """Pids of every live descendant of a pid, as a fixture."""
    return _descendants
