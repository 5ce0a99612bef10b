"""mmsearch roots: list library folders, and relocate one without re-embedding."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmsearch import Engine
from mmsearch.cli import cli
from mmsearch.embedders.hashing import HashEmbedder

pytestmark = pytest.mark.usefixtures("metadata_db")  # SQLite and PostgreSQL


@pytest.fixture
def run(tmp_path: Path):
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(cli, [*args, "--index", str(tmp_path / "idx")])
        assert result.exit_code == code, result.output + result.stderr
        return result

    return invoke


def test_a_moved_library_is_one_rewrite_and_no_model_call(
    run, tmp_path: Path, library: Path
) -> None:
    embedder = HashEmbedder()
    with Engine.open(tmp_path / "idx", embedder=embedder) as engine:
        engine.index([library])
    calls = dict(embedder.calls)
    listed = json.loads(run("roots", "--json").stdout)["roots"]
    assert listed == [{"path": str(library), "files": 5, "exists": True}]

    new = tmp_path / "other-disk" / "library"
    new.parent.mkdir()
    shutil.move(library, new)
    assert "(folder missing)" in run("roots").stdout
    out = json.loads(run("roots", "--move", str(library), str(new), "--json").stdout)
    assert out == {"moved": 5, "roots": [{"path": str(new), "files": 5, "exists": True}]}

    hits = json.loads(run("search", "red", "--json", "--k", "5").stdout)["results"]
    assert hits[0]["path"] == str(new / "photos" / "red.jpg")
    assert all(hit["path"].startswith(str(new)) for hit in hits)
    assert json.loads(run("verify", "--json").stdout)["ok"] is True
    with Engine.open(tmp_path / "idx", embedder=embedder) as engine:
        report = engine.index([new])
    assert (report.unchanged, report.added, report.removed, report.moved) == (5, 0, 0, 0)
    assert embedder.calls == calls


def test_a_folder_inside_a_root_moves_out_to_a_root_of_its_own(
    run, tmp_path: Path, library: Path
) -> None:
    run("index", str(library), "--model", "hash")
    new = tmp_path / "archive-photos"
    shutil.move(library / "photos", new)
    out = json.loads(run("roots", "--move", str(library / "photos"), str(new), "--json").stdout)
    assert out["moved"] == 3
    assert {(r["path"], r["files"]) for r in out["roots"]} == {(str(library), 2), (str(new), 3)}
    report = json.loads(run("index", str(library), str(new), "--json").stdout)
    assert (report["unchanged"], report["segments"], report["removed"]) == (5, 0, 0)


def test_bad_moves_are_refused_with_one_line(run, tmp_path: Path, library: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "note.txt").write_text("a note somewhere else")
    run("index", str(library), str(other), "--model", "hash")

    r = run("roots", "--move", str(tmp_path / "nowhere"), str(other), code=2)
    assert "not an indexed folder" in r.stderr and r.stderr.count("\n") == 1
    r = run("roots", "--move", str(other), str(tmp_path / "missing"), code=2)
    assert "no such folder" in r.stderr
    (library / "inside").mkdir()
    r = run("roots", "--move", str(other), str(library / "inside"), code=2)
    assert "overlaps the indexed folder" in r.stderr and r.stderr.count("\n") == 1
    r = run("roots", "--move", str(other), str(tmp_path), code=2)  # would hold the library
    assert "overlaps" in r.stderr
    listed = json.loads(run("roots", "--json").stdout)["roots"]
    assert [(r["path"], r["files"]) for r in listed] == [(str(library), 5), (str(other), 1)]


def test_a_path_filter_and_remove_agree_on_what_is_under_a_path(
    tmp_path: Path, library: Path
) -> None:
    from sqlalchemy import select

    from mmsearch.search.filters import allowed_segment_ids
    from mmsearch.search.query import Filters
    from mmsearch.store.schema import Segment

    with Engine.open(tmp_path / "idx", embedder=HashEmbedder()) as engine:
        engine.index([library / "photos", library / "notes"])  # two roots
        expected = {
            library: 5,
            library / "photos": 3,
            library / "photos" / "red.jpg": 1,
            library / "photos" / "re": 0,  # a prefix of a name, not a folder
            tmp_path: 5,
            Path("/"): 5,
        }
        for path, count in expected.items():
            with engine.meta.sessions() as s:
                under = {a.id for a in engine.meta.assets_under(s, str(path))}
                allowed = allowed_segment_ids(s, Filters(paths=[str(path)]))
                assert allowed is not None
                query = select(Segment.asset_id).where(Segment.id.in_(allowed.tolist()))
                filtered = set(s.scalars(query))
            assert len(under) == count and filtered == under, path
