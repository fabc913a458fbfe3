"""Shared test setup: a model cache that persists across runs (trained once per machine), quiet threads."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("WORKBENCH_CACHE", str(REPO / ".cache" / "models"))


@pytest.fixture(scope="module")
def torch_one_thread():
    """Torch on one thread for a module's tests (``workbench.train.one_thread``): small tensors on a shared 2-core
    machine run many times faster than with a contended pool. Use with ``pytest.mark.usefixtures``."""
    from workbench.train import one_thread

    with one_thread():
        yield


@pytest.fixture(scope="session")
def digits_models():
    """The default digits teacher and VAE (trained on first use, ~30 s on a CPU, then cached)."""
    from workbench.models.pretrained import digits_classifier, digits_vae

    return digits_classifier(progress=False), digits_vae(progress=False)


@pytest.fixture(scope="session")
def digits_test():
    from workbench.data import load_digits

    return load_digits(16, "test")


def _load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` loaded afresh by path (``benchmarks/`` is no package), as
    ``benchmark_<name>_under_test`` in ``sys.modules``: its dataclasses look their module up there."""
    path = REPO / "benchmarks" / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no benchmark {path}")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # a benchmark imports its siblings as ``benchmarks.x``
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], ModuleType]:
    """``load_benchmark("tracking_real")``: a benchmark script as a module, loaded afresh on every call."""
    return _load_benchmark
