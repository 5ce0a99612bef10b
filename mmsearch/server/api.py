"""``/api``: search, assets by id, info, health, and (with --allow-writes) tags and re-indexing.

Requests become :class:`~mmsearch.search.query.Query` objects and engine calls;
the answer of a search is the CLI's ``--json`` object with URLs
(:mod:`~mmsearch.server.results`). Where each part lives:

- :mod:`~mmsearch.server.search_routes`: health, info and search;
- :mod:`~mmsearch.server.query_params`: a query as URL parameters (filters derived
  from :class:`~mmsearch.search.query.Filters`);
- :mod:`~mmsearch.server.query_body`: a query as JSON, and the server's limits;
- :mod:`~mmsearch.server.uploads`: query images and clips sent with a search;
- :mod:`~mmsearch.server.asset_routes` and :mod:`~mmsearch.server.files`: indexed files
  by asset id (no path from a request reaches the filesystem);
- :mod:`~mmsearch.server.write_routes` and :mod:`~mmsearch.server.index_job`: tagging
  and the background re-index.
"""

from __future__ import annotations

from fastapi import APIRouter

from mmsearch.server import asset_routes, search_routes, write_routes


def router() -> APIRouter:
    """Every ``/api`` route (they take the engine and config from ``app.state``)."""
    r = APIRouter()
    for part in (search_routes, asset_routes, write_routes):
        r.include_router(part.router)
    return r
