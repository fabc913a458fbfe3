"""Batch explanation of whole data sets: rows exactly once, failures recorded, resume, refusals before work, Ray."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from workbench.batch import ModelSpec, explain_dataset, read_results, summarize

REPO = Path(__file__).resolve().parents[2]
SMOKE = ModelSpec("digits_classifier", smoke=True)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _keys(rows: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(rows["path"], rows["explainer"], strict=True))


def test_local_run_explains_every_image_once_with_maps_and_metrics(tmp_path):
    summary = explain_dataset("digits", SMOKE, ["saliency", "random"], tmp_path / "out",
                              metrics=["deletion", "Sparseness", "RandomLogit"],
                              shard_size=16, limit=40, engine="local", device="cpu", progress=False)
    rows = read_results(tmp_path / "out")
    assert len(rows) == 80 and len(set(_keys(rows))) == 80
    assert set(rows["status"]) == {"ok"}
    first = rows.iloc[0]
    assert list(first["map_shape"]) == [1, 16, 16] and len(first["map"]) == 256
    assert rows["metric_deletion"].between(0, 1).all() and rows["metric_Sparseness"].between(0, 1).all()
    assert rows["metric_RandomLogit"].notna().all()  # a metric that re-explains gets the row's explainer
    assert set(summary["explainer"]) == {"saliency", "random"} and (summary["rows"] == 40).all()
    # saliency is faithful, a random map is not: deletion of its top pixels hurts the class more
    means = rows.groupby("explainer")["metric_deletion"].mean()
    assert means["saliency"] < means["random"]


def _write(path: Path, image: np.ndarray) -> None:
    assert cv2.imwrite(str(path), image)


def test_unreadable_and_wrong_size_images_are_failed_rows_and_the_run_goes_on(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        _write(folder / f"ok{i}.png", (rng.random((16, 16)) * 255).astype(np.uint8))
    _write(folder / "big.png", np.zeros((20, 20), np.uint8))
    (folder / "broken.png").write_bytes(b"not a png at all")
    explain_dataset(folder, SMOKE, ["saliency"], tmp_path / "out", engine="local", device="cpu", progress=False)
    rows = read_results(tmp_path / "out").set_index("path")
    assert len(rows) == 5
    assert rows.loc[str(folder / "broken.png"), "status"] == "failed"
    assert "unreadable" in rows.loc[str(folder / "broken.png"), "reason"]
    assert "20x20 pixels, the model expects 16x16" in rows.loc[str(folder / "big.png"), "reason"]
    assert (rows.drop([str(folder / "broken.png"), str(folder / "big.png")])["status"] == "ok").all()


def test_bad_requests_are_refused_before_any_work(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="unknown explainer.*'anchors'"):
        explain_dataset("digits", SMOKE, ["anchors"], out, engine="local", progress=False)
    with pytest.raises(ValueError, match="unknown metric.*'PointingGame'"):  # needs ground-truth masks
        explain_dataset("digits", SMOKE, ["saliency"], out, metrics=["PointingGame"], engine="local")
    with pytest.raises(FileNotFoundError, match="neither an embedded model"):
        explain_dataset("digits", ModelSpec("no_such_model.pt", (1, 16, 16)), ["saliency"], out, engine="local")
    with pytest.raises(ValueError, match="input shape"):
        explain_dataset("digits", ModelSpec("pkg.mod:Net"), ["saliency"], out, engine="local")
    with pytest.raises(ValueError, match="needs a VAE"):
        explain_dataset("digits", _torchscript(tmp_path), ["relabel"], out, engine="local")
    assert not out.exists()  # nothing was started


def _torchscript(tmp_path: Path) -> ModelSpec:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 10))
    path = tmp_path / "net.pt"
    torch.jit.script(net).save(str(path))
    return ModelSpec(str(path), (1, 16, 16))


def test_a_torchscript_model_and_a_different_request_into_the_same_folder(tmp_path):
    spec = _torchscript(tmp_path)
    out = tmp_path / "out"
    explain_dataset("digits", spec, ["saliency"], out, limit=8, engine="local", device="cpu", progress=False)
    assert len(read_results(out)) == 8
    with pytest.raises(FileExistsError, match="results of another request"):
        explain_dataset("digits", spec, ["random"], out, limit=8, engine="local", progress=False)
    assert len(read_results(out)) == 8  # untouched


def test_killed_run_resumes_and_every_row_is_written_exactly_once(tmp_path):
    out = tmp_path / "out"
    code = ("from workbench.batch import ModelSpec, explain_dataset\n"
            f"explain_dataset('digits', ModelSpec('digits_classifier', smoke=True), ['occlusion'], r'{out}', "
            "shard_size=4, limit=48, engine='local', device='cpu', progress=False)\n")
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 240
    while not list((out / "shards").glob("*.parquet")) if (out / "shards").exists() else True:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    done_before = len(list((out / "shards").glob("*.parquet")))
    assert 0 < done_before < 12, "the kill came too late to test a resume"
    assert not list((out / "shards").glob("*.tmp"))
    summary = explain_dataset("digits", SMOKE, ["occlusion"], out, shard_size=4, limit=48, engine="local",
                              device="cpu", progress=False)
    rows = read_results(out, ["path", "explainer", "status"])
    assert len(rows) == 48 and len(set(_keys(rows))) == 48
    assert int(summary["rows"].sum()) == 48


def test_ray_run_survives_a_dying_worker_and_matches_the_in_process_run(tmp_path, monkeypatch):
    """One Ray worker dies on its first shard: Ray restarts it and retries, and every row is written exactly once,
    with the same maps as the in-process run."""
    helpers = Path(__file__).parent / "helpers"
    monkeypatch.syspath_prepend(str(helpers))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (str(helpers), str(REPO),
                                                                   os.environ.get("PYTHONPATH")))))
    marker = tmp_path / "died"
    monkeypatch.setenv("WB_DIE_MARKER", str(marker))
    from dying_model import DiesOnce

    torch.manual_seed(0)
    torch.save(DiesOnce().state_dict(), tmp_path / "w.pt")
    spec = ModelSpec("dying_model:DiesOnce", (1, 16, 16), str(tmp_path / "w.pt"))
    on_ray = tmp_path / "ray"
    explain_dataset("digits", spec, ["saliency"], on_ray, shard_size=8, limit=24, engine="ray", workers=2,
                    progress=False)
    assert marker.exists(), "no worker died: the test did not test a retry"
    local = tmp_path / "local"
    explain_dataset("digits", spec, ["saliency"], local, shard_size=8, limit=24, engine="local", device="cpu",
                    progress=False)
    a = read_results(local).set_index("path").sort_index()
    b = read_results(on_ray).set_index("path").sort_index()
    assert list(a.index) == list(b.index) and len(b) == 24 and b.index.is_unique
    np.testing.assert_allclose(np.stack(a["map"]), np.stack(b["map"]), atol=1e-6)
    assert summarize(on_ray)["rows"].tolist() == [24]
