"""The Engine: the one place that wires the parts of mmsearch together.

    from mmsearch import Engine
    with Engine.open("indexes/photos") as engine:
        report = engine.index(["~/Pictures"])
        hits = engine.search("a cat on a sofa", k=10)

The CLI and library users all go through it. It never prints:
one-line notices (for example "using the offline model because ...") go to
the ``on_notice`` callback, progress to ``on_progress``.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from sqlalchemy import select

from mmsearch.embedders import canonical_name, embedder_from_identity
from mmsearch.embedders.base import Embedder, EmbedderIdentity, l2_normalise
from mmsearch.errors import (
    ConfigError,
    EmbedderMismatchError,
    IndexNotFoundError,
    MissingDependencyError,
    PathError,
    QueryError,
)
from mmsearch.ingest.indexer import Indexer
from mmsearch.ingest.ocr_pass import OcrReport
from mmsearch.ingest.report import IndexReport, ProgressCallback
from mmsearch.media.decode import DecodeOptions
from mmsearch.search.duplicates import TIERS, DuplicateFinder, DuplicateReport
from mmsearch.search.encode import QueryEncoder
from mmsearch.search.filters import allowed_segment_ids
from mmsearch.search.query import Part, Query, simple_query
from mmsearch.search.rank import EncodedPart, rank
from mmsearch.search.results import Hit, SearchResult
from mmsearch.search.retrieve import Searcher
from mmsearch.search.stats_cache import FILE_NAME as STATS_NAME
from mmsearch.search.thumbnails import make_thumbnail
from mmsearch.settings import Settings
from mmsearch.store import database
from mmsearch.store.backends import open_vector_store, recorded_spec
from mmsearch.store.describe import describe_asset
from mmsearch.store.locking import AdvisoryLock, WriterLock
from mmsearch.store.manifest import Manifest, read_manifest, write_manifest
from mmsearch.store.metadata import MetadataStore
from mmsearch.store.schema import Asset, Segment
from mmsearch.store.sync import catch_up, in_step, load_or_rebuild, save_written
from mmsearch.store.vectors import VectorStore
from mmsearch.store.verify import VerifyReport

DB_NAME = "index.sqlite"
LOCK_NAME = "writer.lock"
NoticeCallback = Callable[[str], None]


def _expand(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


class Engine:
    """An open index: its metadata, vectors and embedder. Use :meth:`open`."""

    def __init__(
        self,
        folder: str,
        manifest: Manifest,
        meta: MetadataStore,
        settings: Settings,
        embedder: Embedder | None = None,
        on_notice: NoticeCallback | None = None,
    ) -> None:
        self.folder = folder
        self.manifest = manifest
        self.meta = meta
        self.settings = settings
        self._embedder = embedder
        self.on_notice = on_notice or (lambda _msg: None)
        on_server = (
            AdvisoryLock(meta.engine, database.lock_key(meta.engine.url, "writer"), meta.url)
            if meta.postgres
            else None
        )
        self._lock = WriterLock(os.path.join(folder, LOCK_NAME), on_server)
        self._ocr_notice_given = False
        self._vectors_guard = SharedLock()
        self.vectors = self._open_vectors()
        self.searcher = Searcher(meta, self.vectors, os.path.join(folder, STATS_NAME))

    # -- opening -----------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        embedder: Embedder | None = None,
        create: bool = True,
        on_notice: NoticeCallback | None = None,
        identity: EmbedderIdentity | None = None,
        **settings: Any,
    ) -> Engine:
        """Open the index folder at ``path`` (default: setting ``index``).

        An existing index uses the embedder that built it; asking for another
        (``model=`` or ``embedder=``) raises :class:`EmbedderMismatchError`.
        A new index is created when ``create`` is true, with ``embedder`` or
        the one ``model`` names (default ``auto``). ``identity`` records a model
        without loading it (an index of imported vectors, see
        :meth:`import_embeddings`). Other keyword arguments are settings (see
        :mod:`mmsearch.settings`); ``db`` (a PostgreSQL URL) puts a new index's
        metadata in that database instead of the folder's SQLite file, and gives
        an existing one's password (see docs/postgres.md).
        """
        resolved = Settings.resolve(model=model, **settings)
        folder = _expand(path if path is not None else resolved.index)
        manifest = read_manifest(folder) if os.path.isdir(folder) else None
        notice = on_notice or (lambda _msg: None)
        if manifest is None:
            if not create:
                raise IndexNotFoundError(
                    f"no index at {folder}; build one with: mmsearch index PATH --index {folder}"
                )
            if embedder is None and identity is None:
                from mmsearch.embedders.auto import choose_embedder

                embedder, message = choose_embedder(resolved)
                if message:
                    notice(message)
            given = database.parse(resolved.db) if resolved.db else None
            os.makedirs(folder, exist_ok=True)
            built = embedder.identity if embedder is not None else identity
            assert built is not None
            meta = MetadataStore(given or _sqlite_url(folder), dim=built.dim)
            if given is not None and meta.roots():
                meta.close()
                raise ConfigError(
                    f"the database {meta.url} already holds an index's metadata; give each"
                    " index its own database (or empty this one)"
                )
            manifest = Manifest(
                embedder=built,
                vector_store=recorded_spec(resolved.vectors),
                created_at=time.time(),
                db=database.safe_url(given) if given is not None else None,
                ann=resolved.ann,
            )
            write_manifest(folder, manifest)
        else:
            _check_same_space(folder, manifest.embedder, model, embedder, settings)
            _check_same_identity(folder, manifest.embedder, identity)
            _check_same_store(folder, manifest.vector_store, resolved)
            if settings.get("ann") is not None and resolved.ann != manifest.ann:
                manifest.ann = resolved.ann  # the next write rebuilds the vector index
                write_manifest(folder, manifest)
            url = _database_of(folder, manifest, resolved.db)
            meta = MetadataStore(url, dim=manifest.embedder.dim)
        return cls(folder, manifest, meta, resolved, embedder, notice)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.meta.close()

    @property
    def identity(self) -> EmbedderIdentity:
        return self.manifest.embedder

    @property
    def embedder(self) -> Embedder:
        """The index's embedder, loaded on first use (``info`` and ``rm`` never load it)."""
        if self._embedder is None:
            self._embedder = embedder_from_identity(
                self.identity, precision=self.settings.precision
            )
            _check_same_space(self.folder, self.identity, None, self._embedder)
        return self._embedder

    # -- the vector store, kept in step with SQLite -------------------------

    def _vector_store(self) -> VectorStore:
        """A fresh, unloaded handle on the index's vector store."""
        recorded = self.manifest.vector_store
        # a password is never recorded: a --vectors naming the same store supplies it
        given = self.settings.vectors if "vectors" in self.settings.given else recorded
        spec = given if recorded_spec(given) == recorded else recorded
        return open_vector_store(
            spec, self.folder, self.identity.space, self.identity.dim, self.manifest.ann
        )

    def _open_vectors(self) -> VectorStore:
        store = self._vector_store()
        load_or_rebuild(self.meta, store, self.on_notice)
        return store

    # -- indexing ------------------------------------------------------------

    def index(
        self, paths: Sequence[str | os.PathLike[str]], on_progress: ProgressCallback | None = None
    ) -> IndexReport:
        """Bring the index up to date with files and folders; see :mod:`mmsearch.ingest.indexer`."""
        expanded = [_expand(p) for p in paths]
        missing = [p for p in expanded if not os.path.exists(p)]
        if missing:
            raise PathError(f"no such file or folder: {missing[0]}")
        with self._writer_lock():
            catch_up(self.meta, self.vectors)
            indexer = self._indexer(on_progress)
            report = indexer.run(expanded)
            self._warm_search_stats()
            return report

    def _indexer(self, on_progress: ProgressCallback | None) -> Indexer:
        policy = self.ocr_policy()
        remote = None
        if self.settings.ray:
            from mmsearch.ingest.ray_pipeline import RayEmbedding

            workers = self.settings.workers or None
            remote = RayEmbedding(self.settings.ray, self.identity, self.settings, policy, workers)
        return Indexer(
            self.meta, self.vectors, self.embedder, self.settings, on_progress, policy, remote
        )

    def ocr_pass(
        self,
        paths: Sequence[str | os.PathLike[str]],
        policy: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> OcrReport:
        """Read the words of indexed images that have not had OCR at ``policy``.

        ``policy`` defaults to the ``ocr`` setting, with ``off`` taken as ``on``
        (asking for an OCR pass means wanting OCR); see :mod:`mmsearch.ingest.ocr_pass`.
        """
        from mmsearch.ingest.ocr_pass import run_ocr_pass

        chosen = policy or (self.settings.ocr if self.settings.ocr != "off" else "on")
        expanded = [_expand(p) for p in paths]
        with self._writer_lock():
            catch_up(self.meta, self.vectors)
            chosen = self.ocr_policy(chosen)
            options = DecodeOptions.from_settings(self.settings, self.embedder.image_size, chosen)
            if chosen == "off":
                return OcrReport()
            report = run_ocr_pass(
                self.meta,
                self.vectors,
                self.embedder,
                options,
                expanded,
                self.settings.workers,
                on_progress,
            )
            self._warm_search_stats()
            return report

    def ocr_policy(self, requested: str | None = None) -> str:
        """The OCR setting in force: ``auto`` quietly becomes ``off`` without rapidocr.

        ``on`` without the package raises :class:`MissingDependencyError`.
        """
        policy = str(requested or self.settings.ocr)
        if policy == "off" or importlib.util.find_spec("rapidocr_onnxruntime") is not None:
            return policy
        if policy == "on":
            raise MissingDependencyError(
                "OCR needs the 'rapidocr-onnxruntime' package: pip install 'mmsearch[ocr]'"
            )
        if not self._ocr_notice_given:
            self.on_notice("OCR is off: install it with pip install 'mmsearch[ocr]'")
            self._ocr_notice_given = True
        return "off"

    def remove(self, paths: Sequence[str | os.PathLike[str]]) -> int:
        """Forget files or whole folders; return how many files were removed."""
        with self._writer_lock():
            catch_up(self.meta, self.vectors)
            removed = 0
            with self.meta.sessions.begin() as s:
                ids: list[int] = []
                for path in paths:
                    ids.extend(a.id for a in self.meta.assets_under(s, _expand(path)))
                ids = sorted(set(ids))
                segment_ids = self.meta.delete_assets(s, ids)
                removed = len(ids)
            self.vectors.remove(np.asarray(segment_ids, dtype=np.int64))
            save_written(self.meta, self.vectors)
            self._warm_search_stats()
        return removed

    def sync(
        self, paths: Sequence[str | os.PathLike[str]], on_progress: ProgressCallback | None = None
    ) -> IndexReport:
        """Bring the index up to date with paths that changed (what watch mode calls).

        Existing paths are indexed as by :meth:`index`; missing ones are forgotten,
        unless their content shows up at a new path in the same call (a move keeps
        its vectors). Paths should lie inside folders already indexed.
        """
        changed = sorted({_expand(p) for p in paths})
        with self._writer_lock():
            catch_up(self.meta, self.vectors)
            indexer = self._indexer(on_progress)
            report = indexer.sync(changed)
            self._warm_search_stats()
            return report

    def roots(self) -> list[dict[str, Any]]:
        """The library folders: ``path``, ``files`` indexed under it, whether it ``exists``."""
        return [
            {"path": path, "files": files, "exists": os.path.isdir(path)}
            for path, files in self.meta.root_counts()
        ]

    def move_root(self, old: str | os.PathLike[str], new: str | os.PathLike[str]) -> int:
        """Tell the index that a library folder moved; return the files now under ``new``.

        A rewrite of stored folder paths, nothing is read or embedded. ``old`` is a
        root, a folder holding roots, or a folder inside a root (which becomes a root
        of its own); ``new`` must exist and must not overlap another root.
        """
        old_path, new_path = _expand(old), _expand(new)
        if not os.path.isdir(new_path):
            raise PathError(f"no such folder: {new_path}")
        with self._writer_lock(), self.meta.sessions.begin() as s:
            self.meta.move_root(s, old_path, new_path)
        with self.meta.sessions() as s:
            paths = [self.meta.abspath(a) for a in self.meta.assets_under(s, new_path)]
        missing = sum(not os.path.exists(p) for p in paths)
        if missing:
            self.on_notice(
                f"{missing} of {len(paths)} files are not in {new_path};"
                f" mmsearch index {new_path} will forget them"
            )
        return len(paths)

    def writing(self) -> WriterLock:
        """Hold the writer lock across several writes (watch mode); re-entrant."""
        return self._lock

    def _writer_lock(self) -> WriterLock:
        return self._lock

    def import_embeddings(
        self,
        source: str | os.PathLike[str],
        table: str | os.PathLike[str] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> IndexReport:
        """Add segments whose vectors were computed elsewhere (see ``ingest/bulk_import.py``).

        ``source`` is a Parquet file (``path``, ``vector`` and optional columns) or a
        ``.npy`` matrix with ``table`` (Parquet or JSON Lines) holding the other columns.
        """
        from mmsearch.ingest.bulk_import import BulkImporter, read_rows

        path = _expand(source)
        for p in (path, _expand(table) if table is not None else None):
            if p is not None and not os.path.isfile(p):
                raise PathError(f"no such file: {p}")
        rows = read_rows(path, _expand(table) if table is not None else None)
        with self._writer_lock():
            catch_up(self.meta, self.vectors)
            importer = BulkImporter(self.meta, self.vectors, self.identity.dim, on_progress)
            report = importer.run(rows, path)
            self._warm_search_stats()
            return report

    def _warm_search_stats(self) -> None:
        """Write the search statistics of the index as it now is, so the next query (a new
        process, often) reads them instead of sampling the segments itself: at a million
        segments that sampling was 2 of a cold CLI query's 2.9 s."""
        self.searcher.background()

    # -- searching -----------------------------------------------------------

    def encode_query(
        self,
        text: str | None = None,
        image: str | os.PathLike[str] | None = None,
        video: str | os.PathLike[str] | None = None,
    ) -> np.ndarray:
        """One normalised vector from a text, an image file and/or a short video (summed)."""
        query = simple_query(text, image, video, {})
        return l2_normalise(np.sum(self._encoder().encode(query.parts), axis=0))[0]

    def _encoder(self) -> QueryEncoder:
        return QueryEncoder(lambda: self.embedder, self.settings, self.searcher)

    def search(
        self,
        query: Query | str | None = None,
        *,
        image: str | os.PathLike[str] | None = None,
        video: str | os.PathLike[str] | None = None,
        k: int = 10,
        modalities: Sequence[str] | None = None,
        **options: Any,
    ) -> list[Hit]:
        """The best matches for a :class:`Query`, or a text / image / clip, best first.

        Images and text documents appear once each (their best segment);
        videos once per distinct moment, with ``start``, ``end`` and
        ``best_time``. Keyword ``options`` are :class:`Query` options
        (``fusion``, ``cutoff``, ``min_score``, ``offset``, ...).
        """
        if not isinstance(query, Query):
            query = simple_query(query, image, video, options)
            query.limit = k
            if modalities:
                query.filters.modalities = list(modalities)
        return self.run(query).hits

    def run(self, query: Query) -> SearchResult:
        """Run a full :class:`Query`: hits of the requested page, and the total."""
        query.validate()
        self.refresh()
        with self._vectors_guard.shared():
            encoder = self._encoder()
            vectors = encoder.encode(query.parts)
            parts = [EncodedPart(p, v) for p, v in zip(query.parts, vectors, strict=True)]
            return self._ranked(query, parts, encoder)

    def _ranked(
        self, query: Query, parts: list[EncodedPart], encoder: QueryEncoder
    ) -> SearchResult:
        more = self.searcher.asset_vectors([encoder.asset_id(a) for a in query.more_like])
        less = self.searcher.asset_vectors([encoder.asset_id(a) for a in query.less_like])
        with self.meta.sessions() as s:
            allowed = allowed_segment_ids(s, query.filters)
        if allowed is not None and len(allowed) == 0:
            return SearchResult([], 0, query.fusion)
        return rank(self.searcher, query, parts, allowed, (more, less))

    def tag(self, paths: Sequence[str | os.PathLike[str]], tags: dict[str, str | None]) -> int:
        """Set (or, with value ``None``, remove) tags on files or folders; return files tagged."""
        with self._writer_lock(), self.meta.sessions.begin() as s:
            assets = {a.id for p in paths for a in self.meta.assets_under(s, _expand(p))}
            for key, value in tags.items():
                self.meta.set_tag(s, sorted(assets), key, value)
        return len(assets)

    def thumbnail(self, hit: Hit, size: int = 320) -> str | None:
        """Path of a cached JPEG thumbnail for a result (a video moment: its best frame).

        Made on first request and kept under ``thumbs/`` in the index folder;
        ``None`` for text results.
        """
        if hit.modality == "text":
            return None
        with self.meta.sessions() as s:
            content = s.scalar(select(Asset.content_hash).where(Asset.id == hit.asset_id))
        # keyed by content, not asset id: SQLite may give a deleted file's id to a new one
        key = content or str(hit.asset_id)
        return make_thumbnail(os.path.join(self.folder, "thumbs"), key, hit, size)

    # -- checking ------------------------------------------------------------

    def verify(self, repair: bool = False) -> VerifyReport:
        """Check that SQLite, the vector file and the manifest agree; optionally repair.

        Repair works from SQLite, the source of truth: damaged or orphan rows
        are deleted (their files re-embedded on the next index run) and the
        vector file is rebuilt.
        """
        from mmsearch.store.verify import verify_index

        on_disk = self._vector_store()
        return verify_index(self.meta, on_disk, self.vectors, repair, self._writer_lock())

    # -- facts -------------------------------------------------------------

    def show(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """What the index holds for one file: metadata, segments by view, tags, OCR lines."""
        return describe_asset(self.meta, _expand(path))

    def info(self) -> dict[str, Any]:
        """What is in the index, which embedder built it, and its size on disk."""
        counts = self.meta.counts()
        size = 0
        for name in os.listdir(self.folder):
            full = os.path.join(self.folder, name)
            if os.path.isfile(full):
                size += os.path.getsize(full)
        return {
            "index": self.folder,
            "format": self.manifest.format,
            "db": self.meta.url,
            "embedder": self.identity.to_dict(),
            "vector_store": self.manifest.vector_store,
            **counts,
            "vectors": self.vectors.count,
            "vector_index": self.vectors.describe(),
            "size_bytes": size,
        }

    # -- duplicates ----------------------------------------------------------

    def duplicates(
        self,
        paths: Sequence[str | os.PathLike[str]] | None = None,
        tiers: Sequence[str] | None = None,
    ) -> DuplicateReport:
        """Groups of exact copies, near-duplicates and similar shots, largest first.

        Only files under ``paths`` (default: the whole index) are grouped;
        ``tiers`` picks some of ``exact``, ``near``, ``similar`` (default: all).
        A read-only report: nothing is written. See :mod:`mmsearch.search.duplicates`.
        """
        chosen = list(tiers) if tiers else list(TIERS)
        unknown = [t for t in chosen if t not in TIERS]
        if unknown:
            raise ConfigError(f"unknown tier {unknown[0]!r}; choose from {', '.join(TIERS)}")
        expanded = [_expand(p) for p in paths] if paths else None
        missing = [p for p in expanded or [] if not os.path.exists(p)]
        if missing:
            raise PathError(f"no such file or folder: {missing[0]}")
        catch_up(self.meta, self.vectors)
        return DuplicateFinder(self.meta, self.vectors).run(expanded, chosen)

    # -- serving: thread-safe searches, assets by id (used by mmsearch serve) -----

    def refresh(self) -> None:
        """Catch the vector cache up with SQLite (files another process indexed).

        Safe to call from many threads: searches share the vector store, and
        catching up takes it alone, once. :meth:`run` calls it first.
        """
        if in_step(self.meta, self.vectors):
            return
        with self._vectors_guard.exclusive():
            catch_up(self.meta, self.vectors)

    def run_vector(self, vector: Sequence[float] | np.ndarray, query: Query) -> SearchResult:
        """Run ``query`` (filters, paging, ranking) with a raw vector in the index's space as
        its one positive part, in place of ``query.parts``.

        Raises :class:`QueryError` when the vector has the wrong length or is all zeros.
        """
        raw = np.asarray(vector, dtype=np.float32).reshape(-1)
        if raw.shape[0] != self.identity.dim or not np.isfinite(raw).all():
            raise QueryError(
                f"the vector must be {self.identity.dim} finite numbers (this index's dimension)"
            )
        if not np.any(raw):
            raise QueryError("the vector is all zeros")
        query.parts = [Part("text", "<vector>")]
        query.validate()
        self.refresh()
        with self._vectors_guard.shared():
            encoded = [EncodedPart(query.parts[0], l2_normalise(raw[None, :])[0])]
            return self._ranked(query, encoded, self._encoder())

    def _asset_row(self, asset_id: int) -> tuple[str, str, str, str, str]:
        """(absolute path, root, modality, content hash, relpath) of an asset, or PathError."""
        with self.meta.sessions() as s:
            asset = s.get(Asset, int(asset_id)) if 0 < int(asset_id) < 2**63 else None
            if asset is None:
                raise PathError(f"no indexed file has asset id {asset_id}")
            return (
                self.meta.abspath(asset),
                asset.root.path,
                asset.modality,
                asset.content_hash,
                asset.relpath,
            )

    def show_asset(self, asset_id: int) -> dict[str, Any]:
        """:meth:`show` of the file with this asset id; :class:`PathError` when there is none."""
        path = self._asset_row(asset_id)[0]
        return describe_asset(self.meta, path)

    def asset_file(self, asset_id: int) -> str:
        """The real path of an indexed file, checked: it exists and, with symlinks resolved,
        still lies under its root. :class:`PathError` otherwise (nothing else is opened)."""
        path, root, _modality, _hash, _rel = self._asset_row(asset_id)
        real, real_root = os.path.realpath(path), os.path.realpath(root)
        if os.path.commonpath([real, real_root]) != real_root or real == real_root:
            raise PathError(f"asset {asset_id} resolves outside its library folder")
        if not os.path.isfile(real):
            raise PathError(f"asset {asset_id} is no longer on disk")
        return real

    def asset_thumbnail(self, asset_id: int, at: float | None = None, size: int = 320) -> str:
        """A cached JPEG of an indexed image, or of the indexed video frame nearest ``at`` s.

        :class:`PathError` for an unknown id or a file outside its root; :class:`QueryError`
        for a text file (no picture) or a file that can't be decoded.
        """
        real = self.asset_file(asset_id)
        _path, _root, modality, content, _rel = self._asset_row(asset_id)
        if modality == "text":
            raise QueryError(f"asset {asset_id} is a text file: it has no thumbnail")
        if at is not None and (not np.isfinite(at) or at < 0):
            raise QueryError("the time must be a number of seconds, 0 or more")
        when = None
        if modality == "video":
            # the indexed frame nearest ``at``: what a result shows, and a bounded cache
            with self.meta.sessions() as s:
                times = s.scalars(
                    select(Segment.best_time).where(
                        Segment.asset_id == int(asset_id), Segment.best_time.is_not(None)
                    )
                )
                known = sorted({float(t) for t in times if t is not None})
            target = float(at or 0.0)
            when = min(known, key=lambda t: abs(t - target)) if known else 0.0
        hit = Hit(
            path=real,
            modality=modality,
            asset_id=int(asset_id),
            segment_id=0,
            view="frame" if modality == "video" else "pixels",
            score=0.0,
            best_time=when,
        )
        return make_thumbnail(os.path.join(self.folder, "thumbs"), content, hit, size)


def _sqlite_url(folder: str) -> str:
    return f"sqlite:///{os.path.join(folder, DB_NAME)}"


def _database_of(folder: str, manifest: Manifest, given: str | None) -> Any:
    """The URL to open an existing index's metadata with: the manifest's, plus a given password.

    A ``db`` given for an index built with another (or with its folder's SQLite
    file) is refused: the metadata can't move by changing a setting.
    """
    if manifest.db is None:
        if given:
            raise ConfigError(
                f"the index at {folder} keeps its metadata in {DB_NAME} in its folder, not in"
                f" {database.safe_url(database.parse(given))}; drop --db (MMSEARCH_DB)"
            )
        return _sqlite_url(folder)
    stored = database.parse(manifest.db)
    if not given:
        return stored
    asked = database.parse(given)
    if not database.same_database(asked, stored):
        raise ConfigError(
            f"the index at {folder} keeps its metadata in {manifest.db}, not in"
            f" {database.safe_url(asked)}; drop --db (MMSEARCH_DB) or give that URL"
        )
    return asked  # the same database, with the password given at open time


def _check_same_store(folder: str, recorded: str, settings: Settings) -> None:
    """Raise when ``--vectors`` names another store than the one the index was built with."""
    if "vectors" in settings.given and recorded_spec(settings.vectors) != recorded:
        raise ConfigError(
            f"the index at {folder} keeps its vectors in {recorded}, not"
            f" {recorded_spec(settings.vectors)}; --vectors only applies to a new index"
        )


def _check_same_identity(
    folder: str, built: EmbedderIdentity, identity: EmbedderIdentity | None
) -> None:
    if identity is not None and identity != built:
        raise EmbedderMismatchError(
            f"the index at {folder} was built with {built.describe()}, not"
            f" {identity.describe()}; vectors of different models can't be mixed"
        )


def _check_same_space(
    folder: str,
    built: EmbedderIdentity,
    model: str | None,
    embedder: Embedder | None,
    given: dict[str, Any] | None = None,
) -> None:
    """Raise when the embedder or the settings asked for would not make the index's space."""
    from mmsearch.embedders.auto import space_conflicts

    rebuild = f"delete {folder} (or pick another --index) and run mmsearch index again"
    asked = None
    if embedder is not None and embedder.identity != built:
        asked = embedder.identity.describe()
    elif model not in (None, "auto") and canonical_name(str(model)) != built.name:
        asked = str(model)
    if asked:
        raise EmbedderMismatchError(
            f"the index at {folder} was built with {built.describe()}, not {asked}; "
            f"vectors of different models can't be mixed. Open it without --model, or "
            f"rebuild it: {rebuild}"
        )
    conflicts = space_conflicts(built, given or {})
    if conflicts:
        raise EmbedderMismatchError(
            f"the index at {folder} was built with {'; '.join(conflicts)}; these settings "
            f"only apply to a new index. Drop them, or rebuild it: {rebuild}"
        )


class SharedLock:
    """Many holders of :meth:`shared` at once, or one of :meth:`exclusive` (writers first)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting_writers = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()
