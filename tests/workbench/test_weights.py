"""Shipped weights: a matching recipe loads the package file instead of training; export writes file + sidecar."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import workbench.cache as cache
import workbench.weights as weights
from workbench.cache import cached_model, config_key, record_models, save_checkpoint


@dataclass(frozen=True)
class ToyRecipe:
    width: int = 4
    seed: int = 0


@dataclass(frozen=True)
class BigRecipe:
    recipe: str = "big"


def _build(width: int = 4) -> nn.Module:
    return nn.Linear(3, width)


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    shipped, user = tmp_path / "shipped", tmp_path / "cache"
    shipped.mkdir()
    monkeypatch.setattr(cache, "SHIPPED_DIR", shipped)
    monkeypatch.setattr(weights, "SHIPPED_DIR", shipped)
    monkeypatch.setenv("WORKBENCH_CACHE", str(user))
    monkeypatch.delenv("WORKBENCH_SHIPPED", raising=False)
    return shipped, user


def _ship(shipped, recipe, value: float) -> nn.Module:
    model = _build(recipe.width)
    nn.init.constant_(model.weight, value)
    save_checkpoint(shipped / f"toy-{config_key(recipe)}.pt", model, {"test_acc": 0.9, "name": "toy"})
    return model


def test_a_matching_shipped_file_is_loaded_without_training(dirs):
    shipped, user = dirs
    _ship(shipped, ToyRecipe(), 0.5)

    def train(model):
        raise AssertionError("a shipped recipe must not train")

    with record_models() as calls:
        model = cached_model("toy", _build, train, ToyRecipe())
    assert torch.all(model.weight == 0.5) and model.workbench_meta["test_acc"] == 0.9
    assert [c["source"] for c in calls] == ["shipped"]
    assert not any(user.glob("*.pt")), "loading a shipped file writes nothing to the user's cache"


def test_a_changed_recipe_or_switching_shipping_off_trains(dirs, monkeypatch):
    shipped, _ = dirs
    _ship(shipped, ToyRecipe(), 0.5)
    trained = []

    def train(model):
        trained.append(True)
        return {"test_acc": 0.1}

    changed = cached_model("toy", lambda: _build(5), train, ToyRecipe(width=5))
    assert trained and changed.weight.shape[0] == 5
    monkeypatch.setenv("WORKBENCH_SHIPPED", "0")
    own = cached_model("toy", _build, train, ToyRecipe())
    assert len(trained) == 2 and not torch.all(own.weight == 0.5)


def test_a_broken_shipped_file_is_reported_kept_and_the_model_trained(dirs):
    shipped, _ = dirs
    path = shipped / f"toy-{config_key(ToyRecipe())}.pt"
    path.write_bytes(b"not a checkpoint")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cached_model("toy", _build, lambda m: {"test_acc": 0.2}, ToyRecipe())
    assert any("ignoring the shipped file" in str(w.message) for w in caught)
    assert path.read_bytes() == b"not a checkpoint", "a package file is never moved or overwritten"


def test_export_writes_weights_and_a_sidecar_with_the_metrics(dirs, tmp_path, monkeypatch):
    def toy_dashboard(smoke):
        cached_model("toy", _build, lambda m: {"test_acc": 0.75, "history": [1, 2]}, ToyRecipe())
        cached_model("big", lambda: nn.Linear(800, 800), lambda m: {"test_mse": 0.01}, BigRecipe())

    monkeypatch.setattr(weights, "DASHBOARD_MODELS", {"toy": toy_dashboard})
    out = tmp_path / "export"
    written = weights.export(out)
    assert sorted(p.name for p in written) == sorted([f"toy-{config_key(ToyRecipe())}.pt",
                                                      f"big-{config_key(BigRecipe())}.pt"])
    toy = json.loads((out / f"toy-{config_key(ToyRecipe())}.json").read_text())
    assert toy["metrics"] == {"test_acc": 0.75} and toy["recipe_hash"] == config_key(ToyRecipe())
    assert toy["recipe"] == {"width": 4, "seed": 0} and toy["dashboard"] == "toy"
    big = json.loads(next(out.glob("big-*.json")).read_text())
    assert big["stored_dtype"] == "float16" and big["bytes"] <= weights.MAX_FILE_BYTES
    # installed into the package folder, the exported model is what a matching recipe now loads
    weights.install(out)
    model = cached_model("toy", _build, lambda m: pytest.fail("must load the installed file"), ToyRecipe())
    assert model.workbench_meta["test_acc"] == 0.75
    assert [e["name"] for e in weights.manifest()] == ["big", "toy"]


def test_prepare_names_an_unknown_dashboard():
    with pytest.raises(ValueError, match="unknown dashboard"):
        weights.prepare(["nope"])


# --- the weights the package really ships ---------------------------------------------------------------------------

@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("WORKBENCH_SHIPPED", raising=False)


#: dashboards whose full-setting weights do not ship yet, and why (README: "Shipped weights")
NOT_SHIPPED = {"horkd": "the full HORKD setting takes over an hour on a CPU; no GPU was lent to make it"}


def test_every_dashboard_opens_on_shipped_full_setting_weights(empty_cache):
    """With an empty cache, every dashboard's full-setting models load from the package, none trains (a recipe
    changed without re-exporting its weights fails here, naming the recipe)."""
    from workbench.cache import shipped_only

    shipped = [name for name in weights.DASHBOARD_MODELS if name not in NOT_SHIPPED]
    with shipped_only():
        calls = weights.prepare(shipped, log=None, smoke=False)
    assert {c["dashboard"] for c in calls} == set(shipped)
    assert all(c["source"] == "shipped" for c in calls)
    for entry in weights.manifest():
        assert entry["bytes"] <= weights.MAX_FILE_BYTES, entry["name"]
        assert (cache.SHIPPED_DIR / f"{entry['name']}-{entry['recipe_hash']}.pt").stat().st_size == entry["bytes"]


def test_a_dashboard_without_full_weights_opens_shipped_smoke_weights(empty_cache):
    """Where the full setting does not ship, its smoke setting does: with an empty cache the dashboard opens without
    training anything, and the sidecars say which setting they hold."""
    from workbench.cache import shipped_only

    with shipped_only():
        calls = weights.prepare(list(NOT_SHIPPED), log=None, smoke=True)
    assert calls and all(c["source"] == "shipped" for c in calls)
    settings = {entry["name"]: entry.get("setting", "full") for entry in weights.manifest()}
    assert {settings[c["name"]] for c in calls} == {"smoke"}
    assert {e["dashboard"] for e in weights.manifest() if e.get("setting") == "smoke"} == set(NOT_SHIPPED)


def test_shipped_only_names_a_recipe_without_weights(empty_cache):
    from workbench.cache import NotShippedError, shipped_only

    with shipped_only(), pytest.raises(NotShippedError, match="'toy'"):
        cached_model("toy", _build, lambda m: {}, ToyRecipe(width=7))


def test_a_shipped_classifier_reaches_its_recorded_accuracy_and_the_smoke_recipe_still_trains(empty_cache):
    from workbench.data import load_digits
    from workbench.models import pretrained
    from workbench.train import accuracy

    with record_models() as calls:
        smoke = pretrained.digits_classifier(smoke=True, progress=False)  # not shipped: trained here, in seconds
        full = pretrained.digits_classifier(progress=False)
    assert [c["source"] for c in calls] == ["trained", "shipped"]
    sidecar = json.loads(calls[1]["path"].with_suffix(".json").read_text())
    test = load_digits(pretrained.DIGITS_SIZE, "test")
    assert accuracy(full, test.images, test.labels) == pytest.approx(sidecar["metrics"]["test_acc"], abs=1e-6)
    assert sidecar["metrics"]["test_acc"] > 0.95
    assert accuracy(smoke, test.images, test.labels) == pytest.approx(smoke.workbench_meta["test_acc"], abs=1e-6)


def test_dashboards_open_the_shipped_full_setting_else_the_smoke_one(dirs, monkeypatch):
    """A dashboard opens the full setting only when its weights ship (never an hour of CPU training); otherwise, or
    with shipping off, ``$WORKBENCH_SMOKE`` decides as before; an explicit ``smoke`` always wins."""
    from workbench.weights import dashboard_models

    shipped, _ = dirs
    monkeypatch.setenv("WORKBENCH_SMOKE", "1")

    def load(smoke: bool) -> str:
        recipe = ToyRecipe(width=2 if smoke else 4)
        cached_model("toy", lambda: _build(recipe.width), lambda m: {"test_acc": 0.5}, recipe)
        return "smoke" if smoke else "full"

    assert dashboard_models(load) == "smoke", "full weights not shipped: the smoke setting, nothing long trained"
    _ship(shipped, ToyRecipe(), 0.5)
    assert dashboard_models(load) == "full"
    assert dashboard_models(load, smoke=True) == "smoke"
    monkeypatch.setenv("WORKBENCH_SHIPPED", "0")
    assert dashboard_models(load) == "smoke"
    assert dashboard_models(load, smoke=False) == "full"
