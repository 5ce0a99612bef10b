"""Milvus vector store: the same protocol as FAISS, on Milvus Lite or a Milvus server.

``milvus:PATH`` is Milvus Lite (the ``milvus-lite`` package: the same engine,
embedded, one file; a relative ``PATH`` lies in the index folder) and
``milvus+http://HOST:PORT/COLLECTION`` a Milvus standalone or cluster. One
collection per index and space holds ``id`` (the SQLite segment id, primary
key) and ``vector`` (float32, inner product, a FLAT index: exact, like the
FAISS default). Milvus persists by itself, so :meth:`save` only flushes.

SQLite stays the source of truth: :meth:`load` checks the collection exists
with the right dimension, loads it into the engine's memory (a collection
written by another process is *released* until then: no search, get or query
works on it) and reads how many ids it holds and the largest, so
the engine's catch-up and rebuild rules (``store/sync.py``) work unchanged.
Writes are upserts, so replaying segments a crash left half-written is safe.
Filters arrive as allowed ids and become an ``id in [...]`` expression,
searched in chunks when the set is large, so a filtered search still ranks
only allowed segments before the top-k cut.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from mmsearch.errors import ConfigError, IndexUnusableError, import_optional
from mmsearch.store.vectors import VectorFileError

FILTER_CHUNK = 16_384  # allowed ids per ``id in [...]`` expression
WRITE_BATCH = 4_096
ID_PAGE = 16_384
CONNECT_TIMEOUT = 30.0  # seconds before a server that does not answer is an error
SCHEME = "milvus"

_CLIENTS: dict[str, Any] = {}  # one client per URI and process (Milvus Lite starts a server)
QUIET_LOGGERS = ("pymilvus", "pymilvus.milvus_client", "pymilvus.bulk_writer", "milvus_lite")
"""Loggers pymilvus and Milvus Lite write to stderr with (pymilvus installs its own handlers):
every failure they would log reaches the caller as one :class:`IndexUnusableError`, its
cause chained, so they are kept quiet."""


def _pymilvus() -> Any:
    pymilvus = import_optional("pymilvus", "milvus", "the Milvus vector store")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    return pymilvus


def safe_spec(spec: str) -> str:
    """``spec`` without a password, for the manifest, errors and ``info``."""
    if not spec.startswith(f"{SCHEME}+"):
        return spec
    parts = urlsplit(spec)
    if parts.password is None:
        return spec
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, parts.query, ""))


def parse_spec(spec: str, folder: str, space: str) -> tuple[str, str, dict[str, Any]]:
    """``(uri, collection, client keyword arguments)`` of a ``milvus:`` / ``milvus+`` spec."""
    collection = "segments_" + re.sub(r"[^0-9A-Za-z_]", "_", space)
    if spec.startswith(f"{SCHEME}:") and not spec.startswith(f"{SCHEME}://"):
        path = spec[len(SCHEME) + 1 :]
        if not path:
            raise ConfigError("milvus: needs a file, as in --vectors milvus:vectors.db")
        if not path.endswith(".db"):
            raise ConfigError(f"a Milvus Lite file must end in .db, not {path!r}")
        return os.path.join(folder, os.path.expanduser(path)), collection, {}
    if spec.startswith(f"{SCHEME}+http://") or spec.startswith(f"{SCHEME}+https://"):
        parts = urlsplit(spec[len(SCHEME) + 1 :])
        if not parts.hostname:
            raise ConfigError(f"no host in {safe_spec(spec)}")
        name = parts.path.strip("/")
        if name:
            if not re.fullmatch(r"[A-Za-z_][0-9A-Za-z_]*", name):
                raise ConfigError(f"bad Milvus collection name {name!r} in {safe_spec(spec)}")
            collection = name
        port = f":{parts.port}" if parts.port else ""
        uri = urlunsplit((parts.scheme, f"{parts.hostname}{port}", "", "", ""))
        extra: dict[str, Any] = {}
        if parts.username:
            extra["user"] = parts.username
            extra["password"] = parts.password or ""
        return uri, collection, extra
    raise ConfigError(
        f"unknown vector store {safe_spec(spec)!r}: use faiss, milvus:FILE.db"
        " or milvus+http://HOST:PORT/COLLECTION"
    )


class MilvusStore:
    """Vectors under segment ids in one Milvus collection; see the module docstring."""

    local_vectors = False  # candidates' vectors and small filters come from the metadata store

    def __init__(self, spec: str, folder: str, space: str, dim: int) -> None:
        self.spec = safe_spec(spec)
        self.uri, self.collection, self._auth = parse_spec(spec, folder, space)
        self.dim = dim
        self._count = 0
        self._max_id = 0
        self.synced_to: tuple[int, int] | None = None  # not kept: Milvus counts cheaply
        self._client: Any = None
        self._loaded = False  # whether this handle has loaded the collection (see load())
        self.source: Callable[[], Iterable[Any]] | None = None  # unused: nothing to retrain

    # -- connection ----------------------------------------------------------

    def _where(self) -> str:
        return self.uri if self.uri.startswith("http") else f"milvus:{self.uri}"

    def _fail(self, exc: Exception) -> IndexUnusableError:
        return IndexUnusableError(f"Milvus at {self._where()}: {str(exc).splitlines()[0]}")

    @property
    def client(self) -> Any:
        if self._client is None:
            pymilvus = _pymilvus()
            key = f"{self.uri}|{self._auth.get('user', '')}"
            try:
                if key not in _CLIENTS:
                    _CLIENTS[key] = pymilvus.MilvusClient(
                        self.uri, timeout=CONNECT_TIMEOUT, **self._auth
                    )
            except Exception as exc:
                raise self._fail(exc) from exc
            self._client = _CLIENTS[key]
        return self._client

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A client call; a server that is down or gone is one line naming it."""
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except IndexUnusableError:
            raise
        except Exception as exc:
            raise self._fail(exc) from exc

    def _create(self) -> None:
        pymilvus = _pymilvus()
        schema = self._call("create_schema", auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", pymilvus.DataType.INT64, is_primary=True)
        schema.add_field("vector", pymilvus.DataType.FLOAT_VECTOR, dim=self.dim)
        index = self._call("prepare_index_params")
        index.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        self._call(
            "create_collection",
            self.collection,
            schema=schema,
            index_params=index,
            consistency_level="Strong",
        )
        self._loaded = True  # created with its index: Milvus loads it

    def _ensure(self) -> None:
        if not self._call("has_collection", self.collection):
            self._create()
        else:
            self._load_collection()

    def _load_collection(self) -> None:
        """Load an existing collection into memory, once per handle: one another process
        wrote is *released* here, and Milvus refuses every search, get and query on it."""
        if not self._loaded:
            self._call("load_collection", self.collection)
            self._loaded = True

    # -- the protocol --------------------------------------------------------

    def load(self) -> None:
        """Check the collection; raise :class:`VectorFileError` when it can't be trusted."""
        if not self._call("has_collection", self.collection):
            raise VectorFileError(f"Milvus collection {self.collection} missing")
        info = self._call("describe_collection", self.collection)
        dims = [
            f.get("params", {}).get("dim")
            for f in info.get("fields", [])
            if f.get("name") == "vector"
        ]
        if not dims or int(dims[0]) != self.dim:
            raise VectorFileError(
                f"Milvus collection {self.collection} has dimension {dims[:1]}, not {self.dim}"
            )
        self._load_collection()
        self._refresh()

    def _refresh(self) -> None:
        ids = self.ids()
        self._count = len(ids)
        self._max_id = int(ids.max()) if len(ids) else 0

    @property
    def count(self) -> int:
        return self._count

    @property
    def max_id(self) -> int:
        return self._max_id

    def ids(self) -> np.ndarray:
        """Every id the collection holds, sorted."""
        if not self._call("has_collection", self.collection):
            return np.zeros(0, np.int64)
        self._load_collection()
        out: list[int] = []
        iterator = self._call(
            "query_iterator", self.collection, batch_size=ID_PAGE, output_fields=["id"]
        )
        try:
            while batch := iterator.next():
                out.extend(int(row["id"]) for row in batch)
        finally:
            iterator.close()
        return np.sort(np.asarray(out, dtype=np.int64))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        self._ensure()
        self.synced_to = None
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        for start in range(0, len(ids), WRITE_BATCH):
            rows = [
                {"id": int(i), "vector": v.tolist()}
                for i, v in zip(
                    ids[start : start + WRITE_BATCH],
                    vectors[start : start + WRITE_BATCH],
                    strict=True,
                )
            ]
            self._call("upsert", self.collection, rows)
        if int(ids.max()) > self._max_id and ids.min() > self._max_id:
            self._count += len(np.unique(ids))  # all new: ids are never reused
            self._max_id = int(ids.max())
        else:  # some may have been there already (a replay): count them for real
            self._refresh()

    def remove(self, ids: np.ndarray) -> None:
        if len(ids) == 0 or not self._count:
            return
        self.synced_to = None
        wanted = [int(i) for i in np.unique(np.asarray(ids, dtype=np.int64))]
        for start in range(0, len(wanted), WRITE_BATCH):
            self._call("delete", self.collection, ids=wanted[start : start + WRITE_BATCH])
        self._refresh()

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The held vectors of ``ids`` (float32), in order; ``KeyError`` for an unknown id."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        found: dict[int, Any] = {}
        for start in range(0, len(ids), ID_PAGE):
            part = [int(i) for i in ids[start : start + ID_PAGE]]
            rows = self._call("get", self.collection, ids=part, output_fields=["vector"])
            found.update({int(r["id"]): r["vector"] for r in rows})
        missing = [int(i) for i in ids if int(i) not in found]
        if missing:
            raise KeyError(missing[0])
        out = np.zeros((len(ids), self.dim), np.float32)
        for n, seg_id in enumerate(ids.tolist()):
            out[n] = found[seg_id]
        return out

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        n = len(queries)
        empty = np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        if self._count == 0 or k <= 0:
            return empty
        if allowed_ids is None:
            return self._search(queries, min(k, self._count), None)
        allowed = np.unique(np.asarray(allowed_ids, dtype=np.int64))
        if len(allowed) == 0:
            return empty
        parts = [
            self._search(queries, min(k, len(chunk)), chunk)
            for chunk in np.array_split(allowed, -(-len(allowed) // FILTER_CHUNK))
        ]
        scores = np.concatenate([p[0] for p in parts], axis=1)
        ids = np.concatenate([p[1] for p in parts], axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)

    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        expr = "" if allowed is None else f"id in [{','.join(map(str, allowed.tolist()))}]"
        found = self._call(
            "search",
            self.collection,
            data=queries.tolist(),
            limit=k,
            filter=expr,
            search_params={"metric_type": "IP"},
            output_fields=["id"],
        )
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        for row, hits in enumerate(found):
            for col, hit in enumerate(list(hits)[:k]):
                scores[row, col] = float(hit["distance"])
                ids[row, col] = int(hit["id"])
        return scores, ids

    def describe(self) -> dict[str, Any]:
        """What ``info`` shows of the vector index."""
        return {
            "kind": "milvus",
            "index": "FLAT (exact)",
            "collection": self.collection,
            "uri": self._where(),
            "main": self._count,
        }

    def rebuild_main(self, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
        """Fill the (reset) collection with ``batches`` of (ids, vectors): an exact index
        has nothing to train, so a rebuild is adding everything again."""
        for ids, vectors in batches:
            self.add(ids, vectors)

    def save(self) -> None:
        """Milvus persists by itself; make what was written durable and visible."""
        if self._call("has_collection", self.collection):
            self._call("flush", self.collection)

    def reset(self) -> None:
        if self._call("has_collection", self.collection):
            self._call("drop_collection", self.collection)
        self._loaded = False
        self._create()
        self._count = self._max_id = 0
        self.synced_to = None
