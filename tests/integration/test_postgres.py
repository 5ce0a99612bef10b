"""What only PostgreSQL has: the phrase filter agrees with SQLite's, passwords stay out of
every record and message, a server that is down or goes away gives one line, the advisory
writer lock, ids never reused, and the schema and full-text index made on first open.

The rest of the engine runs on PostgreSQL through the ``metadata_db`` tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url

from mmsearch import Engine
from mmsearch.cli import cli
from mmsearch.errors import ConfigError, DatabaseError, IndexUnusableError
from mmsearch.search.query import Query
from mmsearch.store.database import lock_key, safe_url
from tests.conftest import _PG_SCRIPT, _admin

TEXTS = {
    "invoice.txt": "Invoice 2023-17: total 42.50 EUR, due in May",
    "apples.txt": "total of 50 42 apples for the invoice, 2023 17 of them",
    "fox.txt": "The quick red fox, jumps over the lazy dog.\nNew-York state of mind",
    "mixed.md": "# Title\n\nCase MATTERS not; Red\tFox again. well known facts (e-mail: a@b.org)",
    "quotes.txt": 'He said "hello world" twice; snake_case_name and CamelCase',
    "words.txt": "Größe der Straße; naïve café — «quoted» x…y",
}
PHRASES = [
    "red fox",
    "RED FOX",
    "fox red",
    "fox jumps",
    "lazy dog new york",
    "42.50",
    "42 50",
    "50 42",
    "2023-17",
    "2023 17",
    "due in May",
    'due in "May"',
    '"hello world"',
    "new-york state",
    "well-known",
    "a@b.org",
    "snake case",
    "camelcase",
    "fo",
    "größe der straße",
    "café",
    "x y",
    "title case",
    "nothing at all",
    "(e-mail",
]


def _names(hits) -> list[str]:
    return sorted(os.path.basename(h.path) for h in hits)


def test_text_match_gives_sqlites_answers(tmp_path: Path, pg_url: str) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    for name, body in TEXTS.items():
        (lib / name).write_text(body, encoding="utf-8")
    answers: dict[str, dict[str, list[str]]] = {}
    for store, db in (("sqlite", None), ("postgresql", pg_url)):
        with Engine.open(tmp_path / store, model="hash", db=db) as engine:
            engine.index([lib])
            answers[store] = {}
            for phrase in PHRASES:
                q = Query().text("text").where(text_match=phrase).options(cutoff=False)
                q.limit = 50
                answers[store][phrase] = _names(engine.run(q).hits)
    assert answers["postgresql"] == answers["sqlite"]
    assert answers["sqlite"]["42.50"] == ["invoice.txt"]  # the words in order, nothing else
    assert answers["sqlite"]["red fox"] == ["fox.txt", "mixed.md"]


def test_phrase_filter_uses_the_full_text_index(tmp_path: Path, pg_url: str) -> None:
    from mmsearch.search.filters import text_match_assets

    with Engine.open(tmp_path / "idx", model="hash", db=pg_url) as engine:
        with engine.meta.sessions() as s:
            query = text_match_assets(s, "red fox")
        sql = str(query.compile(engine.meta.engine, compile_kwargs={"literal_binds": True}))
        with engine.meta.engine.begin() as conn:
            names = set(conn.scalars(text("SELECT indexname FROM pg_indexes")))
            version = conn.scalar(text("SELECT value FROM meta WHERE key = 'schema_version'"))
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
    assert "ix_segments_text_fts" in names and "ix_segments_text_fts" in plan, plan
    assert version is not None and int(version) >= 2
    with Engine.open(tmp_path / "idx") as engine:  # reopening: the same schema, no error
        assert engine.meta.postgres and engine.info()["db"] == pg_url


@pytest.fixture
def pg_role(pg_server: str) -> Iterator[tuple[str, str]]:
    """A login role with a password (dropped after the test's database)."""
    role, password = f"mm_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    _admin(pg_server, f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    yield role, password
    _admin(pg_server, f"DROP ROLE IF EXISTS {role}")


def test_passwords_never_appear_and_come_from_the_usual_places(
    pg_role: tuple[str, str],
    pg_url: str,
    pg_server: str,
    tmp_path: Path,
    library: Path,
    monkeypatch,
) -> None:
    role, password = pg_role
    database = make_url(pg_url).database
    _admin(pg_server, f"ALTER DATABASE {database} OWNER TO {role}")
    _admin(pg_url, f"ALTER SCHEMA public OWNER TO {role}")
    url = make_url(pg_url).set(username=role, password=password)
    full, bare = url.render_as_string(hide_password=False), safe_url(url)
    assert password in full and password not in bare
    for name in ("MMSEARCH_DB", "PGPASSWORD", "PGPASSFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    runner = CliRunner()
    idx = ["--index", str(tmp_path / "idx")]
    seen: list[str] = []

    def run(*args: str, code: int = 0, env: dict[str, str] | None = None) -> str:
        result = runner.invoke(cli, list(args), env=env)
        out = result.stdout + result.stderr
        assert result.exit_code == code, out
        seen.append(out)
        return out

    run("index", str(library), "--model", "hash", "--db", full, "--json", *idx)
    manifest = (tmp_path / "idx" / "manifest.json").read_text()
    assert json.loads(manifest)["db"] == bare
    run("search", "red", "--db", full, *idx)
    info = json.loads(run("info", "--json", *idx, env={"MMSEARCH_DB": full}))
    assert info["db"] == bare and info["assets"] == 5
    assert json.loads(run("info", "--json", *idx, env={"PGPASSWORD": password}))["db"] == bare
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{url.host}:{url.port}:{database}:{role}:{password}\n")
    pgpass.chmod(0o600)
    run("search", "red", *idx, env={"PGPASSFILE": str(pgpass)})
    run("verify", "--db", full, *idx)
    assert not any(password in out for out in seen)
    assert password not in "".join(p.read_text() for p in (tmp_path / "idx").glob("*.json"))


def test_missing_or_wrong_password_is_one_line_without_it(
    pg_role: tuple[str, str],
    pg_url: str,
    pg_server: str,
    tmp_path: Path,
    library: Path,
    monkeypatch,
) -> None:
    role, password = pg_role
    database = make_url(pg_url).database
    _admin(pg_server, f"ALTER DATABASE {database} OWNER TO {role}")
    _admin(pg_url, f"ALTER SCHEMA public OWNER TO {role}")
    url = make_url(pg_url).set(username=role, password=password)
    try:
        psycopg.connect(host=url.host, port=url.port, user=role, dbname=database).close()
        pytest.skip("this server lets the role in without a password")
    except psycopg.OperationalError:
        pass
    for name in ("MMSEARCH_DB", "PGPASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    full, bare = url.render_as_string(hide_password=False), safe_url(url)
    with Engine.open(tmp_path / "idx", model="hash", db=full) as engine:
        engine.index([library])
    runner = CliRunner()
    idx = ["--index", str(tmp_path / "idx")]
    wrong = url.set(password="not-the-" + password).render_as_string(hide_password=False)
    for args in (["info"], ["search", "red", "--db", wrong]):
        result = runner.invoke(cli, [*args, *idx])
        out = result.stdout + result.stderr
        assert result.exit_code == 1, out
        assert out.strip().count("\n") == 0 and bare in out and "password" in out
        assert password not in out and "not-the-" not in out
    with pytest.raises(DatabaseError, match="PGPASSWORD"):
        Engine.open(tmp_path / "idx")


def test_a_server_that_is_down_is_one_line_naming_it(tmp_path: Path, pg_url: str) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = f"postgresql+psycopg://someone:hunter2@127.0.0.1:{port}/nowhere"
    result = CliRunner().invoke(
        cli,
        ["index", str(tmp_path), "--model", "hash", "--db", down, "--index", str(tmp_path / "i")],
    )
    out = result.stdout + result.stderr
    assert result.exit_code == 1, out
    assert out.strip().count("\n") == 0, out
    assert f"postgresql+psycopg://someone@127.0.0.1:{port}/nowhere" in out
    assert "hunter2" not in out and "Traceback" not in out
    assert not (tmp_path / "i" / "manifest.json").exists()  # nothing recorded: run it again


def test_bad_db_settings_are_refused(tmp_path: Path, pg_url: str, library: Path) -> None:
    with pytest.raises(ConfigError, match="not supported"):
        Engine.open(tmp_path / "a", model="hash", db="mysql://u:secret@h/d")
    with pytest.raises(ConfigError, match="names no database"):
        Engine.open(tmp_path / "a", model="hash", db="postgresql+psycopg://u@h:5432")
    with Engine.open(tmp_path / "sqlite", model="hash") as engine:
        engine.index([library / "notes"])
    with pytest.raises(ConfigError, match=r"index\.sqlite"):
        Engine.open(tmp_path / "sqlite", db=pg_url)
    with Engine.open(tmp_path / "pg", model="hash", db=pg_url) as engine:
        engine.index([library / "notes"])
    other = make_url(pg_url).set(database="elsewhere").render_as_string(hide_password=False)
    with pytest.raises(ConfigError, match="keeps its metadata in"):
        Engine.open(tmp_path / "pg", db=other)
    with pytest.raises(ConfigError, match="already holds"):  # one database per index
        Engine.open(tmp_path / "second", model="hash", db=pg_url)


def test_a_writer_elsewhere_holds_the_advisory_lock(
    tmp_path: Path, pg_url: str, library: Path
) -> None:
    url = make_url(pg_url)
    with Engine.open(tmp_path / "idx", model="hash", db=pg_url) as engine:
        key = lock_key(engine.meta.engine.url, "writer")
        # another machine's writer: same database, another folder, another process
        with psycopg.connect(
            host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
        ) as other:
            assert other.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (True,)
            with pytest.raises(IndexUnusableError, match="another mmsearch process") as err:
                engine.index([library])
            assert str(err.value).count("\n") == 0 and safe_url(url) in str(err.value)
            other.execute("SELECT pg_advisory_unlock(%s)", (key,))
        assert engine.index([library]).added == 5
        # ours now: a second engine on the database is refused
        second = Engine.open(tmp_path / "idx")
        with engine.writing(), second, pytest.raises(IndexUnusableError):
            second.remove([library / "notes"])
        with engine.meta.engine.connect() as conn:  # and released after
            held = conn.scalar(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
            )
        assert held == 0


def test_segment_ids_are_never_reused(tmp_path: Path, db_url: str | None, library: Path) -> None:
    with Engine.open(tmp_path / "idx", model="hash", db=db_url) as engine:
        engine.index([library])
        top = engine.meta.segment_stats()[1]
        assert engine.remove([library]) == 5 and engine.meta.segment_stats() == (0, 0)
        engine.index([library])  # the same files again: new rows, new ids
        with engine.meta.sessions() as s:
            ids = list(s.scalars(text("SELECT id FROM segments ORDER BY id")))
        assert len(ids) == 5 and min(ids) > top
        assert engine.verify().ok


def test_asset_ids_are_never_reused(tmp_path: Path, db_url: str | None, library: Path) -> None:
    from mmsearch.store.schema import Asset

    with Engine.open(tmp_path / "idx", model="hash", db=db_url) as engine:
        engine.index([library])
        with engine.meta.sessions() as s:
            newest = s.scalars(text("SELECT max(id) FROM assets")).one()
            path = engine.meta.abspath(s.get(Asset, newest))
        os.remove(path)
        assert engine.remove([path]) == 1  # the newest file, gone
        (library / "notes" / "more.txt").write_text("Another note about tomatoes.\n")
        assert engine.index([library]).added == 1
        with engine.meta.sessions() as s:
            ids = list(s.scalars(text("SELECT id FROM assets ORDER BY id")))
        assert len(ids) == 5 and newest not in ids and max(ids) == newest + 1
        assert engine.verify().ok


def test_an_older_index_keeps_the_ids_its_sequence_gave(tmp_path: Path, pg_url: str) -> None:
    from mmsearch.store.schema import ASSET_ID_MARK

    Engine.open(tmp_path / "idx", model="hash", db=pg_url).close()
    admin = make_url(pg_url)
    with psycopg.connect(
        host=admin.host, port=admin.port, user=admin.username, dbname=admin.database
    ) as conn:  # a schema-6 index whose serial sequence gave ids up to 40 (since deleted)
        conn.execute("SELECT setval(pg_get_serial_sequence('assets', 'id'), 40)")
        conn.execute("DELETE FROM meta WHERE key = %s", (ASSET_ID_MARK,))
        conn.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    with Engine.open(tmp_path / "idx", db=pg_url) as engine:
        (tmp_path / "a.txt").write_text("a note\n")
        engine.index([tmp_path / "a.txt"])
        with engine.meta.sessions() as s:
            assert list(s.scalars(text("SELECT id FROM assets"))) == [41]


def _pg_ctl(action: str, folder: str) -> None:
    subprocess.run(["bash", str(_PG_SCRIPT), action, folder], check=True, capture_output=True)


@pytest.fixture
def own_server() -> Iterator[tuple[str, str]]:
    """A PostgreSQL server of this test's own (it is stopped mid-run): (folder, URL)."""
    import glob

    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        if os.environ.get("CI"):
            pytest.fail("CI: PostgreSQL's binaries are missing")
        pytest.skip("needs PostgreSQL's binaries to start a server of its own")
    started = subprocess.run(
        ["bash", str(_PG_SCRIPT), "start"], capture_output=True, text=True, check=True
    )
    folder = started.stdout.strip().splitlines()[-1]
    try:
        yield folder, (Path(folder) / "url").read_text().strip()
    finally:
        subprocess.run(["bash", str(_PG_SCRIPT), "stop", folder], capture_output=True)


@pytest.mark.subprocess
def test_a_server_that_goes_away_mid_run(tmp_path: Path, own_server: tuple[str, str]) -> None:
    folder, url = own_server
    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(60):
        (lib / f"note{i:02d}.txt").write_text(f"note number {i} about topic {i % 7}")
    halted: list[int] = []

    def halt_once(progress) -> None:
        if progress.done >= 20 and not halted:
            halted.append(progress.done)
            _pg_ctl("halt", folder)

    engine = Engine.open(tmp_path / "idx", model="hash", db=url, batch_size=8)
    with engine, pytest.raises(DatabaseError) as err:
        engine.index([lib], on_progress=halt_once)
    message = str(err.value)
    assert halted and message.count("\n") == 0 and url in message
    _pg_ctl("resume", folder)
    with Engine.open(tmp_path / "idx") as engine:  # the next run finishes the job
        report = engine.index([lib])
        assert report.added + report.unchanged == 60 and report.skipped == []
        assert engine.info()["assets"] == 60 and engine.verify().ok
        q = Query().text("topic").where(text_match="note number 42").options(cutoff=False)
        assert _names(engine.run(q).hits) == ["note42.txt"]


HOLDER = """
import sys, time
from mmsearch import Engine
with Engine.open(sys.argv[1]) as engine, engine.writing():
    print("holding", flush=True)
    time.sleep(120)
"""


@pytest.mark.subprocess
def test_a_killed_writer_leaves_no_lock(tmp_path: Path, pg_url: str, library: Path) -> None:
    with Engine.open(tmp_path / "idx", model="hash", db=pg_url) as engine:
        engine.index([library / "notes"])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "idx")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with Engine.open(tmp_path / "idx") as engine:
            with pytest.raises(IndexUnusableError, match="another mmsearch process"):
                engine.index([library])
            holder.kill()  # no clean exit: the kernel drops the flock, the server the lock
            holder.wait(timeout=30)
            deadline = time.monotonic() + 10
            while True:
                try:
                    report = engine.index([library])
                    break
                except IndexUnusableError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            assert report.added == 3 and engine.verify().ok
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_role_without_rights_is_one_line(
    pg_role: tuple[str, str], pg_url: str, tmp_path: Path
) -> None:
    role, password = pg_role  # may log in, may not create tables (PostgreSQL 15's public)
    url = make_url(pg_url).set(username=role, password=password)
    with pytest.raises(DatabaseError) as err:
        Engine.open(tmp_path / "idx", model="hash", db=url.render_as_string(hide_password=False))
    message = str(err.value)
    assert message.count("\n") == 0 and safe_url(url) in message and password not in message
    assert "permission denied" in message
