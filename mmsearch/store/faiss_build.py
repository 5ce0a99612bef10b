"""Building the FAISS store's main part: which kind of index, and training it.

The kind follows the number of vectors under the ``ann`` setting
(:func:`choose_kind`): exact (``IndexFlatIP``) below :data:`EXACT_MAX`, above it
IVF with 8-bit scalar codes (``IVF{nlist}_HNSW32,SQ8``, see :data:`IVF_CODES`),
or HNSW when ``ann`` asks for it. IVF's lists come from a two-level spherical
k-means (:func:`two_level_centroids`) and a small HNSW graph over their centroids,
the coarse quantizer, picks the lists a query looks in. Candidates are re-ranked
exactly against the stored float16 vectors either way (``faiss_store.py``).

Measured figures behind the constants: ``docs/benchmarks.md``, "Large libraries".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mmsearch.errors import ConfigError, import_optional
from mmsearch.kinds import ANN_KINDS

EXACT_MAX = 20_000
"""Below this many vectors ``ann=auto`` searches exactly: where one query, on one thread,
stops being answered quickly enough by scoring every vector. See ``docs/benchmarks.md``,
"Large libraries" → "Exact search threshold"."""
HNSW_M = 32  # graph neighbours per node, for the HNSW index and the IVF coarse quantizer
HNSW_EF_CONSTRUCTION = 80
IVF_CODES = "SQ8"
"""How IVF stores its vectors (built in :func:`train_index`): one byte per dimension. Fast-scan
PQ (``PQ128x4fs``) is 8x smaller, but its codebooks train far more slowly, and the index is
retrained as it grows; candidates are re-ranked from the float16 vectors either way. See
``docs/benchmarks.md``, "Large libraries"."""
TRAIN_PER_LIST = 64  # training sample: this many vectors per IVF list
TRAIN_ITERATIONS = 20  # k-means iterations, at each of the two levels
# (more points per list and more iterations than faiss's minimum make builds over the same
# vectors agree more closely in recall, for a little more training: docs/benchmarks.md,
# "Large libraries")


def load_faiss() -> Any:
    """The ``faiss`` module, or an error naming the extra that installs it."""
    return import_optional("faiss", None, "the FAISS vector store")


def choose_kind(count: int, ann: str) -> str:
    """The main part's kind for ``count`` vectors under the ``ann`` setting."""
    if ann == "auto":
        return "exact" if count < EXACT_MAX else "ivf"
    if ann not in ANN_KINDS:
        raise ConfigError(f"ann must be one of {', '.join(ANN_KINDS)}, not {ann!r}")
    return ann


def nlist_for(count: int) -> int:
    """IVF lists: the power of two nearest ``4 * sqrt(count)`` (autofaiss's rule of thumb)."""
    return int(2 ** round(math.log2(max(64.0, 4 * math.sqrt(max(count, 1))))))


def train_index(faiss: Any, kind: str, vecs16: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """An empty, trained index of ``kind`` for ``vecs16`` (float16 rows), and its parameters.

    The index maps ids itself (``IndexIDMap2`` for exact and HNSW; IVF holds ids).
    """
    dim = vecs16.shape[1]
    if kind == "exact":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), {}
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return faiss.IndexIDMap2(hnsw), {}
    nlist = nlist_for(len(vecs16))
    rng = np.random.default_rng(0)
    sample_size = min(len(vecs16), TRAIN_PER_LIST * nlist)
    sample = vecs16[np.sort(rng.choice(len(vecs16), sample_size, replace=False))]
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    centroids = two_level_centroids(faiss, sample, nlist)
    quantizer = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    quantizer.add(centroids)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer,
        dim,
        len(centroids),
        faiss.ScalarQuantizer.QT_8bit,  # IVF_CODES
        faiss.METRIC_INNER_PRODUCT,
    )
    index.own_fields = True
    quantizer.this.disown()  # the index owns (and frees) its quantizer
    index.train(sample)  # the quantizer holds nlist centroids: only the codes are trained
    nlist = len(centroids)
    return index, {"index": f"IVF{nlist}_HNSW{HNSW_M},{IVF_CODES}", "nlist": nlist}


def two_level_centroids(faiss: Any, sample: np.ndarray, nlist: int) -> np.ndarray:
    """About ``nlist`` unit-norm k-means centroids of ``sample``, clustered in two levels.

    √nlist coarse clusters first, then each split into a share of the lists in
    proportion to its size: each k-means compares a point with √nlist centroids,
    not nlist, so a large index trains in a fraction of a flat k-means's time, at
    the same recall for a given nprobe (faiss.contrib.clustering does the same for
    L2; this is its inner-product, spherical form). See ``docs/benchmarks.md``,
    "Large libraries".
    """
    dim = sample.shape[1]

    def kmeans(points: np.ndarray, k: int) -> Any:
        km = faiss.Kmeans(
            dim,
            k,
            niter=TRAIN_ITERATIONS,
            spherical=True,
            seed=1234,
            min_points_per_centroid=1,  # no warning: a small share is still clustered
            max_points_per_centroid=len(points),
        )
        km.train(points)
        return km

    coarse = max(1, min(round(math.sqrt(nlist)), len(sample)))
    top = kmeans(sample, coarse)
    _, assigned = top.index.search(sample, 1)
    assigned = assigned.ravel()
    sizes = np.bincount(assigned, minlength=coarse)
    shares = np.diff(np.concatenate([[0], np.cumsum(sizes) * nlist // max(1, len(sample))]))
    parts = []
    for cluster in range(coarse):
        members = sample[assigned == cluster]
        k = min(int(shares[cluster]), len(members))
        if k == 1:
            centre = members.mean(axis=0, keepdims=True)
            parts.append(centre / max(float(np.linalg.norm(centre)), 1e-12))
        elif k > 1:
            parts.append(kmeans(members, k).centroids)
    return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)
