"""Shared fixtures: generated media in tmp_path, real photos from installed packages.

The whole run uses one temporary ``MMSEARCH_CACHE`` (the offline model's class
vectors are computed once and shared by every test), so no test writes to the
user's ``~/.cache``. Helpers live in ``tests/support/``.

PostgreSQL: ``pg_url`` is a fresh, empty database per test on one server for
the session: ``MMSEARCH_TEST_PG_URL`` when set (``.ci/run`` starts one), else a
server started here with ``.ci/postgres.sh`` when Debian's binaries exist. Only
without either, and outside CI, are the PostgreSQL tests skipped; with ``CI``
set that is a failure. A test module runs on both stores with
``pytestmark = pytest.mark.usefixtures("metadata_db")``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.media import COLOURS, solid

pytest_plugins = ["pytester"]  # tests/unit/test_deps.py runs a test module of its own

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_CACHE = tempfile.TemporaryDirectory(prefix="mmsearch-test-cache-")
os.environ["MMSEARCH_CACHE"] = _CACHE.name


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``MMSEARCH_VECTORS`` naming another store, tests of the FAISS file itself skip."""
    store = os.environ.get("MMSEARCH_VECTORS", "faiss")
    if store == "faiss":
        return
    skip = pytest.mark.skip(
        reason=f"checks the FAISS vector file; this run stores vectors in {store}"
    )
    for item in items:
        if "faiss_file" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A small library: three colour photos and two notes."""
    lib = tmp_path / "lib"
    (lib / "photos").mkdir(parents=True)
    (lib / "notes").mkdir()
    for i, (name, colour) in enumerate(COLOURS.items()):
        solid(colour, seed=i).save(lib / "photos" / f"{name}.jpg", quality=95)
    (lib / "notes" / "fox.txt").write_text(
        "The quick red fox jumps over the lazy dog near the river bank.\n", encoding="utf-8"
    )
    (lib / "notes" / "garden.md").write_text(
        "# Garden\n\nTomatoes and green beans grow in the garden every summer.\n",
        encoding="utf-8",
    )
    return lib


_PG_SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "postgres.sh"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's ``postgres`` database, as a superuser."""
    url = os.environ.get("MMSEARCH_TEST_PG_URL")
    if url:
        yield url
        return
    have = glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb")
    if not have and not os.environ.get("CI"):
        pytest.skip("no PostgreSQL: set MMSEARCH_TEST_PG_URL or install Debian's postgresql")
    started = subprocess.run(
        ["bash", str(_PG_SCRIPT), "start"], capture_output=True, text=True, timeout=180
    )
    if started.returncode != 0:
        pytest.fail(f"could not start PostgreSQL with {_PG_SCRIPT}:\n{started.stderr}")
    folder = started.stdout.strip().splitlines()[-1]
    try:
        yield (Path(folder) / "url").read_text().strip()
    finally:
        subprocess.run(["bash", str(_PG_SCRIPT), "stop", folder], capture_output=True, timeout=60)


def _admin(server: str, sql: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server)
    with psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=url.database,
        autocommit=True,
    ) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (dropped after it)."""
    from sqlalchemy.engine import make_url

    name = f"mmsearch_test_{uuid.uuid4().hex[:12]}"
    _admin(pg_server, f"CREATE DATABASE {name}")
    try:
        yield make_url(pg_server).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "pg"])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """The ``db`` setting of a test's index: ``None`` (SQLite in the folder) or a database."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def metadata_db(db_url: str | None, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """Run the test on SQLite and on PostgreSQL: ``MMSEARCH_DB`` for every index it makes."""
    if db_url is None:
        monkeypatch.delenv("MMSEARCH_DB", raising=False)
    else:
        monkeypatch.setenv("MMSEARCH_DB", db_url)
    return db_url
