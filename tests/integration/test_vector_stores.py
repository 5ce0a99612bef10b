"""One contract, every vector-store backend: FAISS and Milvus (Lite, a real Milvus engine).

A third backend only adds a case to the ``store`` fixture.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from mmsearch.errors import ConfigError, IndexUnusableError
from mmsearch.store import milvus_store
from mmsearch.store.backends import open_vector_store, recorded_spec
from mmsearch.store.vectors import VectorFileError, VectorStore

DIM = 16
_names = itertools.count()
MakeStore = Callable[..., VectorStore]


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def milvus_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("pymilvus")
    return tmp_path_factory.mktemp("milvus")  # one Milvus Lite file for the module


@pytest.fixture(params=["faiss", "milvus"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, milvus_folder: Path
) -> Iterator[MakeStore]:
    """A factory of handles on one fresh store (the same space each call)."""
    space = f"t{next(_names)}"
    if request.param == "faiss":
        folder, spec = tmp_path, "faiss"
    else:
        folder, spec = milvus_folder, "milvus:contract.db"

    def make(dim: int = DIM) -> VectorStore:
        return open_vector_store(spec, str(folder), space, dim)

    yield make


def filled(make: MakeStore, n: int = 40) -> tuple[VectorStore, np.ndarray, np.ndarray]:
    store = make()
    store.reset()
    ids = np.arange(1, n + 1, dtype=np.int64) * 3  # not dense: ids are SQLite segment ids
    vectors = unit_rows(n)
    store.add(ids, vectors)
    store.save()
    return store, ids, vectors


@pytest.mark.subprocess
def test_search_ranks_by_inner_product(make_store: MakeStore) -> None:
    store, ids, vectors = filled(make_store)
    assert (store.count, store.max_id) == (40, int(ids.max()))
    assert store.describe()["kind"] in ("exact", "milvus")
    scores, found = store.search(vectors[[5, 9]], 4)
    assert found.shape == (2, 4)
    assert found[0, 0] == ids[5] and found[1, 0] == ids[9]
    expected = np.sort(vectors @ vectors[5])[::-1][:4]
    np.testing.assert_allclose(scores[0], expected, atol=1e-5)
    assert list(scores[0]) == sorted(scores[0], reverse=True)


@pytest.mark.subprocess
def test_filters_apply_before_the_top_k_cut(
    make_store: MakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(milvus_store, "FILTER_CHUNK", 4)  # several id expressions, merged
    store, ids, vectors = filled(make_store)
    allowed = ids[[1, 7, 8, 20, 30, 31, 39]]
    _, found = store.search(vectors[0], 5, allowed_ids=allowed)
    assert set(found[0]) <= set(allowed) and len(found[0]) == 5
    exact = sorted(allowed, key=lambda i: -float(vectors[list(ids).index(i)] @ vectors[0]))[:5]
    assert list(found[0]) == exact
    assert store.search(vectors[0], 5, allowed_ids=np.zeros(0, np.int64))[1].shape == (1, 0)


@pytest.mark.subprocess
def test_removed_ids_are_never_returned(make_store: MakeStore) -> None:
    store, ids, vectors = filled(make_store)
    gone = ids[:10]
    store.remove(gone)
    store.save()
    assert store.count == 30
    _, found = store.search(vectors[:10], 30)
    assert not set(found.ravel()) & set(gone)
    _, found = store.search(vectors[0], 5, allowed_ids=gone)
    assert not set(found.ravel()) & set(gone)


@pytest.mark.subprocess
def test_a_new_handle_loads_what_was_saved(make_store: MakeStore) -> None:
    store, ids, vectors = filled(make_store)
    again = make_store()
    again.load()
    assert (again.count, again.max_id) == (store.count, store.max_id)
    np.testing.assert_array_equal(np.sort(again.ids()), np.sort(ids))
    np.testing.assert_array_equal(again.search(vectors[3], 6)[1], store.search(vectors[3], 6)[1])


@pytest.mark.subprocess
def test_replaying_ids_already_held_does_not_count_twice(make_store: MakeStore) -> None:
    store, ids, vectors = filled(make_store)
    if isinstance(store, milvus_store.MilvusStore):  # upserts: a replay after a crash is safe
        store.add(ids[-5:], vectors[-5:])
        assert store.count == 40
    store.add(np.array([500], np.int64), unit_rows(1, seed=9))
    assert (store.count, store.max_id) == (41, 500)


@pytest.mark.subprocess
def test_a_rebuild_holds_exactly_the_batches_given(make_store: MakeStore) -> None:
    store, ids, vectors = filled(make_store)
    store.reset()
    store.rebuild_main(iter([(ids[:15], vectors[:15]), (ids[15:30], vectors[15:30])]))
    store.save()
    assert (store.count, store.max_id) == (30, int(ids[29]))
    _, found = store.search(vectors[35], 40)
    assert set(found[0][found[0] >= 0]) == set(ids[:30])


@pytest.mark.subprocess
def test_reset_empties_and_untrusted_stores_raise(make_store: MakeStore) -> None:
    store, _, vectors = filled(make_store)
    store.reset()
    assert store.count == 0 and store.search(vectors[0], 3)[1].shape == (1, 0)
    with pytest.raises(VectorFileError):
        make_store(dim=DIM * 2).load()


@pytest.mark.subprocess
def test_a_missing_store_is_a_vector_file_error(make_store: MakeStore) -> None:
    with pytest.raises(VectorFileError):
        make_store().load()


def test_specs_are_checked_and_recorded_without_passwords() -> None:
    assert recorded_spec("faiss") == "faiss"
    assert recorded_spec("milvus:vectors.db") == "milvus:vectors.db"
    secret = "milvus+http://root:s3cret@db.example:19530/photos"
    assert recorded_spec(secret) == "milvus+http://root@db.example:19530/photos"
    for bad in ("annoy", "milvus:", "milvus:vectors.txt", "milvus+http:///x", "milvus+http://h/1x"):
        with pytest.raises(ConfigError):
            recorded_spec(bad)


@pytest.mark.subprocess
def test_a_milvus_server_that_is_down_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pymilvus")
    monkeypatch.setattr(milvus_store, "CONNECT_TIMEOUT", 2.0)
    store = open_vector_store(
        "milvus+http://root:s3cret@127.0.0.1:9/photos", str(tmp_path), "s", DIM
    )
    with pytest.raises(IndexUnusableError) as err:
        store.load()
    message = str(err.value)
    assert "127.0.0.1:9" in message and "s3cret" not in message and "\n" not in message


@pytest.mark.subprocess
def test_vectors_of_gives_the_held_vectors_in_order(make_store: MakeStore) -> None:
    """What the searcher reads candidates' vectors from when the store holds them here."""
    store, ids, vectors = filled(make_store)
    picked = ids[[7, 2, 30]]
    np.testing.assert_allclose(store.vectors_of(picked), vectors[[7, 2, 30]], atol=1e-3)
    with pytest.raises(KeyError):
        store.vectors_of(np.array([int(ids.max()) + 1]))
