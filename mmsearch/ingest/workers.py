"""Decoding files in worker processes, a bounded window ahead of the model.

Workers are spawned (not forked: the indexing process holds torch threads),
start with SIGINT ignored so Ctrl-C reaches the indexer alone, and end
themselves when the indexer dies. If the pool can't start or breaks (for
example a ``__main__`` that can't be re-imported), the remaining files are
decoded in-process. A file that can't be decoded comes back as its reason.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from mmsearch.media.decode import DecodedFile, DecodeError, DecodeOptions, decode_file, worker_init

POOL_MIN_FILES = 8  # below this, decoding in-process beats starting workers


def decode_in_order(
    todo: list[tuple[str, str]], options: DecodeOptions, workers: int, window: int
) -> Iterator[tuple[str, DecodedFile | str]]:
    """``(path, decoded file or reason)`` for each ``(path, modality)``, in order."""
    if len(todo) < POOL_MIN_FILES or workers < 1:
        for path, modality in todo:
            yield path, _decode_safely(path, modality, options)
        return
    ctx = multiprocessing.get_context("spawn")
    queue = iter(todo)
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_start_worker, initargs=(os.getpid(),)
    ) as pool:
        futures: list[tuple[str, str, Future[DecodedFile | str]]] = []
        with _workers_ignore_ctrl_c():  # the first submits start the workers
            for path, modality in itertools.islice(queue, window):
                futures.append(
                    (path, modality, pool.submit(_decode_safely, path, modality, options))
                )
        while futures:
            path, modality, future = futures.pop(0)
            try:
                result = future.result()
            except BrokenProcessPool:
                yield path, _decode_safely(path, modality, options)
                for path, modality, _ in futures:
                    yield path, _decode_safely(path, modality, options)
                for path, modality in queue:
                    yield path, _decode_safely(path, modality, options)
                return
            nxt = next(queue, None)
            if nxt is not None:
                futures.append((*nxt, pool.submit(_decode_safely, *nxt, options)))
            yield path, result


@contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Start worker processes with SIGINT ignored, which they inherit.

    Ctrl-C then reaches the indexer alone, which stops the pool, rather than
    printing a traceback from every worker. Only the main thread can do this.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _start_worker(indexer_pid: int) -> None:
    """Set up a decoding worker that ends itself when the indexer dies.

    A killed indexer (``kill -9``, a crash) can't stop its pool, and the workers
    would wait on their queue forever: each checks its parent once a second.
    """
    worker_init()

    def watch_parent() -> None:
        while os.getppid() == indexer_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch_parent, name="watch-indexer", daemon=True).start()


def _decode_safely(path: str, modality: str, options: DecodeOptions) -> Any:
    """Decode in a worker; a failure comes back as its reason (a string)."""
    try:
        return decode_file(path, modality, options)
    except DecodeError as exc:
        return str(exc)
    except Exception as exc:  # a decoder bug must not stop the run: report it
        return f"unexpected {type(exc).__name__}: {exc}"
