"""Writing the index's files safely: atomic replacement, and clearing what a crash left."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable


def atomic_write(
    path: str, data: bytes, before_rename: Callable[[str], None] | None = None
) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new, never a part.

    The bytes go to ``path.tmp-PID``, are flushed to disk, then renamed over
    ``path``. ``before_rename`` is called with ``path`` just before the rename
    (the crash tests stop a process there).
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if before_rename is not None:
        before_rename(path)
    os.replace(tmp, path)


def remove_dead_temporaries(path: str) -> None:
    """Delete ``path.tmp-PID`` files whose process is gone (killed while saving)."""
    folder, name = os.path.split(path)
    prefix = f"{name}.tmp-"
    for entry in os.listdir(folder or "."):
        pid = entry[len(prefix) :]
        if not entry.startswith(prefix) or not pid.isdigit() or _alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(folder, entry))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
