"""The vector store's contract, for every kind of index: exact, IVF and HNSW.

Add, remove, search (with and without an allowed set), no ghosts, the fresh
part beside the trained one, folding and retraining, save/load through the
stamp, memory-mapped opening, and a crash between the files of a save.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmsearch.store import faiss_build, faiss_search, faiss_store, faiss_tune
from mmsearch.store.faiss_build import choose_kind
from mmsearch.store.faiss_store import FaissStore
from mmsearch.store.vectors import VectorFileError

pytestmark = pytest.mark.faiss_file  # the FAISS store itself (Milvus: test_vector_stores.py)

DIM = 32


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIM)).astype(np.float32)
    x = centres[rng.integers(0, 40, n)] + 0.5 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    return [int(i) for i in ids[np.argsort(-(x @ q), kind="stable")[:k]]]


def store_at(tmp_path: Path, ann: str) -> FaissStore:
    return FaissStore(str(tmp_path / "vectors-t.faiss"), DIM, ann)


@pytest.fixture(params=["exact", "ivf", "hnsw"])
def ann(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def built(tmp_path: Path, ann: str, n: int = 3000) -> tuple[FaissStore, np.ndarray, np.ndarray]:
    x = clustered(n)
    ids = np.arange(10, 10 + n, dtype=np.int64) * 3  # ids are not row numbers
    store = store_at(tmp_path, ann)
    store.rebuild_main([(ids, x)])
    store.save()
    return store, x, ids


def test_search_finds_neighbours_and_the_tuned_setting_is_recorded(
    tmp_path: Path, ann: str
) -> None:
    store, x, ids = built(tmp_path, ann)
    assert store.describe()["kind"] == ann and store.count == len(ids)
    if ann != "exact":
        assert store.params["recall_at_10"] >= faiss_tune.TARGET_RECALL
        assert ("nprobe" if ann == "ivf" else "ef_search") in store.params
    q = clustered(len(ids) + 50)[len(ids) :]  # same clusters, not stored
    _, found = store.search(q, 10)
    recall = np.mean(
        [len(set(found[i]) & set(exact_top(x, ids, q[i], 10))) / 10 for i in range(50)]
    )
    assert recall >= 0.9
    stamp = json.loads(Path(store.stamp_path).read_text())
    assert stamp["kind"] == ann and stamp["params"] == store.params


def test_removed_ids_are_never_returned_and_filters_return_k(tmp_path: Path, ann: str) -> None:
    store, x, ids = built(tmp_path, ann)
    gone = ids[::2]
    store.remove(gone)
    assert store.count == len(ids) - len(gone)
    _, found = store.search(x[:40], 50)
    assert not np.isin(found, gone).any()
    assert (found >= 0).all()
    allowed = ids[1::50]  # 30 allowed, none removed
    _, found = store.search(x[:5], 10, allowed_ids=np.concatenate([allowed, gone[:5]]))
    assert (found >= 0).all() and np.isin(found, allowed).all()
    store.save()
    again = store_at(tmp_path, ann)
    again.load()
    assert again.count == store.count and sorted(again.ids()) == sorted(store.ids())
    _, found = again.search(x[:40], 50)
    assert not np.isin(found, gone).any()


@pytest.mark.parametrize("scan_max", [0, 100_000], ids=["index-with-selector", "exact-scan"])
def test_a_filter_gets_the_exact_top_k_of_its_allowed_set_by_either_path(
    tmp_path: Path, ann: str, scan_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few allowed vectors are scored exactly, more go through the index with an ID
    selector (looking in as many lists as the filter's share needs): either way k
    results, every one allowed, none deleted, the same as exact search here."""
    monkeypatch.setattr(faiss_search, "SCAN_MAX", scan_max)
    store, x, ids = built(tmp_path, ann)
    store.remove(ids[:300])
    rng = np.random.default_rng(4)
    allowed = np.sort(rng.choice(ids, 120, replace=False))
    live = allowed[~np.isin(allowed, ids[:300])]
    q = clustered(len(ids) + 5)[len(ids) :]
    _, found = store.search(q, 20, allowed_ids=allowed)
    assert (found >= 0).all() and np.isin(found, live).all()
    rows = np.searchsorted(ids, live)
    for i in range(len(q)):
        truth = exact_top(x[rows], live, q[i], 20)
        assert len(set(found[i]) & set(truth)) >= 18  # 8-bit codes may swap near ties


def test_fresh_part_is_searched_beside_the_trained_part(tmp_path: Path, ann: str) -> None:
    store, _, ids = built(tmp_path, ann)
    main_file = json.loads(Path(store.stamp_path).read_text())["files"]["main"]
    new = clustered(200, seed=5)
    new_ids = np.arange(1, 201, dtype=np.int64) + int(ids.max())
    store.add(new_ids, new)
    store.save()
    stamp = json.loads(Path(store.stamp_path).read_text())
    assert stamp["files"]["main"] == main_file, "adding 200 vectors rewrote the trained part"
    assert stamp["fresh_count"] == 200
    _, found = store.search(new[:20], 1)
    assert found[:, 0].tolist() == new_ids[:20].tolist()
    assert store.max_id == int(new_ids.max())


def test_fold_and_retrain_keep_every_vector(
    tmp_path: Path, ann: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _, ids = built(tmp_path, ann)
    monkeypatch.setattr(faiss_store, "FRESH_MIN", 100)
    more = clustered(400, seed=7)
    more_ids = np.arange(1, 401, dtype=np.int64) + int(ids.max())
    store.add(more_ids, more)
    store.save()  # 400 > fresh limit: folded into the main part, no retraining
    assert store.last_build["action"] == "folded" and store.describe()["fresh"] == 0
    assert store.trained_on == len(ids)
    store.add(more_ids + 10_000, clustered(len(ids) * 2, seed=8)[:400])
    store.remove(ids[: len(ids) // 5])  # a fifth deleted: retrained
    store.save()
    assert store.last_build["action"] == "rebuilt" and store.describe()["deleted"] == 0
    assert store.count == len(ids) - len(ids) // 5 + 800
    loaded = store_at(tmp_path, ann)
    loaded.load()
    assert sorted(loaded.ids()) == sorted(store.ids())
    _, found = loaded.search(more[:10], 1)
    assert found[:, 0].tolist() == more_ids[:10].tolist()


def test_main_part_is_memory_mapped_on_open(tmp_path: Path) -> None:
    _, x, ids = built(tmp_path, "ivf")
    loaded = store_at(tmp_path, "ivf")
    loaded.load()
    assert isinstance(loaded.main_vecs, np.memmap) and isinstance(loaded.main_ids, np.memmap)
    _, found = loaded.search(x[:3], 1)
    assert found[:, 0].tolist() == ids[:3].tolist()


def test_a_crash_between_the_files_of_a_save_leaves_the_last_stamp_usable(
    tmp_path: Path, ann: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, x, ids = built(tmp_path, ann)

    class KilledError(Exception):
        pass

    def crash(target: str) -> None:
        if ".fresh-" in target or target.endswith(".json"):
            raise KilledError(target)

    store.add(np.asarray([int(ids.max()) + 1]), x[:1])
    monkeypatch.setattr(FaissStore, "before_rename", staticmethod(crash))
    with pytest.raises(KilledError):
        store.save()
    monkeypatch.setattr(FaissStore, "before_rename", None)
    loaded = store_at(tmp_path, ann)
    loaded.load()  # the previous save, whole: behind by one vector, which sync replays
    assert loaded.count == len(ids) and loaded.max_id == int(ids.max())


def test_a_file_that_disagrees_with_the_stamp_is_refused(tmp_path: Path) -> None:
    store, _, _ = built(tmp_path, "ivf")
    stamp = json.loads(Path(store.stamp_path).read_text())
    (tmp_path / stamp["files"]["ids"]).write_bytes(b"not numpy")
    with pytest.raises(VectorFileError):
        store_at(tmp_path, "ivf").load()


def test_auto_picks_exact_below_the_threshold_then_ivf() -> None:
    assert choose_kind(faiss_build.EXACT_MAX - 1, "auto") == "exact"
    assert choose_kind(faiss_build.EXACT_MAX, "auto") == "ivf"
    assert choose_kind(10, "hnsw") == "hnsw"


def test_ivf_lists_come_from_two_level_clustering_under_a_graph_quantizer(tmp_path: Path) -> None:
    """The coarse centroids are unit vectors of the data's own clusters, one per list,
    found by a graph (HNSW) quantizer: the right list for a stored vector is among its
    nprobe nearest centroids."""
    store, x, ids = built(tmp_path, "ivf", n=6000)
    quantizer = store._faiss.downcast_index(store.main.quantizer)
    assert isinstance(quantizer, store._faiss.IndexHNSW)
    assert store.params["index"] == f"IVF{store.main.nlist}_HNSW32,SQ8"
    centroids = store._faiss.rev_swig_ptr(
        store._faiss.downcast_index(quantizer.storage).get_xb(), quantizer.ntotal * DIM
    ).reshape(-1, DIM)
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-4)
    assert len(centroids) == faiss_build.nlist_for(len(ids))
    # every stored vector is found by itself at the tuned nprobe, through the graph
    _, found = store.search(x[:200], 1)
    assert (found[:, 0] == ids[:200]).mean() >= 0.99


def test_an_ivf_part_with_a_flat_quantizer_still_loads_and_searches(tmp_path: Path) -> None:
    """Indexes built before the graph quantizer (``IVF{n},SQ8``) open and search unchanged."""
    faiss = faiss_build.load_faiss()
    x = clustered(3000)
    ids = np.arange(1, 3001, dtype=np.int64)
    store = store_at(tmp_path, "ivf")
    old = faiss.index_factory(DIM, "IVF64,SQ8", faiss.METRIC_INNER_PRODUCT)
    old.train(x)
    store.rebuild_main([(ids, x)])  # the store's own build, then its main part swapped
    old.add_with_ids(x, ids)
    store.main, store._quantizer_is_hnsw = old, None
    store.params.update({"index": "IVF64,SQ8", "nlist": 64, "nprobe": 8})
    store.save()
    again = store_at(tmp_path, "ivf")
    again.load()
    _, found = again.search(x[:50], 10)
    assert not again._hnsw_quantizer()
    assert np.mean([found[i][0] == ids[i] for i in range(50)]) >= 0.9
