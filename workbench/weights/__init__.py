"""Shipped weights: the full-setting models every dashboard opens with, trained by the project's own recipes.

Each ``<name>-<hash>.pt`` in this folder is what :func:`workbench.cache.cached_model` would have written for the
recipe whose hash is ``<hash>``; beside it ``<name>-<hash>.json`` records the recipe, its hash, the metrics the
model reached when it was trained (accuracy, AUC or reconstruction error, as the recipe measures them), where it
was trained and how long it took. ``cached_model`` loads a shipped file when the recipe matches and trains
otherwise, so a changed recipe never silently uses stale weights.

Re-make them (on a GPU, a few minutes) with ``python -m workbench.weights export OUT_DIR`` and copy the files here.
Files over 2 MB are stored in float16 (the sidecar says so and records the metrics of the stored weights where the
recipe's evaluation is known).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import torch

from workbench.cache import (
    SHIPPED_DIR,
    SHIPPED_ENV,
    NotShippedError,
    load_state,
    record_models,
    shipped_only,
    shipping_enabled,
)

MAX_FILE_BYTES = 2_000_000
T = TypeVar("T")
EARLIER = "from the export cache (trained earlier with the same recipe)"


def dashboard_models(load: Callable[[bool], T], smoke: bool | None = None) -> T:
    """What a dashboard opens with: ``load(smoke)``. An explicit ``smoke`` wins; otherwise the full setting when the
    package ships its weights (loaded with nothing trained); otherwise :func:`workbench.train.smoke_mode`
    (``$WORKBENCH_SMOKE``, else the smoke setting on a CPU-only machine), as before weights shipped. So a dashboard
    never starts an hour of full-setting training on a CPU because a recipe has no shipped weights."""
    if smoke is not None:
        return load(bool(smoke))
    if shipping_enabled():
        try:
            with shipped_only():
                return load(False)
        except NotShippedError:
            pass
    from workbench.runtime import smoke_mode

    return load(smoke_mode(None))


def _relabel(smoke: bool | None) -> None:
    from workbench.models import pretrained

    for load in (pretrained.digits_classifier, pretrained.digits_vae, pretrained.patches_classifier,
                 pretrained.patches_vae):
        load(smoke=bool(smoke), progress=False)  # the relabel dashboard always opens the full setting


def _whitening(smoke: bool | None) -> None:
    from workbench.whitening import whitening_detector

    dashboard_models(lambda s: [whitening_detector(w, smoke=s, progress=False, data=data)  # sbi: real-face section
                                for data in ("embedded", "sbi") for w in (True, False)], smoke)


def _stdt(smoke: bool | None) -> None:
    from workbench.stdt import stdt_dashboard_models

    dashboard_models(lambda s: stdt_dashboard_models(smoke=s, progress=False), smoke)


def _horkd(smoke: bool | None) -> None:
    from workbench.horkd import default_models

    dashboard_models(lambda s: default_models(smoke=s, progress=False), smoke)


def _tracking(smoke: bool | None) -> None:
    from workbench.tracking.pretrained import patch_classifier

    patch_classifier(smoke=bool(smoke), progress=False)  # the deep features of the trackers' "cnn" option


#: each dashboard's default (full-setting) models, in gallery order
DASHBOARD_MODELS: dict[str, Callable[[bool | None], None]] = {
    "relabel": _relabel, "whitening": _whitening, "stdt": _stdt, "horkd": _horkd, "tracking": _tracking,
}


def prepare(names: Iterable[str] | None = None, log: Callable[[str], None] | None = print,
            smoke: bool | None = None) -> list[dict[str, Any]]:
    """Load (shipped or cached) or train what every named dashboard opens with (``smoke`` None: as the dashboard
    decides, :func:`dashboard_models`; False: the full setting); return the ``cached_model`` calls made, each
    ``{dashboard, name, key, path, source, meta, seconds}``."""
    names = list(DASHBOARD_MODELS) if names is None else list(names)
    unknown = sorted(set(names) - set(DASHBOARD_MODELS))
    if unknown:
        raise ValueError(f"unknown dashboard(s) {unknown}; expected some of {sorted(DASHBOARD_MODELS)}")
    calls: list[dict[str, Any]] = []
    for dashboard in names:
        t0 = time.perf_counter()
        with record_models() as made:
            DASHBOARD_MODELS[dashboard](smoke)
        seconds = time.perf_counter() - t0
        calls += [{**call, "dashboard": dashboard, "seconds": seconds} for call in made]
        if log:
            sources = sorted({call["source"] for call in made})
            log(f"{dashboard}: {len(made)} default model(s) ready ({', '.join(sources)}) in {seconds:.1f} s")
    return calls


def _scalar_metrics(meta: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in meta.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _write_shipped(call: dict[str, Any], out_dir: Path, device: str, setting: str = "full") -> Path:
    blob = torch.load(call["path"], map_location="cpu", weights_only=True)
    target = out_dir / f"{call['name']}-{call['key']}.pt"
    torch.save(blob, target)
    dtype = "float32"
    if target.stat().st_size > MAX_FILE_BYTES:  # halve it: the weights of a small VAE lose nothing that matters
        blob["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
        torch.save(blob, target)
        dtype = "float16"
    meta = blob.get("meta", {})
    sidecar = {"name": call["name"], "recipe_hash": call["key"], "dashboard": call["dashboard"], "setting": setting,
               "recipe": meta.get("config", {}), "metrics": _scalar_metrics(meta), "stored_dtype": dtype,
               "bytes": target.stat().st_size, "trained_on": device, "seconds": round(call["seconds"], 1),
               "source": "trained here" if call["source"] == "trained" else EARLIER,
               "torch": torch.__version__, "python": platform.python_version(),
               "date": time.strftime("%Y-%m-%d", time.gmtime())}
    target.with_suffix(".json").write_text(json.dumps(sidecar, indent=1, sort_keys=True, default=str) + "\n")
    return target


def export(out_dir: str | Path, names: Iterable[str] | None = None, cache: str | Path | None = None,
           smoke: bool = False) -> list[Path]:
    """Train every dashboard's default models from scratch (in a fresh temporary cache, shipped files ignored) on
    the best device here, and write ``<name>-<hash>.pt`` + ``.json`` for each into ``out_dir``. ``cache`` uses a
    folder where some were just trained (e.g. by a benchmark on the same machine) instead of a fresh one.
    ``smoke=True`` exports the smoke setting instead (the sidecar says so): what a dashboard whose full weights are
    not shipped opens with, so that it opens without training even then."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file; give the folder to write the exported files into")
    out.mkdir(parents=True, exist_ok=True)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.processor() or 'cpu'})"
    saved_env = {k: os.environ.get(k) for k in ("WORKBENCH_CACHE", SHIPPED_ENV)}
    with tempfile.TemporaryDirectory(prefix="wb-export-") as tmp:
        os.environ["WORKBENCH_CACHE"], os.environ[SHIPPED_ENV] = str(cache or tmp), "0"
        try:
            calls = prepare(names, smoke=smoke)
            return [_write_shipped(call, out, device, "smoke" if smoke else "full") for call in calls]
        finally:
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def manifest() -> list[dict[str, Any]]:
    """The sidecars of the shipped files (recipe, hash, metrics reached, where trained), sorted by name."""
    return [json.loads(p.read_text()) for p in sorted(SHIPPED_DIR.glob("*.json"))]


def _checked_pair(pt: Path) -> Path:
    """``pt``'s sidecar, after checking that the pair is what ``export`` writes: ``<name>-<hash>.pt`` whose
    sidecar names the same name and hash and whose file holds a readable ``state_dict``; else a ValueError (or
    :class:`CorruptCheckpointError`) naming the file."""
    sidecar = pt.with_suffix(".json")
    if not sidecar.is_file():
        raise FileNotFoundError(f"{pt} has no sidecar {sidecar.name}: export writes both")
    try:
        record = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{sidecar}: not a sidecar written by export (not JSON: {exc})") from exc
    expected = f"{record.get('name')}-{record.get('recipe_hash')}" if isinstance(record, dict) else None
    if expected != pt.stem:
        raise ValueError(f"{sidecar}: names {expected!r}, not the file's {pt.stem!r} (expected the name and "
                         "recipe_hash of the .pt beside it, as export writes them)")
    blob = load_state(pt)
    if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), dict):
        raise ValueError(f"{pt}: holds no state_dict (expected a file written by python -m workbench.weights export)")
    return sidecar


def install(files_dir: str | Path, log: Callable[[str], None] | None = None) -> list[Path]:
    """Copy exported ``.pt`` + ``.json`` pairs from ``files_dir`` into the package folder. Every pair is checked
    first (sidecar present, naming the file's name and hash, weights readable): one bad pair and nothing is copied.
    A shipped file of the same name is the same recipe hash, so it is replaced (``log`` says so). A folder that is
    missing or holds no ``.pt`` file is refused (FileNotFoundError), so that nothing passes for installed."""
    folder = Path(files_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (expected the OUT_DIR of an export: <name>-<hash>.pt and "
                                ".json pairs)")
    files = sorted(folder.glob("*.pt"))
    if not files:
        raise FileNotFoundError(f"{folder} holds no exported .pt file (expected <name>-<hash>.pt and .json pairs, "
                                "as python -m workbench.weights export writes them)")
    pairs = [(pt, _checked_pair(pt)) for pt in files]
    copied = []
    for pt, sidecar in pairs:
        if log and (SHIPPED_DIR / pt.name).exists():
            log(f"{pt.name}: replaces the shipped file of the same recipe hash")
        for src in (pt, sidecar):
            shutil.copy2(src, SHIPPED_DIR / src.name)
        copied.append(SHIPPED_DIR / pt.name)
    return copied


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench.weights export|install|list``; returns the exit status (2 for a user error, one line on
    stderr; ``--debug`` for its traceback; see :mod:`workbench.cli`)."""
    from workbench.cli import Parser, add_debug, add_smoke, run_command

    parser = Parser(prog="python -m workbench.weights", description=__doc__.splitlines()[0])
    add_debug(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="train every dashboard's default models and write shipped files")
    ex.add_argument("out_dir")
    ex.add_argument("--only", nargs="*", choices=sorted(DASHBOARD_MODELS))
    add_smoke(ex, "the smoke setting: what a dashboard without shipped full weights opens")
    ex.add_argument("--cache", default=None, help="a cache folder holding models trained earlier (else a fresh one)")
    ins = sub.add_parser("install", help="copy exported files into the package folder")
    ins.add_argument("files_dir")
    listing = sub.add_parser("list", help="the shipped files and the metrics they reached")
    for command in (ex, ins, listing):
        add_debug(command, top=False)
    args = parser.parse_args(argv)
    return run_command(parser.prog, lambda: _run(args), debug=args.debug)


def _run(args: Any) -> None:
    if args.command == "export":
        for path in export(args.out_dir, args.only, cache=args.cache, smoke=args.smoke):
            print(path, flush=True)
    elif args.command == "install":
        for path in install(args.files_dir, log=lambda line: print(line, file=sys.stderr)):
            print(path)
    else:
        for entry in manifest():
            print(entry["name"], entry["recipe_hash"], entry["metrics"], entry["trained_on"], sep="  ")
