"""The metadata store: SQLite or PostgreSQL through SQLAlchemy, the index's source of truth.

SQLite runs in WAL mode with an FTS5 table for phrase filters; PostgreSQL uses
plain transactions and a GIN full-text index over segment text (see
:mod:`mmsearch.store.database` and docs/postgres.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import create_engine, delete, event, func, select, text, update
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Select

from mmsearch.errors import DatabaseError
from mmsearch.store import roots as root_rules
from mmsearch.store.database import first_line, lock_key, safe_url
from mmsearch.store.fulltext import POSTGRES_PHRASE, POSTGRES_WORDS
from mmsearch.store.ids import reserve_ids
from mmsearch.store.migrations import migrate
from mmsearch.store.schema import (
    ASSET_ID_MARK,
    PALETTE_MARK,
    REMOVED_MARK,
    SEGMENT_ID_MARK,
    Asset,
    Base,
    Root,
    Segment,
    Tag,
)

__all__ = [  # the names other modules import from here (some live beside it now)
    "CONTENT_FACTS",
    "PALETTE_MARK",
    "POSTGRES_PHRASE",
    "POSTGRES_WORDS",
    "REMOVED_MARK",
    "SEGMENT_ID_MARK",
    "AssetRecord",
    "MetadataStore",
    "SegmentHit",
]


class SegmentHit(NamedTuple):
    """One row of :meth:`MetadataStore.segment_hits`: what a result shows of a segment."""

    id: int
    view: str
    ord: int
    char_start: int | None
    char_end: int | None
    start: float | None
    end: float | None
    best_time: float | None
    text: str | None
    asset_id: int
    modality: str
    width: int | None
    height: int | None
    taken_at: str | None
    mtime_ns: int
    relpath: str
    root: str

    @property
    def path(self) -> str:
        """The file's absolute path."""
        return root_rules.join(self.root, self.relpath)


@dataclass
class AssetRecord:
    """What the indexer knows of one file when it writes it: its path and the asset's columns.

    Every field but ``path`` is an :class:`Asset` column of the same name.
    """

    path: str  # absolute
    modality: str
    size: int
    mtime_ns: int
    content_hash: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    taken_at: str | None = None
    meta: dict | None = None

    def columns(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "path"}


CONTENT_FACTS = ("width", "height", "duration", "taken_at", "meta")
"""Asset columns that follow from the file's bytes, so a copy of a file shares them."""


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class MetadataStore:
    """Assets, segments and their vectors, behind SQLAlchemy sessions."""

    def __init__(self, url: str | URL, dim: int | None = None) -> None:
        self.url = safe_url(url)  # never the password: this one is shown in messages
        self.dim = dim  # when known, vectors of another length are skipped on read
        # pre-ping: a pooled connection the server dropped (a restart) is replaced, not used
        server = make_url(url).get_backend_name() == "postgresql"
        self.engine: SAEngine = create_engine(url, future=True, pool_pre_ping=server)
        self.postgres = self.engine.dialect.name == "postgresql"
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        if self.postgres:
            event.listen(self.engine, "handle_error", self._database_error)
        with self.engine.begin() as conn:
            if self.postgres:  # two processes opening a new database at once: one creates
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self._migrate_key})
            Base.metadata.create_all(conn)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._migrate()

    @property
    def _migrate_key(self) -> int:
        return lock_key(self.engine.url, "schema")

    def _database_error(self, context: ExceptionContext) -> None:
        """A server that is down, went away or refused the login: one line naming it."""
        dbapi = self.engine.dialect.loaded_dbapi
        original = context.original_exception
        state = str(getattr(original, "sqlstate", None) or "")
        # connection, login, resources, operator intervention; or no right to the tables
        refused = state[:2] in ("08", "28", "53", "57") or state == "42501"
        if context.is_disconnect or refused or isinstance(original, dbapi.OperationalError):
            first = first_line(original)
            hint = ""
            if "password" in first:
                hint = " (give the password in --db or MMSEARCH_DB, or in PGPASSWORD or ~/.pgpass)"
            raise DatabaseError(
                f"the metadata database {self.url} can't be used: {first}{hint}"
            ) from original

    def _migrate(self) -> None:
        """Bring an older schema up to :data:`SCHEMA_VERSION` (:mod:`mmsearch.store.migrations`)."""
        with self.sessions.begin() as s:
            if self.postgres:  # one process at a time
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self._migrate_key})
            migrate(s)

    def close(self) -> None:
        self.engine.dispose()

    # -- roots and paths (the rules live in mmsearch.store.roots) ---------

    def root_for(self, s: Session, path: str) -> tuple[Root, str]:
        """The root that holds ``path`` (made if none does) and the relpath inside it."""
        return root_rules.root_for(s, path)

    def ensure_roots(self, paths: list[str]) -> None:
        """Make each walked folder (or a file's folder) a root, unless a root holds it."""
        with self.sessions.begin() as s:
            for path in paths:
                root_rules.root_for(s, path)

    def roots(self) -> list[str]:
        with self.sessions() as s:
            return list(s.scalars(select(Root.path).order_by(Root.path)))

    def root_counts(self) -> list[tuple[str, int]]:
        """Each root folder and how many files are indexed under it."""
        with self.sessions() as s:
            query = (
                select(Root.path, func.count(Asset.id))
                .outerjoin(Asset, Asset.root_id == Root.id)
                .group_by(Root.id)
                .order_by(Root.path)
            )
            return [(path, int(n)) for path, n in s.execute(query)]

    def move_root(self, s: Session, old: str, new: str) -> None:
        """See :func:`mmsearch.store.root_rules.move_root`."""
        root_rules.move_root(s, old, new)

    @staticmethod
    def abspath(asset: Asset) -> str:
        return root_rules.join(asset.root.path, asset.relpath)

    def assets_under(self, s: Session, path: str) -> list[Asset]:
        """Assets whose file is ``path`` or lies under the folder ``path``."""
        return root_rules.assets_under(s, path)

    def asset_at(self, s: Session, path: str) -> Asset | None:
        """The asset at ``path``, or ``None``."""
        return root_rules.asset_at(s, path)

    def assets_with_hash(self, s: Session, content_hash: str) -> list[Asset]:
        return list(s.scalars(select(Asset).where(Asset.content_hash == content_hash)))

    # -- writes ----------------------------------------------------------

    def add_asset(self, s: Session, record: AssetRecord, segments: Iterable[Segment]) -> Asset:
        """Insert the file ``record`` describes with its new (unsaved) ``segments``."""
        root, rel = root_rules.root_for(s, record.path)
        asset = Asset(
            id=reserve_ids(s, Asset.id, ASSET_ID_MARK, 1),
            root_id=root.id,
            relpath=rel,
            indexed_at=time.time(),
            **record.columns(),
        )
        s.add(asset)
        s.flush()
        self.add_segments(s, asset.id, segments)
        return asset

    def add_segments(self, s: Session, asset_id: int, segments: Iterable[Segment]) -> None:
        """Insert new (unsaved) segments under ``asset_id``, with fresh ids (never reused)."""
        new = list(segments)
        if not new:
            return
        first = reserve_ids(s, Segment.id, SEGMENT_ID_MARK, len(new))
        for offset, segment in enumerate(new):
            segment.id = first + offset
            segment.asset_id = asset_id
            s.add(segment)
        s.flush()

    def copy_segments(self, s: Session, source_id: int, target_id: int) -> None:
        """Give ``target`` the segments (and vectors) of ``source``: same content."""
        rows = s.scalars(select(Segment).where(Segment.asset_id == source_id).order_by(Segment.id))
        self.add_segments(s, target_id, [row.copy() for row in rows])

    def move_asset(self, s: Session, asset: Asset, new_path: str, mtime_ns: int) -> None:
        root, rel = root_rules.root_for(s, new_path)
        asset.root_id = root.id
        asset.relpath = rel
        asset.mtime_ns = mtime_ns
        s.flush()

    def delete_assets(self, s: Session, asset_ids: list[int]) -> list[int]:
        """Delete assets and their segments; return the deleted segment ids."""
        if not asset_ids:
            return []
        seg_ids: list[int] = []
        for start in range(0, len(asset_ids), 500):
            part = asset_ids[start : start + 500]
            seg_ids.extend(s.scalars(select(Segment.id).where(Segment.asset_id.in_(part))))
            s.execute(delete(Segment).where(Segment.asset_id.in_(part)))
            s.execute(delete(Asset).where(Asset.id.in_(part)))
        return seg_ids

    def segment_ids_of(self, s: Session, asset_id: int) -> list[int]:
        return list(s.scalars(select(Segment.id).where(Segment.asset_id == asset_id)))

    def set_tag(self, s: Session, asset_ids: list[int], key: str, value: str | None) -> None:
        """Set ``key=value`` on the assets (replacing an old value), or remove it (``None``)."""
        for start in range(0, len(asset_ids), 500):
            part = asset_ids[start : start + 500]
            s.execute(delete(Tag).where(Tag.asset_id.in_(part), Tag.key == key))
            if value is not None:
                s.add_all(Tag(asset_id=a, key=key, value=value) for a in part)
        s.flush()

    def tags_of(self, s: Session, asset_id: int) -> dict[str, str]:
        return {t.key: t.value for t in s.scalars(select(Tag).where(Tag.asset_id == asset_id))}

    def touch(self, s: Session, asset_id: int, mtime_ns: int, size: int) -> None:
        s.execute(update(Asset).where(Asset.id == asset_id).values(mtime_ns=mtime_ns, size=size))

    # -- reads -----------------------------------------------------------

    def vectors(
        self, s: Session, segment_ids: Iterable[int] | None = None, batch: int = 4096
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(ids, float32 vectors)`` batches, for all segments or the given ones."""
        query = select(Segment.id, Segment.vector).order_by(Segment.id)
        if self.dim is not None:  # a damaged row must not stop a rebuild (verify reports it)
            query = query.where(func.length(Segment.vector) == self.dim * 2)
        if segment_ids is not None:
            wanted = sorted(set(segment_ids))
            for start in range(0, len(wanted), 900):
                part = wanted[start : start + 900]
                yield from self._vector_batches(s, query.where(Segment.id.in_(part)), batch)
            return
        yield from self._vector_batches(s, query, batch)

    @staticmethod
    def _vector_batches(
        s: Session, query: Select[int, bytes], batch: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # Core rows on the session's connection (no ORM loading: a search reads a few
        # hundred), streamed in batches (a server-side cursor on PostgreSQL)
        result = s.connection().execution_options(yield_per=batch).execute(query)
        while rows := result.fetchmany(batch):
            yield _unpack([r[0] for r in rows], [r[1] for r in rows])

    def segment_stats(self) -> tuple[int, int]:
        """(count, max id) of segments: what the vector store must hold."""
        with self.sessions() as s:
            query = select(func.count(Segment.id), func.max(Segment.id))
            if self.dim is not None:
                query = query.where(func.length(Segment.vector) == self.dim * 2)
            count, top = s.execute(query).one()
        return int(count or 0), int(top or 0)

    def segment_stamp(self) -> tuple[int, int]:
        """(largest segment id, segments ever removed): changes whenever the segments do.

        Cheap whatever the index's size (one index seek, one key lookup), unlike
        :meth:`segment_stats`'s count: new segments always take ids above every
        earlier one (:mod:`mmsearch.store.ids`), so an insert raises the first number,
        and a trigger raises the second on every delete (cascades included).
        Searches key their caches on it and compare it with the vector store's
        :attr:`~mmsearch.store.vectors.VectorStore.synced_to`.
        """
        with self.engine.connect() as conn:  # one plain statement: every query reads it twice
            top, removed = conn.execute(_STAMP, {"mark": REMOVED_MARK}).one()
        return int(top or 0), int(removed or 0)

    def segment_hits(self, s: Session, ids: list[int]) -> dict[int, SegmentHit]:
        """What a search result shows of each of ``ids``: its segment's place and text, its
        asset's modality, size, time and path parts (``root``, ``relpath``).

        Plain rows from one joined query per 900 ids, not ORM objects: a query turns a
        few hundred hits into candidates, and building ``Segment`` and ``Asset``
        instances (with their vectors) for them took about half of a search's time
        (docs/benchmarks.md, "Large libraries").
        """
        out: dict[int, SegmentHit] = {}
        conn = s.connection()  # Core rows, made into tuples: no ORM loading, no Row lookups
        for start in range(0, len(ids), 900):
            part = ids[start : start + 900]
            for row in conn.execute(_HITS.where(Segment.id.in_(part))).all():
                hit = SegmentHit._make(row)
                out[hit.id] = hit
        return out

    def counts(self) -> dict[str, object]:
        with self.sessions() as s:
            by_modality: dict[str, int] = {
                m: n
                for m, n in s.execute(
                    select(Asset.modality, func.count(Asset.id)).group_by(Asset.modality)
                )
            }
            by_view: dict[str, int] = {
                v: n
                for v, n in s.execute(
                    select(Segment.view, func.count(Segment.id)).group_by(Segment.view)
                )
            }
            roots = list(s.scalars(select(Root.path).order_by(Root.path)))
        return {
            "assets": sum(by_modality.values()),
            "by_modality": by_modality,
            "segments": sum(by_view.values()),
            "by_view": by_view,
            "roots": roots,
        }


_HITS = (
    select(
        Segment.id,
        Segment.view,
        Segment.ord,
        Segment.char_start,
        Segment.char_end,
        Segment.start,
        Segment.end,
        Segment.best_time,
        Segment.text,
        Segment.asset_id,
        Asset.modality,
        Asset.width,
        Asset.height,
        Asset.taken_at,
        Asset.mtime_ns,
        Asset.relpath,
        Root.path,
    )
    .join(Asset, Segment.asset_id == Asset.id)
    .join(Root)
)  # the columns of SegmentHit, in its order

_STAMP = text("SELECT (SELECT max(id) FROM segments), (SELECT value FROM meta WHERE key = :mark)")


def _unpack(ids: list[int], blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    arr = np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), -1)
    return np.asarray(ids, dtype=np.int64), arr.astype(np.float32)
