"""mmsearch verify: SQLite, FAISS and the manifest agree, or are repaired from SQLite."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from mmsearch import Engine
from mmsearch.cli import cli


def _damage(db: Path) -> None:
    con = sqlite3.connect(db)
    con.execute("PRAGMA foreign_keys=OFF")
    con.execute("DELETE FROM assets WHERE relpath = 'photos/red.jpg'")
    con.execute(
        "UPDATE segments SET vector = x'0000' WHERE asset_id ="
        " (SELECT id FROM assets WHERE relpath = 'photos/blue.jpg')"
    )
    con.commit()
    con.close()


def test_verify_detects_and_repairs(tmp_path: Path, library: Path) -> None:
    idx = tmp_path / "idx"
    runner = CliRunner()
    assert (
        runner.invoke(
            cli, ["index", str(library), "--index", str(idx), "--model", "hash"]
        ).exit_code
        == 0
    )
    ok = runner.invoke(cli, ["verify", "--index", str(idx), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True

    _damage(idx / "index.sqlite")
    bad = runner.invoke(cli, ["verify", "--index", str(idx), "--json"])
    report = json.loads(bad.stdout)
    assert bad.exit_code == 1
    assert (report["orphan_segments"], report["bad_vectors"]) == (1, 1)

    fixed = runner.invoke(cli, ["verify", "--index", str(idx), "--repair"])
    assert fixed.exit_code == 0 and "repaired" in fixed.stdout
    assert runner.invoke(cli, ["verify", "--index", str(idx)]).exit_code == 0

    # the file whose vector was damaged is re-embedded by the next run
    with Engine.open(idx) as engine:
        report = engine.index([library])
        assert report.updated == 1
        assert engine.verify().ok


def test_vector_file_out_of_step_is_reported(tmp_path: Path, library: Path) -> None:
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        engine.index([library])
        engine.vectors.remove(engine.vectors.ids()[:2])
        engine.vectors.save()
        report = engine.verify()
        assert not report.ok and report.missing_vectors == 2
        assert engine.verify(repair=True).repaired
        assert engine.verify().ok
