"""A query as URL parameters (``GET /api/search?q=...``, and the page's uploads).

The parts and ranking options are named here, as the CLI names its own; the
filters are derived from :class:`~mmsearch.search.query.Filters`, one parameter
per field named after its CLI option (``--min-width`` -> ``min_width``), so every
filter the CLI has is reachable over HTTP and a new one needs no server code.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Annotated, Any, Literal

from fastapi import Query as Param

from mmsearch.kinds import FUSIONS, SORTS
from mmsearch.search.query import Filters, Query, parse_pairs
from mmsearch.server.query_body import MAX_LIMIT, MAX_OFFSET

TEXT_MAX = 2000


def param_name(fld: dataclasses.Field[Any]) -> str:
    """The URL parameter of a :class:`Filters` field: its CLI option's name."""
    return str(fld.metadata["option"]).removeprefix("--").replace("-", "_")


FILTER_PARAMS = {param_name(f): f for f in dataclasses.fields(Filters)}


def _param(name: str, kind: Any, default: Any = None, **info: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[kind, Param(**info)],
    )


def _choice(values: tuple[str, ...]) -> Any:
    return Literal[values]  # a Literal of a vocabulary of mmsearch.kinds


def _filter_param(name: str, fld: dataclasses.Field[Any]) -> inspect.Parameter:
    meta = fld.metadata
    if meta.get("pairs"):
        return _param(name, list[str] | None, description=f"{meta['help']} (key=value)")
    if meta.get("multiple"):
        item = _choice(meta["choices"]) if meta.get("choices") else str
        return _param(name, list[item] | None, description=meta["help"])  # type: ignore[valid-type]
    kind = meta.get("type") or str
    limits = {"max_length": 500} if kind is str else {}
    return _param(name, kind | None, description=meta["help"], **limits)


_PARTS_AND_OPTIONS = [
    _param("q", str | None, max_length=TEXT_MAX, description="Text to search for."),
    _param("k", int, 20, ge=1, le=MAX_LIMIT, description="Results per page."),
    _param("offset", int, 0, ge=0, le=MAX_OFFSET, description="Skip this many results."),
    _param("like", list[int] | None, description="Indexed files (asset ids) as examples."),
    _param("more", list[int] | None, description="Asset ids to move towards."),
    _param("less", list[int] | None, description="Asset ids to move away from."),
    _param("exclude", list[str] | None, alias="not", description="Text to avoid."),
    _param(
        "color",
        list[str] | None,
        description="A colour part: NAME or #RRGGBB, optionally :SHARE (red:30%).",
    ),
    _param("color_words", bool, True, description="Colour words in q (a red car) add colours."),
    _param("all", bool, False, description="No adaptive relevance cutoff."),
    _param("diverse", bool, False, description="Reorder for variety (MMR)."),
    _param("min_score", float | None, ge=-1, le=1, description="Drop results below this cosine."),
    _param("sort", _choice(SORTS), "score", description="score, or time: newest first."),
    _param("fusion", _choice(FUSIONS), "vector", description="How the parts are combined."),
]


def query_from_params(**given: Any) -> Query:
    """The :class:`Query` the URL parameters describe, not yet validated (a FastAPI dependency:
    its signature, set below, declares every parameter)."""
    query = Query(filters=_filters(given))
    if given["q"] and given["q"].strip():
        query.text(given["q"])
    for asset in given["like"] or []:
        query.like(asset)
    for text in given["exclude"] or []:
        if text.strip():
            query.exclude(text)
    for value in given["color"] or []:
        if value.strip():
            query.color(value.strip())
    return query.options(
        color_words=given["color_words"],
        limit=given["k"],
        offset=given["offset"],
        sort=given["sort"],
        fusion=given["fusion"],
        cutoff=not given["all"],
        diverse=given["diverse"],
        min_score=given["min_score"],
        more_like=list(given["more"] or []),
        less_like=list(given["less"] or []),
    )


def _filters(given: dict[str, Any]) -> Filters:
    values: dict[str, Any] = {}
    for name, fld in FILTER_PARAMS.items():
        value = given[name]
        if value in (None, "", []):
            continue
        values[fld.name] = parse_pairs(value, name) if fld.metadata.get("pairs") else value
    return Filters(**values)


query_from_params.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [*_PARTS_AND_OPTIONS, *(_filter_param(n, f) for n, f in FILTER_PARAMS.items())],
    return_annotation=Query,
)
