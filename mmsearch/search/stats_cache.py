"""The index's score statistics, kept on disk so a cold query does not recompute them.

A search calibrates against a *background sample* (up to 256 stored vectors
per view group, spread evenly by id) and folds near-duplicates above a
*duplicate floor* (a percentile of cosines within that sample). Both depend
only on which segments the index holds, not on the query, so they are written
once per index state to ``search-stats.npz`` in the index folder and read back
by the next process. The file is keyed by the index's segment stamp, (largest
segment id, segments ever removed) from :meth:`MetadataStore.segment_stamp`:
segment ids are never reused and a trigger counts deletions, so any added or
removed segment changes it (reading it costs no count of the segments), and a
stale file is simply recomputed and replaced. Written atomically; a read-only index folder
means no cache, not an error; a damaged file counts as missing.
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from typing import Any

import numpy as np

from mmsearch.store.files import atomic_write, remove_dead_temporaries

FILE_NAME = "search-stats.npz"
FORMAT = 2  # 2: keyed by the segment stamp, not (count, largest id)
GROUPS = ("visual", "textual")


def read_stats(
    path: str, stamp: tuple[int, int], dim: int
) -> tuple[dict[str, np.ndarray], float] | None:
    """The sample and floor saved for ``stamp``, or ``None`` (absent, stale or unusable)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            head = data["head"]
            if head.shape != (3,) or [int(x) for x in head] != [FORMAT, *stamp]:
                return None
            floor = float(data["duplicate_floor"])
            sample = {g: data[g].astype(np.float32) for g in GROUPS if g in data.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if any(v.ndim != 2 or v.shape[1] != dim or not np.all(np.isfinite(v)) for v in sample.values()):
        return None
    return sample, floor


def write_stats(
    path: str, stamp: tuple[int, int], sample: dict[str, np.ndarray], floor: float
) -> None:
    """Save the sample (as float16, exactly what SQLite stores) and floor for ``stamp``."""
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {g: np.asarray(v, dtype=np.float16) for g, v in sample.items()}
    arrays["head"] = np.asarray([FORMAT, *stamp], dtype=np.int64)
    arrays["duplicate_floor"] = np.float64(floor)
    np.savez(buffer, **arrays)
    with contextlib.suppress(OSError):
        remove_dead_temporaries(path)  # a query killed while writing this file
        atomic_write(path, buffer.getvalue())
