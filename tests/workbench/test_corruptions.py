"""The robustness benchmarks' corruptions: one implementation for grey and colour images and clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as skdata

from workbench.data.corruptions import CONDITIONS, blur, corrupt, jpeg, jpeg_image, noise


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """scikit-image's astronaut at 64 px as a (1, 3, 64, 64) float tensor: real texture for JPEG to lose."""
    import cv2

    img = cv2.resize(skdata.astronaut(), (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return torch.from_numpy(img).permute(2, 0, 1)[None]


def test_every_condition_keeps_shape_and_range_and_clean_is_untouched(photo):
    grey = photo.mean(1, keepdim=True)
    clips = torch.stack([photo[0], photo[0].flip(-1)])[None]  # (1, T=2, 3, 64, 64)
    for x in (photo, grey, clips):
        for name in CONDITIONS:
            out = corrupt(x, name, reference_size=64)
            assert out.shape == x.shape and float(out.min()) >= 0 and float(out.max()) <= 1
            assert (out is x) == (name == "clean")
            if name != "clean":
                assert float((out - x).abs().mean()) > 1e-3, name  # each corruption changes the images


def test_jpeg_is_opencvs_codec_per_frame_and_colour_stays_colour(photo):
    frame = photo[0].permute(1, 2, 0).numpy()
    out = jpeg(photo, 40)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(out, jpeg_image(frame, 40))
    assert np.abs(out[..., 0] - out[..., 2]).mean() > 0.05  # red and blue differ: not decoded as grey
    assert np.abs(jpeg(photo, 95) - photo).mean() < np.abs(jpeg(photo, 10) - photo).mean()  # quality matters


def test_blur_sigma_scales_with_the_reference_size(photo):
    big = torch.nn.functional.interpolate(photo, size=128, mode="bilinear", align_corners=False)
    assert torch.equal(blur(big, 0.8, reference_size=64), blur(big, 1.6))
    assert float(blur(photo, 2.0).std()) < float(blur(photo, 0.5).std()) < float(photo.std())


def test_noise_is_seeded_and_of_the_asked_std():
    x = torch.full((4, 1, 32, 32), 0.5)
    assert torch.equal(noise(x, 0.05, seed=3), noise(x, 0.05, seed=3))
    assert not torch.equal(noise(x, 0.05, seed=3), noise(x, 0.05, seed=4))
    assert abs(float((noise(x, 0.05) - x).std()) - 0.05) < 0.005


def test_bad_input_names_what_was_expected(photo):
    with pytest.raises(ValueError, match=r"\(\.\.\., C, H, W\) with C 1 or 3"):
        jpeg(torch.rand(2, 4, 8, 8))
    with pytest.raises(ValueError, match="unknown condition 'fog'; expected one of"):
        corrupt(photo, "fog")
