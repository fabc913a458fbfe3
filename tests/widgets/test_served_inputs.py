"""On a served page the "Your data" rows refuse, on the row, what the operator did not allow; in JupyterLab they
read any path. Nothing refused reaches the dashboard's handler (so nothing of it is read, imported or called)."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from widgets.inputs import PathRow, relabel_panel
from workbench.access import ALLOW_PATHS_ENV, SERVED_ENV, upload_root


@pytest.fixture
def served(monkeypatch, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.delenv(SERVED_ENV, raising=False)
    monkeypatch.setenv("VOILA_REQUEST_URL", "http://127.0.0.1:8866/voila/render/relabel.ipynb")
    monkeypatch.setenv(ALLOW_PATHS_ENV, str(allowed))
    monkeypatch.setenv("WORKBENCH_MAX_UPLOAD_MB", "1")
    return allowed


def _recording_row() -> tuple[PathRow, list[str]]:
    seen: list[str] = []

    def handler(path: str) -> str:
        seen.append(path)
        return f"read {path}"

    return PathRow("image", "/path", handler, css="t"), seen


def test_served_row_refuses_a_server_file_outside_the_roots_without_calling_the_handler(served, tmp_path):
    row, seen = _recording_row()
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"x")
    assert not row.load(str(secret))
    assert not row.load(f"{served}/../secret.png")
    assert seen == [] and "Cannot use this image" in row.message.value and "reads only uploads" in row.message.value
    inside = served / "mine.png"
    assert row.load(str(inside)) and seen == [str(inside)]


def test_served_upload_is_size_limited_and_lands_in_the_uploads_folder(served):
    row, seen = _recording_row()
    row._on_upload({"new": [{"name": "../../big.png", "content": memoryview(bytes(2**20 + 1))}]})
    assert seen == [] and "more than this served page accepts" in row.message.value
    row._on_upload({"new": [{"name": "../../small.png", "content": memoryview(b"png")}]})
    assert seen == [str(upload_root() / "small.png")] and (upload_root() / "small.png").read_bytes() == b"png"


def test_served_model_row_refuses_module_class_before_importing_it(served):
    board = SimpleNamespace(images=torch.zeros(2, 1, 16, 16), classes=list(range(10)))
    model_row = next(row for row in relabel_panel(board).rows if row.what == "model")
    sys.modules.pop("this", None)  # a stdlib module whose import prints: it must not be imported
    assert not model_row.load("this:s weights.pt")
    assert not model_row.load("os:getpid")
    assert "this" not in sys.modules
    assert "builds no classes outside its allowed packages" in model_row.message.value


def test_notebook_row_reads_any_path(monkeypatch, tmp_path):
    for name in ("VOILA_REQUEST_URL", "VOILA_SERVER_URL", "VOILA_BASE_URL", SERVED_ENV):
        monkeypatch.delenv(name, raising=False)
    row, seen = _recording_row()
    image = tmp_path / "anywhere.png"
    cv2.imwrite(str(image), np.zeros((4, 4), np.uint8))
    assert row.load(str(image)) and seen == [str(image)]
