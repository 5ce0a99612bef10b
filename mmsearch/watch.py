"""Watch mode: keep an index current as files are added, changed, moved and deleted.

    from mmsearch import Engine
    from mmsearch.watch import watch

    with Engine.open("indexes/photos") as engine:
        watch(engine, ["~/Pictures"], on_burst=print)  # until Ctrl-C or stop_event.set()

File-system events (from ``watchfiles``) are grouped into bursts: a burst is
handled once ``debounce_ms`` pass without a new change (or ten times that after
its first change, so a steady stream is still indexed). Each burst is one
:meth:`Engine.sync` call, so the model sees the burst's files in batches, and a
move or rename inside or between watched folders, whose old path vanishes in the
same burst as the new one appears, keeps its vectors (found by content hash; no
model call). Before the first burst, :meth:`Engine.index` catches up with what
changed while nobody watched. The watcher holds the index's writer lock all the
time, so another writer fails at once (searches run meanwhile).

Ignored, as ``index`` ignores them: hidden files and folders (a name starting
with a dot); and the index folder itself when it lies in a watched folder.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mmsearch.engine import Engine
from mmsearch.engine.opening import expand
from mmsearch.errors import ConfigError, PathError
from mmsearch.ingest.report import IndexReport

MAX_BURST_FACTOR = 10  # a burst is cut after this many debounce periods


@dataclass
class Burst:
    """One handled group of changes; ``changes`` is 0 for the first catch-up pass."""

    changes: int
    report: IndexReport


BurstCallback = Callable[[Burst], None]


def watch(
    engine: Engine,
    paths: Sequence[str | os.PathLike[str]],
    *,
    debounce_ms: int = 500,
    stop_event: threading.Event | None = None,
    on_burst: BurstCallback | None = None,
) -> None:
    """Index ``paths``, then keep the index current until ``stop_event`` is set.

    Ctrl-C raises :class:`KeyboardInterrupt` as usual (between or during bursts;
    what was committed stays, see :mod:`mmsearch.ingest.indexer`).
    """
    import watchfiles

    if debounce_ms < 1:
        raise ConfigError("the debounce time must be at least 1 ms")
    roots = [expand(p) for p in paths]
    for root in roots:
        if not os.path.exists(root):
            raise PathError(f"no such file or folder: {root}")
    keep = _relevant(roots, engine.folder)
    emit = on_burst or (lambda _burst: None)
    events = watchfiles.watch(
        *roots,
        watch_filter=None,
        step=debounce_ms,
        debounce=debounce_ms * MAX_BURST_FACTOR,
        stop_event=stop_event,
        rust_timeout=debounce_ms,
        yield_on_timeout=True,  # the first yield says the watches are set: catch up then
    )
    with engine.writing():
        caught_up = False
        for changes in events:
            if not caught_up:
                emit(Burst(0, engine.index(roots)))
                caught_up = True
            changed = sorted({path for _, path in changes if keep(path)})
            if changed:
                emit(Burst(len(changed), engine.sync(changed)))


def _relevant(roots: list[str], index_folder: str) -> Callable[[str], bool]:
    """Whether a changed path matters: not hidden under its watched folder, not the index."""
    index = os.path.abspath(index_folder)

    def keep(path: str) -> bool:
        if path == index or path.startswith(os.path.join(index, "")):
            return False
        for root in roots:
            if path == root:
                return True
            if path.startswith(os.path.join(root, "")):
                rel = os.path.relpath(path, root)
                return not any(part.startswith(".") for part in rel.split(os.sep))
        return False

    return keep
