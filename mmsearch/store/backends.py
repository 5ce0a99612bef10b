"""The vector-store backends, by the name an index records in its manifest.

- ``faiss``: the embedded default (``faiss_store.py``), a file beside SQLite;
- ``milvus:FILE.db``: Milvus Lite, the same engine embedded in one file (a
  relative path lies in the index folder);
- ``milvus+http://HOST:PORT/COLLECTION``: a Milvus standalone or cluster
  (``milvus_store.py``). A password in the URL is never recorded.
"""

from __future__ import annotations

import os

from mmsearch.errors import ConfigError
from mmsearch.store.vectors import VectorStore

AVAILABLE = "faiss, milvus:FILE.db, milvus+http://HOST:PORT/COLLECTION"


def open_vector_store(
    spec: str, folder: str, space: str, dim: int, ann: str = "auto"
) -> VectorStore:
    """Open (or create empty) the store ``spec`` names for the index in ``folder``.

    ``ann`` picks the FAISS index kind (see ``faiss_build.py``); Milvus searches exactly.
    """
    if spec == "faiss":
        from mmsearch.store.faiss_store import FaissStore

        return FaissStore(os.path.join(folder, f"vectors-{space}.faiss"), dim, ann)
    if spec.startswith("milvus"):
        from mmsearch.store.milvus_store import MilvusStore

        return MilvusStore(spec, folder, space, dim)
    raise ConfigError(f"unknown vector store {spec!r}; available: {AVAILABLE}")


def recorded_spec(spec: str) -> str:
    """``spec`` as the manifest records it (no password); a bad one is a :class:`ConfigError`."""
    if spec == "faiss":
        return spec
    if spec.startswith("milvus"):
        from mmsearch.store.milvus_store import parse_spec, safe_spec

        parse_spec(spec, ".", "check")
        return safe_spec(spec)
    raise ConfigError(f"unknown vector store {spec!r}; available: {AVAILABLE}")
