"""One writer per index: an advisory ``flock`` on ``writer.lock`` in the index folder.

A second writer (another ``mmsearch index``, ``rm``, ``tag``, ``watch``...) fails
at once with a clear message rather than waiting: a run can take hours, and a
user who started two would rather know. Readers never take the lock.
"""

from __future__ import annotations

import fcntl
import os

from mmsearch.errors import IndexUnusableError


class WriterLock:
    """One writer per index: a second one fails at once with a clear message.

    Re-entrant within one engine, so a watcher can hold it while it indexes.
    """

    def __init__(self, path: str) -> None:
        self.path = path
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
            raise IndexUnusableError(
                f"another mmsearch process is writing to {os.path.dirname(self.path)}; "
                "wait for it to finish (searches can run meanwhile)"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth == 0 and self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
