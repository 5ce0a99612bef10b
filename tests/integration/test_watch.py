"""Watch mode: the index follows files added, changed, moved and deleted, live."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mmsearch import Engine
from mmsearch.embedders.hashing import HashEmbedder
from mmsearch.errors import IndexUnusableError
from mmsearch.watch import Burst, watch
from tests.support.media import solid


def indexed(idx: Path) -> dict[str, tuple[int, str]]:
    """Indexed path -> (asset id, content hash), read straight from SQLite."""
    with sqlite3.connect(idx / "index.sqlite", timeout=10) as con:
        rows = con.execute(
            "SELECT r.path, a.relpath, a.id, a.content_hash FROM assets a"
            " JOIN roots r ON r.id = a.root_id"
        ).fetchall()
    return {os.path.join(root, rel): (aid, digest) for root, rel, aid, digest in rows}


def wait_until(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.02)


@contextmanager
def watching(engine: Engine, paths: list[Path]) -> Iterator[list[Burst]]:
    """Run the watcher in a thread; stop it through its event on the way out."""
    bursts: list[Burst] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def target() -> None:
        try:
            watch(engine, paths, debounce_ms=100, stop_event=stop, on_burst=bursts.append)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    wait_until(lambda: bool(bursts or errors), "the first pass")
    try:
        yield bursts
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive(), "the watcher did not stop"
    assert not errors, errors


def test_watch_follows_changes_and_moves_keep_their_vectors(tmp_path: Path) -> None:
    a, b, idx = tmp_path / "a", tmp_path / "b", tmp_path / "idx"
    (a / "sub").mkdir(parents=True)
    b.mkdir()
    solid((220, 30, 30)).save(a / "red.jpg")
    (a / "fox.txt").write_text("The quick red fox jumps over the lazy dog.")
    (a / "sub" / "one.txt").write_text("first note in a folder that will move")
    (a / "sub" / "two.txt").write_text("second note in a folder that will move")
    embedder = HashEmbedder()
    with Engine.open(idx, embedder=embedder) as engine, watching(engine, [a, b]) as bursts:
        assert (bursts[0].changes, bursts[0].report.added) == (0, 4)

        solid((30, 180, 30)).save(a / "green.jpg")  # added
        wait_until(lambda: str(a / "green.jpg") in indexed(idx), "green.jpg indexed")

        old_hash = indexed(idx)[str(a / "fox.txt")][1]
        (a / "fox.txt").write_text("A brown bear sleeps in a cave all winter long.")  # changed
        fox = str(a / "fox.txt")
        wait_until(lambda: indexed(idx).get(fox, (0, old_hash))[1] != old_hash, "fox.txt updated")

        calls = dict(embedder.calls)
        red_id = indexed(idx)[str(a / "red.jpg")][0]
        (a / "red.jpg").rename(a / "crimson.jpg")  # renamed inside a root
        wait_until(lambda: str(a / "crimson.jpg") in indexed(idx), "the rename seen")
        assert indexed(idx)[str(a / "crimson.jpg")][0] == red_id
        assert str(a / "red.jpg") not in indexed(idx)

        shutil.move(a / "crimson.jpg", b / "crimson.jpg")  # moved to another root
        wait_until(lambda: str(b / "crimson.jpg") in indexed(idx), "the move seen")
        assert indexed(idx)[str(b / "crimson.jpg")][0] == red_id

        sub_ids = {indexed(idx)[str(a / "sub" / n)][0] for n in ("one.txt", "two.txt")}
        shutil.move(a / "sub", b / "sub")  # a whole folder moved to another root
        wait_until(lambda: str(b / "sub" / "two.txt") in indexed(idx), "the folder move seen")
        assert {indexed(idx)[str(b / "sub" / n)][0] for n in ("one.txt", "two.txt")} == sub_ids
        assert embedder.calls == calls, "a moved file was embedded again"

        (b / "crimson.jpg").unlink()  # deleted
        (a / ".hidden.txt").write_text("not for the index")
        wait_until(lambda: str(b / "crimson.jpg") not in indexed(idx), "the deletion seen")

        moves = sum(burst.report.moved for burst in bursts)
        assert moves == 4 and all(burst.changes > 0 for burst in bursts[1:])
    assert set(indexed(idx)) == {
        str(a / "green.jpg"),
        str(a / "fox.txt"),
        str(b / "sub" / "one.txt"),
        str(b / "sub" / "two.txt"),
    }
    with Engine.open(idx) as reader:
        assert reader.verify().ok
        [hit] = reader.search("bear cave", k=1, modalities=["text"])
        assert hit.path == str(a / "fox.txt")


class BatchCounter(HashEmbedder):
    """The test embedder, counting model calls (batches) rather than items."""

    batches = 0

    def embed_texts(self, texts):  # type: ignore[no-untyped-def]
        self.batches += 1
        return super().embed_texts(texts)


def test_a_burst_is_one_model_batch_and_the_watcher_is_the_writer(tmp_path: Path) -> None:
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    lib.mkdir()
    embedder = BatchCounter()
    with Engine.open(idx, embedder=embedder, batch_size=64) as engine, watching(engine, [lib]):
        with Engine.open(idx) as other, pytest.raises(IndexUnusableError, match="another"):
            other.index([lib])
        staging = tmp_path / "staging"
        staging.mkdir()
        for i in range(12):
            (staging / f"note{i:02d}.txt").write_text(f"note number {i} about the harbour")
        shutil.move(staging, lib / "notes")  # twelve files appear at once
        wait_until(lambda: len(indexed(idx)) == 12, "twelve notes indexed")
        assert (embedder.batches, embedder.calls["texts"]) == (1, 12)


@pytest.mark.subprocess
def test_watch_command_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    lib.mkdir()
    (lib / "fox.txt").write_text("The quick red fox jumps over the lazy dog.")
    cmd = [sys.executable, "-m", "mmsearch", "watch", str(lib), "--index", str(idx)]
    proc = subprocess.Popen(
        [*cmd, "--model", "hash", "--debounce", "100", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        first = json.loads(lines.get(timeout=30))
        assert (first["changes"], first["added"]) == (0, 1)
        solid((30, 60, 220)).save(lib / "blue.png")
        burst = json.loads(lines.get(timeout=15))
        assert (burst["changes"], burst["added"]) == (1, 1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.stderr is not None and proc.stderr.read().strip() == "stopped"
