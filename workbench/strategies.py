"""Data-set-wide strategies: spectral relevance analysis (SpRAy, Lapuschkin et al. 2019, "Unmasking Clever Hans
predictors") over the attribution maps of a batch run.

Maps are downsampled and normalised, a sparse symmetric k-NN affinity graph is built, its normalised Laplacian's
smallest eigenvectors give a spectral embedding, the eigengap picks the number of clusters and k-means in the
embedding assigns them. :func:`analyze_run` streams the Parquet shards of ``python -m workbench explain`` and writes
the result beside the run (``strategies.npz``) so that a view only draws it.
"""
from __future__ import annotations

import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

RESULT_FILE = "strategies.npz"


def _empty() -> np.ndarray:
    return np.zeros(0)


@dataclass
class Strategies:
    """The clustering of a set of maps: one row per map (``labels``, ``embedding``), one entry per cluster."""

    labels: np.ndarray                                        # (n,) cluster of each map
    embedding: np.ndarray = field(default_factory=_empty)     # (n, 2) spectral coordinates 2-3, for a scatter
    eigenvalues: np.ndarray = field(default_factory=_empty)   # smallest normalised-Laplacian eigenvalues, ascending
    mean_maps: np.ndarray = field(default_factory=_empty)     # (k, size, size) mean downsampled map of each cluster
    classes: np.ndarray = field(default_factory=_empty)       # (n,) class (target) of each map
    rows: np.ndarray = field(default_factory=_empty)          # (n,) row index in the run (or in the input array)
    paths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    explainer: str = ""                                       # the run's explainer whose maps were clustered

    @property
    def n_clusters(self) -> int:
        """Number of clusters chosen (by the eigengap unless fixed)."""
        return int(self.mean_maps.shape[0])

    @property
    def sizes(self) -> np.ndarray:
        """``(k,)`` number of maps in each cluster."""
        return np.bincount(self.labels, minlength=self.n_clusters)

    def members(self, cluster: int) -> np.ndarray:
        """Row indices (into this result) of the maps in ``cluster``."""
        return np.flatnonzero(self.labels == cluster)

    def class_mix(self, cluster: int) -> dict[int, int]:
        """How many maps of each class the cluster holds."""
        values, counts = np.unique(self.classes[self.labels == cluster], return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True)}

    def class_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(the classes present ``(m,)``, counts ``(k, m)`` of each class in each cluster), in one pass over the
        maps: what a gallery or a report shows for every cluster at once."""
        values, inverse = np.unique(self.classes, return_inverse=True)
        counts = np.bincount(self.labels.astype(np.int64) * len(values) + inverse.ravel(),
                             minlength=self.n_clusters * len(values))
        return values, counts.reshape(self.n_clusters, len(values))

    def class_mix_frame(self, names: dict[int, str] | None = None, max_classes: int = 20) -> pd.DataFrame:
        """The class mix as a table: one row per cluster (``cluster``, ``maps``), one column per class (named by
        ``names`` where given), the ``max_classes`` most frequent overall and the rest summed in ``other``."""
        import pandas as pd

        names = names or {}
        values, counts = self.class_table()
        shown = np.sort(np.argsort(-counts.sum(0), kind="stable")[:max_classes])
        frame = pd.DataFrame({"cluster": np.arange(self.n_clusters), "maps": counts.sum(1)})
        for j in shown:
            frame[names.get(int(values[j]), str(values[j]))] = counts[:, j]
        if len(shown) < len(values):
            frame["other"] = counts.sum(1) - counts[:, shown].sum(1)
        return frame

    def save(self, path: str | Path) -> Path:
        """Write the result as one ``.npz`` file (no pickle)."""
        path = Path(path)
        np.savez(path, labels=self.labels, embedding=self.embedding, eigenvalues=self.eigenvalues,
                 mean_maps=self.mean_maps, classes=self.classes, rows=self.rows,
                 paths=np.asarray(self.paths, dtype=str), explainer=np.asarray(self.explainer, dtype=str))
        return path

    @classmethod
    def load(cls, path: str | Path, fields: tuple[str, ...] | None = None) -> Strategies:
        """Read a result written by :meth:`save`; ``fields``: only these arrays (``labels`` always), the others
        left empty, so a view of a 100,000-map run does not read its paths until it lists members."""
        with np.load(Path(path), allow_pickle=False) as data:
            names = [k for k in data.files if fields is None or k in fields or k == "labels"]
            values = {k: data[k] for k in names if k in cls.__dataclass_fields__}
        if "explainer" in values:
            values["explainer"] = str(values["explainer"])
        return cls(**values)


def downsample(maps: np.ndarray, size: int = 16) -> np.ndarray:
    """Maps ``(n, H, W)`` or ``(n, C, H, W)`` -> ``(n, size*size)``: channels summed, absolute value, area-averaged
    to ``size`` x ``size`` and scaled to unit maximum. The paper sums relevance over channels and downsizes maps
    (it reports 32x32 on ImageNet-like data); ``size=16`` and the absolute value are ours."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 4:
        maps = maps.sum(axis=1)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (n, H, W) or (n, C, H, W), got shape {maps.shape}")
    n, h, w = maps.shape
    maps = np.abs(maps)
    rows = np.linspace(0, h, size + 1).astype(int)
    cols = np.linspace(0, w, size + 1).astype(int)
    if h >= size and w >= size:
        out = np.add.reduceat(np.add.reduceat(maps, rows[:-1], axis=1), cols[:-1], axis=2)
        out /= np.outer(np.diff(rows), np.diff(cols))[None]
    else:
        ri = np.minimum((np.arange(size) * h) // size, h - 1)
        ci = np.minimum((np.arange(size) * w) // size, w - 1)
        out = maps[:, ri][:, :, ci]
    out = out.reshape(n, -1)
    peak = out.max(axis=1, keepdims=True)
    return np.divide(out, peak, out=np.zeros_like(out), where=peak > 0)


def spectral_embedding(features: np.ndarray, n_neighbors: int = 10, n_eigen: int = 12,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of the symmetric normalised Laplacian of a k-NN affinity graph.

    ``n_neighbors``: the paper uses a k-NN graph with binary weights; the count (10) is ours. ``n_eigen``: how
    many of the smallest eigenpairs are computed, an upper bound on the clusters (ours)."""
    from scipy.sparse import csr_matrix, diags
    from scipy.sparse.linalg import eigsh
    from sklearn.neighbors import NearestNeighbors

    n = features.shape[0]
    k = min(n_neighbors, n - 1)
    if k < 1:
        raise ValueError(f"need at least 2 maps to cluster, got {n}")
    index = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features, return_distance=False)
    rows = np.repeat(np.arange(n), k)
    graph = csr_matrix((np.ones(n * k, np.float64), (rows, index[:, 1:].ravel())), shape=(n, n))
    graph = graph.maximum(graph.T)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    scale = diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    # largest eigenvalues of D^-1/2 A D^-1/2 are 1 - the smallest of the normalised Laplacian
    operator = scale @ graph @ scale
    m = min(n_eigen, n - 1)
    v0 = np.random.default_rng(seed).standard_normal(n)
    values, vectors = eigsh(operator, k=m, which="LA", v0=v0, tol=1e-6)
    order = np.argsort(-values)
    return 1.0 - values[order], vectors[:, order]


def eigengap(eigenvalues: np.ndarray, max_clusters: int = 10, zero: float = 1e-6) -> int:
    """Number of clusters: the position of the largest gap between consecutive smallest Laplacian eigenvalues
    (the paper's eigengap heuristic), searched up to ``max_clusters`` (ours), at least 2.

    Where the k-NN graph falls apart into more pieces than ``max_clusters``, every searched eigenvalue is 0 (below
    ``zero``) and there is no gap to find: the count is then ``max_clusters``, with a warning naming the cause
    (ours; the heuristic alone would answer 2)."""
    values = np.asarray(eigenvalues)[: max_clusters + 1]
    if len(values) < 3:
        return max(1, len(values) - 1)
    if float(np.max(np.abs(values))) < zero:
        warnings.warn(f"the maps' k-NN graph has more than {max_clusters} disconnected groups (every one of the "
                      f"{len(values)} smallest Laplacian eigenvalues is 0), so the eigengap cannot choose: using "
                      f"max_clusters={max_clusters}; raise max_clusters or n_neighbors to see them all",
                      RuntimeWarning, stacklevel=2)
        return max_clusters
    gaps = np.diff(values)
    return int(np.argmax(gaps[1:]) + 2)


def cluster_maps(maps: np.ndarray, classes: np.ndarray | None = None, *, size: int = 16, n_neighbors: int = 10,
                 max_clusters: int = 10, n_clusters: int | None = None, seed: int = 0) -> Strategies:
    """SpRAy on an array of maps (``(n, H, W)``, ``(n, C, H, W)`` or already downsampled ``(n, size*size)``).

    ``size``, ``n_neighbors``, ``max_clusters``: see :func:`downsample`, :func:`spectral_embedding`,
    :func:`eigengap`. ``n_clusters`` fixes the count instead of the eigengap. k-means (the paper's choice for the
    embedding) runs as MiniBatchKMeans above 5,000 maps (ours, for speed)."""
    maps = np.asarray(maps, dtype=np.float32)
    features = maps if maps.ndim == 2 and maps.shape[1] == size * size else downsample(maps, size)
    n = features.shape[0]
    classes = np.zeros(n, np.int64) if classes is None else np.asarray(classes)
    values, vectors = spectral_embedding(features, n_neighbors, max(max_clusters + 2, 4), seed)
    k = n_clusters or eigengap(values, max_clusters)
    labels = _kmeans(vectors[:, :k], k, seed)
    mean_maps = np.stack([features[labels == c].mean(axis=0) if np.any(labels == c) else np.zeros(size * size)
                          for c in range(k)]).reshape(k, size, size).astype(np.float32)
    embedding = vectors[:, 1:3] if vectors.shape[1] >= 3 else np.zeros((n, 2))
    return Strategies(labels=labels.astype(np.int32), embedding=embedding.astype(np.float32),
                      eigenvalues=values.astype(np.float32), mean_maps=mean_maps, classes=classes,
                      rows=np.arange(n))


def _kmeans(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    norms = np.linalg.norm(points, axis=1, keepdims=True)
    points = np.divide(points, norms, out=np.zeros_like(points), where=norms > 0)  # Ng-Jordan-Weiss row norm
    if len(points) > 5000:
        return MiniBatchKMeans(k, random_state=seed, n_init=3, batch_size=4096).fit_predict(points)
    return KMeans(k, random_state=seed, n_init=10).fit_predict(points)


def read_run_maps(run: str | Path, explainer: str | None = None, size: int = 16, batch_rows: int = 2048,
                  progress: Callable[[str], None] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stream a batch run's shards: (downsampled maps ``(n, size*size)``, targets, row numbers, paths) of the rows
    that did not fail, for one ``explainer`` (the run's first if None). Only one batch of full maps is in memory;
    ``progress`` is told each shard read."""
    import pyarrow.parquet as pq

    shards = _shards(run)
    explainer = explainer or first_explainer(run)
    feats, targets, rows, paths, seen = [], [], [], [], 0
    for number, shard in enumerate(shards, 1):
        for batch in pq.ParquetFile(shard).iter_batches(
                batch_size=batch_rows, columns=["path", "target", "explainer", "map", "map_shape", "status"]):
            frame = batch.to_pandas()
            keep = ((frame["explainer"] == explainer) & (frame["status"] != "failed")
                    & (frame["map"].map(len) > 0)).to_numpy()
            index = np.flatnonzero(keep)
            if len(index):
                shape = tuple(int(s) for s in frame["map_shape"].iloc[index[0]])
                full = np.stack([np.asarray(frame["map"].iloc[i], np.float32) for i in index]).reshape(-1, *shape)
                feats.append(downsample(full, size))
                targets.append(frame["target"].to_numpy()[index])
                paths.append(frame["path"].astype(str).to_numpy()[index])
                rows.append(seen + index)
            seen += len(frame)
        if progress:
            progress(f"read shard {number} of {len(shards)}: {sum(map(len, feats)):,} maps of {explainer}")
    if not feats:
        raise ValueError(f"{run}: no maps of explainer {explainer!r} to cluster")
    return np.concatenate(feats), np.concatenate(targets), np.concatenate(rows), np.concatenate(paths)


def first_explainer(run: str | Path) -> str:
    """The first explainer a run names (its ``run.json``; else the first row's), the one clustered by default."""
    import json

    manifest = Path(run) / "run.json"
    if manifest.is_file():
        asked = json.loads(manifest.read_text()).get("explainers") or []
        if asked:
            return str(asked[0])
    import pyarrow.parquet as pq

    return str(pq.read_table(_shards(run)[0], columns=["explainer"]).column(0)[0])


def _shards(run: str | Path) -> list[Path]:
    shards = sorted((Path(run) / "shards").glob("shard-*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{run}: no batch-run output (expected {Path(run) / 'shards'}/shard-*.parquet)")
    return shards


def analyze_run(run: str | Path, explainer: str | None = None, *, size: int = 16, n_neighbors: int = 10,
                max_clusters: int = 10, n_clusters: int | None = None, seed: int = 0, save: bool = True,
                progress: Callable[[str], None] | None = None) -> Strategies:
    """SpRAy over a batch run, streamed from its shards; written to ``RUN/strategies.npz`` when ``save``.
    ``progress`` gets a line per shard read and one before clustering (a view shows them)."""
    explainer = explainer or first_explainer(run)
    features, targets, rows, paths = read_run_maps(run, explainer, size, progress=progress)
    if progress:
        progress(f"clustering {len(features):,} maps of {explainer} (k-NN graph, spectral embedding, k-means)")
    result = cluster_maps(features, targets, size=size, n_neighbors=n_neighbors, max_clusters=max_clusters,
                          n_clusters=n_clusters, seed=seed)
    result.rows, result.paths, result.explainer = rows, paths, explainer
    if save:
        result.save(Path(run) / RESULT_FILE)
    return result


#: what a view of the strategies reads to open (no row numbers, no paths: those come when members are listed)
VIEW_FIELDS = ("labels", "embedding", "eigenvalues", "mean_maps", "classes", "explainer")


def has_strategies(run: str | Path) -> bool:
    """True when :func:`analyze_run` has written its result beside the run."""
    return (Path(run) / RESULT_FILE).is_file()


def load_run_strategies(run: str | Path, fields: tuple[str, ...] | None = None) -> Strategies:
    """The clustering cached beside a run by :func:`analyze_run` (the view only reads this); ``fields``: only
    those arrays (e.g. :data:`VIEW_FIELDS`), see :meth:`Strategies.load`."""
    path = Path(run) / RESULT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run}: no {RESULT_FILE}; run workbench.strategies.analyze_run({str(run)!r}) first")
    try:
        return Strategies.load(path, fields)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: unreadable strategies file ({exc}); delete it and run analyze_run again") from None


def purity(labels: np.ndarray, planted: np.ndarray) -> tuple[int, float, float]:
    """(cluster, purity, recall) of the cluster that best holds the ``planted`` (boolean) maps: purity is the
    planted share of that cluster, recall the share of planted maps in it."""
    planted = np.asarray(planted, bool)
    best = int(np.bincount(labels[planted]).argmax())
    inside = labels == best
    return best, float(planted[inside].mean()), float(inside[planted].mean())
