"""The SQLite schema, through SQLAlchemy 2.0.

- ``roots``: library roots (absolute folders); asset paths are relative to them,
  so a library and its index can move together.
- ``assets``: one indexed file, with its content hash and metadata.
- ``segments``: one embedded unit of an asset (the whole image, one text chunk,
  one video frame), with its float16 vector. FAISS ids are segment ids. Pixels
  and frames also keep their colour palette (``--color`` searches).
- ``tags``: user tags on files.
- ``meta``: key/value facts about the index (schema version, the id high-water
  marks: the ``*_MARK`` keys below).
- ``segments_fts`` (SQLite only): an FTS5 index over segment text (passages
  and OCR lines), kept in step by triggers, for exact-phrase filters. On
  PostgreSQL a GIN index over ``to_tsvector('simple', text)`` does that job.

The same tables serve PostgreSQL (``LargeBinary`` is ``bytea``, ``JSON`` is
``json``); integers that outgrow 32 bits there (file sizes, nanosecond times,
segment ids) are ``BIGINT`` on PostgreSQL and stay ``INTEGER`` on SQLite.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA_VERSION = 7  # 2: segments.box, FTS5 over segment text; 3: segments.palette;
# 4: a trigger counting deleted segments (MetadataStore.segment_stamp);
# 5: tags indexed by (key, value), not key alone (a tag filter seeks its value);
# 6: that index covers asset_id too (a tag filter reads the index alone, no table rows);
# 7: assets get a high-water mark like segments' (ids never reused, mmsearch.store.ids)
# (the steps are in mmsearch.store.migrations)

# keys of the ``meta`` table besides ``schema_version``
SEGMENT_ID_MARK = "segment_id_high_water"  # the largest segment id ever given
ASSET_ID_MARK = "asset_id_high_water"  # the largest asset id ever given
PALETTE_MARK = "palettes_backfilled"  # when palettes were last given to old segments
REMOVED_MARK = "segments_removed"  # raised by a trigger whenever segments are deleted


BigInt = Integer().with_variant(BigInteger(), "postgresql")
"""64-bit on PostgreSQL; SQLite's INTEGER is 64-bit already (and a primary key must stay one)."""


class Base(DeclarativeBase):
    pass


class Root(Base):
    __tablename__ = "roots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True)


class Asset(Base):
    __tablename__ = "assets"
    __table_args__ = (UniqueConstraint("root_id", "relpath"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    root_id: Mapped[int] = mapped_column(ForeignKey("roots.id", ondelete="CASCADE"))
    relpath: Mapped[str] = mapped_column(String)
    modality: Mapped[str] = mapped_column(String(8), index=True)
    size: Mapped[int] = mapped_column(BigInt)
    mtime_ns: Mapped[int] = mapped_column(BigInt)
    content_hash: Mapped[str] = mapped_column(String(32), index=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration: Mapped[float | None] = mapped_column(Float)
    taken_at: Mapped[str | None] = mapped_column(String(32))
    indexed_at: Mapped[float] = mapped_column(Float)
    meta: Mapped[dict | None] = mapped_column(JSON)

    root: Mapped[Root] = relationship(lazy="joined")
    segments: Mapped[list[Segment]] = relationship(
        back_populates="asset", cascade="all, delete-orphan", passive_deletes=True
    )


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=False)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    view: Mapped[str] = mapped_column(String(8))
    ord: Mapped[int] = mapped_column(Integer, default=0)
    char_start: Mapped[int | None] = mapped_column(Integer)
    char_end: Mapped[int | None] = mapped_column(Integer)
    # a video frame's span and the moment it shows, in seconds (columns keep their old names)
    start: Mapped[float | None] = mapped_column("t_start", Float)
    end: Mapped[float | None] = mapped_column("t_end", Float)
    best_time: Mapped[float | None] = mapped_column("t_best", Float)
    text: Mapped[str | None] = mapped_column(Text)
    box: Mapped[list[float] | None] = mapped_column(JSON)  # OCR line: x0, y0, x1, y1 in [0, 1]
    # pixels and frames: dominant colours [[L, a, b, share], ...] (mmsearch.media.palette)
    palette: Mapped[list[list[float]] | None] = mapped_column(JSON)
    vector: Mapped[bytes] = mapped_column(LargeBinary)

    asset: Mapped[Asset] = relationship(back_populates="segments")

    @classmethod
    def new(cls, view: str, vector: np.ndarray, **fields: Any) -> Segment:
        """A segment to insert: its view, its vector (stored as float16) and its place."""
        return cls(view=view, vector=np.asarray(vector, dtype=np.float16).tobytes(), **fields)

    def content(self) -> dict[str, Any]:
        """This segment's place, text and vector: every column but its id and its asset's."""
        return {name: getattr(self, name) for name in _SEGMENT_CONTENT}

    def copy(self) -> Segment:
        """A new, unsaved segment with this one's place, text and vector (no id, no asset)."""
        return Segment(**self.content())


_SEGMENT_CONTENT = tuple(
    c.key for c in Segment.__mapper__.column_attrs if c.key not in ("id", "asset_id")
)


class Meta(Base):
    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(String)


Index("ix_segments_view", Segment.view)


class Tag(Base):
    """A user tag on a file (``mmsearch tag PATH key=value``); moves with the file."""

    __tablename__ = "tags"
    __table_args__ = (
        UniqueConstraint("asset_id", "key"),
        # --where KEY=VALUE seeks, never scans, and reads its asset ids from the index alone
        Index("ix_tags_key_value_asset", "key", "value", "asset_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String)
    value: Mapped[str] = mapped_column(String)
