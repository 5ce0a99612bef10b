"""The writer's ritual (``Engine.writing``): every write locks, catches up, saves and warms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmsearch import Engine
from mmsearch.errors import IndexUnusableError
from mmsearch.search import stats_cache

pytestmark = pytest.mark.usefixtures("metadata_db")  # SQLite and PostgreSQL


def _state(engine: Engine, red: Path) -> tuple[Any, ...]:
    """What a write could change: counts and roots, one file's tags, the segments' stamp."""
    return (
        engine.meta.counts(),
        engine.roots(),
        engine.show(red)["tags"],
        engine.meta.segment_stamp(),
    )


def test_every_write_is_refused_at_once_while_another_writes(tmp_path: Path, library: Path) -> None:
    red, moved = library / "photos" / "red.jpg", tmp_path / "moved"
    moved.mkdir()
    with Engine.open(tmp_path / "idx", model="hash") as writer:
        writer.index([library])
        with Engine.open(tmp_path / "idx") as other:
            before = _state(other, red)
            writes = {
                "index": lambda: other.index([library]),
                "sync": lambda: other.sync([red]),
                "remove": lambda: other.remove([red]),
                "tag": lambda: other.tag([red], {"album": "summer"}),
                "move_root": lambda: other.move_root(library, moved),
                "ocr_pass": lambda: other.ocr_pass([library], policy="auto"),
            }
            with writer.writing():
                for name, write in writes.items():
                    with pytest.raises(IndexUnusableError, match="another mmsearch process"):
                        write()
                    assert _state(other, red) == before, name
            assert other.tag([red], {"album": "summer"}) == 1  # released: the next one writes


def test_a_write_leaves_the_vectors_saved_and_the_statistics_warm(
    tmp_path: Path, library: Path
) -> None:
    idx = tmp_path / "idx"
    stats = str(idx / stats_cache.FILE_NAME)
    with Engine.open(idx, model="hash") as engine:
        engine.index([library])
        assert engine.remove([library / "notes"]) == 2
        stamp, dim = engine.meta.segment_stamp(), engine.identity.dim
        assert stats_cache.read_stats(stats, stamp, dim) is not None
        engine.tag([library / "photos"], {"album": "summer"})  # no segment changes
        assert engine.meta.segment_stamp() == stamp
        assert stats_cache.read_stats(stats, stamp, dim) is not None
        saved = engine._vector_store()  # the file as a new process finds it, not caught up
        saved.load()
        assert saved.count == engine.meta.segment_stats()[0]
        assert saved.synced_to in (stamp, None)  # None: a store that keeps no stamp


def test_a_failed_write_releases_the_lock_and_writes_nest(tmp_path: Path, library: Path) -> None:
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        engine.index([library / "photos"])
        with pytest.raises(RuntimeError), engine.writing():
            raise RuntimeError("the work failed")
        with Engine.open(tmp_path / "idx") as other:
            assert other.index([library]).added == 2  # the lock was released
        with engine.writing():  # watch mode: one writing() around several writes
            assert engine.remove([library / "notes"]) == 2
            assert engine.index([library / "notes"]).added == 2
        assert engine.vectors.count == engine.meta.segment_stats()[0]
