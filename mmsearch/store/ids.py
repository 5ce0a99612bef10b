"""Ids that are never given twice: of segments and of assets, even after a delete.

SQLite would give the largest id again once its row is deleted (PostgreSQL's
sequences would not, but a bulk import names its ids itself). A reused segment
id is dangerous: a vector file saved before the delete (a crash, a reader's
copy) would hold the old vector under the new segment's id without anyone
noticing. A reused asset id would let a cache keyed by it (a thumbnail, a page
holding an old result's link) show another file.

So each table's largest id ever given is kept in ``meta`` (its ``*_MARK`` key,
:mod:`mmsearch.store.schema`) and raised in the same transaction as the new
rows. The row is read ``FOR UPDATE`` on PostgreSQL, so a second transaction
waits for this one's ids rather than giving them again; SQLite has one writer
at a time anyway.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmsearch.store.schema import Meta


def reserve_ids(s: Session, column: Any, mark: str, n: int) -> int:
    """The first of ``n`` consecutive new ids for ``column`` (a primary key), recorded under
    the ``meta`` key ``mark``: above every id that ``column``'s table holds or ever held."""
    row = s.get(Meta, mark, with_for_update=True)
    top = s.scalar(select(func.max(column))) or 0
    given = max(int(top), int(row.value) if row is not None else 0)
    if row is None:
        row = Meta(key=mark, value=str(given))
        s.add(row)
    row.value = str(given + n)
    s.flush()
    return given + 1
