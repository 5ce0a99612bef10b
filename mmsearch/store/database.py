"""Where the metadata lives: the SQLite file in the index folder, or a PostgreSQL database.

``--db postgresql+psycopg://user:pass@host:port/dbname`` (setting ``db``) puts an
index's metadata in PostgreSQL. The URL is recorded in the manifest *without its
password*: a later command connects with the password given again (``--db`` or
``MMSEARCH_DB``), or the one libpq finds itself (``PGPASSWORD``, ``~/.pgpass``).
Every message that names a database uses :func:`safe_url`, so a password never
reaches a log, an error, ``info`` or the manifest.
"""

from __future__ import annotations

import hashlib
import importlib.util

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from mmsearch.errors import ConfigError, MissingDependencyError

POSTGRES_DIALECTS = ("postgresql", "postgresql+psycopg")


def parse(url: str) -> URL:
    """The SQLAlchemy URL of a ``db`` setting; plain ``postgresql://`` means psycopg (v3)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(
            "db must be a database URL like postgresql+psycopg://user@host:5432/dbname,"
            f" not {_mask(url)!r}"
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in POSTGRES_DIALECTS and parsed.get_backend_name() != "sqlite":
        raise ConfigError(
            f"db {safe_url(parsed)} is not supported: use postgresql+psycopg://... "
            "(or leave db unset for the SQLite file in the index folder)"
        )
    if parsed.get_backend_name() == "postgresql":
        if not parsed.database:
            raise ConfigError(f"db {safe_url(parsed)} names no database (…/dbname at the end)")
        if importlib.util.find_spec("psycopg") is None:
            raise MissingDependencyError(
                "PostgreSQL needs the 'psycopg' package: pip install 'mmsearch[postgres]'"
            )
    return parsed


def safe_url(url: str | URL) -> str:
    """The URL as text with its password removed (what manifests, errors and ``info`` show)."""
    parsed = make_url(url) if isinstance(url, str) else url
    bare = parsed._replace(password=None)  # (URL.set ignores None: it would keep the password)
    return bare.render_as_string(hide_password=False)


def same_database(a: URL, b: URL) -> bool:
    """Whether two URLs name the same database, whatever their passwords."""
    return safe_url(a) == safe_url(b)


def first_line(error: BaseException) -> str:
    """The first line of a database error's message: the reason, without the SQL and
    parameters that drivers and SQLAlchemy append (a bulk insert's run to kilobytes)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def lock_key(url: URL, purpose: str) -> int:
    """A signed 64-bit advisory-lock key for ``purpose`` on the database ``url`` names."""
    ident = f"mmsearch {purpose} {url.database}".encode()
    return int.from_bytes(hashlib.blake2b(ident, digest_size=8).digest(), "big", signed=True)


def _mask(text: str) -> str:
    """A URL that failed to parse, with anything between ``:`` and ``@`` hidden."""
    head, at, tail = text.rpartition("@")
    if not at:
        return text
    scheme, sep, rest = head.partition("://")
    user = rest.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{tail}"
