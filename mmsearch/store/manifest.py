"""The index manifest: format version and the embedder that built the index.

``manifest.json`` in the index folder::

    {"format": 1, "embedder": {"name": ..., "model": ..., "weights": ..., "dim": ...,
     "options": {...}}, "vector_store": "faiss", "ann": "auto", "created_at": ...,
     "mmsearch": "0.1.0", "db": "postgresql+psycopg://user@host:5432/dbname"}

``db`` is there only when the metadata lives outside the folder (setting ``db``),
and never holds a password. (``ann`` was added without a format change: a
manifest without it reads as ``auto``.)

An older format is migrated step by step on open (``MIGRATIONS``); a newer one
is refused with a message that says to upgrade mmsearch.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mmsearch.embedders.base import EmbedderIdentity
from mmsearch.errors import IndexFormatError
from mmsearch.store.files import atomic_write
from mmsearch.version import __version__

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"

# version N -> function upgrading a version-N manifest dict to N + 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


@dataclass
class Manifest:
    embedder: EmbedderIdentity
    vector_store: str = "faiss"
    created_at: float = 0.0
    ann: str = "auto"  # the vector index: auto (by size), exact, ivf or hnsw
    format: int = FORMAT_VERSION
    db: str | None = None  # the metadata database URL, without password; None: index.sqlite

    def to_dict(self) -> dict[str, Any]:
        out = {
            "format": self.format,
            "embedder": self.embedder.to_dict(),
            "vector_store": self.vector_store,
            "ann": self.ann,
            "created_at": self.created_at or time.time(),
            "mmsearch": __version__,
        }
        if self.db is not None:
            out["db"] = self.db
        return out


def manifest_path(folder: str) -> str:
    return os.path.join(folder, MANIFEST_NAME)


def read_manifest(folder: str) -> Manifest | None:
    path = manifest_path(folder)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"can't read {path}: {exc}") from exc
    version = int(data.get("format", 0))
    if version > FORMAT_VERSION:
        raise IndexFormatError(
            f"the index at {folder} has format {version}, newer than this mmsearch reads"
            f" ({FORMAT_VERSION}); upgrade mmsearch"
        )
    while version < FORMAT_VERSION:
        if version not in MIGRATIONS:
            raise IndexFormatError(
                f"the index at {folder} has format {version}, which can't be migrated;"
                f" rebuild it: delete {folder} and run mmsearch index again"
            )
        data = MIGRATIONS[version](data)
        version = int(data["format"])
    return Manifest(
        embedder=EmbedderIdentity.from_dict(data["embedder"]),
        vector_store=str(data.get("vector_store", "faiss")),
        ann=str(data.get("ann", "auto")),
        created_at=float(data.get("created_at", 0.0)),
        format=version,
        db=str(data["db"]) if data.get("db") else None,
    )


def write_manifest(folder: str, manifest: Manifest) -> None:
    data = json.dumps(manifest.to_dict(), indent=2, sort_keys=True).encode("utf-8")
    atomic_write(manifest_path(folder), data + b"\n")
