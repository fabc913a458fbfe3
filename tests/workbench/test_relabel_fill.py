"""RLD's off states and the change student (issue 26): each fill changes the samples as documented."""

from __future__ import annotations

import warnings

import pytest
import torch

from workbench.metrics import gaussian_blur
from workbench.models import RegionOnlyClassifier, box_mask
from workbench.relabel import RelabelConfig, RelabelDistillation, RelabelWarning
from workbench.relabel.regions import GridRegions, region_change

#: whole decodes of each sample's own latent at one fixed sigma: a sample is exactly its (filled) decode
WHOLE = {"keep_share": None, "region_source": "own", "features": "pixels", "sigma": 0.8, "n_samples": 20}


def _samples(digits_models, image: torch.Tensor, **settings) -> torch.Tensor:
    teacher, vae = digits_models
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RelabelWarning)
        return RelabelDistillation(teacher, vae, **settings).explain(image).samples


def test_the_default_and_the_paper_keep_the_decode_fill():
    assert RelabelConfig().sampling.fill == "decode" and RelabelConfig.paper().sampling.fill == "decode"


def test_the_black_box_preset_is_the_measured_strategy():
    preset = RelabelConfig.black_box()
    assert RelabelConfig().with_(fill="mean", features="mask", ridge_alpha=0.01, sigma=1.0) == preset


def test_blur_fill_is_the_decode_fill_blurred_by_a_sixteenth_of_the_side(digits_models, digits_test):
    x = digits_test.images[0]
    decode = _samples(digits_models, x, **WHOLE)
    blur = _samples(digits_models, x, fill="blur", **WHOLE)
    assert torch.allclose(blur, gaussian_blur(decode, 16 / 16), atol=1e-6)
    assert (blur - decode).abs().max() > 0.05  # the detail is gone


def test_mean_fill_is_each_decodes_flat_mean_colour(digits_models, digits_test):
    x = digits_test.images[0]
    decode = _samples(digits_models, x, **WHOLE)
    mean = _samples(digits_models, x, fill="mean", **WHOLE)
    assert torch.allclose(mean, decode.mean((-2, -1), keepdim=True).expand_as(decode), atol=1e-6)


def test_prior_fill_decodes_the_prior_whatever_the_image(digits_models, digits_test):
    """Prior decodes are other digits the VAE makes, not the image's neighbourhood: two images get the same fill,
    the decodes of ``sigma * eps`` (no residual), unlike the decode fill."""
    teacher, vae = digits_models
    a, b = digits_test.images[0], digits_test.images[5]
    prior_a = _samples(digits_models, a, fill="prior", residual=True, **WHOLE)
    prior_b = _samples(digits_models, b, fill="prior", residual=True, **WHOLE)
    assert torch.equal(prior_a, prior_b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RelabelWarning)
        exp = RelabelDistillation(teacher, vae, fill="prior", **WHOLE).explain(a)
    with torch.no_grad():
        assert torch.allclose(exp.samples, vae.decode(exp.latents).clamp(0, 1), atol=1e-6)
    assert not torch.allclose(_samples(digits_models, a, **WHOLE), _samples(digits_models, b, **WHOLE))


def test_a_fill_shows_only_where_the_image_is_not_kept(digits_models, digits_test):
    teacher, vae = digits_models
    rld = RelabelDistillation(teacher, vae, n_samples=50, fill="mean", features="mask", sigma=0.8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RelabelWarning)
        exp = rld.explain(digits_test.images[0])
    kept = exp.keep[:, exp.regions].bool()
    image = exp.image[0].expand_as(kept)
    assert torch.equal(exp.samples[:, 0][kept], image[kept])
    for m in range(5):  # every region not kept is flat: one decode's mean colour
        for r in (~exp.keep[m].bool()).nonzero().flatten().tolist():
            assert exp.samples[m, 0][exp.regions == r].unique().numel() == 1


def test_region_change_is_the_mean_absolute_change_per_region():
    image = torch.rand(1, 3, 4, 4)
    labels = GridRegions(2).labels(4, 4)
    sample = image.clone()
    sample[0, 1][labels == 3] += 0.3  # one channel of region 3 moved by 0.3
    change = region_change(sample[:, None], image, labels)
    assert change.shape == (1, 1, 4)
    assert torch.allclose(change[0, 0], torch.tensor([0.0, 0.0, 0.0, 0.1]), atol=1e-6)


def test_change_student_finds_the_planted_evidence_as_positive(digits_models, digits_test):
    """A student on how much each region changed: the evidence's change lowers the class, so it is painted
    positive and holds most of the map."""
    teacher, vae = digits_models
    mask = box_mask(16, 4, 4, 8, 8)
    planted = RegionOnlyClassifier(teacher, mask).eval()
    rld = RelabelDistillation(planted, vae, n_samples=500, features="change", fill="blur")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RelabelWarning)
        maps = rld.attribute(digits_test.images[:8]).sum(1)
    inside = (maps * mask).sum((1, 2)) / mask.sum()
    outside = (maps * (1 - mask)).sum((1, 2)) / (1 - mask).sum()
    share = ((maps.abs() * mask).sum((1, 2)) / maps.abs().sum((1, 2)).clamp_min(1e-12)).mean().item()
    assert (inside > outside).float().mean() >= 0.75 and share > 0.55, (inside, outside, share)


def test_an_unknown_fill_is_a_clear_error(digits_models):
    teacher, vae = digits_models
    with pytest.raises(ValueError, match="fill must be one of \\('decode', 'prior', 'blur', 'mean'\\)"):
        RelabelDistillation(teacher, vae, fill="grey")
