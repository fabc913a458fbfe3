"""Served pages read only the allowed roots and build no class outside the allowed packages; notebooks stay open.

The served policy is what a Voilà kernel sees (``VOILA_REQUEST_URL`` in its environment); the refusals come from the
library loaders, so a notebook forced into the served policy gets the same refusals."""

from __future__ import annotations

import os
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch

from workbench.access import ALLOW_MODULES_ENV, ALLOW_PATHS_ENV, SERVED_ENV, AccessPolicy, upload_root
from workbench.inputs import load_classifier, load_image


def _png(path, size=16):
    cv2.imwrite(str(path), np.full((size, size), 128, np.uint8))
    return path


@pytest.fixture
def served(monkeypatch, tmp_path):
    """The kernel environment Voilà gives a served page, with ``tmp_path/allowed`` named by the operator."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    for name in (SERVED_ENV, ALLOW_MODULES_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VOILA_REQUEST_URL", "http://127.0.0.1:8866/voila/render/relabel.ipynb")
    monkeypatch.setenv(ALLOW_PATHS_ENV, str(allowed))
    return allowed


@pytest.fixture
def spy_package(tmp_path, monkeypatch):
    """A package on sys.path whose import and whose class call leave marks, so we can see they did not happen."""
    root = tmp_path / "spy_site"
    (root / "wb_spy_pkg").mkdir(parents=True)
    (root / "wb_spy_pkg" / "__init__.py").write_text(textwrap.dedent("""
        import os

        import torch

        os.environ["WB_SPY_IMPORTED"] = "1"

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                os.environ["WB_SPY_CALLED"] = "1"
                self.inner = torch.nn.Linear(256, 10)

            def forward(self, x):
                return self.inner(x.flatten(1))
    """))
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv("WB_SPY_IMPORTED", raising=False)
    monkeypatch.delenv("WB_SPY_CALLED", raising=False)
    yield "wb_spy_pkg"
    sys.modules.pop("wb_spy_pkg", None)


def test_notebook_kernel_is_open_and_voila_kernel_is_served():
    assert not AccessPolicy.from_env({}).served
    assert AccessPolicy.from_env({"VOILA_REQUEST_URL": "http://x/voila/render/a.ipynb"}).served
    assert AccessPolicy.from_env({"VOILA_REQUEST_URL": "http://x", SERVED_ENV: "0"}).served is False
    assert AccessPolicy.from_env({SERVED_ENV: "1"}).served


def test_allowed_root_and_uploads_are_read(served):
    (served / "sub").mkdir()
    assert load_image(_png(served / "sub" / "digit.png"), (1, 16, 16)).shape == (1, 16, 16)
    uploaded = _png(upload_root() / "mine.png")
    assert load_image(uploaded, (1, 16, 16)).shape == (1, 16, 16)


def test_outside_path_dotdot_and_symlink_escapes_are_refused(served, tmp_path):
    outside = _png(tmp_path / "secret.png")
    with pytest.raises(PermissionError, match="reads only uploads"):
        load_image(outside, (1, 16, 16))
    with pytest.raises(PermissionError, match="reads only uploads"):
        load_image(f"{served}/../secret.png", (1, 16, 16))
    link = served / "innocent.png"
    os.symlink(outside, link)
    with pytest.raises(PermissionError, match="links out"):
        load_image(link, (1, 16, 16))
    (served / "dir-link").symlink_to(tmp_path)
    with pytest.raises(PermissionError, match="links out"):
        load_image(served / "dir-link" / "secret.png", (1, 16, 16))


def test_outside_path_is_refused_before_the_file_system_is_asked(served, tmp_path):
    missing = tmp_path / "nowhere" / "x.png"  # would be FileNotFoundError if it were looked at
    with pytest.raises(PermissionError):
        load_image(missing, (1, 16, 16))


def test_module_class_refused_when_served_before_anything_is_imported(served, spy_package):
    for model in ("os:getpid", "os:abort", f"{spy_package}:Net"):
        with pytest.raises(PermissionError, match="builds no classes"):
            load_classifier(model, (1, 16, 16), 10, weights=served / "w.pt")
    assert spy_package not in sys.modules and "WB_SPY_IMPORTED" not in os.environ


def test_outside_weights_and_model_files_are_refused_when_served(served, tmp_path, monkeypatch):
    outside = tmp_path / "outside.pt"
    torch.save({}, outside)
    with pytest.raises(PermissionError, match="reads only uploads"):
        load_classifier(outside, (1, 16, 16), 10)
    monkeypatch.setenv(ALLOW_MODULES_ENV, "wb_spy_pkg")
    with pytest.raises(PermissionError, match="weights"):
        load_classifier("wb_spy_pkg:Net", (1, 16, 16), 10, weights=outside)


def test_allowed_package_is_built_only_after_its_weights_check(served, spy_package, monkeypatch):
    monkeypatch.setenv(ALLOW_MODULES_ENV, spy_package)
    with pytest.raises(ValueError, match="needs its weights"):
        load_classifier(f"{spy_package}:Net", (1, 16, 16), 10)
    bad = served / "bad.pt"
    bad.write_text("not a state dict")
    with pytest.raises(ValueError, match="not a state-dict file"):
        load_classifier(f"{spy_package}:Net", (1, 16, 16), 10, weights=bad)
    assert "WB_SPY_IMPORTED" not in os.environ and "WB_SPY_CALLED" not in os.environ
    good = served / "good.pt"
    torch.save({"inner." + k: v for k, v in torch.nn.Linear(256, 10).state_dict().items()}, good)
    model = load_classifier(f"{spy_package}:Net", (1, 16, 16), 10, weights=good)
    assert os.environ.get("WB_SPY_CALLED") == "1" and model(torch.zeros(1, 1, 16, 16)).shape == (1, 10)


def test_notebook_keeps_module_class_and_any_path_but_still_checks_weights_first(monkeypatch, tmp_path,
                                                                                  spy_package):
    for name in ("VOILA_REQUEST_URL", "VOILA_SERVER_URL", "VOILA_BASE_URL", SERVED_ENV):
        monkeypatch.delenv(name, raising=False)
    assert load_image(_png(tmp_path / "anywhere.png"), (1, 16, 16)).shape == (1, 16, 16)
    with pytest.raises(ValueError, match="needs its weights"):
        load_classifier(f"{spy_package}:Net", (1, 16, 16), 10)
    assert spy_package not in sys.modules  # not even imported before the weights were found missing


def test_upload_limit_applies_only_when_served():
    policy = AccessPolicy.from_env({SERVED_ENV: "1", "WORKBENCH_MAX_UPLOAD_MB": "1"})
    policy.check_upload("small.png", 2**20)
    with pytest.raises(PermissionError, match="more than this served page accepts"):
        policy.check_upload("big.mp4", 2**20 + 1)
    AccessPolicy.from_env({}).check_upload("big.mp4", 10 * 2**30)
