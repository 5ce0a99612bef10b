"""Walking the paths a user gives: which files to read, and which folders failed.

Rules: symbolic links to folders are not followed (so a link loop or a link
out of the library can't make a walk endless or index files twice); links to
files are read like files. Hidden files and folders (names starting with a
dot) are skipped. A folder that can't be read is reported, and the files the
index already knows under it are kept. Media files that are not regular files
(pipes, devices, broken links) or whose names are not valid UTF-8 are reported,
never opened.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from mmsearch.media.formats import modality_of


@dataclass
class Discovery:
    files: list[tuple[str, str]] = field(default_factory=list)  # (abs path, modality)
    failed_dirs: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    ignored: int = 0


def _reject_reason(path: str) -> str | None:
    """Why a media file can't be indexed at all, before anything reads it."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8; rename the file to index it"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "broken symbolic link or file vanished"
    except OSError as exc:
        return exc.strerror or str(exc)
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    return None


def discover(paths: list[str]) -> Discovery:
    """Find the files mmsearch reads under ``paths`` (absolute files or folders)."""
    found = Discovery()
    seen: set[str] = set()

    def add(path: str) -> None:
        if path in seen:
            return
        seen.add(path)
        modality = modality_of(path)
        if modality is None:
            found.ignored += 1
            return
        reason = _reject_reason(path)
        if reason:
            found.rejected.append((path, reason))
        else:
            found.files.append((path, modality))

    for top in paths:
        if not os.path.isdir(top):
            add(top)
            continue

        def on_error(err: OSError, top: str = top) -> None:
            found.failed_dirs.append((err.filename or top, err.strerror or str(err)))

        for folder, dirs, files in os.walk(top, onerror=on_error, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith("."):
                    add(os.path.join(folder, name))
    return found
