"""Explain (and score) a whole data set, shard by shard, in-process or on Ray Data: :func:`explain_dataset`.

Ray is used as an engine, not re-invented: ``ray.data.from_items(shards).map_batches(ExplainWorker, ...)`` with one
callable-class instance per worker (the model is loaded once per worker), ``concurrency`` workers, one CPU each, a
GPU share each when there are GPUs. By default a local Ray is started in-process with the machine's CPUs and GPUs and
no dashboard; ``address`` (or ``$RAY_ADDRESS``) connects to a cluster instead. Output: ``<out>/shards/*.parquet``
(one row per image x explainer) and ``<out>/run.json`` (what was asked); a re-run of the same request resumes where
the last one stopped, a different request into the same folder is refused (nothing is overwritten).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from workbench.batch.models import ModelSpec
from workbench.batch.sources import list_items
from workbench.batch.worker import ExplainWorker, RunSpec, available_metrics

try:
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - minimal GPU boxes
    tqdm = None


def explain_dataset(data: str | Path, model: str | ModelSpec, explainers: Sequence[str], out: str | Path, *,
                    metrics: Sequence[str] = (), explainer_kwargs: dict[str, dict[str, Any]] | None = None,
                    shard_size: int = 64, limit: int | None = None, engine: str = "ray", workers: int | None = None,
                    address: str | None = None, device: str = "auto", progress: bool = True) -> pd.DataFrame:
    """Explain every image of ``data`` with every explainer in ``explainers``; return the per-explainer summary.

    ``data``: ``"digits"``/``"patches"``, an image folder, an ImageFolder tree or an OTB folder; ``model``: an
    embedded model name, TorchScript file or ``module:Class`` (see :class:`ModelSpec`); ``metrics``: names in
    :func:`~workbench.batch.worker.available_metrics` (the scorecard's metrics that need no masks); ``engine``:
    ``"ray"`` or ``"local"`` (one process, no Ray);
    ``workers``: Ray workers (default: one per CPU, or per GPU when there are GPUs).
    Unknown explainers, metrics, models or devices, a bad input shape, missing data and an output path that is a file
    or another run's folder are refused before any work starts (before Ray does).
    """
    spec_model = model if isinstance(model, ModelSpec) else ModelSpec(model)
    _check_request(spec_model, explainers, metrics, engine, shard_size, limit, device, Path(out))
    items, classes = list_items(data, limit)
    spec_model.load(need_vae="relabel" in explainers)  # fails fast, and trains an embedded model once, here
    spec = RunSpec(spec_model, tuple(explainers), str(out), tuple(metrics), dict(explainer_kwargs or {}),
                   device=device)
    shards = [items[i:i + shard_size] for i in range(0, len(items), shard_size)]
    _claim_output(Path(out), {"data": str(data), "model": dataclasses.asdict(spec_model),
                              "explainers": list(explainers), "metrics": list(metrics),
                              "explainer_kwargs": spec.explainer_kwargs, "shard_size": shard_size,
                              "items": len(items), "classes": classes})
    pending = [{"shard": i, "items": json.dumps([dataclasses.asdict(it) for it in shard])}
               for i, shard in enumerate(shards) if not spec.shard_path(i).exists()]
    bar = tqdm(total=len(shards), initial=len(shards) - len(pending), desc="explain", unit="shard",
               disable=not progress) if tqdm is not None else None
    runner = _run_ray if engine == "ray" else _run_local
    for _done in runner(spec, pending, workers, address):
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return summarize(out)


def _check_request(model: ModelSpec, explainers: Sequence[str], metrics: Sequence[str], engine: str,
                   shard_size: int, limit: int | None, device: str, out: Path) -> None:
    """Refuse a request that cannot run, naming what was expected (cheap checks: nothing is loaded)."""
    from workbench.explainers import available_explainers
    from workbench.train import resolve_device

    unknown = [e for e in explainers if e not in available_explainers()]
    if not explainers or unknown:
        raise ValueError(f"unknown explainer(s) {unknown or '(none given)'}; valid: "
                         f"{', '.join(available_explainers())}")
    bad_metrics = [m for m in metrics if m not in available_metrics()]
    if bad_metrics:
        raise ValueError(f"unknown metric(s) {bad_metrics}; valid (no ground truth needed): "
                         f"{', '.join(available_metrics())}")
    if engine not in ("ray", "local"):
        raise ValueError(f"engine must be 'ray' or 'local', got {engine!r}")
    if shard_size < 1 or (limit is not None and limit < 1):
        raise ValueError(f"shard_size and limit must be at least 1, got {shard_size} and {limit}")
    model.check()
    try:  # Ray workers pick their own device; the name must still be one
        resolve_device(device) if engine == "local" else torch.device("cpu" if device == "auto" else device)
    except RuntimeError as error:
        raise ValueError(f"device {device!r}: {error}") from None
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output folder {out} is a file; give a folder (created if missing)")
    if out.is_dir() and any(out.iterdir()) and not (out / "run.json").is_file():
        raise FileExistsError(f"{out} exists and is not a batch-run folder; choose another output folder")


def _claim_output(out: Path, request: dict[str, Any]) -> None:
    """Write ``run.json`` for a new run; accept the same request again (resume); refuse a different one."""
    manifest = out / "run.json"
    if manifest.exists():
        previous = json.loads(manifest.read_text())
        if previous != json.loads(json.dumps(request)):
            raise FileExistsError(f"{out} holds the results of another request ({manifest}); choose another output "
                                  "folder or remove that one (nothing is overwritten)")
        return
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a batch-run folder; choose another output folder")
    out.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps(request, indent=2))


def _run_local(spec: RunSpec, pending: list[dict], workers: int | None, address: str | None):
    if not pending:
        return
    worker = ExplainWorker(spec)
    for shard in pending:
        yield worker({"shard": [shard["shard"]], "items": [shard["items"]]})


def _run_ray(spec: RunSpec, pending: list[dict], workers: int | None, address: str | None):
    if not pending:
        return
    import ray

    started_here = _init_ray(address)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        n = workers or max(1, int(gpus) if gpus else int(ray.cluster_resources().get("CPU", 1)))
        spec = dataclasses.replace(spec, device="cuda" if gpus else "cpu")
        ds = ray.data.from_items(pending).map_batches(
            ExplainWorker, fn_constructor_kwargs={"spec": spec}, batch_size=1, concurrency=n, num_cpus=1,
            num_gpus=(gpus / n if gpus else 0))  # Ray Data restarts a dead worker and retries its shard
        yield from ds.iter_rows()
    finally:
        if started_here:
            ray.shutdown()


def _init_ray(address: str | None) -> bool:
    """Connect to ``address`` / ``$RAY_ADDRESS``, or start a local Ray (no dashboard); True if started here."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False  # ours is the one bar
    else:
        start_local_ray()
    return True


def start_local_ray(num_cpus: int | None = None) -> None:
    """A local Ray for this job: the machine's CPUs (or ``num_cpus``) and GPUs, no dashboard, no metrics agent (its
    start-up races a 15 s raylet timeout on small busy machines, ray-project/ray#65983), no Ray Data progress bars."""
    import ray

    os.environ.setdefault("RAY_enable_metrics_collection", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False


def read_results(out: str | Path, columns: Sequence[str] | None = None, filters: list | None = None) -> pd.DataFrame:
    """The rows of a batch run (all shards), only ``columns`` (leave out ``"map"`` to skip the maps) and rows
    matching pyarrow ``filters`` (e.g. ``[("status", "==", "failed")]``): a 100,000-row output is browsed without
    loading every map."""
    import pyarrow.dataset as pads

    folder = Path(out) / "shards"
    if not folder.is_dir():
        raise FileNotFoundError(f"{out}: no batch-run output (expected {folder} with shard-*.parquet files)")
    dataset = pads.dataset(str(folder), format="parquet")
    expr = None
    for name, op, value in filters or []:
        term = _compare(pads.field(name), op, value)
        expr = term if expr is None else expr & term
    return dataset.to_table(columns=list(columns) if columns else None, filter=expr).to_pandas()


def _compare(field, op: str, value):
    ops = {"==": field == value, "!=": field != value, ">": field > value, ">=": field >= value,
           "<": field < value, "<=": field <= value}
    if op == "in":
        return field.isin(value)
    if op not in ops:
        raise ValueError(f"unknown filter operator {op!r}; valid: {', '.join([*ops, 'in'])}")
    return ops[op]


def summarize(out: str | Path) -> pd.DataFrame:
    """Per explainer: rows, ok / degenerate / failed counts, mean seconds per image, mean of each metric."""
    columns = [c for c in _columns(out) if c != "map" and c != "map_shape"]
    rows = read_results(out, columns)
    metrics = [c for c in rows.columns if c.startswith("metric_")]
    grouped = rows.groupby("explainer", sort=False)
    summary = pd.DataFrame({"rows": grouped.size(), "ok": grouped["status"].apply(lambda s: int((s == "ok").sum())),
                            "failed": grouped["status"].apply(lambda s: int((s == "failed").sum())),
                            "s_per_image": grouped["seconds"].mean()})
    summary["other_status"] = summary["rows"] - summary["ok"] - summary["failed"]
    for m in metrics:
        summary[m] = grouped[m].mean()
    return summary.reset_index()


def _columns(out: str | Path) -> list[str]:
    import pyarrow.dataset as pads

    return pads.dataset(str(Path(out) / "shards"), format="parquet").schema.names
