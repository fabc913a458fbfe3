"""How a whitening detector reads a user's photo: the SBI detectors' tinted-grey input step, and the sentence that
says which model read it (from the model's recipe)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from workbench.data.face_sbi import EMBEDDED_MEAN_TINT, EMBEDDED_TINT_RANGES, embedded_colour_faces
from workbench.whitening import (
    SbiWhiteningRecipe,
    WhiteningDetector,
    WhiteningRecipe,
    predict_fake_proba,
    read_face,
    reader_sentence,
    reading_domain,
    tinted_grey,
    trained_on,
)


def cached_like(recipe: WhiteningRecipe, name: str) -> WhiteningDetector:
    """An untrained detector carrying the record a cached one has (``workbench_meta``)."""
    torch.manual_seed(0)
    model = WhiteningDetector(3 if isinstance(recipe, SbiWhiteningRecipe) else 1, width=8).eval()
    model.workbench_meta = {"name": name, "config": dataclasses.asdict(recipe)}
    return model


def test_the_mean_tint_is_the_mean_of_the_embedded_faces_tint_ranges():
    assert EMBEDDED_MEAN_TINT == pytest.approx((1.0, 0.84, 0.71))
    assert EMBEDDED_MEAN_TINT == pytest.approx(tuple((lo + hi) / 2 for lo, hi in EMBEDDED_TINT_RANGES))
    faces = embedded_colour_faces(32).faces[:-1]  # the tinted LFW faces (the astronaut is a real colour photo)
    ratio = lambda c: faces[..., c].sum() / faces[..., 0].sum()  # noqa: E731
    assert ratio(1) == pytest.approx(0.84, abs=0.02) and ratio(2) == pytest.approx(0.71, abs=0.02)


def test_tinted_grey_keeps_the_luminance_and_gives_every_pixel_the_mean_tint():
    photo = torch.rand(2, 3, 16, 16) * 0.9
    mapped = tinted_grey(photo)
    assert mapped.shape == photo.shape
    luma = 0.299 * photo[:, 0] + 0.587 * photo[:, 1] + 0.114 * photo[:, 2]
    torch.testing.assert_close(mapped[:, 0], luma)
    for c, tint in enumerate(EMBEDDED_MEAN_TINT):
        torch.testing.assert_close(mapped[:, c], luma * tint)
    # a colour cast of the same luminance reads the same: the cue the training faces never had is gone
    cast = photo.clone()
    cast[:, 0] += 0.05 * 0.587
    cast[:, 1] -= 0.05 * 0.299
    torch.testing.assert_close(tinted_grey(cast), mapped)
    assert tinted_grey(photo[0]).shape == (3, 16, 16)
    with pytest.raises(ValueError, match="colour faces"):
        tinted_grey(torch.rand(1, 1, 16, 16))


def test_only_detectors_trained_on_the_embedded_colour_faces_read_in_tinted_grey():
    sbi = cached_like(SbiWhiteningRecipe.full(), "whitening_detector_sbi_white")
    own_faces = cached_like(SbiWhiteningRecipe.full().with_(face_source="/my/faces"), "whitening_detector_sbi_white")
    grey = cached_like(WhiteningRecipe.full(), "whitening_detector_white")
    assert reading_domain(sbi) == "tinted_grey"
    assert reading_domain(own_faces) == "as_given" and reading_domain(grey) == "as_given"
    assert reading_domain(WhiteningDetector(3, width=8)) == "as_given"  # no record: nothing to derive a step from


def test_read_face_feeds_each_detector_its_domain_and_says_who_read_it():
    sbi = cached_like(SbiWhiteningRecipe.full(), "whitening_detector_sbi_white")
    own_faces = cached_like(SbiWhiteningRecipe.full().with_(face_source="/my/faces"), "whitening_detector_sbi_plain")
    face = torch.rand(3, 64, 64)
    readings = read_face({"shipped": sbi, "yours": own_faces}, face)
    assert readings["shipped"].domain == "tinted_grey" and readings["yours"].domain == "as_given"
    assert readings["shipped"].p_fake == pytest.approx(float(predict_fake_proba(sbi, tinted_grey(face)[None])[0]))
    assert readings["yours"].p_fake == pytest.approx(float(predict_fake_proba(own_faces, face[None])[0]))
    assert "whitening_detector_sbi_white" in readings["shipped"].reader
    assert "tinted-grey LFW faces" in readings["shipped"].reader and "mean tint" in readings["shipped"].reader
    assert "/my/faces" in readings["yours"].reader and "mean tint" not in readings["yours"].reader


def test_trained_on_is_derived_from_the_recipe_fields():
    assert trained_on(dataclasses.asdict(WhiteningRecipe.full())).startswith("grey 32 px synthetic forgeries")
    assert "(self_blend, warp)" in trained_on(dataclasses.asdict(WhiteningRecipe.full().with_(
        train_kinds=("self_blend", "warp"))))
    sbi = SbiWhiteningRecipe.full()
    assert trained_on(dataclasses.asdict(sbi)) == \
        "self-blends of tinted-grey LFW faces (and the astronaut), 64 px colour"
    assert "128 px colour" in trained_on(dataclasses.asdict(sbi.with_(size=128)))
    assert "landmark-hull" in trained_on(dataclasses.asdict(sbi.with_(mask="hull")))
    assert "unknown recipe" in trained_on({})
    assert "not recorded" in reader_sentence(WhiteningDetector(width=8))
