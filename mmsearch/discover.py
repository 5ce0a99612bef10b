"""Walking the paths a user gives: which files to read, and which folders failed.

Rules: symbolic links to folders are not followed (so a link loop or a link
out of the library can't make a walk endless or index files twice); links to
files are read like files. Hidden files and folders (names starting with a
dot) are skipped. A folder that can't be read is reported, and the files the
index already knows under it are kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from mmsearch.formats import modality_of


@dataclass
class Discovery:
    files: list[tuple[str, str]] = field(default_factory=list)  # (abs path, modality)
    failed_dirs: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    ignored: int = 0


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
