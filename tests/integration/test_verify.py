"""mmsearch verify: SQLite, FAISS and the manifest agree, or are repaired from SQLite."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmsearch import Engine
from mmsearch.cli import cli

pytestmark = pytest.mark.usefixtures("metadata_db")  # SQLite and PostgreSQL


DAMAGE = (
    "DELETE FROM assets WHERE relpath = 'photos/red.jpg'",
    "UPDATE segments SET vector = {blob} WHERE asset_id ="
    " (SELECT id FROM assets WHERE relpath = 'photos/blue.jpg')",
)


def _damage(idx: Path, db: str | None) -> None:
    """Orphan one file's segments and cut another's vector short, behind mmsearch's back."""
    if db is None:
        con = sqlite3.connect(idx / "index.sqlite")
        con.execute("PRAGMA foreign_keys=OFF")
        for statement in DAMAGE:
            con.execute(statement.format(blob="x'0000'"))
        con.commit()
        con.close()
        return
    import psycopg

    with psycopg.connect(db.replace("+psycopg", ""), autocommit=True) as pg:
        pg.execute("SET session_replication_role = replica")  # no foreign keys, as above
        for statement in DAMAGE:
            pg.execute(statement.format(blob="'\\x0000'::bytea"))  # type: ignore[arg-type]


def test_verify_detects_and_repairs(tmp_path: Path, library: Path, metadata_db: str | None) -> None:
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

    _damage(idx, metadata_db)
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
