"""Errors raised by mmsearch.

Every error the library raises on purpose derives from :class:`MmsearchError`,
so a caller can catch one class. The CLI turns each into a one-line message
and a non-zero exit status (``exit_code``).

    MmsearchError
    ├── ConfigError            a bad setting or option value
    ├── MissingDependencyError an optional package is not installed (says which extra)
    ├── EmbedderError          a model could not be created or loaded
    │   └── WeightsNotFoundError   weights are neither on disk nor downloadable
    ├── IndexUnusableError     the index folder is unusable
    │   ├── IndexNotFoundError     no index at that path (search/info on nothing)
    │   ├── EmbedderMismatchError  opened with a different embedder than built it
    │   └── IndexFormatError       manifest from a newer or unknown format
    ├── DatabaseError          the metadata database (PostgreSQL) can't be reached or used
    ├── QueryError             a query that can't be run (empty, unreadable image)
    └── PathError              a path given by the user does not exist

Per-file ingestion failures are not exceptions: they are collected in the run's
report (:class:`mmsearch.ingest.report.Skip`) with the path and the reason.
"""

from __future__ import annotations


class MmsearchError(Exception):
    """Base class of every error mmsearch raises on purpose."""

    exit_code: int = 1


class ConfigError(MmsearchError):
    """A setting or option has a value that can't be used."""

    exit_code = 2


class MissingDependencyError(MmsearchError):
    """An optional dependency is missing; the message names the extra to install."""


class EmbedderError(MmsearchError):
    """A model could not be created, loaded or run."""


class WeightsNotFoundError(EmbedderError):
    """Model weights are not on disk and could not be downloaded."""


class IndexUnusableError(MmsearchError):
    """The index folder can't be used as it is."""


class IndexNotFoundError(IndexUnusableError):
    """There is no index at the given path."""


class EmbedderMismatchError(IndexUnusableError):
    """The index was built by another embedder than the one asked for."""


class IndexFormatError(IndexUnusableError):
    """The index was written by an unknown or newer format version."""


class DatabaseError(MmsearchError):
    """The metadata database is down, went away, or refused the login.

    The message names the database URL without its password.
    """


class QueryError(MmsearchError):
    """The query can't be run."""

    exit_code = 2


class PathError(MmsearchError):
    """A path given by the caller does not exist or can't be read."""

    exit_code = 2


def import_optional(module: str, extra: str | None, purpose: str) -> object:
    """Import ``module`` or raise :class:`MissingDependencyError` saying how to get it.

    ``extra`` names the extra that brings the module (``mmsearch[NAME]``); ``None`` means the
    default install carries it, so a missing one is a broken install.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        fix = (
            f"pip install 'mmsearch[{extra}]'"
            if extra
            else "it is part of the default install: pip install --force-reinstall mmsearch"
        )
        raise MissingDependencyError(
            f"{purpose} needs the '{module}' package: {fix} ({exc})"
        ) from exc
