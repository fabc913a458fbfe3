"""Behaviour of the HORKD loss modules: zero at agreement, the right invariances, gradients that help, clear errors."""

import pytest
import torch

from workbench.horkd import (
    EmbeddingMSE,
    HybridOrderLoss,
    RKDAngle,
    RKDDistance,
    SoftLogitKD,
    StreamOutput,
    normalized_distances,
    triplet_angles,
)


@pytest.fixture
def emb():
    g = torch.Generator().manual_seed(0)
    return torch.randn(12, 8, generator=g), torch.randn(12, 8, generator=g)


RELATIONAL = [RKDDistance(), RKDAngle()]


@pytest.mark.parametrize("loss", [*RELATIONAL, EmbeddingMSE(), SoftLogitKD(4.0)], ids=lambda m: type(m).__name__)
def test_loss_is_zero_for_identical_streams(loss, emb):
    s, _ = emb
    assert float(loss(s, s.clone())) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("loss", RELATIONAL, ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("scale", [0.01, 3.0, 250.0])
def test_relational_losses_ignore_the_scale_and_offset_of_either_stream(loss, scale, emb):
    s, t = emb
    base = float(loss(s, t))
    assert base > 1e-3
    assert float(loss(s * scale, t)) == pytest.approx(base, rel=1e-4)
    assert float(loss(s, t * scale)) == pytest.approx(base, rel=1e-4)
    assert float(loss(s + 5.0, t - 2.0)) == pytest.approx(base, rel=1e-4)
    # a scaled copy of the teacher carries the same relations: nothing to learn
    assert float(loss(t * scale, t)) == pytest.approx(0.0, abs=1e-6)


def test_distance_and_angle_structures_are_the_rkd_ones():
    e = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    d = normalized_distances(e)
    assert torch.allclose(d, torch.tensor([[0, 3, 4], [3, 0, 5], [4, 5, 0]]) / 4.0)
    a = triplet_angles(e)
    assert float(a[0, 1, 2]) == pytest.approx(0.0, abs=1e-6)  # right angle at the origin
    assert float(a[1, 0, 2]) == pytest.approx(3 / 5, abs=1e-6)


@pytest.mark.parametrize("loss", [*RELATIONAL, EmbeddingMSE()], ids=lambda m: type(m).__name__)
def test_one_sgd_step_on_the_student_lowers_the_loss(loss, emb):
    s, t = emb
    s = s.clone().requires_grad_(True)
    before = loss(s, t)
    before.backward()
    with torch.no_grad():
        after = loss(s - 0.05 * s.grad / s.grad.norm() * s.norm(), t)
    assert float(after) < float(before.detach())
    assert t.grad is None


def test_kd_gradient_moves_student_probabilities_towards_teacher():
    t = torch.tensor([[4.0, 0.0, -2.0]])
    s = torch.zeros(1, 3, requires_grad=True)
    loss = SoftLogitKD(2.0)(s, t)
    loss.backward()
    with torch.no_grad():
        assert float(SoftLogitKD(2.0)(s - 0.5 * s.grad, t)) < float(loss.detach())
    assert s.grad[0, 0] < 0 < s.grad[0, 2]


def test_hybrid_loss_sums_weighted_terms_over_reference_streams(emb):
    s, t = emb
    logits = torch.randn(12, 5)
    student, teacher = StreamOutput(s, logits), StreamOutput(t, torch.randn(12, 5))
    hybrid = HybridOrderLoss(alpha=1.0, beta=25.0, gamma=50.0, temperature=4.0)
    terms = hybrid.terms(student, [teacher, teacher])
    assert set(terms) == {f"{k}/{r}" for k in ("first_kl", "distance", "angle") for r in (0, 1)}
    assert float(terms["distance/0"]) == pytest.approx(25.0 * float(RKDDistance()(s, t)), rel=1e-5)
    assert float(terms["angle/1"]) == pytest.approx(50.0 * float(RKDAngle()(s, t)), rel=1e-5)
    assert float(hybrid(student, [teacher, teacher])) == pytest.approx(2 * float(hybrid(student, [teacher])), rel=1e-5)
    assert float(hybrid(student, [student])) == pytest.approx(0.0, abs=1e-5)
    only_relational = HybridOrderLoss(alpha=0.0)
    assert not any(k.startswith("first") for k in only_relational.terms(student, [teacher]))


def test_bad_inputs_get_clear_errors(emb):
    s, t = emb
    with pytest.raises(ValueError, match="batch sizes differ"):
        RKDDistance()(s, t[:10])
    with pytest.raises(ValueError, match="batch sizes differ"):
        HybridOrderLoss()(StreamOutput(s, torch.randn(12, 3)), [StreamOutput(t[:5], torch.randn(5, 3))])
    bad = s.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        RKDAngle()(bad, t)
    with pytest.raises(ValueError, match="empty batch"):
        RKDDistance()(s[:0], t[:0])
    with pytest.raises(ValueError, match="at least 3"):
        RKDAngle()(s[:2], t[:2])
    with pytest.raises(ValueError, match="widths differ"):
        EmbeddingMSE()(s, torch.randn(12, 4))
    with pytest.raises(ValueError, match="needs logits"):
        HybridOrderLoss()(StreamOutput(s), [StreamOutput(t)])
    with pytest.raises(ValueError, match="at least one reference"):
        HybridOrderLoss()(StreamOutput(s), [])
    with pytest.raises(ValueError, match="first_order"):
        HybridOrderLoss(first_order="cosine")
    with pytest.raises(ValueError, match="temperature"):
        SoftLogitKD(0.0)


def test_hybrid_loss_given_plain_tensors_names_the_stream_outputs_it_expects(emb):
    """Before the fix, tensors instead of StreamOutputs failed with "Boolean value of Tensor ... ambiguous"."""
    s, t = emb
    student, teacher = StreamOutput(s, torch.randn(12, 5)), StreamOutput(t, torch.randn(12, 5))
    with pytest.raises(TypeError, match=r"student must be a StreamOutput\(embedding, logits\).*got Tensor"):
        HybridOrderLoss()(s, t)
    with pytest.raises(TypeError, match=r"references must be a list of StreamOutput.*got Tensor"):
        HybridOrderLoss()(student, t)
    with pytest.raises(TypeError, match=r"references must be a list of StreamOutput.*got StreamOutput"):
        HybridOrderLoss().terms(student, teacher)  # one stream, not wrapped in a list
    with pytest.raises(TypeError, match=r"reference 1 must be a StreamOutput.*got Tensor"):
        HybridOrderLoss()(student, [teacher, t])


def test_sampled_triplet_cosines_are_the_entries_of_the_full_angle_tensor(emb):
    from workbench.horkd.losses import sampled_triplet_angles

    s, _ = emb
    idx = torch.tensor([[0, 1, 2], [3, 3, 5], [7, 2, 2], [11, 0, 6]])
    full = triplet_angles(s)
    assert torch.allclose(sampled_triplet_angles(s, idx), full[idx[:, 0], idx[:, 1], idx[:, 2]], atol=1e-6)


def test_sampled_angle_loss_is_an_unbiased_estimate_of_the_full_batch_term_and_trains():
    """Ours: RKDAngle(triplets=T) averaged over many draws matches RKD's exact term within 4 standard errors."""
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(24, 6, generator=g), torch.randn(24, 6, generator=g)
    exact = float(RKDAngle()(s, t))
    sampled = RKDAngle(triplets=64)
    torch.manual_seed(0)
    draws = torch.tensor([float(sampled(s, t)) for _ in range(2000)])
    se = float(draws.std()) / len(draws) ** 0.5
    assert abs(float(draws.mean()) - exact) < 4 * se
    assert float(draws.std()) > 0  # it does sample: a fixed subset would not vary
    x = s.clone().requires_grad_(True)
    sampled(x, t).backward()
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0
    assert float(RKDAngle(triplets=64)(s, s.clone())) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_angle_triplets_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="triplets"):
        RKDAngle(triplets=bad)


def test_hybrid_loss_passes_angle_triplets_to_its_angle_term(emb):
    s, t = emb
    loss = HybridOrderLoss(alpha=0.0, beta=0.0, gamma=1.0, angle_triplets=32)
    assert loss.angle.triplets == 32 and HybridOrderLoss().angle.triplets is None
    torch.manual_seed(0)
    a = float(loss(StreamOutput(s), [StreamOutput(t)]))
    assert a > 0 and a != pytest.approx(float(RKDAngle()(s, t)), rel=1e-9)
