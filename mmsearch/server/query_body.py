"""A query in a request body: strict JSON, read by :meth:`Query.from_dict`, inside the server's
limits, and never naming a file on the server (query images and clips arrive as uploads,
indexed files as asset ids)."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from mmsearch.errors import QueryError
from mmsearch.search.query import Filters, Query

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(raw: bytes) -> Any:
    """JSON from a request body; NaN, Infinity and overflowing numbers are refused."""
    try:
        return json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise QueryError(f"the body is not valid JSON: {exc}") from None


def query_from_json(data: Any, complete: bool = True) -> Query:
    """A :class:`Query` from ``Query.to_dict()`` JSON, typed and checked (never a 500).

    ``complete=False``: parts may still come (uploads), so it is not validated yet."""
    query = Query.from_dict(data, validate=False)
    for part in query.parts:
        if part.kind in ("image", "video"):
            raise QueryError(
                f"{part.kind} parts can't name a file on the server: upload it (multipart"
                " field image or video) or give an indexed file's asset id as an asset part"
            )
        if part.kind == "asset" and not part.value.strip().isdigit():
            raise QueryError("asset parts take an asset id (a number), not a path")
    return bounded(query) if complete else query


def bounded(query: Query) -> Query:
    """The query, with paging inside the server's limits and numbers in range (QueryError)."""
    if not 1 <= query.limit <= MAX_LIMIT:
        raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
    if not 0 <= query.offset <= MAX_OFFSET:
        raise QueryError(f"offset must be between 0 and {MAX_OFFSET}")
    for fld in dataclasses.fields(Filters):
        value = getattr(query.filters, fld.name)
        if isinstance(value, int | float) and not -(2**62) < value < 2**62:
            raise QueryError(f"filters.{fld.name} is out of range")
    for asset in (*query.more_like, *query.less_like):
        if not 0 <= asset < 2**62:
            raise QueryError(f"no indexed file has asset id {asset}")
    return query.validate()
