"""The FAISS store's files: the stamp, the generations it names, reading and writing them.

``PATH`` is ``vectors-SPACE.faiss``. ``PATH.json``, the stamp, written last, names
the generation ``G`` of the main part (``vectors-SPACE.gG.faiss``, ``.gG.ids.npy``
and for IVF ``.gG.f16.npy``) and the fresh file (``vectors-SPACE.gG.fresh-S.npz``:
the fresh ids and float16 vectors and the deleted ids) with their counts. A save
writes the main part only when it was rebuilt or folded, then a new fresh file,
then the stamp, each atomically; a crash at any point leaves the previous stamp
with the files it names, which an engine then catches up from SQLite. Files no
stamp names are deleted by the next save. The main part is opened memory-mapped,
so a cold query reads only the pages it touches.

An index written before the fresh part (stamp format 1) is one exact
``IndexIDMap2`` file at ``PATH``; it is read, and rewritten in this layout by the
next save.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch.store.files import atomic_write, remove_dead_temporaries
from mmsearch.store.vectors import VectorFileError

STAMP_FORMAT = 2
READ_ATTEMPTS = 3  # a writer may replace the files between the stamp and them: read again

RenameHook = Callable[[str], None] | None


@dataclass
class Stored:
    """What a stamp and the files it names hold."""

    kind: str
    main: Any  # the FAISS index of the main part (None when it is empty)
    main_ids: np.ndarray  # sorted, memory-mapped
    main_vecs: np.ndarray | None  # float16 rows of main_ids (IVF only), memory-mapped
    fresh_ids: np.ndarray
    fresh_vecs: np.ndarray
    deleted: np.ndarray  # sorted, a subset of main_ids
    trained_on: int
    params: dict[str, Any] = field(default_factory=dict)
    gen: int = 0
    seq: int = 0
    names: dict[str, str] = field(default_factory=dict)  # what the stamp names, by role
    synced_to: tuple[int, int] | None = None
    legacy: bool = False  # format 1: to be rewritten in this layout by the next save


class FaissFiles:
    """The files of one FAISS store at ``path`` (``vectors-SPACE.faiss``)."""

    def __init__(self, path: str, dim: int, faiss: Any) -> None:
        self.path = path
        self.stamp_path = path + ".json"
        self.dim = dim
        self._faiss = faiss

    # -- names -------------------------------------------------------------

    def base(self) -> str:
        """The file name every file of the store starts with, without a folder."""
        base = self.path[: -len(".faiss")] if self.path.endswith(".faiss") else self.path
        return os.path.basename(base)

    def folder(self) -> str:
        return os.path.dirname(self.path) or "."

    def names(self, gen: int, seq: int, kind: str) -> dict[str, str]:
        """The files of generation ``gen`` (main part) and fresh file ``seq``, by role."""
        base = self.base()
        names = {
            "main": f"{base}.g{gen}.faiss",
            "ids": f"{base}.g{gen}.ids.npy",
            "fresh": f"{base}.g{gen}.fresh-{seq}.npz",
        }
        if kind == "ivf":
            names["vectors"] = f"{base}.g{gen}.f16.npy"
        return names

    def file(self, name: str) -> str:
        return os.path.join(os.path.dirname(self.path), name)

    # -- reading -----------------------------------------------------------

    def read(self) -> Stored:
        """What the stamp names; raise :class:`VectorFileError` if it can't be trusted."""
        for attempt in range(READ_ATTEMPTS):
            try:
                return self._read()
            except VectorFileError:
                if attempt == READ_ATTEMPTS - 1:
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")

    def _read(self) -> Stored:
        if not os.path.exists(self.stamp_path):
            raise VectorFileError("missing")
        try:
            with open(self.stamp_path, encoding="utf-8") as f:
                stamp = json.load(f)
        except (OSError, ValueError) as exc:
            raise VectorFileError(f"unreadable ({exc})") from exc
        if stamp.get("format") == 1:
            return self._read_v1(stamp)
        try:
            return self._read_v2(stamp)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise VectorFileError(f"unreadable ({exc})") from exc

    def _read_v1(self, stamp: dict[str, Any]) -> Stored:
        """An index written before the fresh part: one exact ``IndexIDMap2`` file."""
        try:
            index = self._faiss.read_index(self.path)
        except (OSError, RuntimeError) as exc:
            raise VectorFileError(f"unreadable ({exc})") from exc
        if index.d != self.dim or index.ntotal != stamp.get("count"):
            raise VectorFileError("does not match its stamp")
        main_ids = np.sort(self._faiss.vector_to_array(index.id_map).astype(np.int64))
        return Stored(
            kind="exact",
            main=index,
            main_ids=main_ids,
            main_vecs=None,
            fresh_ids=np.zeros(0, np.int64),
            fresh_vecs=np.zeros((0, self.dim), np.float32),
            deleted=np.zeros(0, np.int64),
            trained_on=len(main_ids),
            legacy=True,
        )

    def _read_v2(self, stamp: dict[str, Any]) -> Stored:
        if int(stamp["dim"]) != self.dim:
            raise VectorFileError("does not match its stamp")
        names: dict[str, str] = stamp["files"]
        kind = str(stamp["kind"])
        main = None
        main_count = int(stamp["main_count"])
        main_ids = np.zeros(0, np.int64)
        main_vecs = None
        if main_count:
            flags = self._faiss.IO_FLAG_MMAP if kind != "hnsw" else 0
            main = self._faiss.read_index(self.file(names["main"]), flags)
            main_ids = np.load(self.file(names["ids"]), mmap_mode="r")
            if kind == "ivf":
                main_vecs = np.load(self.file(names["vectors"]), mmap_mode="r")
                if main_vecs.shape != (main_count, self.dim):
                    raise VectorFileError("does not match its stamp")
            if main.ntotal != main_count or len(main_ids) != main_count or main.d != self.dim:
                raise VectorFileError("does not match its stamp")
        with np.load(self.file(names["fresh"])) as fresh:
            fresh_ids = fresh["ids"].astype(np.int64)
            fresh_vecs = fresh["vectors"].astype(np.float32).reshape(-1, self.dim)
            deleted = fresh["deleted"].astype(np.int64)
        if len(fresh_ids) != int(stamp["fresh_count"]) or len(deleted) != int(
            stamp["deleted_count"]
        ):
            raise VectorFileError("does not match its stamp")
        synced = stamp.get("synced_to")
        return Stored(
            kind=kind,
            main=main,
            main_ids=main_ids,
            main_vecs=main_vecs,
            fresh_ids=fresh_ids,
            fresh_vecs=fresh_vecs,
            deleted=deleted,
            trained_on=int(stamp.get("trained_on", main_count)),
            params=dict(stamp.get("params") or {}),
            gen=int(stamp["gen"]),
            seq=int(stamp["seq"]),
            names=dict(names),
            synced_to=(int(synced[0]), int(synced[1])) if synced else None,
        )

    def read_main(self, names: dict[str, str], mapped: bool) -> Any:
        """The main part's index, memory-mapped (read-only) or read into memory."""
        flags = self._faiss.IO_FLAG_MMAP if mapped else 0
        return self._faiss.read_index(self.file(names["main"]), flags)

    def read_mapped(self, names: dict[str, str]) -> tuple[Any, np.ndarray, np.ndarray | None]:
        """The main part's index, ids and (IVF) float16 vectors, memory-mapped."""
        main = self.read_main(names, mapped=True)
        ids = np.load(self.file(names["ids"]), mmap_mode="r")
        vecs = np.load(self.file(names["vectors"]), mmap_mode="r") if "vectors" in names else None
        return main, ids, vecs

    # -- writing -----------------------------------------------------------

    def remove_temporaries(self) -> None:
        """Delete what a save that died left half-written."""
        folder, base = self.folder(), self.base()
        for entry in os.listdir(folder):
            if entry.startswith(base):
                remove_dead_temporaries(os.path.join(folder, entry.split(".tmp-")[0]))

    def write_main(
        self,
        names: dict[str, str],
        main: Any,
        ids: np.ndarray,
        vecs16: np.ndarray | None,
        hook: RenameHook,
    ) -> None:
        """Write a main part: its index, its sorted ids and (IVF) its float16 vectors."""
        atomic_write(self.file(names["main"]), self._faiss.serialize_index(main).tobytes(), hook)
        atomic_write(self.file(names["ids"]), _npy(np.asarray(ids)), hook)
        if vecs16 is not None:
            vec_bytes = _npy(np.asarray(vecs16, dtype=np.float16))
            atomic_write(self.file(names["vectors"]), vec_bytes, hook)

    def write_fresh(
        self,
        names: dict[str, str],
        ids: np.ndarray,
        vecs: np.ndarray,
        deleted: np.ndarray,
        hook: RenameHook,
    ) -> None:
        """Write the fresh part (its vectors as float16) and the main part's deleted ids."""
        fresh = io.BytesIO()
        np.savez(fresh, ids=ids, vectors=vecs.astype(np.float16), deleted=deleted)
        atomic_write(self.file(names["fresh"]), fresh.getvalue(), hook)

    def write_stamp(
        self, gen: int, seq: int, names: dict[str, str], facts: dict[str, Any], hook: RenameHook
    ) -> None:
        """Write the stamp naming ``names``, with ``facts`` (kind, counts, params...)."""
        stamp = {"format": STAMP_FORMAT, "gen": gen, "seq": seq, "files": names, "dim": self.dim}
        stamp.update(facts)
        stamp["saved_at"] = time.time()
        atomic_write(self.stamp_path, json.dumps(stamp).encode(), hook)

    def remove_unnamed(self, names: dict[str, str]) -> None:
        """Delete the store's files that neither ``names`` nor the stamp is."""
        folder, base = self.folder(), self.base()
        keep = set(names.values()) | {os.path.basename(self.stamp_path)}
        for entry in os.listdir(folder):
            if not entry.startswith(base + ".") or entry in keep or ".tmp-" in entry:
                continue
            rest = entry[len(base) :]
            if rest == ".faiss" or rest.startswith(".g"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(folder, entry))


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()
