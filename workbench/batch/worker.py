"""One worker of a batch run: loads the model once, explains whole shards, writes each shard's Parquet file.

The same class runs in-process (``engine="local"``) and as a Ray Data callable class (one per Ray worker). A shard's
file is written atomically (temp file + rename) and a shard whose file exists is skipped, so a re-run after a crash,
or Ray retrying a task whose worker died, never writes a row twice.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.batch.models import ModelSpec
from workbench.batch.sources import Item, load_item

#: lower-case names kept for the RISE metrics (the columns ``metric_deletion`` / ``metric_insertion``)
_ALIASES = {"deletion": "Deletion", "insertion": "Insertion"}


def available_metrics() -> tuple[str, ...]:
    """Metric names a run can add to each row: the scorecard's metrics that need no ground-truth masks
    (:data:`workbench.evaluation.METRICS`, Quantus's names) and the aliases ``deletion`` / ``insertion``."""
    from workbench.evaluation import METRICS as SCORECARD

    return (*_ALIASES, *(name for name, cls in SCORECARD.items() if not cls.needs_masks))


def metric_higher_is_better(name: str) -> bool:
    """The declared direction of a run's metric, by its name or its column (``"deletion"``, ``"metric_deletion"``,
    ``"PixelFlipping"``): True when higher scores are better; a ValueError naming the known metrics otherwise."""
    from workbench.evaluation import METRICS as SCORECARD

    key = name.removeprefix("metric_")
    key = _ALIASES.get(key, key)
    if key not in SCORECARD:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(available_metrics())}")
    return SCORECARD[key].higher_is_better


def _build_metric(name: str):
    from workbench.evaluation import METRICS as SCORECARD

    return SCORECARD[_ALIASES.get(name, name)]()


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs (picklable): the model, the explainers with their settings, metrics, output."""

    model: ModelSpec
    explainers: tuple[str, ...]
    out: str
    metrics: tuple[str, ...] = ()
    explainer_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    device: str = "cpu"
    threads: int = 1

    def shard_path(self, shard: int) -> Path:
        return Path(self.out) / "shards" / f"shard-{shard:06d}.parquet"


class ExplainWorker:
    """Ray Data callable class: ``__call__({"shard": [...], "items": [json]}) -> {"shard", "rows", "failed", ...}``."""

    def __init__(self, spec: RunSpec) -> None:
        from workbench.explainers import make_explainer
        from workbench.runtime import resolve_device

        torch.set_num_threads(max(1, spec.threads))
        self.spec = spec
        self.device = resolve_device(spec.device)
        model, vae = spec.model.load(need_vae="relabel" in spec.explainers)
        self.model = model.to(self.device)
        self.shape = spec.model.resolved_shape()
        self.explainers = {}
        for name in spec.explainers:
            kwargs = dict(spec.explainer_kwargs.get(name, {}))
            if name == "relabel":
                kwargs["vae"] = vae.to(self.device)
            self.explainers[name] = make_explainer(name, self.model, **kwargs)
        self.metrics = {name: _build_metric(name) for name in spec.metrics}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list] = {"shard": [], "rows": [], "failed": [], "seconds": [], "skipped": []}
        for shard, blob in zip(batch["shard"], batch["items"], strict=True):
            items = [Item(**d) for d in json.loads(str(blob))]
            start = time.perf_counter()
            path = self.spec.shard_path(int(shard))
            skipped = path.exists()
            if skipped:
                rows = pd.read_parquet(path, columns=["status"])
            else:
                rows = pd.DataFrame(self.explain_items(items))
                write_atomic(rows, path)
            out["shard"].append(int(shard))
            out["rows"].append(len(rows))
            out["failed"].append(int((rows["status"] == "failed").sum()))
            out["seconds"].append(time.perf_counter() - start)
            out["skipped"].append(skipped)
        return {k: np.asarray(v) for k, v in out.items()}

    # ------------------------------------------------------------------------------------------------ explaining
    def explain_items(self, items: list[Item]) -> list[dict[str, Any]]:
        """One row per item x explainer; an unreadable or wrong-size image gives failed rows with the reason."""
        rows: list[dict[str, Any]] = []
        good, images = [], []
        for item in items:
            try:
                images.append(load_item(item, self.shape))
                good.append(item)
            except (ValueError, OSError) as exc:
                rows += [self._row(item, name, -1, None, "failed", str(exc), 0.0) for name in self.explainers]
        if not good:
            return rows
        x = torch.stack(images).to(self.device)
        with torch.no_grad():
            targets = self.model(x).argmax(1)
        for name, explainer in self.explainers.items():
            rows += self._explain_with(name, explainer, good, x, targets)
        return rows

    def _explain_with(self, name: str, explainer: Any, items: list[Item], x: torch.Tensor,
                      targets: torch.Tensor) -> list[dict[str, Any]]:
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():  # per-image problems are in the rows' status, not a flood of warnings
                warnings.simplefilter("ignore", UserWarning)
                maps = explainer.attribute(x, targets)
            statuses = list(explainer.last_status)
            seconds = [(time.perf_counter() - start) / len(items)] * len(items)
            reasons = [""] * len(items)
        except Exception:  # one bad image must not fail its neighbours: explain one at a time to find it
            maps, statuses, reasons, seconds = self._one_by_one(explainer, x, targets)
        scores = self._metrics(name, x, maps, targets, statuses)
        return [self._row(item, name, int(targets[i]), maps[i], statuses[i], reasons[i], seconds[i],
                          {k: v[i] for k, v in scores.items()}) for i, item in enumerate(items)]

    def _one_by_one(self, explainer: Any, x: torch.Tensor, targets: torch.Tensor):
        maps, statuses, reasons, seconds = torch.full_like(x, float("nan")), [], [], []
        for i in range(len(x)):
            start = time.perf_counter()
            try:
                maps[i] = explainer.attribute(x[i:i + 1], targets[i:i + 1])[0]
                statuses.append(explainer.last_status[0])
                reasons.append("")
            except Exception as exc:
                statuses.append("failed")
                reasons.append(f"{type(exc).__name__}: {exc}"[:500])
            seconds.append(time.perf_counter() - start)
        return maps, statuses, reasons, seconds

    def _metrics(self, explainer: str, x: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor,
                 statuses: list[str]) -> dict[str, np.ndarray]:
        ok = torch.tensor([s != "failed" for s in statuses], device=x.device)
        scores = {}
        for name in self.spec.metrics:
            values = np.full(len(x), np.nan)
            if ok.any():
                metric = self.metrics[name]
                result = metric(self.model, x[ok], targets[ok], maps[ok].to(x.device),
                                explain=self.explainers[explainer] if metric.needs_explain else None,
                                generator=torch.Generator(device=x.device).manual_seed(0))
                values[ok.cpu().numpy()] = torch.as_tensor(result).detach().float().cpu().numpy()
            scores[f"metric_{name}"] = values
        return scores

    @staticmethod
    def _row(item: Item, explainer: str, target: int, attribution: torch.Tensor | None, status: str, reason: str,
             seconds: float, metrics: dict[str, float] | None = None) -> dict[str, Any]:
        flat = (attribution.detach().float().cpu().numpy().ravel() if attribution is not None and status != "failed"
                else np.zeros(0, np.float32))
        shape = list(attribution.shape) if attribution is not None and status != "failed" else []
        return {"path": item.path, "label": item.label, "target": target, "explainer": explainer,
                "map": flat.astype(np.float32), "map_shape": shape, "status": status, "reason": reason,
                "seconds": float(seconds), **(metrics or {})}


def write_atomic(rows: pd.DataFrame, path: Path) -> None:
    """Write ``rows`` as Parquet at ``path`` via a temp file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        rows.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
