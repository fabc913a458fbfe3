"""The shared training kit and model cache: what every recipe relies on."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from workbench.data.forgery_sets import FreshDraws
from workbench.train import (
    accuracy,
    binary_auc,
    binary_scores,
    cached_model,
    classification_step,
    config_key,
    cosine_schedule,
    fit,
    model_device,
    predict_proba,
)


def _toy(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def test_fit_with_cosine_schedule_learns_and_ends_at_zero_lr():
    x, y = _toy()
    model = nn.Linear(4, 2)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    history = fit(model, loader, classification_step, epochs=5, optimizer=opt, scheduler=cosine_schedule,
                  device="cpu", progress=False)
    assert history.epochs[-1]["loss"] < history.epochs[0]["loss"]
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)  # 5 epochs x 8 steps: decayed to zero
    assert accuracy(model, x, y) > 0.9


def test_fit_trains_each_epoch_on_a_fresh_draw_of_the_data():
    @dataclass
    class Draw:  # the LabelledSamples protocol FreshDraws needs: len() and named tensor fields
        images: torch.Tensor
        labels: torch.Tensor

        def __len__(self) -> int:
            return len(self.labels)

    asked, seen = [], []

    def draw(epoch: int) -> Draw:
        asked.append(epoch)
        x, y = _toy(64, seed=epoch)
        return Draw(x, y)

    def step(model, batch, device):
        seen.append(batch[0].sum().item())
        return classification_step(model, batch, device)

    data = FreshDraws(draw)
    history = fit(nn.Linear(4, 2), data.loader(64), step, epochs=3, device="cpu", progress=False)
    assert asked == [0, 1, 2] and len(history.epochs) == 3
    assert len(set(seen)) == 3  # one batch an epoch, a different sample set each time
    assert seen[0] == pytest.approx(_toy(64, seed=0)[0].sum().item())
    with pytest.raises(ValueError, match="keep the set's size"):
        FreshDraws(lambda epoch: Draw(*_toy(64 + epoch))).set_epoch(1)


def test_binary_scores_and_auc():
    x, y = _toy()
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0, 0, 0], [1.0, 1, 0, 0]]))
        model.bias.zero_()
    scores = binary_scores(model, x, y)
    assert scores["auc"] == pytest.approx(1.0)
    assert scores["acc"] == pytest.approx(1.0)
    assert predict_proba(model, x).shape == (len(x),)
    assert torch.isnan(torch.tensor(binary_auc([1, 1, 1], [0.2, 0.5, 0.9])))  # one class: undefined, not an error


def test_model_device_of_modules_and_callables():
    assert model_device(nn.Linear(2, 2)) == torch.device("cpu")
    assert model_device(nn.ReLU()) == torch.device("cpu")
    assert model_device(lambda t: t) == torch.device("cpu")


@dataclass(frozen=True)
class _Recipe:
    width: int = 3
    seed: int = 0


def test_cached_model_keys_dataclass_recipes_and_moves_a_corrupt_file_aside(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    calls = []

    def train(model: nn.Module) -> dict:
        calls.append(1)
        return {"acc": 1.0}

    assert config_key(_Recipe()) == config_key({"width": 3, "seed": 0})  # asdict() is the cache key
    first = cached_model("toy", lambda: nn.Linear(3, 1), train, _Recipe())
    again = cached_model("toy", lambda: nn.Linear(3, 1), train, _Recipe())
    assert len(calls) == 1 and torch.equal(first.weight, again.weight)
    cached_model("toy", lambda: nn.Linear(3, 1), train, _Recipe(width=4))
    assert len(calls) == 2  # another recipe, another file
    path = tmp_path / f"toy-{config_key(_Recipe())}.pt"
    path.write_bytes(b"not a checkpoint")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cached_model("toy", lambda: nn.Linear(3, 1), train, _Recipe())
    assert any("corrupt" in str(w.message) for w in caught)
    assert len(calls) == 3 and path.with_suffix(".pt.corrupt").read_bytes() == b"not a checkpoint"
    for not_a_recipe in (["not", "a", "recipe"], {"width": 3, "seed": 0}, _Recipe):
        with pytest.raises(TypeError, match="needs the frozen recipe dataclass itself"):
            cached_model("toy", lambda: nn.Linear(3, 1), train, not_a_recipe)
    assert len(calls) == 3  # refused before anything trained


def test_one_predict_for_tensor_sets_and_for_metrics():
    """``predict`` batches without gradients; for tensor sets it evaluates in eval mode and returns CPU floats, for
    the metrics (``where="inputs"``) it leaves the model's mode alone; ``softmax`` gives probabilities."""
    from workbench.runtime import predict

    x, _ = _toy(50)
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.9)).train()
    metric_view = predict(model, x, 7, where="inputs")  # dropout still on: the model's own mode
    assert model.training and metric_view.shape == (50, 3) and not metric_view.requires_grad
    out = predict(model, x, batch_size=7)
    assert not model.training and out.dtype == torch.float32 and out.device.type == "cpu"
    assert torch.allclose(out, model(x).detach(), atol=1e-6)  # batches of 7 give what one pass gives
    assert torch.allclose(predict(model, x, 16, softmax=True, where="inputs").sum(-1), torch.ones(50))
    assert torch.equal(predict(model, x, 50, transform=lambda t: t * 0), predict(model, x * 0, 50))
    with pytest.raises(ValueError, match="where must be 'model' or 'inputs'"):
        predict(model, x, where="gpu")
