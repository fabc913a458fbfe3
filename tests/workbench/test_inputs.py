"""A user's model and image are checked before a dashboard uses them, with errors that say what was expected."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from workbench.inputs import load_classifier, load_image


class Tiny(torch.nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(16 * 16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def _script(path, classes: int = 10):
    torch.jit.script(Tiny(classes)).save(str(path))
    return path


def test_torchscript_classifier_with_the_right_classes_loads(tmp_path):
    model = load_classifier(_script(tmp_path / "m.pt"), (1, 16, 16), n_classes=10)
    assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 10)


def test_wrong_number_of_classes_is_named(tmp_path):
    with pytest.raises(ValueError, match="gives 7 classes.*10 classes"):
        load_classifier(_script(tmp_path / "m.pt", classes=7), (1, 16, 16), n_classes=10)


def test_text_file_as_model_is_refused_naming_it(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("this is not a model\n")
    with pytest.raises(ValueError, match="notes.pt.*not a TorchScript file"):
        load_classifier(text, (1, 16, 16))


def test_wrong_input_size_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"fails on an input of shape \(1, 1, 8, 8\)"):
        load_classifier(_script(tmp_path / "m.pt"), (1, 8, 8))


def test_class_with_state_dict_loads(tmp_path):
    weights = tmp_path / "w.pt"
    torch.save(Tiny().state_dict(), weights)
    model = load_classifier(f"{__name__}:Tiny", (1, 16, 16), 10, weights)
    assert model(torch.zeros(1, 1, 16, 16)).shape == (1, 10)


def test_colour_image_for_grey_model_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "colour.png"
    cv2.imwrite(str(path), rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="colour.png: a colour \\(RGB\\) image, but the model takes grey"):
        load_image(path, (1, 16, 16))


def test_grey_image_loads_for_grey_and_colour_models(tmp_path):
    path = tmp_path / "grey.png"
    cv2.imwrite(str(path), np.full((16, 16), 128, np.uint8))
    assert load_image(path, (1, 16, 16)).shape == (1, 16, 16)
    colour = load_image(path, (3, 16, 16))
    assert colour.shape == (3, 16, 16) and torch.allclose(colour[0], colour[2])


def test_wrong_size_and_unreadable_images_are_named(tmp_path):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="8x8 pixels, the model expects 16x16"):
        load_image(small, (1, 16, 16))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png: unreadable image"):
        load_image(broken, (1, 16, 16))
    with pytest.raises(FileNotFoundError, match="missing.png does not exist"):
        load_image(tmp_path / "missing.png", (1, 16, 16))
