"""The background re-index that ``POST /api/index`` starts (with --allow-writes)."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import HTTPException

from mmsearch.engine import Engine


class IndexJob:
    """One re-index of the existing roots at a time, in a thread, with its own Engine.

    The serving engine sees the new files on its next search (it catches up from
    SQLite as it would after an ``mmsearch index`` in another process).
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.state: dict[str, Any] = {"state": "idle"}
        self.thread: threading.Thread | None = None

    def start(self) -> dict[str, Any]:
        with self.lock:
            if self.state["state"] == "running":
                raise HTTPException(409, "an index run is already going: see GET /api/index")
            self.state = {"state": "running", "started": time.time(), "done": 0, "total": None}
            self.thread = threading.Thread(target=self._run, name="mmsearch-index", daemon=True)
            self.thread.start()
            return dict(self.state)

    def status(self) -> dict[str, Any]:
        with self.lock:
            return dict(self.state)

    def _progress(self, p: Any) -> None:
        with self.lock:
            self.state.update(done=p.done, total=p.total)

    def _run(self) -> None:
        try:
            with Engine.open(self.folder, create=False) as writer:
                roots = [r["path"] for r in writer.roots() if r["exists"]]
                report = writer.index(roots, on_progress=self._progress) if roots else None
            with self.lock:
                self.state.update(
                    state="done",
                    finished=time.time(),
                    roots=roots,
                    report=report.to_dict() if report else None,
                )
        except Exception as exc:  # the job reports, the server keeps serving
            with self.lock:
                self.state.update(
                    state="failed", finished=time.time(), error=" ".join(str(exc).split())
                )
