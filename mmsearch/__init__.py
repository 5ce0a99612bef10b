"""mmsearch: multimodal search for your own photos, videos and notes.

``from mmsearch import Engine`` is the library's front door. The names below
are loaded on first use (PEP 562), so ``import mmsearch.errors`` (or the CLI's
``--help``) does not pay for SQLAlchemy, numpy, PIL or torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsearch.errors import MmsearchError
from mmsearch.version import __version__

if TYPE_CHECKING:
    from mmsearch.engine import Engine
    from mmsearch.ingest.report import IndexReport, Skip
    from mmsearch.search.query import Query
    from mmsearch.search.results import Hit

__all__ = ["Engine", "Hit", "IndexReport", "MmsearchError", "Query", "Skip", "__version__"]

_LAZY = {
    "Engine": "mmsearch.engine",
    "Hit": "mmsearch.search.results",
    "IndexReport": "mmsearch.ingest.report",
    "Query": "mmsearch.search.query",
    "Skip": "mmsearch.ingest.report",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmsearch' has no attribute {name!r}")
