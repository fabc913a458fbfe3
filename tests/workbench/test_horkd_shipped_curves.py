"""The HORKD accuracy curves shipped beside the weights: read on an empty cache, and true for the shipped weights."""

from __future__ import annotations

import pytest

import workbench.horkd.evaluation as evaluation
from workbench.cache import NotShippedError, shipped_only
from workbench.horkd import accuracy_curves, cached_accuracy_curves, default_models
from workbench.train import one_thread
from workbench.weights import dashboard_models


@pytest.fixture(scope="module")
def shipped_models():
    """The HORKD dashboard's streams as it opens them (:func:`workbench.weights.dashboard_models`), from shipped
    files only (the package ships the smoke setting's HORKD weights today; the full setting is tried first)."""
    try:
        with shipped_only():
            return dashboard_models(lambda smoke: default_models(None, smoke, "auto", progress=False))
    except NotShippedError as exc:
        pytest.skip(f"the shipped full-setting HORKD weights do not load here: {exc}")


def test_an_empty_cache_reads_the_shipped_curves_and_they_are_the_shipped_weights(shipped_models, tmp_path,
                                                                                   monkeypatch):
    """Issue 29: measuring the curves took ~2 s of every first render on an empty cache."""
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    real = evaluation.accuracy_curves
    monkeypatch.setattr(evaluation, "accuracy_curves", lambda *a, **k: pytest.fail("the shipped curves were measured"))
    shipped = cached_accuracy_curves(shipped_models)
    assert not list(tmp_path.iterdir()), "reading the shipped curves writes nothing to the cache"
    monkeypatch.setattr(evaluation, "accuracy_curves", real)
    with one_thread():
        measured = accuracy_curves(shipped_models)
    assert shipped.keys() == measured.keys()
    assert all(shipped[k] == pytest.approx(measured[k], abs=1e-9) for k in measured)


def test_without_shipped_files_the_curves_are_measured_and_cached(shipped_models, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_SHIPPED", "0")
    calls = []
    monkeypatch.setattr(evaluation, "accuracy_curves", lambda m, r: calls.append(r) or {"horkd": [0.5] * len(r)})
    assert cached_accuracy_curves(shipped_models)["horkd"][0] == 0.5 and calls
    assert len(list(tmp_path.glob("horkd_curves-*.json"))) == 1
