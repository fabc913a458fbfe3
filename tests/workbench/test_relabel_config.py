"""RLD's one frozen config (issue 25): presets, the flat keyword spellings routed to the nested strategies, and
explainers built from a config equal to those built from the old keywords."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from workbench.relabel import (
    FixedSigma,
    RelabelConfig,
    RelabelDistillation,
    RidgeStudent,
    SamplingConfig,
    SGDStudent,
    StudentConfig,
)


def test_flat_settings_land_in_their_strategy_and_the_config_stays_frozen():
    config = RelabelConfig().with_(n_samples=200, sigma=0.8, student="sgd", sgd_steps=20, keep_share=None,
                                   features="pixels", flip_band=(0.2, 0.8))
    assert config.n_samples == 200
    assert config.sigma.search == 0.8 and config.sigma.flip_band == (0.2, 0.8)
    assert config.student == StudentConfig(kind="sgd", sgd_steps=20)
    assert config.sampling.keep_share is None and config.sampling.features == "pixels"
    assert RelabelConfig().n_samples == 1000, "with_ returns a copy"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.n_samples = 5
    with pytest.raises(TypeError, match="unexpected RLD setting 'n_sample'"):
        RelabelConfig().with_(n_sample=100)
    with pytest.raises(TypeError, match="sampling must be a SamplingConfig"):
        RelabelConfig(sampling={"keep_share": None})


def test_paper_preset_is_the_papers_variant():
    paper = RelabelConfig.paper()
    assert paper.sampling == SamplingConfig(keep_share=None, features="pixels", region_source="own")
    assert not paper.residual and (paper.student.ridge_alpha, paper.student.soft_weight) == (1e-2, 0.5)
    assert paper != RelabelConfig()


def test_a_config_builds_the_same_explainer_as_the_keywords(digits_models, digits_test):
    teacher, vae = digits_models
    x = digits_test.images[:2]
    config = RelabelConfig.paper().with_(n_samples=100)
    from_config = RelabelDistillation(teacher, vae, config)
    from_keywords = RelabelDistillation(teacher, vae, n_samples=100, residual=False, ridge_alpha=1e-2,
                                        soft_weight=0.5, keep_share=None, features="pixels", region_source="own")
    assert from_config.config == from_keywords.config
    assert torch.equal(from_config.attribute(x), from_keywords.attribute(x))
    assert torch.equal(RelabelDistillation.paper(teacher, vae, n_samples=100).attribute(x), from_config.attribute(x))


def test_strategies_are_built_from_their_configs(digits_models):
    teacher, vae = digits_models
    rld = RelabelDistillation(teacher, vae, RelabelConfig(n_samples=50), sigma=0.5, student="sgd", sgd_lr=0.1)
    assert isinstance(rld.sigma_search, FixedSigma) and rld.sigma_search.sigma == 0.5
    assert isinstance(rld.student, SGDStudent) and rld.student.lr == 0.1
    ridge = RidgeStudent(0.3, 0.2)
    assert RelabelDistillation(teacher, vae, student=ridge).student is ridge
    with pytest.raises(TypeError, match="config must be a RelabelConfig"):
        RelabelDistillation(teacher, vae, {"n_samples": 100})
    with pytest.raises(ValueError, match="paper\\(\\) fixes \\['features'\\]"):
        RelabelDistillation.paper(teacher, vae, features="regions")
