"""The explainer contract (workbench.explainers.base): every registered explainer on a tiny model, the base's
validation, target resolution, squeezing, device and status, and the registry."""

from __future__ import annotations

import warnings

import pytest
import torch

from workbench.explainers import EXPLAINERS, Explainer, available_explainers, make_explainer
from workbench.models import ConvVAE, SmallCNN

TINY_SETTINGS = {"relabel": {"n_samples": 20, "probe_samples": 16, "search_steps": 2},
                 "captum_lime": {"n_samples": 12}, "kernel_shap": {"n_samples": 12}, "lime": {"n_samples": 12},
                 "integrated_gradients": {"n_steps": 4}}


@pytest.fixture(scope="module")
def tiny() -> tuple[SmallCNN, ConvVAE]:
    torch.manual_seed(0)
    return SmallCNN(1, 3, width=4, depth=2).eval(), ConvVAE(1, 16, latent_dim=4, width=8).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))


def build(name: str, tiny) -> Explainer:
    model, vae = tiny
    extra = {"vae": vae} if name == "relabel" else {}
    return make_explainer(name, model, **extra, **TINY_SETTINGS.get(name, {}))


class TargetSpy(Explainer):
    """Records what the base hands to ``_attribute``; returns a (B, 1, H, W) map the base must broadcast."""

    name = "spy"

    def _attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.seen_x, self.seen_target = x, target
        return target.float()[:, None, None, None].expand(-1, 1, *x.shape[-2:])


def test_the_registry_builds_relabel_and_every_baseline():
    assert available_explainers()[0] == "relabel"
    assert set(available_explainers()) == set(EXPLAINERS) >= {"integrated_gradients", "saliency", "occlusion",
                                                                 "gradcam", "captum_lime", "kernel_shap", "lime",
                                                                 "random"}


@pytest.mark.parametrize("name", available_explainers())
def test_every_explainer_keeps_the_shape_contract(name, tiny, images):
    if name != "relabel" and name != "random":
        pytest.importorskip("captum")
        pytest.importorskip("lime")
    explainer = build(name, tiny)
    assert isinstance(explainer, Explainer) and explainer.name == name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an untrained VAE may not flip anything: a RelabelWarning, not a failure
        batch = explainer.attribute(images)
        assert len(explainer.last_status) == 2 and all(isinstance(s, str) for s in explainer.last_status)
        single = explainer.attribute(images[0])
    assert batch.shape == images.shape and batch.device == images.device and batch.dtype == torch.float32
    assert torch.isfinite(batch).all()
    assert single.shape == images[0].shape and len(explainer.last_status) == 1


def test_target_none_explains_the_predicted_class(tiny, images):
    model, _ = tiny
    spy = TargetSpy(model)
    maps = spy.attribute(images)
    assert torch.equal(spy.seen_target, model(images).argmax(-1))
    assert maps.shape == images.shape and spy.last_status == ["ok", "ok"]


@pytest.mark.parametrize("target, expected", [(2, [2, 2]), ([0, 1], [0, 1]), (torch.tensor([1, 2]), [1, 2])])
def test_targets_as_int_sequence_or_tensor(tiny, images, target, expected):
    spy = TargetSpy(tiny[0])
    spy.attribute(images, target=target)
    assert spy.seen_target.tolist() == expected and spy.seen_target.dtype == torch.long


def test_a_plain_callable_runs_on_the_inputs_device(tiny, images):
    model, _ = tiny
    spy = TargetSpy(lambda x: model(x))
    assert spy.device is None
    spy.attribute(images)
    assert spy.seen_x.device == images.device


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (torch.full((1, 1, 16, 16), float("nan")), ValueError, "NaN/Inf"),
        (torch.zeros(0, 1, 16, 16), ValueError, "empty batch"),
        (torch.zeros(16, 16), ValueError, r"shape \(B, C, H, W\) or \(C, H, W\)"),
        (torch.zeros(1, 1, 1, 16, 16), ValueError, r"shape \(B, C, H, W\)"),
        ([[0.0]], TypeError, "must be a torch.Tensor"),
    ],
)
def test_bad_inputs_get_clear_errors(tiny, bad, error, message):
    with pytest.raises(error, match=message):
        TargetSpy(tiny[0]).attribute(bad)


def test_bad_targets_get_clear_errors(tiny, images):
    spy = TargetSpy(tiny[0])
    with pytest.raises(ValueError, match=r"target must lie in \[0, 2\]"):
        spy.attribute(images, target=3)
    with pytest.raises(ValueError, match=r"one entry per image \(2\)"):
        spy.attribute(images, target=[0, 1, 2])


def test_nan_logits_are_a_clear_error_not_a_map(images):
    spy = TargetSpy(lambda x: torch.full((x.shape[0], 3), float("nan")))
    with pytest.raises(ValueError, match="forward_func returned NaN/Inf logits"):
        spy.attribute(images)
    with pytest.raises(ValueError, match=r"logits \(B, K\)"):
        TargetSpy(lambda x: torch.zeros(x.shape[0])).attribute(images)


def test_registry_errors_name_what_is_missing(tiny):
    with pytest.raises(ValueError, match="needs a VAE"):
        make_explainer("relabel", tiny[0])
    with pytest.raises(ValueError, match="valid names: relabel, integrated_gradients"):
        make_explainer("anchors", tiny[0])
    with pytest.raises(TypeError, match="must be callable"):
        make_explainer("random", "not a model")
