"""A model one can only query: BlackBox, the refusal of gradient explainers, and dlib's face identifier."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.explainers import BLACK_BOX_EXPLAINERS, BlackBox, is_black_box, make_explainer
from workbench.relabel import RelabelDistillation

REPO = Path(__file__).resolve().parents[2]
#: the development faces: ../shared/realdata beside the checkout (or beside a folder above a worktree)
FACES_IDENTITY = next((p / "shared" / "realdata" / "faces_identity" for p in REPO.parents
                       if (p / "shared" / "realdata").is_dir()), REPO.parent / "shared" / "realdata" / "faces_identity")
HAS_DLIB = importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("face_recognition_models")
needs_dlib = pytest.mark.skipif(not HAS_DLIB, reason="dlib / face_recognition_models not installed (faces extra)")
needs_faces = pytest.mark.skipif(not FACES_IDENTITY.is_dir(), reason="../shared/realdata/faces_identity is absent")
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def left_half_scores(x: np.ndarray) -> np.ndarray:
    """A numpy black box that looks only at the left half of a 16x16 digit: class 1 when it holds ink."""
    evidence = 30.0 * (x[:, :, :, :8].mean(axis=(1, 2, 3)) - 0.29)
    return np.stack([-evidence, evidence], axis=1)


@pytest.fixture(scope="module")
def box():
    return BlackBox(left_half_scores, n_classes=2, input_shape=(1, 16, 16), accepts="numpy")


@pytest.fixture(scope="module")
def digits(digits_test):
    x = digits_test.images[:40]
    margin = x[:, :, :, :8].mean((1, 2, 3)) - 0.29
    margin[margin < 0] = float("inf")
    return x[margin.argsort()[:4]]  # class 1 near the decision: removing their left-half ink flips them


def left_share(maps: torch.Tensor) -> torch.Tensor:
    a = maps.abs().sum(1)
    return a[:, :, :8].sum((1, 2)) / a.sum((1, 2)).clamp_min(1e-12)


def test_a_numpy_callable_is_a_black_box_that_answers_torch_scores_in_chunks(box, digits):
    chunked = BlackBox(left_half_scores, n_classes=2, batch_size=3, accepts="numpy")
    scores = chunked(digits)
    assert scores.dtype == torch.float32 and scores.shape == (4, 2)
    assert torch.allclose(scores, torch.from_numpy(left_half_scores(digits.numpy())).float())
    assert chunked.n_queries == 4 and is_black_box(chunked) and is_black_box(left_half_scores)
    assert not is_black_box(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("name", ["occlusion", "lime", "relabel"])
def test_query_only_explainers_explain_a_numpy_black_box_where_it_looks(name, box, digits, digits_models):
    kwargs = {"vae": digits_models[1], "n_samples": 300} if name == "relabel" else {}
    kwargs.update({"n_samples": 1000} if name == "lime" else {})
    maps = make_explainer(name, box, **kwargs).attribute(digits)
    assert maps.shape == digits.shape and torch.isfinite(maps).all()
    assert (left_share(maps) > 0.6).all(), left_share(maps)  # the box never sees the right half


def test_rld_on_a_black_box_matches_rld_on_the_same_function_as_a_module(box, digits, digits_models):
    class Module(torch.nn.Module):
        def forward(self, x):
            return torch.from_numpy(left_half_scores(x.numpy())).float()

    a = RelabelDistillation(box, digits_models[1], n_samples=100).attribute(digits[:2])
    b = RelabelDistillation(Module(), digits_models[1], n_samples=100).attribute(digits[:2])
    assert torch.equal(a, b)


@pytest.mark.parametrize("bad, message", [
    (lambda x: np.zeros((len(x), 3)), r"must return scores of shape \(4, 2\).* got ndarray of shape \(4, 3\)"),
    (lambda x: np.zeros(len(x)), r"must return scores of shape \(4, 2\).* got ndarray of shape \(4,\)"),
    (lambda x: np.full((len(x), 2), np.nan), r"returned NaN/Inf scores for 4 of 4 image\(s\)"),
    (lambda x: "cat", r"must return scores of shape \(4, 2\)"),
])
def test_a_callable_that_answers_wrongly_gets_an_error_naming_it_and_what_was_expected(bad, message, digits):
    box = BlackBox(bad, n_classes=2, accepts="numpy", name="my_model")
    with pytest.raises((ValueError, TypeError), match="my_model " + message):
        box(digits)
    with pytest.raises((ValueError, TypeError), match="my_model"):
        make_explainer("occlusion", box).attribute(digits)


def test_inputs_of_another_shape_are_refused_naming_what_the_box_takes(box):
    with pytest.raises(ValueError, match=r"takes images \(B, 1, 16, 16\); got shape \(2, 3, 16, 16\)"):
        box(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        BlackBox(left_half_scores, n_classes=0)


@pytest.mark.parametrize("name", ["saliency", "integrated_gradients", "gradcam"])
@pytest.mark.parametrize("as_box", [True, False])
def test_gradient_explainers_refuse_a_black_box_naming_the_explainers_that_work(name, as_box, box, digits_models):
    model = box if as_box else (lambda x: digits_models[0](x))
    kwargs = {} if as_box or name != "gradcam" else {"layer": digits_models[0].gradcam_layer}
    with pytest.raises(TypeError, match=f"the '{name}' explainer needs gradients.*" + ", ".join(BLACK_BOX_EXPLAINERS)):
        make_explainer(name, model, **kwargs)


# ------------------------------------------------------------------------------------------------ dlib's identifier
@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


@needs_dlib
def test_a_photo_without_a_face_is_an_error_naming_it_and_a_face_is_aligned(astronaut, tmp_path):
    from skimage import data

    from workbench.models.face_id import NoFaceError, align_face

    chip = align_face(astronaut, size=48)
    assert chip.shape == (48, 48, 3) and chip.dtype == np.uint8
    with pytest.raises(NoFaceError, match="no face found in coffee.png"):
        align_face(data.coffee(), source="coffee.png")


@needs_dlib
def test_enrolling_a_folder_skips_photos_without_a_face_with_a_warning(astronaut, tmp_path):
    from skimage import data, io

    from workbench.models.face_id import FaceWarning, load_identity_folder

    for person, photos in {"a": [astronaut], "b": [astronaut[:, ::-1], data.coffee()]}.items():
        (tmp_path / person).mkdir()
        for i, photo in enumerate(photos):
            io.imsave(tmp_path / person / f"{i}.png", np.ascontiguousarray(photo), check_contrast=False)
    with pytest.warns(FaceWarning, match=r"b/1.png"):
        faces = load_identity_folder(tmp_path, size=32)
    assert faces.crops.shape == (2, 3, 32, 32) and faces.people.tolist() == [0, 1] and faces.names == ["a", "b"]
    (tmp_path / "a" / "0.png").unlink()
    io.imsave(tmp_path / "a" / "0.png", data.coffee(), check_contrast=False)
    with warnings.catch_warnings(), pytest.raises(ValueError, match=r"person folder .*a has no photo with a face"):
        warnings.simplefilter("ignore")
        load_identity_folder(tmp_path, size=32)


@pytest.fixture(scope="module")
def identities():
    """Five people of the development faces: two photos each enrolled, the others held out."""
    from workbench.models.face_id import FaceIdentifier, face_crop

    enrol, held, held_people, people = [], [], [], sorted(p for p in FACES_IDENTITY.iterdir() if p.is_dir())[:5]
    for k, person in enumerate(people):
        photos = sorted(person.glob("*.jpg"))[:4]
        enrol += [face_crop(p, 64) for p in photos[:2]]
        held += [face_crop(p, 64) for p in photos[2:]]
        held_people += [k] * len(photos[2:])
    identifier = FaceIdentifier.enrol(torch.stack(enrol), [k for k in range(5) for _ in range(2)])
    return identifier, torch.stack(held), torch.tensor(held_people)


@needs_dlib
@needs_faces
def test_the_face_identifier_recognises_held_out_photos_of_enrolled_people(identities):
    identifier, held, people = identities
    scores = identifier(held)
    assert scores.shape == (len(held), 5)
    assert (scores.argmax(1) == people).float().mean() >= 0.6  # chance is 0.2
    with pytest.raises(TypeError, match="needs gradients"):
        make_explainer("saliency", identifier)


@needs_dlib
@needs_faces
def test_occluding_the_face_centre_lowers_its_own_identity_more_than_a_corner(identities):
    identifier, held, people = identities
    own = lambda x: identifier(x).softmax(-1).gather(1, people[:, None]).squeeze(1)  # noqa: E731
    centre, corner = held.clone(), held.clone()
    centre[:, :, 20:44, 20:44] = 0
    corner[:, :, :24, :24] = 0
    base = own(held)
    assert ((base - own(centre)) > (base - own(corner))).float().mean() >= 0.75
