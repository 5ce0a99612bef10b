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
import time
from collections.abc import Callable, Sequence
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
)
from mmsearch.ingest.indexer import Indexer
from mmsearch.ingest.ocr_pass import OcrReport
from mmsearch.ingest.report import IndexReport, ProgressCallback
from mmsearch.media.decode import DecodeOptions
from mmsearch.search.encode import QueryEncoder
from mmsearch.search.filters import allowed_segment_ids
from mmsearch.search.query import Query, simple_query
from mmsearch.search.rank import EncodedPart, rank
from mmsearch.search.results import Hit, SearchResult
from mmsearch.search.retrieve import Searcher
from mmsearch.search.thumbnails import make_thumbnail
from mmsearch.settings import Settings
from mmsearch.store import database
from mmsearch.store.describe import describe_asset
from mmsearch.store.locking import AdvisoryLock, WriterLock
from mmsearch.store.manifest import Manifest, read_manifest, write_manifest
from mmsearch.store.metadata import MetadataStore
from mmsearch.store.schema import Asset
from mmsearch.store.sync import catch_up, load_or_rebuild
from mmsearch.store.vectors import VectorStore, open_vector_store
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
        self.vectors = self._open_vectors()
        self.searcher = Searcher(meta, self.vectors)

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
        **settings: Any,
    ) -> Engine:
        """Open the index folder at ``path`` (default: setting ``index``).

        An existing index uses the embedder that built it; asking for another
        (``model=`` or ``embedder=``) raises :class:`EmbedderMismatchError`.
        A new index is created when ``create`` is true, with ``embedder`` or
        the one ``model`` names (default ``auto``). Other keyword arguments are
        settings (see :mod:`mmsearch.settings`); ``db`` (a PostgreSQL URL) puts a
        new index's metadata in that database instead of the folder's SQLite file,
        and gives an existing one's password (see docs/postgres.md).
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
            if embedder is None:
                from mmsearch.embedders.auto import choose_embedder

                embedder, message = choose_embedder(resolved)
                if message:
                    notice(message)
            given = database.parse(resolved.db) if resolved.db else None
            os.makedirs(folder, exist_ok=True)
            meta = MetadataStore(given or _sqlite_url(folder), dim=embedder.identity.dim)
            if given is not None and meta.roots():
                meta.close()
                raise ConfigError(
                    f"the database {meta.url} already holds an index's metadata; give each"
                    " index its own database (or empty this one)"
                )
            manifest = Manifest(
                embedder=embedder.identity,
                created_at=time.time(),
                db=database.safe_url(given) if given is not None else None,
            )
            write_manifest(folder, manifest)
        else:
            _check_same_space(folder, manifest.embedder, model, embedder, settings)
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

    def _vector_path(self) -> str:
        return os.path.join(self.folder, f"vectors-{self.identity.space}.faiss")

    def _open_vectors(self) -> VectorStore:
        store = open_vector_store(
            self.manifest.vector_store, self._vector_path(), self.identity.dim
        )
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
            return indexer.run(expanded)

    def _indexer(self, on_progress: ProgressCallback | None) -> Indexer:
        return Indexer(
            self.meta,
            self.vectors,
            self.embedder,
            self.settings,
            on_progress,
            ocr_policy=self.ocr_policy(),
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
            return run_ocr_pass(
                self.meta,
                self.vectors,
                self.embedder,
                options,
                expanded,
                self.settings.workers,
                on_progress,
            )

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
            self.vectors.save()
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
            return indexer.sync(changed)

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
        return QueryEncoder(self.embedder, self.settings, self.searcher)

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
        catch_up(self.meta, self.vectors)
        encoder = self._encoder()
        vectors = encoder.encode(query.parts)
        parts = [EncodedPart(p, v) for p, v in zip(query.parts, vectors, strict=True)]
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

        on_disk = open_vector_store(
            self.manifest.vector_store, self._vector_path(), self.identity.dim
        )
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
            **counts,
            "vectors": self.vectors.count,
            "size_bytes": size,
        }


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
