"""Serve the dashboards with Voilà as the project runs them everywhere: ``python -m widgets.serve``.

Every dashboard page starts a kernel of its own (0.6-0.9 GB with its models). Voilà keeps a kernel as long as
nothing shuts it down, so pages that were closed, or abandoned with the browser still open (a closed laptop lid, a
lost network), would hold their memory for ever. Two standard Jupyter-server mechanisms bound that:

* **websocket pings** (``ws_ping_interval`` / ``ws_ping_timeout``, milliseconds): the server pings each page; a page
  that stops answering is disconnected, as a closed page is at once;
* **kernel culling** (``MappingKernelManager.cull_idle_timeout`` / ``cull_interval``, seconds, with
  ``cull_connected=False``): a kernel that has no page connected and no activity for ``cull_idle_timeout`` seconds
  is shut down. A page still connected keeps its kernel however long its user reads it.

So a closed page frees its kernel within ``cull_idle_timeout + cull_interval`` seconds, an abandoned one within
``ping_timeout + cull_idle_timeout + cull_interval``. ``make dashboard`` runs this module; ``binder/postBuild``
writes :func:`server_config` into the Jupyter server's config (Voilà runs there as a server extension); the README's
production recipe uses the same values. Tests pass shorter bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

DASHBOARDS = Path(__file__).resolve().parents[1] / "notebooks" / "dashboards"


@dataclass(frozen=True)
class ServeSettings:
    """How long abandoned dashboards may hold their kernels (defaults: freed within about 2.5 / 3 minutes)."""

    cull_idle_timeout: int = 120  #: s without activity before a kernel with no page connected is shut down
    cull_interval: int = 30  #: s between two looks of the culler
    ping_interval_ms: int = 10_000  #: ms between websocket pings to each page
    ping_timeout_ms: int = 30_000  #: ms without an answer before a page counts as gone
    executor_timeout: int = 600  #: s a dashboard's cells may run (first use may train a model)

    def __post_init__(self) -> None:
        for name in ("cull_idle_timeout", "cull_interval", "ping_interval_ms", "ping_timeout_ms", "executor_timeout"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"ServeSettings.{name} must be a positive number, got {getattr(self, name)!r}")

    def tornado_settings(self) -> dict[str, int]:
        return {"ws_ping_interval": self.ping_interval_ms, "ws_ping_timeout": self.ping_timeout_ms}

    def kernel_manager(self) -> dict[str, object]:
        return {"cull_idle_timeout": self.cull_idle_timeout, "cull_interval": self.cull_interval,
                "cull_connected": False, "cull_busy": False}


def voila_args(folder: str | Path = DASHBOARDS, port: int = 8866, settings: ServeSettings | None = None,
               ip: str = "127.0.0.1") -> list[str]:
    """Command-line arguments of ``voila`` (after ``-m voila``) serving ``folder`` with the culling ``settings``."""
    s = settings or ServeSettings()
    args = [str(folder), "--no-browser", f"--port={port}", f"--Voila.ip={ip}",
            "--VoilaConfiguration.extension_denylist=jupyterlab-jupytext",
            f"--VoilaExecutor.timeout={s.executor_timeout}",
            f"--Voila.tornado_settings={json.dumps(s.tornado_settings())}"]
    args += [f"--MappingKernelManager.{key}={value}" for key, value in s.kernel_manager().items()]
    return args


def server_config(settings: ServeSettings | None = None) -> dict[str, dict]:
    """The same bounds as a ``jupyter_server_config.json`` (Binder, JupyterHub: Voilà as a server extension)."""
    s = settings or ServeSettings()
    return {"ServerApp": {"tornado_settings": s.tornado_settings()},
            "MappingKernelManager": s.kernel_manager(),
            "VoilaConfiguration": {"extension_denylist": ["jupyterlab-jupytext"]},
            "VoilaExecutor": {"timeout": s.executor_timeout}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the dashboard gallery with Voilà, culling abandoned kernels.")
    defaults = ServeSettings()
    parser.add_argument("--folder", default=str(DASHBOARDS))
    parser.add_argument("--port", type=int, default=8866)
    parser.add_argument("--ip", default="127.0.0.1")
    parser.add_argument("--cull-idle-timeout", type=int, default=defaults.cull_idle_timeout)
    parser.add_argument("--cull-interval", type=int, default=defaults.cull_interval)
    parser.add_argument("--write-server-config", metavar="FILE",
                        help="write the jupyter_server_config.json for server-extension mode and exit")
    ns = parser.parse_args(argv)
    settings = ServeSettings(cull_idle_timeout=ns.cull_idle_timeout, cull_interval=ns.cull_interval)
    if ns.write_server_config:
        path = Path(ns.write_server_config)
        config = json.loads(path.read_text()) if path.exists() else {}  # keep what the user has there
        for section, values in server_config(settings).items():
            config.setdefault(section, {}).update(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2) + "\n")
        print(f"wrote {path}")
        return
    print(f"Gallery: http://{ns.ip}:{ns.port}/voila/render/index.ipynb  (kernels of closed pages are shut down after "
          f"{settings.cull_idle_timeout} s)", flush=True)
    os.execv(sys.executable, [sys.executable, "-m", "voila", *voila_args(ns.folder, ns.port, settings, ns.ip)])


if __name__ == "__main__":
    main()
