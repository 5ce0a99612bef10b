"""The engine end to end with the deterministic test embedder: real files, SQLite, FAISS."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmsearch import Engine
from mmsearch.embedders.hashing import HashEmbedder
from mmsearch.errors import (
    EmbedderMismatchError,
    IndexFormatError,
    IndexNotFoundError,
    IndexUnusableError,
    PathError,
    QueryError,
)
from tests.support.media import solid

pytestmark = pytest.mark.usefixtures("metadata_db")  # SQLite and PostgreSQL


def open_engine(tmp_path: Path, **kw) -> Engine:
    return Engine.open(tmp_path / "idx", model="hash", **kw)


def paths(hits) -> list[str]:
    return [os.path.basename(h.path) for h in hits]


def test_index_and_search_across_modalities(tmp_path: Path, library: Path) -> None:
    with open_engine(tmp_path) as engine:
        report = engine.index([library])
        assert (report.added, report.updated, report.removed, report.skipped) == (5, 0, 0, [])
        assert paths(engine.search("red", k=1)) == ["red.jpg"]
        assert paths(engine.search("green", k=1, modalities=["image"])) == ["green.jpg"]
        assert paths(engine.search("tomatoes in the garden", k=1)) == ["garden.md"]
        # image -> image: the photo itself first, score ~1
        [hit] = engine.search(image=library / "photos" / "blue.jpg", k=1)
        assert hit.path == str(library / "photos" / "blue.jpg") and hit.score > 0.99
        # text results carry their snippet and span
        [text_hit] = engine.search("lazy dog", k=1, modalities=["text"])
        content = (library / "notes" / "fox.txt").read_text()
        assert text_hit.snippet == content[text_hit.span[0] : text_hit.span[1]]
        assert text_hit.modality == "text" and text_hit.view == "chunk"


def test_results_are_one_per_asset_and_filtered_before_k(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "long.txt").write_text("red " * 500)  # many chunks, all about red
    for i in range(3):
        solid((220, 30, 30), seed=i).save(lib / f"red{i}.png")
    with open_engine(tmp_path) as engine:
        engine.index([lib])
        hits = engine.search("red", k=10)
        assert len(hits) == 4 and len(set(h.path for h in hits)) == 4
        images = engine.search("red", k=3, modalities=["image"])
        assert sorted(paths(images)) == ["red0.png", "red1.png", "red2.png"]


def test_incremental_reindex(tmp_path: Path, library: Path) -> None:
    embedder = HashEmbedder()
    with Engine.open(tmp_path / "idx", embedder=embedder) as engine:
        engine.index([library])
        embedded = dict(embedder.calls)

        again = engine.index([library])
        assert (again.added, again.unchanged) == (0, 5)
        assert embedder.calls == embedded  # nothing re-embedded

        # touched but same content: hash check, no model time
        fox = library / "notes" / "fox.txt"
        os.utime(fox, ns=(1, 1))
        assert engine.index([library]).unchanged == 5 and embedder.calls == embedded

        # modified
        fox.write_text("A brown bear sleeps in a cave all winter long.")
        report = engine.index([library])
        assert (report.updated, report.unchanged) == (1, 4)
        assert paths(engine.search("bear cave", k=1)) == ["fox.txt"]
        embedded = dict(embedder.calls)

        # moved: keeps its vectors, no model time
        (library / "archive").mkdir()
        shutil.move(library / "photos" / "red.jpg", library / "archive" / "old-red.jpg")
        report = engine.index([library])
        assert (report.moved, report.removed, report.added) == (1, 0, 0)
        assert embedder.calls == embedded
        assert paths(engine.search("red", k=1)) == ["old-red.jpg"]

        # copied: reuses vectors
        shutil.copy(library / "photos" / "blue.jpg", library / "blue-copy.jpg")
        embedded = dict(embedder.calls)
        report = engine.index([library])
        assert (report.added, report.reused) == (1, 1) and embedder.calls == embedded

        # deleted: removed from SQLite and FAISS
        (library / "notes" / "garden.md").unlink()
        report = engine.index([library])
        assert report.removed == 1
        assert "garden.md" not in paths(engine.search("garden tomatoes", k=10))
        info = engine.info()
        assert info["assets"] == 5 and info["vectors"] == info["segments"]


def test_reindex_of_a_subfolder_uses_the_same_root(tmp_path: Path, library: Path) -> None:
    with open_engine(tmp_path) as engine:
        engine.index([library / "photos"])
        engine.index([library])  # the parent folds the first root into it
        assert engine.info()["roots"] == [str(library)]
        assert engine.index([library / "photos"]).unchanged == 3
        assert engine.info()["assets"] == 5


def test_remove_paths(tmp_path: Path, library: Path) -> None:
    with open_engine(tmp_path) as engine:
        engine.index([library])
        assert engine.remove([library / "photos" / "red.jpg"]) == 1
        assert engine.remove([library / "notes"]) == 2
        assert engine.remove([tmp_path / "nothing-here"]) == 0
        left = engine.search("red", k=10)
        assert sorted(paths(left)) == ["blue.jpg", "green.jpg"]
        assert engine.info()["vectors"] == 2


def test_skipped_files_are_reported_and_the_run_goes_on(tmp_path: Path, library: Path) -> None:
    (library / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (library / "empty.txt").write_bytes(b"")
    (library / "binary.txt").write_bytes(b"\x7fELF\x00\x00\x01")
    (library / "movie.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (library / "readme.pdf").write_bytes(b"%PDF-1.4")  # not a format we read: ignored
    with open_engine(tmp_path) as engine:
        report = engine.index([library])
    reasons = {os.path.basename(s.path): s.reason for s in report.skipped}
    assert set(reasons) >= {"broken.png", "empty.txt", "binary.txt"}
    assert "binary" in reasons["binary.txt"] and "empty" in reasons["empty.txt"]
    assert report.added == 5 and report.ignored == 1


def test_worker_processes_decode_many_files(tmp_path: Path) -> None:
    lib = tmp_path / "many"
    lib.mkdir()
    for i in range(24):
        solid((i * 10, 255 - i * 10, 100), size=(100, 80), seed=i).save(lib / f"{i:02d}.png")
    with Engine.open(tmp_path / "idx", model="hash", workers=2, batch_size=5) as engine:
        report = engine.index([lib])
        assert report.added == 24 and engine.info()["vectors"] == 24


def test_embedder_mismatch_and_manifest(tmp_path: Path, library: Path) -> None:
    with open_engine(tmp_path) as engine:
        engine.index([library])
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["format"] == 1 and manifest["embedder"]["name"] == "hash"
    with pytest.raises(EmbedderMismatchError, match="rebuild"):
        Engine.open(tmp_path / "idx", model="openclip")
    with pytest.raises(EmbedderMismatchError):
        Engine.open(tmp_path / "idx", embedder=HashEmbedder(dim=32))
    # reopening without a model uses the recorded one
    with Engine.open(tmp_path / "idx") as engine:
        assert engine.embedder.identity == HashEmbedder().identity
    manifest["format"] = 99
    (tmp_path / "idx" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="upgrade"):
        Engine.open(tmp_path / "idx")


@pytest.mark.faiss_file
def test_vector_file_is_a_rebuildable_cache(tmp_path: Path, library: Path) -> None:
    notices: list[str] = []
    with open_engine(tmp_path) as engine:
        engine.index([library])
        expected = paths(engine.search("red", k=5))
    faiss_file = next((tmp_path / "idx").glob("vectors-*.fresh-*.npz"))  # the small part
    faiss_file.write_bytes(b"corrupt")
    with Engine.open(tmp_path / "idx", on_notice=notices.append) as engine:
        assert paths(engine.search("red", k=5)) == expected
    assert len(notices) == 1 and "rebuilding" in notices[0]
    next((tmp_path / "idx").glob("vectors-*.fresh-*.npz")).unlink()  # renamed by the rebuild
    with Engine.open(tmp_path / "idx") as engine:
        assert engine.vectors.count == 5 + 0 and paths(engine.search("red", k=5)) == expected


def test_reader_sees_a_writers_new_items(tmp_path: Path, library: Path) -> None:
    with open_engine(tmp_path) as writer:
        writer.index([library / "photos"])
        with Engine.open(tmp_path / "idx") as reader:
            assert len(reader.search("red", k=10)) == 3
            writer.index([library / "notes"])
            assert len(reader.search("red", k=10)) == 5


def test_one_writer_at_a_time(tmp_path: Path, library: Path) -> None:
    engine = open_engine(tmp_path)
    other = Engine.open(tmp_path / "idx")
    with engine, other, engine.writing(), pytest.raises(IndexUnusableError, match="another"):
        other.index([library])


def test_errors_for_bad_input(tmp_path: Path, library: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="mmsearch index"):
        Engine.open(tmp_path / "missing", create=False)
    with open_engine(tmp_path) as engine:
        with pytest.raises(PathError):
            engine.index([tmp_path / "nope"])
        with pytest.raises(QueryError):
            engine.search("  ")
        with pytest.raises(QueryError, match="does not exist"):
            engine.search(image=tmp_path / "nope.jpg")
        bad = tmp_path / "bad.jpg"
        bad.write_text("x")
        with pytest.raises(QueryError, match="can't read"):
            engine.search(image=bad)
        assert engine.search("red") == []  # empty index: no results, no error


def test_text_and_image_query_combined(tmp_path: Path, library: Path) -> None:
    with open_engine(tmp_path) as engine:
        engine.index([library])
        q = engine.encode_query("red", library / "photos" / "red.jpg")
        assert np.isclose(np.linalg.norm(q), 1.0, atol=1e-5)
        assert paths(engine.search("red", image=library / "photos" / "red.jpg", k=1)) == ["red.jpg"]


def test_every_supported_format_and_real_photos_are_indexed(tmp_path: Path) -> None:
    from mmsearch.media.decode import register_heif
    from tests.support.media import real_photos

    register_heif()
    lib = tmp_path / "formats"
    lib.mkdir()
    for i, ext in enumerate(["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "heic"]):
        solid((40 * i % 255, 200, 90), seed=i).save(lib / f"photo.{ext}")
    (lib / "a.txt").write_text("plain utf-8 notes", encoding="utf-8")
    (lib / "b.md").write_text("# Title\n\nmarkdown notes", encoding="utf-8")
    (lib / "c.rst").write_text("restructured text notes", encoding="utf-8")
    (lib / "latin.txt").write_bytes("café crème brûlée".encode("latin-1"))
    (lib / "utf16.txt").write_bytes("naïve résumé".encode("utf-16"))
    photos = real_photos(lib / "real")
    with open_engine(tmp_path) as engine:
        report = engine.index([lib])
        assert report.skipped == []
        assert report.added == 9 + 5 + len(photos)
        [hit] = engine.search("crème brûlée", k=1, modalities=["text"])
        assert hit.path.endswith("latin.txt") and "crème" in hit.snippet
