"""Explain and score whole data sets, shard by shard, in-process or on Ray Data (``python -m workbench explain``).

:func:`explain_dataset` runs; :func:`read_results` / :func:`summarize` read an output folder back (columns and rows
chosen, so maps are loaded only for the rows shown). Ray is imported only when the Ray engine runs.
"""

from workbench.batch.models import EMBEDDED_MODELS, ModelSpec
from workbench.batch.run import explain_dataset, read_results, summarize
from workbench.batch.sources import EMBEDDED, Item, list_items, load_item
from workbench.batch.worker import ExplainWorker, RunSpec, available_metrics, metric_higher_is_better

__all__ = ["EMBEDDED", "EMBEDDED_MODELS", "ExplainWorker", "Item", "ModelSpec", "RunSpec",
           "available_metrics", "explain_dataset", "list_items", "load_item", "metric_higher_is_better", "read_results",
           "summarize"]
