"""The metadata store: SQLite or PostgreSQL through SQLAlchemy, the index's source of truth.

SQLite runs in WAL mode with an FTS5 table for phrase filters; PostgreSQL uses
plain transactions and a GIN full-text index over segment text (see
:mod:`mmsearch.store.database` and docs/postgres.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import create_engine, delete, event, func, inspect, select, text, update
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Select

from mmsearch.errors import ConfigError, DatabaseError, PathError
from mmsearch.store.database import lock_key, safe_url
from mmsearch.store.schema import SCHEMA_VERSION, Asset, Base, Meta, Root, Segment, Tag


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


SEGMENT_ID_MARK = "segment_id_high_water"  # meta key: the largest segment id ever given
PALETTE_MARK = "palettes_backfilled"  # meta key: when palettes were last given to old segments
REMOVED_MARK = "segments_removed"  # meta key: raised by a trigger whenever segments are deleted


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


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


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
            first = str(original).strip().splitlines()[0] if str(original).strip() else ""
            hint = ""
            if "password" in first:
                hint = " (give the password in --db or MMSEARCH_DB, or in PGPASSWORD or ~/.pgpass)"
            raise DatabaseError(
                f"the metadata database {self.url} can't be used: {first}{hint}"
            ) from original

    def _migrate(self) -> None:
        """Bring an older schema up to :data:`SCHEMA_VERSION`, step by step."""
        with self.sessions.begin() as s:
            if self.postgres:
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self._migrate_key})
                for statement in _POSTGRES_FTS_SCHEMA:
                    s.execute(text(statement))
            row = s.get(Meta, "schema_version")
            version = int(row.value) if row is not None else 0
            if version < 2 and self.engine.dialect.name == "sqlite":
                columns = {c[1] for c in s.execute(text("PRAGMA table_info(segments)"))}
                if "box" not in columns:
                    s.execute(text("ALTER TABLE segments ADD COLUMN box JSON"))
                for statement in _FTS_SCHEMA:
                    s.execute(text(statement))
                s.execute(text("INSERT INTO segments_fts(segments_fts) VALUES ('rebuild')"))
            if version < 3:  # palettes: NULL for segments indexed before (they match no colour)
                columns = {c["name"] for c in inspect(s.connection()).get_columns("segments")}
                if "palette" not in columns:
                    s.execute(text("ALTER TABLE segments ADD COLUMN palette JSON"))
            if version < 4:  # the segment stamp: deletions counted by a trigger
                if not self.postgres:
                    s.execute(text(_SQLITE_REMOVED_TRIGGER))
                elif s.execute(text(_POSTGRES_HAS_REMOVED_TRIGGER)).first() is None:
                    for statement in _POSTGRES_REMOVED_TRIGGER:
                        s.execute(text(statement))
                if s.get(Meta, REMOVED_MARK) is None:
                    s.add(Meta(key=REMOVED_MARK, value="0"))
            if version < 5:  # a tag filter seeks (key, value): 1% of 100k tags in 3 ms, not 12
                s.execute(text("CREATE INDEX IF NOT EXISTS ix_tags_key_value ON tags (key, value)"))
                s.execute(text("DROP INDEX IF EXISTS ix_tags_key"))
            if version < 6:  # covering: 1% of 1M tags in 1-2 ms where 10k row reads took 11
                s.execute(
                    text(
                        "CREATE INDEX IF NOT EXISTS ix_tags_key_value_asset"
                        " ON tags (key, value, asset_id)"
                    )
                )
                s.execute(text("DROP INDEX IF EXISTS ix_tags_key_value"))
            if row is None:
                s.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
            else:
                row.value = str(SCHEMA_VERSION)

    def close(self) -> None:
        self.engine.dispose()

    # -- roots and paths -------------------------------------------------

    def root_for(self, s: Session, path: str) -> tuple[Root, str]:
        """The root that holds ``path`` and the relative path inside it.

        A path inside a known root uses that root. Otherwise a new root is made
        (the folder itself, or a file's parent), and roots inside it are folded
        into it so no file is known twice.
        """
        for root in s.scalars(select(Root)):
            if _under(path, root.path):
                return root, os.path.relpath(path, root.path) if path != root.path else ""
        folder = path if os.path.isdir(path) else os.path.dirname(path)
        new = Root(path=folder)
        s.add(new)
        s.flush()
        for inner in list(s.scalars(select(Root).where(Root.id != new.id))):
            if _under(inner.path, folder):
                prefix = os.path.relpath(inner.path, folder)
                for asset in s.scalars(select(Asset).where(Asset.root_id == inner.id)):
                    asset.root_id = new.id
                    asset.relpath = os.path.join(prefix, asset.relpath)
                s.flush()
                s.delete(inner)
        s.flush()
        rel = os.path.relpath(path, folder) if path != folder else ""
        return new, rel

    def ensure_roots(self, paths: list[str]) -> None:
        """Make each walked folder (or a file's folder) a root, unless a root holds it."""
        with self.sessions.begin() as s:
            for path in paths:
                self.root_for(s, path)

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
        """Point the files under the folder ``old`` at the folder ``new`` (absolute paths).

        ``old`` may be a root, a folder holding roots (each keeps its place under
        ``new``) or a folder inside a root (its files get ``new`` as their own
        root). Raises :class:`PathError` when nothing indexed is under ``old``,
        :class:`ConfigError` when a new folder would overlap a root that stays.
        """
        roots = list(s.scalars(select(Root)))
        moving = [r for r in roots if _under(r.path, old)]
        holder = next((r for r in roots if _under(old, r.path) and old != r.path), None)

        def check(target: str) -> None:
            for other in roots:
                if other not in moving and (
                    _under(target, other.path) or _under(other.path, target)
                ):
                    raise ConfigError(
                        f"can't move to {target}: it overlaps the indexed folder {other.path};"
                        " a move within indexed folders is found by mmsearch index (by content"
                        " hash, nothing re-embedded)"
                    )

        if moving:
            targets = [
                os.path.normpath(os.path.join(new, os.path.relpath(r.path, old))) for r in moving
            ]
            for target in targets:
                check(target)
            for root, target in zip(moving, targets, strict=True):
                root.path = target
        elif holder is not None:
            prefix = os.path.relpath(old, holder.path) + os.sep
            inside = func.substr(Asset.relpath, 1, len(prefix)) == prefix
            assets = list(s.scalars(select(Asset).where(Asset.root_id == holder.id, inside)))
            if not assets:
                raise PathError(f"no indexed files under {old}")
            check(new)
            root = Root(path=new)
            s.add(root)
            s.flush()
            for asset in assets:
                asset.root_id = root.id
                asset.relpath = asset.relpath[len(prefix) :]
        else:
            raise PathError(f"{old} is not an indexed folder nor inside one (see mmsearch roots)")
        s.flush()

    @staticmethod
    def abspath(asset: Asset) -> str:
        return os.path.join(asset.root.path, asset.relpath)

    def assets_under(self, s: Session, path: str) -> list[Asset]:
        """Assets whose file is ``path`` or lies under the folder ``path``."""
        out: list[Asset] = []
        for root in s.scalars(select(Root)):
            if _under(root.path, path):
                out.extend(s.scalars(select(Asset).where(Asset.root_id == root.id)))
            elif _under(path, root.path):
                rel = os.path.relpath(path, root.path)
                prefix = rel.rstrip(os.sep) + os.sep
                rows = s.scalars(
                    select(Asset).where(
                        Asset.root_id == root.id,
                        (Asset.relpath == rel)
                        | (func.substr(Asset.relpath, 1, len(prefix)) == prefix),
                    )
                )
                out.extend(rows)
        return out

    def asset_at(self, s: Session, path: str) -> Asset | None:
        """The asset at ``path``, looked up through its folders: a seek per folder level,
        however many roots there are (an import of a cluster's files has one per folder)."""
        folders = []
        at = os.path.dirname(path)
        while True:
            folders.append(at)
            parent = os.path.dirname(at)
            if parent == at:
                break
            at = parent
        # roots never nest (root_for folds inner ones), so at most one holds the path
        for root in s.scalars(select(Root).where(Root.path.in_(folders))):
            rel = os.path.relpath(path, root.path)
            return s.scalars(
                select(Asset).where(Asset.root_id == root.id, Asset.relpath == rel)
            ).first()
        return None

    def assets_with_hash(self, s: Session, content_hash: str) -> list[Asset]:
        return list(s.scalars(select(Asset).where(Asset.content_hash == content_hash)))

    # -- writes ----------------------------------------------------------

    def add_asset(self, s: Session, record: AssetRecord, segments: Iterable[Segment]) -> Asset:
        """Insert the file ``record`` describes with its new (unsaved) ``segments``."""
        root, rel = self.root_for(s, record.path)
        asset = Asset(root_id=root.id, relpath=rel, indexed_at=time.time(), **record.columns())
        s.add(asset)
        s.flush()
        self.add_segments(s, asset.id, segments)
        return asset

    def add_segments(self, s: Session, asset_id: int, segments: Iterable[Segment]) -> None:
        """Insert new (unsaved) segments under ``asset_id``, with fresh ids."""
        new_id = self._next_segment_id(s)
        for segment in segments:
            segment.id = next(new_id)
            segment.asset_id = asset_id
            s.add(segment)
        s.flush()

    def copy_segments(self, s: Session, source_id: int, target_id: int) -> None:
        """Give ``target`` the segments (and vectors) of ``source``: same content."""
        rows = s.scalars(select(Segment).where(Segment.asset_id == source_id).order_by(Segment.id))
        self.add_segments(s, target_id, [row.copy() for row in rows])

    def _next_segment_id(self, s: Session) -> Iterator[int]:
        """Segment ids for new rows: never one that was ever used, even if since deleted.

        SQLite would reuse the largest id after its row is deleted, and a vector file
        saved before that (a crash, a reader's copy) would then hold the old vector
        under the new segment's id without anyone noticing. The largest id ever given
        is kept in ``meta`` and raised in the same transaction as the new rows; the
        row is read ``FOR UPDATE`` (PostgreSQL), so a second transaction waits for
        this one's ids rather than giving them again.
        """
        mark = s.get(Meta, SEGMENT_ID_MARK, with_for_update=True)
        top = s.scalar(select(func.max(Segment.id))) or 0
        given = max(int(top), int(mark.value) if mark is not None else 0)
        if mark is None:
            mark = Meta(key=SEGMENT_ID_MARK, value=str(given))
            s.add(mark)
        while True:
            given += 1
            mark.value = str(given)
            yield given

    def move_asset(self, s: Session, asset: Asset, new_path: str, mtime_ns: int) -> None:
        root, rel = self.root_for(s, new_path)
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
        earlier one (``_next_segment_id``), so an insert raises the first number,
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
        instances (with their vectors) for them cost about 9 ms of a 18 ms search.
        """
        out: dict[int, SegmentHit] = {}
        conn = s.connection()  # Core rows, made into tuples: no ORM loading, no Row lookups
        for start in range(0, len(ids), 900):
            part = ids[start : start + 900]
            for row in conn.execute(_HITS.where(Segment.id.in_(part))).all():
                hit = SegmentHit._make(row)
                out[hit.id] = hit
        return out

    def segment_ids_for_modalities(self, s: Session, modalities: list[str]) -> np.ndarray:
        rows = s.scalars(select(Segment.id).join(Asset).where(Asset.modality.in_(modalities)))
        return np.fromiter(rows, dtype=np.int64)

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

_FTS_SCHEMA = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS segments_fts USING fts5("
    "text, content='segments', content_rowid='id')",
    "CREATE TRIGGER IF NOT EXISTS segments_fts_insert AFTER INSERT ON segments "
    "WHEN new.text IS NOT NULL BEGIN "
    "INSERT INTO segments_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS segments_fts_delete AFTER DELETE ON segments "
    "WHEN old.text IS NOT NULL BEGIN "
    "INSERT INTO segments_fts(segments_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
)

# Deleted segments are counted (see MetadataStore.segment_stamp): per row in SQLite,
# per statement in PostgreSQL (the count only has to change, not to be exact).
_SQLITE_REMOVED_TRIGGER = (
    "CREATE TRIGGER IF NOT EXISTS segments_removed_count AFTER DELETE ON segments BEGIN "
    f"UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = '{REMOVED_MARK}'; END"
)
_POSTGRES_HAS_REMOVED_TRIGGER = (
    "SELECT 1 FROM pg_trigger WHERE tgname = 'segments_removed_count'"
    " AND tgrelid = 'segments'::regclass"
)
_POSTGRES_REMOVED_TRIGGER = (
    "CREATE OR REPLACE FUNCTION mmsearch_segments_removed() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN UPDATE meta SET value = (value::bigint + 1)::text"
    f" WHERE key = '{REMOVED_MARK}'; RETURN NULL; END $$",
    "CREATE TRIGGER segments_removed_count AFTER DELETE ON segments"
    " FOR EACH STATEMENT EXECUTE FUNCTION mmsearch_segments_removed()",
)

# PostgreSQL full text, made to split words as SQLite's FTS5 (unicode61) does: ASCII
# punctuation and white space separate words (so "42.50" is "42 50", "New-York" is
# "new york", as in FTS5; PostgreSQL's own parser would keep "42.50" whole), then the
# 'simple' configuration lower-cases them, with no stemming and no stop words.
_SEPARATORS = "'[!-/:-@[-`{-~[:space:]]+'"
POSTGRES_WORDS = (
    f"to_tsvector('simple'::regconfig, regexp_replace(coalesce(segments.text, ''),"
    f" {_SEPARATORS}, ' ', 'g'))"
)
"""The words of a segment's text: the GIN index's expression, which queries must repeat."""
POSTGRES_PHRASE = (
    f"phraseto_tsquery('simple'::regconfig, regexp_replace(:phrase, {_SEPARATORS}, ' ', 'g'))"
)
"""A phrase (the words in order) split the same way, with the bind parameter ``phrase``."""

_POSTGRES_FTS_SCHEMA = (
    f"CREATE INDEX IF NOT EXISTS ix_segments_text_fts ON segments USING gin ({POSTGRES_WORDS})",
)


def _unpack(ids: list[int], blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    arr = np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), -1)
    return np.asarray(ids, dtype=np.int64), arr.astype(np.float32)
