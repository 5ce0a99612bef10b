"""Creating and reopening an index folder, with the checks that keep it one index.

A new index's manifest (:mod:`mmsearch.store.manifest`) records the embedder
that built it, its vector store and, when its metadata lives in PostgreSQL, the
database. Reopening holds what is asked for against that record: another model,
other space settings, another vector store or another database are refused
with the way out, never mixed into the index.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mmsearch.embedders import canonical_name
from mmsearch.embedders.base import Embedder, EmbedderIdentity
from mmsearch.errors import ConfigError, EmbedderMismatchError, IndexNotFoundError
from mmsearch.settings import Settings
from mmsearch.store import database
from mmsearch.store.backends import recorded_spec
from mmsearch.store.manifest import Manifest, read_manifest, write_manifest
from mmsearch.store.metadata import MetadataStore

DB_NAME = "index.sqlite"
NoticeCallback = Callable[[str], None]


def expand(path: str | os.PathLike[str]) -> str:
    """The absolute form of a path a user gave, with ``~`` expanded."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


@dataclass
class OpenedIndex:
    """What the engine is wired from: the folder, its manifest and metadata, the settings."""

    folder: str
    manifest: Manifest
    meta: MetadataStore
    settings: Settings
    embedder: Embedder | None  # None: loaded from the manifest's identity on first use


def open_index(
    path: str | os.PathLike[str] | None,
    *,
    model: str | None,
    embedder: Embedder | None,
    create: bool,
    on_notice: NoticeCallback,
    identity: EmbedderIdentity | None,
    settings: dict[str, Any],
) -> OpenedIndex:
    """Open the index folder at ``path`` (default: setting ``index``); see :meth:`Engine.open`."""
    resolved = Settings.resolve(model=model, **settings)
    folder = expand(path if path is not None else resolved.index)
    manifest = read_manifest(folder) if os.path.isdir(folder) else None
    if manifest is None:
        if not create:
            raise IndexNotFoundError(
                f"no index at {folder}; build one with: mmsearch index PATH --index {folder}"
            )
        return _create(folder, resolved, embedder, identity, on_notice)
    check_same_space(folder, manifest.embedder, model, embedder, settings)
    _check_same_identity(folder, manifest.embedder, identity)
    _check_same_store(folder, manifest.vector_store, resolved)
    if settings.get("ann") is not None and resolved.ann != manifest.ann:
        manifest.ann = resolved.ann  # the next write rebuilds the vector index
        write_manifest(folder, manifest)
    meta = MetadataStore(_database_of(folder, manifest, resolved.db), dim=manifest.embedder.dim)
    return OpenedIndex(folder, manifest, meta, resolved, embedder)


def _create(
    folder: str,
    resolved: Settings,
    embedder: Embedder | None,
    identity: EmbedderIdentity | None,
    on_notice: NoticeCallback,
) -> OpenedIndex:
    """A new index in ``folder``: its metadata store and manifest, written before any file."""
    if embedder is None and identity is None:
        from mmsearch.embedders.auto import choose_embedder

        embedder, message = choose_embedder(resolved)
        if message:
            on_notice(message)
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
    return OpenedIndex(folder, manifest, meta, resolved, embedder)


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


def check_same_space(
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
