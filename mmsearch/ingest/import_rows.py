"""Reading embeddings computed elsewhere: Parquet, or a ``.npy`` matrix with a table.

The input is a Parquet file with one row per segment:

- ``path`` (string, required): the file the segment belongs to; it need not
  exist on this machine (media on another disk, in an archive, on a cluster);
- ``vector`` (list or fixed-size list of floats, required): its embedding;
- ``modality`` (``image`` by default, ``text`` or ``video``), ``start`` and
  ``end`` (seconds, video frames), ``text`` (text segments: the passage, also
  searchable by ``--text-match``), ``tags`` (a map of strings, set on the file).

or a ``.npy`` matrix of vectors with a Parquet or JSON Lines table of the other
columns, row for row. :func:`read_rows` yields them in batches of columns
(:class:`Rows`); :mod:`mmsearch.ingest.bulk_import` writes them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from mmsearch.errors import ConfigError, MissingDependencyError

BATCH = 50_000  # rows per batch: one transaction each when written


@dataclass
class Rows:
    """One batch of input rows, as columns."""

    paths: list[str]
    vectors: np.ndarray  # (n, dim) float32
    modality: list[str | None]
    start: list[float | None]
    end: list[float | None]
    text: list[str | None]
    tags: list[dict[str, str] | None]

    def select(self, rows: np.ndarray) -> Rows:
        """These rows only (``rows``: their positions, in order)."""
        at = rows.tolist()
        columns = {
            f.name: [getattr(self, f.name)[i] for i in at]
            for f in fields(self)
            if f.name != "vectors"
        }
        return Rows(vectors=self.vectors[rows], **columns)


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise MissingDependencyError(
            "importing embeddings needs the 'pyarrow' package: pip install pyarrow"
        ) from exc
    return pyarrow


def vector_dim(source: str) -> int:
    """The length of the vectors in ``source`` (a Parquet file or a ``.npy`` matrix)."""
    if source.endswith(".npy"):
        matrix = np.load(source, mmap_mode="r")
        if matrix.ndim != 2:
            raise ConfigError(f"{source}: expected a 2-d matrix of vectors, not {matrix.shape}")
        return int(matrix.shape[1])
    pa = _pyarrow()
    for batch in _parquet(source).iter_batches(batch_size=16, columns=["vector"]):
        if batch.num_rows:
            return int(_vectors(pa, batch.column(0), source).shape[1])
    raise ConfigError(f"{source} holds no rows")


def _parquet(source: str) -> Any:
    pa = _pyarrow()
    try:
        return pa.parquet.ParquetFile(source)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ConfigError(f"can't read {source} as Parquet: {exc}") from exc


def _vectors(pa: Any, column: Any, source: str) -> np.ndarray:
    """A list or fixed-size-list column of floats as an (n, dim) float32 matrix."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = column.type
    if pa.types.is_fixed_size_list(kind):
        dim = kind.list_size
        flat = column.flatten().to_numpy(zero_copy_only=False)
        return np.asarray(flat, dtype=np.float32).reshape(len(column), dim)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        offsets = column.offsets.to_numpy()
        lengths = np.diff(offsets)
        if len(lengths) and (lengths.min() != lengths.max() or column.null_count):
            raise ConfigError(f"{source}: every vector must have the same length and no nulls")
        dim = int(lengths[0]) if len(lengths) else 0
        flat = column.flatten().to_numpy(zero_copy_only=False)
        return np.asarray(flat, dtype=np.float32).reshape(len(column), dim)
    raise ConfigError(f"{source}: the vector column must be a list of floats, not {kind}")


def _column(batch: Any, name: str, source: str = "") -> list[Any]:
    index = batch.schema.get_field_index(name)
    if index < 0:
        return [None] * batch.num_rows
    column = batch.column(index)
    kind = _KINDS.get(name)
    if kind is not None and not _holds(column.type, kind):
        raise ConfigError(f"{source}: the {name!r} column must hold {kind}, not {column.type}")
    values = column.to_pylist()
    if name == "tags":  # a map arrives as a list of (key, value) pairs
        return [dict(v) if isinstance(v, list) else v for v in values]
    return list(values)


_KINDS = {"start": "numbers", "end": "numbers", "text": "strings"}
"""What the columns the database types strictly must hold (nulls always allowed)."""


def _holds(kind: Any, wanted: str) -> bool:
    """Whether a pyarrow type holds ``wanted`` values (all nulls hold any)."""
    types = _pyarrow().types
    if types.is_null(kind):
        return True
    if wanted == "numbers":
        return bool(types.is_integer(kind) or types.is_floating(kind))
    return bool(types.is_string(kind) or types.is_large_string(kind))


def _table_batches(source: str, columns: list[str]) -> Iterator[Any]:
    pa = _pyarrow()
    if source.endswith((".jsonl", ".json", ".ndjson")):
        rows = []
        with open(source, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError as exc:
                        raise ConfigError(f"{source}:{number}: not JSON ({exc})") from exc
        for start in range(0, len(rows), BATCH):
            part = [{k: r.get(k) for k in columns if k in r} for r in rows[start : start + BATCH]]
            try:
                batch = pa.RecordBatch.from_pylist(part)
            except (UnicodeEncodeError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                # a lone surrogate (escaped in JSON), or a column of mixed types
                where = f"{source}, rows {start + 1}-{start + len(part)}"
                raise ConfigError(f"{where}: {str(exc).strip().splitlines()[0]}") from None
            yield batch
        return
    available = set(_parquet(source).schema_arrow.names)
    yield from _parquet(source).iter_batches(
        batch_size=BATCH, columns=[c for c in columns if c in available]
    )


def read_rows(source: str, table: str | None = None) -> Iterator[Rows]:
    """Batches of rows from a Parquet file, or from a ``.npy`` matrix and its ``table``."""
    pa = _pyarrow()
    others = ["path", "modality", "start", "end", "text", "tags"]
    if source.endswith(".npy"):
        if table is None:
            raise ConfigError(f"{source} holds vectors only: give --table FILE with their paths")
        matrix = np.load(source, mmap_mode="r")
        done = 0
        for batch in _table_batches(table, others):
            n = batch.num_rows
            if done + n > len(matrix):
                raise ConfigError(f"{table} has more rows than {source} has vectors")
            yield _rows(batch, np.asarray(matrix[done : done + n], dtype=np.float32), table)
            done += n
        if done != len(matrix):
            raise ConfigError(f"{table} has {done} rows but {source} has {len(matrix)} vectors")
        return
    file = _parquet(source)
    names = set(file.schema_arrow.names)
    for needed in ("path", "vector"):
        if needed not in names:
            raise ConfigError(f"{source} has no {needed!r} column")
    wanted = ["vector"] + [c for c in others if c in names]
    for batch in file.iter_batches(batch_size=BATCH, columns=wanted):
        yield _rows(batch, _vectors(pa, batch.column(0), source), source)


def _clean(path: str) -> str:
    """An absolute, normalised path (cheaply: most imported paths already are)."""
    if path.startswith(os.sep) and "//" not in path and "/." not in path:
        return path.rstrip(os.sep) or os.sep
    return os.path.abspath(os.path.expanduser(path))


def _rows(batch: Any, vectors: np.ndarray, source: str) -> Rows:
    paths = _column(batch, "path")
    if any(p is None for p in paths):
        raise ConfigError(f"{source}: every row needs a path")
    return Rows(
        paths=[_clean(str(p)) for p in paths],
        vectors=vectors,
        modality=_column(batch, "modality"),
        start=_column(batch, "start", source),
        end=_column(batch, "end", source),
        text=_column(batch, "text", source),
        tags=_column(batch, "tags"),
    )
