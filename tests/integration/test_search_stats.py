"""The background sample and duplicate floor are kept beside the index, per index state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmsearch import Engine
from mmsearch.search import stats_cache
from mmsearch.search.retrieve import Searcher
from mmsearch.store.metadata import MetadataStore
from tests.support.media import solid


def _sample_computations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count how often a Searcher lists the segments to draw its sample."""
    calls: list[int] = []
    original = Searcher._sample

    def counted(self: Searcher) -> dict[str, np.ndarray]:
        calls.append(1)
        return original(self)

    monkeypatch.setattr(Searcher, "_sample", counted)
    return calls


def test_a_new_process_reuses_the_saved_sample(
    tmp_path: Path, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _sample_computations(monkeypatch)
    stats = tmp_path / "idx" / stats_cache.FILE_NAME
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        engine.index([library])
        # the writer leaves the sample for the first query (often a new process)
        assert len(calls) == 1 and stats.is_file()
        first = engine.search("red", k=3)
        floor = engine.searcher.duplicate_floor()
        sample = engine.searcher.background()
    assert len(calls) == 1
    # A fresh engine (as a new process would open it) reads the file instead.
    with Engine.open(tmp_path / "idx") as engine:
        again = engine.search("red", k=3)
        assert engine.searcher.duplicate_floor() == floor
        reread = engine.searcher.background()
    assert len(calls) == 1
    assert [h.path for h in again] == [h.path for h in first]
    assert [h.score for h in again] == pytest.approx([h.score for h in first])
    assert sorted(reread) == sorted(sample)
    for group, vectors in sample.items():
        np.testing.assert_array_equal(reread[group], vectors)  # fp16 in SQLite, exact here


def test_the_saved_sample_is_replaced_when_the_index_changes(
    tmp_path: Path, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _sample_computations(monkeypatch)
    stats = tmp_path / "idx" / stats_cache.FILE_NAME
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        engine.index([library])
        engine.search("red", k=3)
        stamp = engine.meta.segment_stamp()
    assert len(calls) == 1
    solid((10, 200, 10), seed=7).save(library / "photos" / "more.png")
    with Engine.open(tmp_path / "idx") as engine:
        engine.index([library])  # one segment more: a new stamp, sampled by the writer
        engine.search("red", k=3)
        grown = engine.meta.segment_stamp()
        assert grown != stamp
        assert len(calls) == 2
        assert stats_cache.read_stats(str(stats), grown, engine.identity.dim) is not None
        assert stats_cache.read_stats(str(stats), stamp, engine.identity.dim) is None
        # Same number of segments after a removal and an addition: the largest id
        # moves (ids are never reused) and the removal is counted, so the stamp changes.
        (library / "photos" / "more.png").unlink()
        solid((200, 10, 200), seed=8).save(library / "photos" / "other.png")
        report = engine.index([library])
        assert (report.added, report.removed) == (1, 1)
        count = engine.meta.segment_stats()[0]
        assert engine.meta.segment_stamp() == (grown[0] + 1, grown[1] + 1)
        # A removal alone, even of the newest segment, changes it too.
        assert engine.remove([library / "photos" / "other.png"]) == 1
        assert engine.meta.segment_stats()[0] == count - 1
        assert engine.meta.segment_stamp()[1] == grown[1] + 2
        solid((200, 10, 200), seed=8).save(library / "photos" / "other.png")
        engine.index([library])
        engine.search("red", k=3)
        assert len(calls) == 5  # once after each of the three writes since
        # The same engine keeps using its in-memory copy while nothing changes.
        engine.search("blue", k=3)
        assert len(calls) == 5


def test_a_damaged_or_foreign_stats_file_is_recomputed(
    tmp_path: Path, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _sample_computations(monkeypatch)
    stats = tmp_path / "idx" / stats_cache.FILE_NAME
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        engine.index([library])
        stamp = engine.meta.segment_stamp()
        dim = engine.identity.dim
    stats.write_bytes(b"not a zip file")
    assert stats_cache.read_stats(str(stats), stamp, dim) is None
    with Engine.open(tmp_path / "idx") as engine:
        engine.search("red", k=3)
    assert len(calls) == 2  # the writer's, then the reader's over the damaged file
    assert stats_cache.read_stats(str(stats), stamp, dim) is not None
    assert stats_cache.read_stats(str(stats), stamp, dim + 1) is None  # another space
    assert not list(stats.parent.glob("*.tmp-*"))


@pytest.mark.faiss_file  # the stamp lives in the FAISS file's stamp; Milvus keeps none
def test_a_query_on_an_index_saved_in_step_counts_no_segments(
    tmp_path: Path, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer records SQLite's segment stamp in the vector file; a reader that finds
    the same stamp opens and searches without counting segments (a full scan at 1M)."""
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        engine.index([library])
        engine.search("red", k=3)  # the sample file, too
        expected = [h.path for h in engine.search("blue", k=3)]
    counts: list[int] = []
    original = MetadataStore.segment_stats

    def counted(self: MetadataStore) -> tuple[int, int]:
        counts.append(1)
        return original(self)

    monkeypatch.setattr(MetadataStore, "segment_stats", counted)
    with Engine.open(tmp_path / "idx") as engine:
        assert [h.path for h in engine.search("blue", k=3)] == expected
        assert counts == []
        # Another process's change moves the stamp: the next query counts once, catches
        # up and sees it; the one after counts nothing again.
        with Engine.open(tmp_path / "idx") as writer:
            writer.remove([library / "photos"])
        gone = [h.path for h in engine.search("blue", k=3)]
        assert len(counts) == 1 and not any("photos" in p for p in gone)
        engine.search("blue", k=3)
        assert len(counts) == 1
