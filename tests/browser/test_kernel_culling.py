"""Kernels of closed or abandoned dashboard pages are shut down within the culling bound; open pages keep theirs.

Voilà runs with the flags ``make dashboard`` uses (``widgets.serve``), with the bounds shortened for the test.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from widgets.serve import ServeSettings, main

#: short bounds: culled 3 s after the last activity of a kernel with no page, the culler looks every second; a page
#: that stops answering pings is dropped after 3 s
FAST = ServeSettings(cull_idle_timeout=3, cull_interval=1, ping_interval_ms=1000, ping_timeout_ms=3000)
PAGE = "index.ipynb"  # the gallery: the lightest page (its kernel loads no model)


def _wait_for(condition, timeout: float) -> float:
    """Seconds until ``condition()`` held; fails the test after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - start


@pytest.fixture
def fast_voila(voila_server):
    return voila_server(FAST)


def test_open_page_keeps_its_kernel_and_closing_it_frees_the_kernel(fast_voila, driver, open_dashboard, kernel_pids):
    proc, base = fast_voila
    open_dashboard(driver, base, PAGE, wait_for=".wb-gallery-card")
    assert len(kernel_pids(proc)) == 1
    time.sleep(3 * (FAST.cull_idle_timeout + FAST.cull_interval))  # idle, but its page is connected
    assert len(kernel_pids(proc)) == 1, "the kernel of a page still open was culled"
    driver.get("about:blank")  # the user leaves the page
    bound = FAST.cull_idle_timeout + FAST.cull_interval + 10
    took = _wait_for(lambda: not kernel_pids(proc), bound)
    print(f"kernel of the closed page gone after {took:.1f} s (bound {bound} s)")


def test_abandoned_page_frees_its_kernel(fast_voila, driver, open_dashboard, kernel_pids, descendants):
    """A frozen browser (laptop lid closed: the page neither closes its websocket nor answers pings)."""
    proc, base = fast_voila
    open_dashboard(driver, base, PAGE, wait_for=".wb-gallery-card")
    assert len(kernel_pids(proc)) == 1
    browsers = descendants(driver.service.process.pid)  # chromium's processes
    for pid in browsers:
        os.kill(pid, signal.SIGSTOP)
    try:
        bound = (FAST.ping_timeout_ms + FAST.ping_interval_ms) / 1000 + FAST.cull_idle_timeout + FAST.cull_interval + 10
        took = _wait_for(lambda: not kernel_pids(proc), bound)
        print(f"kernel of the abandoned page gone after {took:.1f} s (bound {bound:.0f} s)")
    finally:
        for pid in browsers:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def test_serve_settings_reject_nonsense_and_write_a_server_config(tmp_path: Path, monkeypatch):
    with pytest.raises(ValueError, match="cull_idle_timeout must be a positive number"):
        ServeSettings(cull_idle_timeout=0)
    with pytest.raises(ValueError, match="must exceed ping_interval_ms"):
        ServeSettings(ping_interval_ms=10_000, ping_timeout_ms=10_000)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    config = tmp_path / "jupyter_server_config.json"
    config.write_text('{"ServerApp": {"port": 9999}}')  # the user's own setting is kept
    main(["--write-server-config", str(config), "--cull-idle-timeout", "60"])
    written = json.loads(config.read_text())
    assert written["ServerApp"]["port"] == 9999
    assert written["MappingKernelManager"]["cull_idle_timeout"] == 60
    assert written["MappingKernelManager"]["cull_connected"] is False
    assert written["ServerApp"]["tornado_settings"]["ws_ping_timeout"] == 30_000
    assert written["VoilaConfiguration"]["template"] == "workbench"
    assert (tmp_path / "data" / "voila" / "templates" / "workbench" / "index.html.j2").is_file()
