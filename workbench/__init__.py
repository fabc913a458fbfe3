"""Distill Workbench core: compute only (torch + numpy), never Jupyter.

One module per method (``relabel``, ``whitening``, ``stdt``, ``horkd``, ``tracking``), shared data loaders in
``workbench.data``, small networks in ``workbench.models``, one training loop and a model cache in
``workbench.train``, and evaluation in ``workbench.metrics``.
"""

__version__ = "0.1.0"
