"""One contract, every vector-store backend: FAISS and Milvus (Lite, a real Milvus engine).

A third backend only adds a case to the ``make_store`` fixture and to ``SPECS``. The
contract holds across a restart too: what one process saved, a new process opens
(``tests/support/store_process.py``), as every CLI command after ``index`` does.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from mmsearch.errors import ConfigError, IndexUnusableError
from mmsearch.store import milvus_store
from mmsearch.store.backends import open_vector_store, recorded_spec
from mmsearch.store.vectors import VectorFileError, VectorStore
from tests.support.deps import need

DIM = 16
_names = itertools.count()
MakeStore = Callable[..., VectorStore]
SPECS = ["faiss", "milvus:restart.db"]  # each backend, as a CLI user names it
STORE_PROCESS = Path(__file__).resolve().parents[1] / "support" / "store_process.py"


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def milvus_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("pymilvus")
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
    need("pymilvus")
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


def in_new_process(step: str, spec: str, folder: Path, data_dir: Path, **data: object) -> Path:
    """Run one ``store_process.py`` step on the store in ``folder``; return its output file.

    The process must succeed and write nothing to stderr (no library's own logging).
    """
    data_path = data_dir / f"{step}-{next(_names)}.npz"
    out = data_path.with_suffix(".out.npz")
    np.savez(data_path, **data)  # type: ignore[arg-type]
    cmd = [sys.executable, str(STORE_PROCESS), step, spec, str(folder), "s", str(DIM)]
    done = subprocess.run(
        [*cmd, str(data_path), str(out)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return out


def exact_top(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    return [int(i) for i in ids[np.argsort(-(vectors @ query), kind="stable")[:k]]]


@pytest.mark.subprocess
@pytest.mark.parametrize("spec", SPECS)
def test_a_store_reopened_in_a_new_process_holds_what_was_saved(spec: str, tmp_path: Path) -> None:
    """Add, remove, save and exit; a second process reopens the store and adds more; a
    third opens it and finds every live vector, none removed, by search, filter and id."""
    if spec.startswith("milvus"):
        need("pymilvus")
    folder = tmp_path / "index"
    folder.mkdir()
    ids = np.arange(1, 41, dtype=np.int64) * 3
    vectors = unit_rows(40)
    gone = ids[[4, 11, 20]]
    none = np.zeros(0, np.int64)
    in_new_process("add", spec, folder, tmp_path, ids=ids[:30], vectors=vectors[:30], remove=gone)
    in_new_process("add", spec, folder, tmp_path, ids=ids[30:], vectors=vectors[30:], remove=none)
    queries = vectors[[0, 5, 33]]
    allowed = ids[[1, 2, 4, 7, 33, 35, 38]]  # ids[4] was removed
    probe = ids[[33, 2, 17]]
    out = in_new_process(
        "read", spec, folder, tmp_path, queries=queries, k=6, allowed=allowed, probe=probe
    )
    live = ~np.isin(ids, gone)
    with np.load(out) as seen:
        assert (int(seen["count"]), int(seen["max_id"])) == (37, int(ids[-1]))
        np.testing.assert_array_equal(seen["ids"], ids[live])
        for row, query in enumerate(queries):
            assert list(seen["found"][row]) == exact_top(vectors[live], ids[live], query, 6)
            expected = np.sort(vectors[live] @ query)[::-1][:6]
            np.testing.assert_allclose(seen["scores"][row], expected, atol=2e-3)
            keep = live & np.isin(ids, allowed)
            assert list(seen["allowed_found"][row]) == exact_top(vectors[keep], ids[keep], query, 6)
        np.testing.assert_allclose(seen["probe_vectors"], vectors[[33, 2, 17]], atol=1e-3)


@pytest.mark.subprocess
def test_a_milvus_lite_index_works_in_every_later_command(library: Path, tmp_path: Path) -> None:
    """``index --vectors milvus:v.db`` in one process; ``search``, ``info`` and ``verify``
    each in a new one open the stored collection and print no traceback or log line."""
    need("pymilvus")
    index = tmp_path / "idx"

    def mmsearch(*args: str) -> str:
        cmd = [sys.executable, "-m", "mmsearch", *args, "--index", str(index)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        return done.stdout

    mmsearch("index", str(library), "--vectors", "milvus:v.db", "--model", "hash")
    assert (index / "v.db").exists()
    assert "fox.txt" in mmsearch("search", "quick red fox jumps", "--json")
    assert "milvus" in mmsearch("info")
    mmsearch("verify")
