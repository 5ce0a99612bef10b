"""One writer per index: an advisory ``flock`` on ``writer.lock`` in the index folder.

When the metadata lives in PostgreSQL the writer also holds a session-level
advisory lock (``pg_try_advisory_lock``) on a key derived from the database,
so writers on other machines, or other index folders pointing at the same
database, are refused the same way. A writer that dies loses both: the kernel
drops the ``flock``, the server drops the advisory lock with the connection.

A second writer (another ``mmsearch index``, ``rm``, ``tag``, ``watch``...) fails
at once with a clear message rather than waiting: a run can take hours, and a
user who started two would rather know. Readers never take the lock.

Within one process, :class:`SharedLock` lets the threads of a server search one
vector store together while catching it up with another process's writes takes
it alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SAEngine

from mmsearch.errors import DatabaseError, IndexUnusableError


@dataclass
class AdvisoryLock:
    """A PostgreSQL advisory lock: the database ``engine`` connects to, the key, a safe name."""

    engine: SAEngine
    key: int
    name: str  # the database URL without its password
    conn: Connection | None = None

    def acquire(self) -> bool:
        conn = self.engine.connect()
        try:
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            )
            conn.commit()  # the lock is the session's, not the transaction's
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self.conn = conn
        return True

    def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            conn.commit()
        except DatabaseError:  # the server went away: it dropped the lock with the session
            conn.invalidate()
        finally:
            conn.close()


class WriterLock:
    """One writer per index: a second one fails at once with a clear message.

    Re-entrant within one engine, so a watcher can hold it while it indexes.
    """

    def __init__(self, path: str, database: AdvisoryLock | None = None) -> None:
        self.path = path
        self.database = database
        self.fd: int | None = None
        self.depth = 0

    def __enter__(self) -> WriterLock:
        self.depth += 1
        if self.depth > 1:
            return self
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            self.depth = 0
            raise _busy(os.path.dirname(self.path)) from None
        if self.database is not None:
            try:
                got = self.database.acquire()
            except BaseException:
                self._unlock_file()
                raise
            if not got:
                self._unlock_file()
                raise _busy(self.database.name)
        return self

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth == 0:
            try:
                if self.database is not None:
                    self.database.release()
            finally:
                self._unlock_file()

    def _unlock_file(self) -> None:
        self.depth = 0
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _busy(where: str) -> IndexUnusableError:
    return IndexUnusableError(
        f"another mmsearch process is writing to {where}; "
        "wait for it to finish (searches can run meanwhile)"
    )


class SharedLock:
    """Many holders of :meth:`shared` at once, or one of :meth:`exclusive` (writers first)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting_writers = 0

    @contextlib.contextmanager
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

    @contextlib.contextmanager
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
