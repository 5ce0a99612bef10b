"""Reading ahead: items of a slow iterator (decoding, file reads) made by a thread.

The thread keeps at most ``depth`` items queued; an error raised while making
them is raised in the consumer's thread, where the item would have been; when
the consumer stops early the thread stops at its next item.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
_END = object()


def ahead(items: Iterable[T], depth: int) -> Generator[T, None, None]:
    """``items``, each made in a background thread while the caller works on the last."""
    out: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    thread = threading.Thread(target=_produce, args=(items, out, stop), daemon=True)
    thread.start()
    try:
        while (item := out.get()) is not _END:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _produce(items: Iterable[Any], out: queue.Queue[Any], stop: threading.Event) -> None:
    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        for item in items:
            if not put(item):
                return
    except BaseException as exc:  # surfaced in the consumer
        put(_Failure(exc))
        return
    put(_END)
