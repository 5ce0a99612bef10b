"""Schema migrations: an older index's tables brought up to :data:`SCHEMA_VERSION`, step by step.

``meta.schema_version`` records the version an index's tables have. Each step
below brings one version to the next and is safe to run again (``IF NOT
EXISTS``, a column looked up first), so a new database, which starts at 0, runs
them all after ``create_all``. To change the schema: add the column or index to
:mod:`mmsearch.store.schema`, raise ``SCHEMA_VERSION`` there (saying what the new
version adds), and add its step at the end of :func:`migrate`.
"""

from __future__ import annotations

from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session

from mmsearch.store.fulltext import POSTGRES_FTS_SCHEMA, SQLITE_FTS_REBUILD, SQLITE_FTS_SCHEMA
from mmsearch.store.schema import (
    ASSET_ID_MARK,
    REMOVED_MARK,
    SCHEMA_VERSION,
    SEGMENT_ID_MARK,
    Asset,
    Meta,
    Segment,
)


def migrate(s: Session) -> None:
    """Bring the tables ``s`` reaches up to :data:`SCHEMA_VERSION` (the caller holds the
    database's migration lock, where there is one)."""
    postgres = s.get_bind().dialect.name == "postgresql"
    if postgres:
        for statement in POSTGRES_FTS_SCHEMA:
            s.execute(text(statement))
    row = s.get(Meta, "schema_version")
    version = int(row.value) if row is not None else 0
    if version < 2 and not postgres:  # segments.box; full text over segment text
        columns = {c[1] for c in s.execute(text("PRAGMA table_info(segments)"))}
        if "box" not in columns:
            s.execute(text("ALTER TABLE segments ADD COLUMN box JSON"))
        for statement in SQLITE_FTS_SCHEMA:
            s.execute(text(statement))
        s.execute(text(SQLITE_FTS_REBUILD))
    if version < 3:  # palettes: NULL for segments indexed before (they match no colour)
        columns = {c["name"] for c in inspect(s.connection()).get_columns("segments")}
        if "palette" not in columns:
            s.execute(text("ALTER TABLE segments ADD COLUMN palette JSON"))
    if version < 4:  # the segment stamp: deletions counted by a trigger
        if not postgres:
            s.execute(text(_SQLITE_REMOVED_TRIGGER))
        elif s.execute(text(_POSTGRES_HAS_REMOVED_TRIGGER)).first() is None:
            for statement in _POSTGRES_REMOVED_TRIGGER:
                s.execute(text(statement))
        if s.get(Meta, REMOVED_MARK) is None:
            s.add(Meta(key=REMOVED_MARK, value="0"))
    # 5 and 6: how much a tag filter gains is measured in docs/benchmarks.md, "Large libraries"
    if version < 5:  # a tag filter seeks (key, value), not key alone
        s.execute(text("CREATE INDEX IF NOT EXISTS ix_tags_key_value ON tags (key, value)"))
        s.execute(text("DROP INDEX IF EXISTS ix_tags_key"))
    if version < 6:  # covering: a tag filter reads its asset ids from the index alone
        s.execute(
            text(
                "CREATE INDEX IF NOT EXISTS ix_tags_key_value_asset ON tags (key, value, asset_id)"
            )
        )
        s.execute(text("DROP INDEX IF EXISTS ix_tags_key_value"))
    if version < 7:  # high-water marks for both ids (mmsearch.store.ids), so both rows exist
        _add_mark(s, SEGMENT_ID_MARK, int(s.scalar(select(func.max(Segment.id))) or 0))
        top = int(s.scalar(select(func.max(Asset.id))) or 0)
        if postgres:  # ids the serial sequence gave (deleted since) are not given again
            top = max(top, _postgres_sequence_top(s, "assets", "id"))
        _add_mark(s, ASSET_ID_MARK, top)
    if row is None:
        s.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
    else:
        row.value = str(SCHEMA_VERSION)


def _add_mark(s: Session, key: str, top: int) -> None:
    mark = s.get(Meta, key)
    if mark is None:
        s.add(Meta(key=key, value=str(top)))
    elif int(mark.value) < top:
        mark.value = str(top)


def _postgres_sequence_top(s: Session, table: str, column: str) -> int:
    """The last value a serial column's sequence gave, or 0 (none, or never used)."""
    sequence = s.scalar(text(f"SELECT pg_get_serial_sequence('{table}', '{column}')"))
    if sequence is None:
        return 0
    last = s.scalar(text(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}"))
    return int(last or 0)


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
