"""What a page may read and build: everything in a notebook, only what the operator allowed on a served page.

In JupyterLab the user owns the kernel, so a path or a ``package.module:Class`` typed into a "Your data" row is the
user's own business. A dashboard served by Voilà is different: Voilà's promise is that a visitor cannot run code,
and a visitor types those rows. So when the kernel is *served* (Voilà sets ``VOILA_REQUEST_URL`` /
``VOILA_SERVER_URL`` in the kernels it starts; ``WORKBENCH_SERVED=1`` / ``0`` forces it either way):

* a path is read only if it lies, **resolved** (``..`` and symlinks followed), under an allowed root: the uploads
  folder of this kernel (:func:`upload_root`), the project's ``datasets/`` folder and the folders the operator named
  (``WORKBENCH_ALLOW_PATHS``, ``os.pathsep``-separated; ``python -m widgets.serve --allow-path DIR`` sets it). A
  path outside is refused before anything of it is touched;
* a ``package.module:Class`` model is refused **before anything is imported** unless its top-level package is on the
  operator's list (``WORKBENCH_ALLOW_MODULES``, comma-separated; ``--allow-model-package NAME``);
* an upload larger than ``WORKBENCH_MAX_UPLOAD_MB`` (default 50) is refused before it is written.

Refusals are :class:`PermissionError` (an ``OSError``) whose text says what is allowed, so the pages show them.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SERVED_ENV = "WORKBENCH_SERVED"
ALLOW_PATHS_ENV = "WORKBENCH_ALLOW_PATHS"
ALLOW_MODULES_ENV = "WORKBENCH_ALLOW_MODULES"
MAX_UPLOAD_ENV = "WORKBENCH_MAX_UPLOAD_MB"
VOILA_ENV = ("VOILA_REQUEST_URL", "VOILA_SERVER_URL", "VOILA_BASE_URL")  #: set by Voilà in the kernels it starts
DEFAULT_MAX_UPLOAD_MB = 50
DATA_FOLDER = Path(__file__).resolve().parents[1] / "datasets"
MODULE_CLASS = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")  #: the ``package.module:Class`` form


def _truthy(value: str) -> bool | None:
    value = value.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    return None


@dataclass(frozen=True)
class AccessPolicy:
    """Whether the kernel is served, and what a served page may then read (``roots``), build (``modules``) and
    upload (``max_upload_bytes``). Open (``served=False``) allows everything."""

    served: bool
    roots: tuple[Path, ...] = ()
    modules: tuple[str, ...] = ()
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AccessPolicy:
        """The policy of this kernel, read from its environment (see the module docstring)."""
        env = os.environ if environ is None else environ
        forced = _truthy(env.get(SERVED_ENV, ""))
        served = forced if forced is not None else any(env.get(name) for name in VOILA_ENV)
        named = [p for p in env.get(ALLOW_PATHS_ENV, "").split(os.pathsep) if p.strip()]
        roots = tuple(dict.fromkeys(Path(os.path.abspath(Path(p.strip()).expanduser())).resolve()
                                    for p in (str(upload_root()), str(DATA_FOLDER), *named))) if served else ()
        modules = tuple(m.strip() for m in env.get(ALLOW_MODULES_ENV, "").split(",") if m.strip())
        try:
            megabytes = float(env.get(MAX_UPLOAD_ENV, "") or DEFAULT_MAX_UPLOAD_MB)
        except ValueError:
            raise ValueError(f"{MAX_UPLOAD_ENV} must be a number of megabytes, got "
                             f"{env.get(MAX_UPLOAD_ENV)!r}") from None
        return cls(served, roots, modules, int(megabytes * 2**20))

    def check_path(self, path: str | Path, what: str = "file") -> Path:
        """``path`` made absolute (resolved when served); PermissionError when served and it lies outside the roots.

        The lexical check (``..`` collapsed, nothing on disk touched) comes first, so a path outside the roots is
        refused before the file system is asked anything about it; then the resolved path (symlinks followed) must
        still lie inside, so a link in an allowed folder cannot point out of it.
        """
        path = Path(os.path.abspath(Path(str(path).strip()).expanduser()))
        if not self.served:
            return path
        if not self._inside(path):
            raise PermissionError(self._outside_text(path, what))
        resolved = path.resolve()
        if not self._inside(resolved):
            raise PermissionError(self._outside_text(path, what) + " (it links out of them)")
        return resolved

    def check_module(self, target: str, what: str = "model") -> None:
        """PermissionError, before anything is imported, when served and ``target`` (``package.module:Class``)
        is not in an allowed package."""
        if not self.served:
            return
        module = target.partition(":")[0]
        if any(module == allowed or module.startswith(f"{allowed}.") for allowed in self.modules):
            return
        allowed = (f"classes of {', '.join(self.modules)}" if self.modules else
                   "no module:Class at all (the operator can allow packages with --allow-model-package)")
        raise PermissionError(f"{what} {target!r}: this served page builds no classes outside its allowed packages "
                              f"({allowed}); give a TorchScript file (upload it) instead")

    def check_upload(self, name: str, size: int) -> None:
        """PermissionError when served and an upload of ``size`` bytes exceeds the limit."""
        if self.served and size > self.max_upload_bytes:
            raise PermissionError(f"upload {name}: {size / 2**20:.1f} MB is more than this served page accepts "
                                  f"({self.max_upload_bytes / 2**20:.0f} MB, {MAX_UPLOAD_ENV})")

    def _inside(self, path: Path) -> bool:
        return any(path == root or path.is_relative_to(root) for root in self.roots)

    def _outside_text(self, path: Path, what: str) -> str:
        return (f"{what} {path}: this served page reads only uploads and files under "
                f"{', '.join(str(r) for r in self.roots[1:]) or 'no folder'} (the operator can add folders with "
                "--allow-path)")


def current_policy() -> AccessPolicy:
    """The policy of this process now (read from the environment at each call: cheap, and follows changes)."""
    return AccessPolicy.from_env()


@lru_cache(maxsize=1)
def upload_root() -> Path:
    """A private folder (mode 0700) of this process for uploaded files; always an allowed root."""
    return Path(tempfile.mkdtemp(prefix="wb-uploads-")).resolve()


def is_module_class(name: str) -> bool:
    """``name`` has the ``package.module:Class`` form (and is not, say, a Windows drive path)."""
    return bool(MODULE_CLASS.match(name.strip()))
