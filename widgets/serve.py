"""Serve the dashboards with Voilà as the project runs them everywhere: ``python -m widgets.serve``.

Every dashboard page starts a kernel of its own (0.6-0.9 GB with its models). Voilà keeps a kernel as long as
nothing shuts it down, so pages that were closed, or abandoned with the browser still open (a closed laptop lid, a
lost network), would hold their memory for ever. Two standard Jupyter-server mechanisms bound that:

* **websocket pings** (``ws_ping_interval`` / ``ws_ping_timeout``, milliseconds): the server pings each page; a page
  that stops answering is disconnected, as a closed page is at once;
* **kernel culling** (``MappingKernelManager.cull_idle_timeout`` / ``cull_interval``, seconds, with
  ``cull_connected=False``): a kernel that has no page connected and no activity for ``cull_idle_timeout`` seconds
  is shut down. A page still connected keeps its kernel however long its user reads it.

So an abandoned page frees its kernel within ``ping_timeout + cull_idle_timeout + cull_interval`` seconds. A page
that is closed says so itself: Voilà's page posts ``voila/api/shutdown/<kernel>`` on ``beforeunload`` with the
``_xsrf`` cookie, which Voilà's streamed page never sets (``403 '_xsrf' argument missing``, and the kernel waited for
the culler); the project's template (``widgets/jupyter/voila/templates/workbench``, a child of Voilà's ``lab``)
makes that cookie, so the kernel goes at once. The template also drops the lab template's font-awesome CDN links
(``voila.js`` bundles the same icons), so a page asks nothing of any host but the server.

The ping pair: jupyter-server runs its own pinger in **milliseconds** (``ws_ping_interval`` 10 000 ms between pings,
``ws_ping_timeout`` 30 000 ms since the last pong, which must exceed the interval: at each ping the previous pong is
about one interval old). Its handlers hand the same numbers to tornado (>= 6.5), whose own pinger reads them as
**seconds** (one ping per 10 000 s, i.e. never) and warns that the timeout "cannot be longer" than the interval. The
timeout in force is jupyter-server's 30 s (its log says ``WebSocket ping timeout after ... ms``); the warning, about
a pinger that never fires, is filtered out of this server's log (:func:`run_voila`), nothing else.

Served kernels are confined (:mod:`workbench.access`): Voilà marks the kernels it starts, and :func:`serve_env`
names the folders (``--allow-path``) and model packages (``--allow-model-package``) a visitor may use and the upload
limit. ``make dashboard`` runs this module; ``binder/postBuild`` writes :func:`server_config` (and installs the
template) for the Jupyter server, where Voilà runs as a server extension. Tests pass shorter bounds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.access import (
    ALLOW_MODULES_ENV,
    ALLOW_PATHS_ENV,
    DEFAULT_MAX_UPLOAD_MB,
    MAX_UPLOAD_ENV,
    SERVED_ENV,
)

DASHBOARDS = Path(__file__).resolve().parents[1] / "notebooks" / "dashboards"
TEMPLATE_ROOT = Path(__file__).resolve().parent / "jupyter"  #: a Jupyter data dir holding voila/templates/<TEMPLATE>
TEMPLATE = "workbench"


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
        if self.ping_timeout_ms <= self.ping_interval_ms:  # jupyter-server: time since the last pong, at each ping
            raise ValueError(f"ServeSettings.ping_timeout_ms ({self.ping_timeout_ms}) must exceed ping_interval_ms "
                             f"({self.ping_interval_ms}): at each ping the last pong is about one interval old")

    def tornado_settings(self, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB) -> dict[str, int]:
        """jupyter-server's ping pair (ms) and a websocket message limit that lets an allowed upload through
        (tornado's default of 10 MiB would drop the page's connection on a bigger one)."""
        return {"ws_ping_interval": self.ping_interval_ms, "ws_ping_timeout": self.ping_timeout_ms,
                "websocket_max_message_size": int((max_upload_mb + 8) * 2**20)}

    def kernel_manager(self) -> dict[str, object]:
        return {"cull_idle_timeout": self.cull_idle_timeout, "cull_interval": self.cull_interval,
                "cull_connected": False, "cull_busy": False}


def voila_args(folder: str | Path = DASHBOARDS, port: int = 8866, settings: ServeSettings | None = None,
               ip: str = "127.0.0.1", max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB) -> list[str]:
    """Command-line arguments of ``voila`` (after ``-m voila``) serving ``folder`` with the culling ``settings``."""
    s = settings or ServeSettings()
    args = [str(folder), "--no-browser", f"--port={port}", f"--Voila.ip={ip}",
            "--VoilaConfiguration.extension_denylist=jupyterlab-jupytext", f"--VoilaConfiguration.template={TEMPLATE}",
            f"--VoilaExecutor.timeout={s.executor_timeout}",
            f"--Voila.tornado_settings={json.dumps(s.tornado_settings(max_upload_mb))}"]
    args += [f"--MappingKernelManager.{key}={value}" for key, value in s.kernel_manager().items()]
    return args


def server_config(settings: ServeSettings | None = None) -> dict[str, dict]:
    """The same bounds as a ``jupyter_server_config.json`` (Binder, JupyterHub: Voilà as a server extension)."""
    s = settings or ServeSettings()
    return {"ServerApp": {"tornado_settings": s.tornado_settings()},
            "MappingKernelManager": s.kernel_manager(),
            "VoilaConfiguration": {"extension_denylist": ["jupyterlab-jupytext"], "template": TEMPLATE},
            "VoilaExecutor": {"timeout": s.executor_timeout}}


def serve_env(allow_paths: Sequence[str | Path] = (), allow_packages: Sequence[str] = (),
              max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the Voilà server, which its kernels inherit: the template on ``JUPYTER_PATH``, the
    served policy on (:mod:`workbench.access`), the folders and model packages a visitor may use, the upload limit.
    """
    env = dict(os.environ if environ is None else environ)
    missing = [str(p) for p in allow_paths if not Path(p).expanduser().is_dir()]
    if missing:
        raise ValueError(f"--allow-path must name existing folders; not found: {', '.join(missing)}")
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(TEMPLATE_ROOT), env.get("JUPYTER_PATH", "")) if p)
    env[SERVED_ENV] = "1"
    env[ALLOW_PATHS_ENV] = os.pathsep.join(str(Path(p).expanduser().resolve()) for p in allow_paths)
    env[ALLOW_MODULES_ENV] = ",".join(allow_packages)
    env[MAX_UPLOAD_ENV] = str(max_upload_mb)
    return env


class _ClippedPingWarning(logging.Filter):
    """Drops tornado's "websocket_ping_timeout (T) cannot be longer than the websocket_ping_interval (I)" for the
    pair jupyter-server uses in milliseconds (see the module docstring); any other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "cannot be longer than the websocket_ping_interval" not in record.getMessage()


def run_voila(args: Sequence[str]) -> None:
    """Run Voilà in this process with ``args`` (:func:`voila_args`), tornado's misleading ping warning filtered."""
    from voila.app import main as voila_main

    logging.getLogger("tornado.general").addFilter(_ClippedPingWarning())
    sys.argv = ["voila", *args]
    voila_main()


def install_template(data_dir: str | Path | None = None) -> Path:
    """Copy the project's Voilà template into a Jupyter data dir (default: the user's), for server-extension mode."""
    from jupyter_core.paths import jupyter_data_dir

    target = Path(data_dir or jupyter_data_dir()) / "voila" / "templates" / TEMPLATE
    shutil.copytree(TEMPLATE_ROOT / "voila" / "templates" / TEMPLATE, target, dirs_exist_ok=True)
    return target


def main(argv: list[str] | None = None) -> None:
    """``python -m widgets.serve [--allow-path DIR] ...``; ``--voila ARGS`` runs Voilà with ``ARGS`` as they are
    (the browser tests' way in, with their own bounds and environment)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--voila"]:
        run_voila(argv[1:])
        return
    parser = argparse.ArgumentParser(description="Serve the dashboard gallery with Voilà, culling abandoned kernels.")
    defaults = ServeSettings()
    parser.add_argument("--folder", default=str(DASHBOARDS))
    parser.add_argument("--port", type=int, default=8866)
    parser.add_argument("--ip", default="127.0.0.1")
    parser.add_argument("--cull-idle-timeout", type=int, default=defaults.cull_idle_timeout)
    parser.add_argument("--cull-interval", type=int, default=defaults.cull_interval)
    parser.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                        help="a folder whose files visitors may load by path (repeatable; uploads and datasets/ "
                             "always are)")
    parser.add_argument("--allow-model-package", action="append", default=[], metavar="NAME",
                        help="a package whose classes visitors may load as package.module:Class (repeatable; none "
                             "by default)")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB)
    parser.add_argument("--write-server-config", metavar="FILE",
                        help="write the jupyter_server_config.json for server-extension mode, install the template "
                             "and exit")
    ns = parser.parse_args(argv)
    settings = ServeSettings(cull_idle_timeout=ns.cull_idle_timeout, cull_interval=ns.cull_interval)
    if ns.write_server_config:
        path = Path(ns.write_server_config)
        config = json.loads(path.read_text()) if path.exists() else {}  # keep what the user has there
        for section, values in server_config(settings).items():
            config.setdefault(section, {}).update(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2) + "\n")
        print(f"wrote {path}; template in {install_template()}")
        return
    env = serve_env(ns.allow_path, ns.allow_model_package, ns.max_upload_mb)
    os.environ.update(env)
    print(f"Gallery: http://{ns.ip}:{ns.port}/voila/render/index.ipynb  (kernels of closed pages are shut down at "
          f"once, of abandoned ones after {settings.cull_idle_timeout} s; visitors may load files under "
          f"{env[ALLOW_PATHS_ENV] or 'no folder'} besides uploads and datasets/, and model classes of "
          f"{env[ALLOW_MODULES_ENV] or 'no package'})", flush=True)
    run_voila(voila_args(ns.folder, ns.port, settings, ns.ip, ns.max_upload_mb))


if __name__ == "__main__":
    main()
