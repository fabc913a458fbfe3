"""SpRAy (workbench.strategies): a planted watermark shortcut is found as its own cluster; results round-trip."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench import strategies
from workbench.explainers import make_explainer


def _watermarked_digits(seed: int = 0):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    y = digits.target.copy()
    rng = np.random.default_rng(seed)
    planted = (y == 3) & (rng.random(len(y)) < 0.5)
    x[planted, :2, :2] = 1.0            # bright corner square on half of class 3
    x[~planted, :2, :2] = 0.0
    return torch.from_numpy(x[:, None]), torch.from_numpy(y), planted


def _watermarked_patches(seed: int = 0):
    """The colour patch set (16 px, 100 per class) with a magenta corner square on half of the grass patches."""
    from workbench.data.patches import PATCH_CLASSES, load_patches

    data = load_patches(size=16, split="train", max_per_class=100, seed=seed)
    x, y = data.images.clone(), data.labels.clone()
    rng = np.random.default_rng(seed)
    planted = (y.numpy() == PATCH_CLASSES.index("grass")) & (rng.random(len(y)) < 0.5)
    x[torch.from_numpy(planted), :, :3, :3] = torch.tensor([1.0, 0.0, 1.0])[:, None, None]
    return x, y, planted


def _train(x: torch.Tensor, y: torch.Tensor) -> torch.nn.Module:
    torch.manual_seed(0)
    side, channels = x.shape[-1], x.shape[1]
    model = torch.nn.Sequential(torch.nn.Conv2d(channels, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * side * side, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def test_digits_watermark_is_its_own_cluster():
    x, y, planted = _watermarked_digits()
    model = _train(x, y)
    cls = y == 3
    maps = make_explainer("integrated_gradients", model).attribute(x[cls], y[cls]).detach().numpy()
    result = strategies.cluster_maps(maps, y[cls].numpy(), size=8, n_neighbors=10, max_clusters=6)
    assert result.n_clusters >= 2
    cluster, pure, recall = strategies.purity(result.labels, planted[cls.numpy()])
    assert pure >= 0.9 and recall >= 0.9, (result.n_clusters, pure, recall)
    # the watermark cluster's mean map is bright in the corner where the square was put
    mean = result.mean_maps[cluster]
    assert mean[:2, :2].mean() > mean[2:, 2:].mean()


def test_colour_patch_watermark_is_its_own_cluster():
    """The same planted shortcut on the colour patch set (3-channel maps, textures and photographs)."""
    x, y, planted = _watermarked_patches()
    model = _train(x, y)
    from workbench.data.patches import PATCH_CLASSES

    cls = y == PATCH_CLASSES.index("grass")
    maps = make_explainer("integrated_gradients", model).attribute(x[cls], y[cls]).detach().numpy()
    result = strategies.cluster_maps(maps, y[cls].numpy(), size=8, n_neighbors=10, max_clusters=6)
    assert result.n_clusters >= 2
    cluster, pure, recall = strategies.purity(result.labels, planted[cls.numpy()])
    assert pure >= 0.9 and recall >= 0.9, (result.n_clusters, pure, recall)
    mean = result.mean_maps[cluster]
    assert mean[:2, :2].mean() > 2 * mean[2:, 2:].mean()  # bright where the square was put


def test_eigengap_counts_separated_groups():
    rng = np.random.default_rng(0)
    centres = np.eye(64, dtype=np.float32)[[0, 20, 40, 63]]
    feats = np.concatenate([c + 0.05 * rng.random((100, 64), dtype=np.float32) for c in centres])
    result = strategies.cluster_maps(feats, size=8, max_clusters=8)
    assert result.n_clusters == 4
    assert all(len(np.unique(result.labels[i * 100:(i + 1) * 100])) == 1 for i in range(4))


def test_run_round_trip_and_clear_errors(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(1)
    maps = rng.random((60, 1, 8, 8)).astype(np.float32)
    maps[:30, :, :3, :3] += 5
    (tmp_path / "shards").mkdir()
    rows = [{"path": f"img{i}.png", "label": "a", "target": i % 2, "explainer": "saliency",
             "map": maps[i].ravel(), "map_shape": [1, 8, 8], "status": "ok"} for i in range(60)]
    rows.append({**rows[0], "map": np.zeros(0, np.float32), "map_shape": [], "status": "failed"})
    pd.DataFrame(rows).to_parquet(tmp_path / "shards" / "shard-00000.parquet")
    with pytest.raises(FileNotFoundError, match="strategies.npz"):
        strategies.load_run_strategies(tmp_path)
    made = strategies.analyze_run(tmp_path, size=8)
    loaded = strategies.load_run_strategies(tmp_path)
    assert len(loaded.labels) == 60 and loaded.paths[0] == "img0.png"
    np.testing.assert_array_equal(made.labels, loaded.labels)
    _, pure, _ = strategies.purity(loaded.labels, np.arange(60) < 30)
    assert pure >= 0.9
    with pytest.raises(FileNotFoundError, match="shard"):
        strategies.analyze_run(tmp_path / "nothing")


def _small_run(folder):
    """A batch run's folder (run.json + one shard) whose saliency maps are bright in one of two corners."""
    import json

    import pandas as pd

    rng = np.random.default_rng(2)
    maps = rng.random((40, 1, 8, 8)).astype(np.float32)
    maps[:20, :, :3, :3] += 5
    maps[20:, :, 5:, 5:] += 5
    rows = [{"path": f"img{i}.png", "label": i % 3, "target": i % 3, "explainer": "saliency", "map": maps[i].ravel(),
             "map_shape": [1, 8, 8], "status": "ok", "reason": "", "seconds": 0.01} for i in range(40)]
    (folder / "shards").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(folder / "shards" / "shard-000000.parquet")
    (folder / "run.json").write_text(json.dumps({"data": "folder", "explainers": ["saliency"], "metrics": [],
                                                 "classes": ["cat", "dog", "fox"]}))
    return folder


def test_the_run_report_shows_the_strategies_when_the_run_has_them(tmp_path):
    import re

    from workbench.report import run_report

    folder = _small_run(tmp_path / "run")
    assert "Strategies (SpRAy)" not in run_report(folder).to_html()  # none computed: no section
    result = strategies.analyze_run(folder)
    text = run_report(folder).to_html()
    section = text.split("<h2>Strategies (SpRAy)</h2>")[1]
    assert f"{result.n_clusters} clusters among 40 maps of saliency" in section
    captions = re.findall(r"<figcaption>(cluster \d+ · [^<]*)</figcaption>", section)
    assert len(captions) == result.n_clusters == 2
    assert len(re.findall(r"<img src='data:image/png;base64,", section)) == 2  # the gallery, inline
    for c in range(2):
        mix = result.class_mix(c)
        assert f"cluster {c} · {sum(mix.values())} maps" in captions[c]
        cells = re.search(rf"<tr>\s*<td>{c}</td>\s*<td>(\d+)</td>\s*<td>(\d+)</td>\s*<td>(\d+)</td>\s*<td>(\d+)</td>",
                          section).groups()  # class mix table: cluster, maps, cat, dog, fox
        assert [int(v) for v in cells] == [sum(mix.values()), mix.get(0, 0), mix.get(1, 0), mix.get(2, 0)]
    assert "<th>cat</th>" in section and "spectral embedding of 40 maps" in section


def test_more_groups_than_max_clusters_uses_max_clusters_and_says_so():
    # 15 far-apart groups of 4 maps with 3 neighbours each: the k-NN graph falls apart into 15 pieces, every
    # computed eigenvalue is 0 and the eigengap alone answered 2 clusters (two groups of 7-8 unrelated groups)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(15, 256)) * 10
    feats = np.concatenate([c + 0.01 * rng.normal(size=(4, 256)) for c in centres]).astype(np.float32)
    with pytest.warns(RuntimeWarning, match="more than 10 disconnected groups"):
        result = strategies.cluster_maps(feats, n_neighbors=3, max_clusters=10)
    assert result.n_clusters == 10
    groups = result.labels.reshape(15, 4)
    assert all(len(np.unique(g)) == 1 for g in groups)  # no group is split: each piece lands in one cluster


def test_eigengap_itself_refuses_to_guess_when_every_eigenvalue_is_zero():
    with pytest.warns(RuntimeWarning, match="eigengap cannot choose"):
        assert strategies.eigengap(np.zeros(12), max_clusters=6) == 6
    assert strategies.eigengap(np.array([0.0, 0.0, 0.0, 0.9, 1.0]), max_clusters=4) == 3
