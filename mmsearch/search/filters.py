"""Metadata filters → SQL → the segment ids a search may return.

Filters run *before* the top-k cut: the vector store is then searched only
among the allowed ids (a FAISS ``IDSelector``, or an exact scan when the
allowed set is small), so a filtered search returns k results whenever k
matching files exist, however far down the unfiltered ranking they sit.
"""

from __future__ import annotations

import fnmatch
import os
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, column, or_, select, text
from sqlalchemy.orm import Session

from mmsearch.errors import QueryError
from mmsearch.search.query import Filters
from mmsearch.store.fulltext import POSTGRES_PHRASE, POSTGRES_WORDS
from mmsearch.store.roots import join, under_path
from mmsearch.store.schema import Asset, Root, Segment, Tag


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path)).rstrip(os.sep) or os.sep


def _epoch_ns(text: str, name: str) -> int:
    try:
        ns = int(_parse_time(text, name).timestamp() * 1e9)
    except (OverflowError, OSError, ValueError) as exc:
        raise QueryError(f"{name} is out of range: {text!r}") from exc
    return max(-(2**63), min(ns, 2**63 - 1))  # SQLite's integers are 64-bit


def _parse_time(text: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise QueryError(f"{name} must be an ISO date like 2021-07-04, not {text!r}") from exc


def text_match_assets(s: Session, phrase: str) -> Any:
    """Asset ids whose text (document passages, OCR lines) contains ``phrase``.

    A phrase query (the words in order, case-insensitive, punctuation between
    them ignored): the FTS5 index ``segments_fts`` on SQLite, the GIN index over
    :data:`~mmsearch.store.fulltext.POSTGRES_WORDS` with ``phraseto_tsquery`` on
    PostgreSQL (words split the same way), a plain substring test elsewhere.
    """
    dialect = s.get_bind().dialect.name
    if dialect == "sqlite":
        quoted = '"' + phrase.replace('"', '""') + '"'
        rows = text("SELECT rowid FROM segments_fts WHERE segments_fts MATCH :q")
        matched = rows.bindparams(q=quoted).columns(column("rowid"))
        return select(Segment.asset_id).where(Segment.id.in_(matched))
    if dialect == "postgresql":  # the same expression as the index, so the index is used
        words = text(f"{POSTGRES_WORDS} @@ {POSTGRES_PHRASE}").bindparams(phrase=phrase)
        return select(Segment.asset_id).where(Segment.text.is_not(None), words)
    return select(Segment.asset_id).where(Segment.text.contains(phrase))


def asset_conditions(s: Session, f: Filters) -> list[Any]:
    """SQL conditions on ``assets``' own columns (globs, tags and phrases are apart)."""
    c: list[Any] = []
    if f.modalities:
        c.append(Asset.modality.in_(f.modalities))
    if f.paths:
        c.append(or_(*(under_path(s, _absolute(p)) for p in f.paths)))
    bounds = (
        (f.min_size, Asset.size, ">="),
        (f.max_size, Asset.size, "<="),
        (f.min_width, Asset.width, ">="),
        (f.max_width, Asset.width, "<="),
        (f.min_height, Asset.height, ">="),
        (f.max_height, Asset.height, "<="),
        (f.min_duration, Asset.duration, ">="),
        (f.max_duration, Asset.duration, "<="),
    )
    for value, field_, op in bounds:
        if value is not None:
            c.append(field_ >= value if op == ">=" else field_ <= value)
    if f.modified_after:
        c.append(Asset.mtime_ns >= _epoch_ns(f.modified_after, "modified_after"))
    if f.modified_before:
        c.append(Asset.mtime_ns < _epoch_ns(f.modified_before, "modified_before"))
    if f.taken_after:
        c.append(Asset.taken_at >= _parse_time(f.taken_after, "taken_after").isoformat())
    if f.taken_before:
        c.append(Asset.taken_at < _parse_time(f.taken_before, "taken_before").isoformat())
    return c


def asset_sets(s: Session, f: Filters) -> list[Any]:
    """Subqueries of asset ids a kept file must be in: one per tag, and the phrase's."""
    sets: list[Any] = []
    if f.text_match:
        sets.append(text_match_assets(s, f.text_match))
    for key, tag_value in f.tags.items():
        sets.append(select(Tag.asset_id).where(Tag.key == key, Tag.value == str(tag_value)))
    return sets


def allowed_segment_ids(s: Session, f: Filters) -> np.ndarray | None:
    """Sorted segment ids passing the filters, or ``None`` when nothing is filtered.

    Tags and the phrase filter test a segment's ``asset_id`` against their sets,
    so a query that filters by them alone never reads the ``assets`` table: no random
    asset-row reads (docs/benchmarks.md, "Large libraries").
    """
    if f.is_empty():
        return None
    query: Any = select(Segment.id)
    conditions = asset_conditions(s, f)
    sets = asset_sets(s, f)
    if conditions or f.globs:
        query = query.join(Asset, Segment.asset_id == Asset.id)
    if conditions:
        query = query.where(and_(*conditions))
    for subset in sets:
        query = query.where(Segment.asset_id.in_(subset))
    if f.globs:
        ids = _glob_assets(s, f, conditions + [Asset.id.in_(subset) for subset in sets])
        query = query.where(Asset.id.in_(ids))
    rows = s.connection().execute(query).all()  # one fetchall: a filter may keep 100,000s
    return np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))


def _glob_assets(s: Session, f: Filters, conditions: list[Any]) -> list[int]:
    """Asset ids whose absolute path matches one of the shell patterns."""
    patterns = [os.path.expanduser(g) for g in f.globs]
    query = select(Asset.id, Root.path, Asset.relpath).join(Root, Asset.root_id == Root.id)
    if conditions:
        query = query.where(and_(*conditions))
    out = []
    for asset_id, root, rel in s.execute(query):
        path = join(root, rel)
        if any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(rel, p) for p in patterns):
            out.append(asset_id)
    return out
