"""Dashboards under load: N concurrent headless sessions per dashboard against one Voilà server on 127.0.0.1.

For each dashboard, N Chromium sessions (Debian's chromium + chromedriver, ``--no-sandbox``) open the page at once,
move one control and check that the view changed; then half of them close their page and the other half are
abandoned (their browser frozen with SIGSTOP, as a closed laptop lid does). The script reports render time,
interaction latency, the peak memory of the server and its kernels (PSS summed, sampled every 0.5 s), the private
memory of one kernel (USS: what closing a page frees), and how many kernels are still alive once the culling
bound has passed.

Voilà runs with the flags ``make dashboard`` uses (:mod:`widgets.serve`). Every loop is bounded (sessions, waits,
the sampler stops with the run) and only 127.0.0.1 is contacted::

    .venv/bin/python benchmarks/dashboards.py [--sessions 3] [--only relabel tracking] [--out FILE.md]

The default models must be cached first (``python -m widgets.prepare``), or the first render trains them.

``--kernels`` measures, without a browser, what one dashboard costs its kernel: each dashboard is built in a fresh
Python process (as its Voilà kernel does, less ipykernel's ~30 MB), which reports its memory (USS: private, what
closing the page frees; RSS) after the imports and after the build, the heavy packages it imported, and the time of
a control move that only re-draws (no model trained, no explanation fitted: the relabel latent slider, the whitening
channel slider, STDT's spatial ratio, HORKD's resolution, the tracking frame slider), median and max of
``--moves`` moves, against the 100 ms goal::

    .venv/bin/python benchmarks/dashboards.py --kernels [--moves 10] [--out benchmarks/results/dashboard_kernels.md]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from widgets.serve import DASHBOARDS, ServeSettings, serve_env, voila_args  # noqa: E402


@dataclass(frozen=True)
class Page:
    """How a session drives one dashboard: what marks it rendered, which control it moves, which view must change."""

    notebook: str
    ready: str  #: CSS selector present once the kernel rendered the page
    control: str  #: CSS selector of a slider handle (arrow keys) or a button (click)
    watch: str  #: CSS selector whose text / image source must change after the control moved
    keys: int = 3  #: arrow-key presses for a slider (0: click a button)
    key: str = ""  #: the key pressed (a ``Keys`` name); default: left for HORKD's slider, right for the others


PAGES = {
    "relabel": Page("relabel.ipynb", ".wb-relabel-stats", ".wb-relabel-latent-slider .noUi-handle",
                    ".wb-relabel-latent", keys=10),
    "whitening": Page("whitening.ipynb", ".wb-whitening-stats", ".wb-whitening-channel .noUi-handle",
                      ".wb-whitening-stats", keys=2),
    "stdt": Page("stdt.ipynb", ".wb-stdt-stats", ".wb-stdt-reseed", ".wb-stdt-stats", keys=0),
    "horkd": Page("horkd.ipynb", ".wb-horkd-stats", ".wb-horkd-resolution .noUi-handle", ".wb-horkd-preview", keys=1),
    "tracking": Page("tracking.ipynb", ".wb-tracking-stats", ".wb-tracking-frame .noUi-handle",
                     ".wb-tracking-view", keys=3),
    "results": Page("results.ipynb", ".wb-results-stats", ".wb-results-page input", ".wb-results-rows", keys=1,
                    key="ARROW_UP"),
}


# --------------------------------------------------------------------------------------------- processes / memory
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def memory_mb(pid: int) -> dict[str, float]:
    """PSS (shared pages split among their users: sums to the real total) and USS (private pages: what ending the
    process frees) of ``pid``, in MB. RSS would count torch's ~430 MB of shared library pages once per kernel."""
    out = {"pss": 0.0, "uss": 0.0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key == "Pss":
                out["pss"] = int(rest.split()[0]) / 1024
            elif key in ("Private_Clean", "Private_Dirty"):
                out["uss"] += int(rest.split()[0]) / 1024
    except OSError:
        pass
    return out


def kernels(server: subprocess.Popen) -> list[int]:
    out = []
    for pid in descendants(server.pid):
        try:
            if b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(pid)
        except OSError:
            continue
    return out


class MemorySampler(threading.Thread):
    """Peak PSS of the server + its kernels and peak USS of one kernel, sampled every ``period`` s until
    :meth:`stop`."""

    def __init__(self, server: subprocess.Popen, period: float = 0.5):
        super().__init__(daemon=True)
        self.server, self.period, self.peak, self.peak_kernel = server, period, 0.0, 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.period):
            per_kernel = [memory_mb(k) for k in kernels(self.server)]
            total = memory_mb(self.server.pid)["pss"] + sum(m["pss"] for m in per_kernel)
            self.peak = max(self.peak, total)
            self.peak_kernel = max([self.peak_kernel, *(m["uss"] for m in per_kernel)])

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)


# ------------------------------------------------------------------------------------------------------ sessions
@dataclass
class SessionResult:
    render_s: float = float("nan")
    interact_s: float = float("nan")
    error: str = ""
    browser_pids: list[int] = field(default_factory=list)


def _driver(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--window-size=1400,1100", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def _view_state(driver, css: str, tries: int = 5) -> str:
    """The watched view's text and image sources; read again when the page replaced the element while it was read
    (an output area re-rendered between finding it and reading it)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(tries):
        try:
            els = driver.find_elements(By.CSS_SELECTOR, css)
            if not els:
                return ""
            imgs = els[0].find_elements(By.CSS_SELECTOR, "img") or ([els[0]] if els[0].tag_name == "img" else [])
            return els[0].text + "|" + "|".join((i.get_attribute("src") or "")[-64:] for i in imgs)
        except StaleElementReferenceException:
            time.sleep(0.1)
    return "<replaced while read>"


def drive(driver, base: str, page: Page, timeout: float, result: SessionResult) -> None:
    """Open ``page``, wait until rendered, move its control, wait until the watched view changed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    t0 = time.perf_counter()
    driver.get(f"{base}/voila/render/{page.notebook}")
    WebDriverWait(driver, timeout, poll_frequency=0.25).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, page.ready) and d.find_elements(By.CSS_SELECTOR, page.control))
    result.render_s = time.perf_counter() - t0
    time.sleep(1.0)  # let the first draw settle so "changed" means the control's effect
    before = _view_state(driver, page.watch)
    control = driver.find_element(By.CSS_SELECTOR, page.control)
    t1 = time.perf_counter()
    control.click()
    key = getattr(Keys, page.key) if page.key else Keys.ARROW_RIGHT if "horkd" not in page.notebook else Keys.ARROW_LEFT
    for _ in range(page.keys):
        control.send_keys(key)
    WebDriverWait(driver, 120, poll_frequency=0.1).until(lambda d: _view_state(d, page.watch) != before)
    result.interact_s = time.perf_counter() - t1


def run_dashboard(name: str, page: Page, sessions: int, settings: ServeSettings, workdir: Path,
                  timeout: float) -> dict:
    port = _free_port()
    env = dict(serve_env(), PYTHONPATH=os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))))
    log = open(workdir / f"voila-{name}.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "voila", *voila_args(DASHBOARDS, port, settings)],
                              stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    sampler = MemorySampler(server)
    drivers, results = [], [SessionResult() for _ in range(sessions)]
    try:
        _wait_up(base, server)
        sampler.start()
        drivers = [_driver(workdir / f"{name}-profile{i}") for i in range(sessions)]
        threads = [threading.Thread(target=_guarded, args=(drive, d, base, page, timeout, r))
                   for d, r in zip(drivers, results, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout + 180)
        alive_open = len(kernels(server))
        closed_at = time.monotonic()
        for i, d in enumerate(drivers):  # half close the page, half are abandoned with the browser frozen
            if i % 2 == 0:
                d.get("about:blank")
            else:
                results[i].browser_pids = descendants(d.service.process.pid)
                for pid in results[i].browser_pids:
                    os.kill(pid, signal.SIGSTOP)
        bound = (settings.ping_timeout_ms + settings.ping_interval_ms) / 1000 + settings.cull_idle_timeout \
            + settings.cull_interval
        while kernels(server) and time.monotonic() - closed_at < bound + 5:
            time.sleep(1.0)
        gone_after = time.monotonic() - closed_at
        left = len(kernels(server))
    finally:
        sampler.stop()
        for r in results:
            for pid in r.browser_pids:
                _signal(pid, signal.SIGCONT)
        for d in drivers:
            _guarded(d.quit)
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    ok = [r for r in results if not r.error]
    return {"dashboard": name, "sessions": sessions, "failed": sessions - len(ok),
            "errors": "; ".join(sorted({r.error for r in results if r.error}))[:200],
            "render_s": _median([r.render_s for r in ok]), "render_max_s": max([r.render_s for r in ok] or [0]),
            "interact_s": _median([r.interact_s for r in ok]), "peak_mb": sampler.peak,
            "kernel_mb": sampler.peak_kernel, "kernels_open": alive_open,
            "kernels_left": left, "freed_after_s": gone_after, "bound_s": bound}


def _guarded(fn, *args) -> None:
    try:
        fn(*args)
    except Exception as exc:  # one session's failure is reported in its row, the others go on
        if args and isinstance(args[-1], SessionResult):
            args[-1].error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:120]


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_up(base: str, server: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"voila exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/voila/tree", timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"voila did not answer on {base} within {timeout:.0f} s")


def table(rows: list[dict], settings: ServeSettings) -> str:
    lines = [f"# Dashboards under load (`benchmarks/dashboards.py`, {os.cpu_count()} CPUs)", "",
             f"Culling: kernels with no page idle {settings.cull_idle_timeout} s, culler every "
             f"{settings.cull_interval} s, pings every {settings.ping_interval_ms / 1000:.0f} s, page dropped after "
             f"{settings.ping_timeout_ms / 1000:.0f} s without an answer. Half the sessions close their page, half "
             "are abandoned with the browser frozen.", "",
             "| dashboard | sessions | failed | render s (median / max) | interaction s (median) | peak MB (server + "
             "kernels, PSS) | MB per kernel (USS) | kernels while open | kernels left after bound | "
             "all freed after s (bound) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dashboard']} | {r['sessions']} | {r['failed']} | {r['render_s']:.1f} / "
                     f"{r['render_max_s']:.1f} | {r['interact_s']:.2f} | {r['peak_mb']:.0f} | {r['kernel_mb']:.0f} | "
                     f"{r['kernels_open']} | {r['kernels_left']} | {r['freed_after_s']:.0f} ({r['bound_s']:.0f}) |")
    errors = [f"- {r['dashboard']}: {r['errors']}" for r in rows if r["errors"]]
    return "\n".join(lines + ([""] + errors if errors else [])) + "\n"


# --------------------------------------------------------------------------------------- kernel cost, no browser
#: per dashboard: its module (whose ``dashboard()`` builds it), the control a re-draw-only move changes, its range
KERNEL_MOVES = {
    "relabel": ("widgets.relabel", "latent_sliders[0]", (-3.0, 3.0)),
    "whitening": ("widgets.whitening", "channel_slider", None),
    "stdt": ("widgets.stdt", "spatial_slider", (0.0, 0.9)),
    "horkd": ("widgets.horkd", "resolution", None),
    "tracking": ("widgets.tracking", "frame", None),
}
HEAVY = ("captum", "lime", "quantus", "ray", "pandas", "sklearn", "scipy", "skimage", "cv2", "torchvision",
         "matplotlib")


def _own_memory() -> dict[str, float]:
    uss = memory_mb(os.getpid())["uss"]
    rss = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmRSS")) / 1024
    return {"uss": uss, "rss": rss}


def _move_values(control, span: tuple[float, float] | None, moves: int) -> list:
    options = getattr(control, "options", None)
    if options:
        values = [o[1] if isinstance(o, tuple) else o for o in options]
    else:
        lo, hi = span or (control.min, control.max)
        values = list(np.linspace(lo, hi, max(moves, 2)))
        values = [type(control.value)(v) if isinstance(control.value, int) else float(v) for v in values]
    values = [v for v in values if v != control.value] or values
    return [values[k % len(values)] for k in range(moves)]


def measure_kernel(name: str, moves: int) -> dict:
    """Build dashboard ``name`` in this process, then move its re-draw-only control ``moves`` times."""
    import importlib
    import operator

    module_name, control_path, span = KERNEL_MOVES[name]
    t0 = time.perf_counter()
    module = importlib.import_module(module_name)
    after_import = _own_memory()
    board = module.dashboard()
    build_s = time.perf_counter() - t0
    after_build = _own_memory()
    attr, _, index = control_path.partition("[")
    control = operator.attrgetter(attr)(board)
    control = control[int(index.rstrip("]"))] if index else control
    times = []
    for value in _move_values(control, span, moves):
        t1 = time.perf_counter()
        control.value = value  # the observers run synchronously: this is the kernel's share of a re-draw
        times.append((time.perf_counter() - t1) * 1000)
    return {"dashboard": name, "import_uss": after_import["uss"], "uss": after_build["uss"],
            "rss": after_build["rss"], "build_s": build_s, "heavy": [h for h in HEAVY if h in sys.modules],
            "redraw_ms": statistics.median(times), "redraw_max_ms": max(times), "moves": len(times),
            "control": control_path}


def kernel_rows(names: list[str], moves: int) -> list[dict]:
    """:func:`measure_kernel` for each dashboard, each in a fresh process (so imports and models are its own)."""
    import json

    rows = []
    for name in names:
        proc = subprocess.run([sys.executable, __file__, "--measure-one", name, "--moves", str(moves)],
                              capture_output=True, text=True, cwd=REPO, timeout=900,
                              env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                                  filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))))
        if proc.returncode != 0:
            rows.append({"dashboard": name, "error": proc.stderr.strip().splitlines()[-1:] or ["failed"]})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(kernel_table(rows[-1:]).splitlines()[-1], flush=True)
    return rows


def kernel_table(rows: list[dict]) -> str:
    lines = [f"# Dashboard kernels (`benchmarks/dashboards.py --kernels`, {os.cpu_count()} CPUs, one fresh process "
             "per dashboard, models from the cache)", "",
             "| dashboard | MB private (USS) after imports / after build | MB RSS | build s | heavy packages "
             "imported | control moved | re-draw ms median / max | under 100 ms |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['dashboard']} | failed: {r['error'][0][:100]} |||||||")
            continue
        lines.append(f"| {r['dashboard']} | {r['import_uss']:.0f} / {r['uss']:.0f} | {r['rss']:.0f} | "
                     f"{r['build_s']:.1f} | {', '.join(r['heavy']) or '-'} | {r['control']} ({r['moves']}x) | "
                     f"{r['redraw_ms']:.0f} / {r['redraw_max_ms']:.0f} | "
                     f"{'yes' if r['redraw_max_ms'] < 100 else 'no'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=list(PAGES), choices=list(PAGES))
    parser.add_argument("--cull-idle-timeout", type=int, default=ServeSettings().cull_idle_timeout)
    parser.add_argument("--timeout", type=float, default=300, help="seconds a page may take to render")
    parser.add_argument("--out", default=None, help="default benchmarks/results/dashboards.md "
                        "(dashboard_kernels.md with --kernels)")
    parser.add_argument("--kernels", action="store_true", help="kernel memory and re-draw time, no browser")
    parser.add_argument("--moves", type=int, default=10, help="control moves per dashboard with --kernels")
    parser.add_argument("--measure-one", choices=list(KERNEL_MOVES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_one:
        import json

        print(json.dumps(measure_kernel(args.measure_one, args.moves)))
        return 0
    if args.kernels:
        text = kernel_table(kernel_rows(args.only, args.moves))
        print(text)
        out = Path(args.out or "benchmarks/results/dashboard_kernels.md")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        return 0
    args.out = args.out or "benchmarks/results/dashboards.md"
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")
    settings = ServeSettings(cull_idle_timeout=args.cull_idle_timeout)
    workdir = Path(tempfile.mkdtemp(prefix="wb-dash-load-"))
    rows = []
    for name in args.only:
        print(f"[{name}] {args.sessions} sessions ...", flush=True)
        rows.append(run_dashboard(name, PAGES[name], args.sessions, settings, workdir, args.timeout))
        print(table(rows[-1:], settings).splitlines()[-1], flush=True)
    text = table(rows, settings)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0 if all(r["kernels_left"] == 0 and r["failed"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
