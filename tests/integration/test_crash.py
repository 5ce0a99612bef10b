"""Nothing lost: ``mmsearch index`` killed with SIGKILL at any point, then rerun.

Each test starts the real CLI in a subprocess over a generated library, kills
it early, mid-run (some batches committed) or inside the vector-file save (held
there by ``tests/support/pausing_cli.py``, which runs the CLI with a pause injected
before each rename), reruns it to completion and checks: every
file indexed exactly once, no duplicate segments, the vector file on disk holds
exactly SQLite's segments with exactly their vectors, ``mmsearch verify`` is ok,
nothing committed before the kill was embedded again, and the killed indexer's
decoding workers did not outlive it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch.store.faiss_store import FaissStore

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

MEDIA = {".png", ".jpg", ".txt"}
WORDS = ["river", "stone", "cloud", "lamp", "garden", "window", "bread", "violin", "copper"]


def make_files(folder: Path, n_images: int, n_texts: int, seed: int) -> None:
    """Small PNG/JPEG images and text files, some texts long enough for several chunks."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n_images):
        pixels = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        ext = "png" if i % 3 else "jpg"
        Image.fromarray(pixels).save(folder / f"img{i:03d}.{ext}")
    for i in range(n_texts):
        words = rng.choice(WORDS, size=10 + 25 * (i % 4))
        (folder / f"note{i:03d}.txt").write_text(f"note {seed} {i} " + " ".join(words))


def media_files(lib: Path) -> set[str]:
    return {str(p) for p in lib.rglob("*") if p.suffix in MEDIA}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mmsearch", *args]


def index_cmd(lib: Path, idx: Path) -> list[str]:
    return cli("index", str(lib), "--index", str(idx), "--model", "hash", "--batch-size", "8")


PAUSING_CLI = Path(__file__).parents[1] / "support" / "pausing_cli.py"


def start(lib: Path, idx: Path, pause: Path | None = None) -> subprocess.Popen[str]:
    cmd = [*index_cmd(lib, idx), "--json"]
    if pause is not None:  # the same command through the launcher that holds each save
        cmd = [sys.executable, str(PAUSING_CLI), str(pause), *cmd[3:]]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_to_completion(lib: Path, idx: Path) -> dict:
    done = subprocess.run(
        [*index_cmd(lib, idx), "--json"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if entry.name.isdigit() and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the indexer alone, as ``kill -9`` would; its decoding workers must follow."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = group_members(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # clean up before failing
    proc.communicate()  # workers share its pipes: read them once all are gone
    assert not left, "decoding workers outlived the killed indexer"


def wait_for(what: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if proc.poll() is not None:
            raise AssertionError(f"indexer ended first: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            kill(proc)
            raise AssertionError("timed out")
        time.sleep(0.002)


def asset_count(idx: Path) -> int:
    try:
        with sqlite3.connect(idx / "index.sqlite", timeout=5) as con:
            return int(con.execute("SELECT count(*) FROM assets").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def snapshot(idx: Path) -> dict[str, tuple[int, float, tuple[int, ...]]]:
    """Path -> (asset id, indexed_at, segment ids) of every committed file."""
    with sqlite3.connect(idx / "index.sqlite") as con:
        rows = con.execute(
            "SELECT r.path, a.relpath, a.id, a.indexed_at,"
            " (SELECT group_concat(s.id) FROM segments s WHERE s.asset_id = a.id)"
            " FROM assets a JOIN roots r ON r.id = a.root_id"
        ).fetchall()
    return {
        os.path.join(root, rel): (aid, at, tuple(sorted(int(i) for i in segs.split(","))))
        for root, rel, aid, at, segs in rows
    }


def check_index(lib: Path, idx: Path) -> None:
    """Every file once, no duplicate segments, FAISS on disk == SQLite, verify ok."""

    with sqlite3.connect(idx / "index.sqlite") as con:
        dupes = con.execute(
            "SELECT root_id, relpath FROM assets GROUP BY root_id, relpath HAVING count(*) > 1"
        ).fetchall()
        seg_dupes = con.execute(
            "SELECT asset_id, view, ord FROM segments GROUP BY asset_id, view, ord"
            " HAVING count(*) > 1"
        ).fetchall()
        orphans = con.execute(
            "SELECT count(*) FROM segments WHERE asset_id NOT IN (SELECT id FROM assets)"
        ).fetchone()[0]
        segments = con.execute("SELECT id, vector FROM segments ORDER BY id").fetchall()
    assert (dupes, seg_dupes, orphans) == ([], [], 0)
    assert set(snapshot(idx)) == media_files(lib)

    # the vector files as a fresh process reads them (main part + fresh part, by their stamp)
    stamp = next(idx.glob("vectors-*.faiss.json"))
    dim = json.loads((idx / "manifest.json").read_text())["embedder"]["dim"]
    store = FaissStore(str(stamp)[: -len(".json")], dim=dim)
    store.load()
    ids = store.ids()
    assert sorted(ids.tolist()) == [i for i, _ in segments]
    assert len(set(ids.tolist())) == len(ids)
    stored = np.stack([np.frombuffer(v, np.float16) for _, v in segments]).astype(np.float32)
    in_faiss = store.vectors_of(np.asarray([i for i, _ in segments]))
    assert np.array_equal(in_faiss, stored), "the vector file holds stale vectors"
    named = set(json.loads(stamp.read_text())["files"].values())
    assert {p.name for p in idx.glob("vectors-*.g*")} <= named, "a save left files unnamed"
    assert not list(idx.glob("*.tmp-*")), "a killed save left its temporary file"

    done = subprocess.run(
        cli("verify", "--index", str(idx), "--json"), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["ok"] is True


def check_rerun(before: dict, report: dict, lib: Path, idx: Path) -> None:
    """The rerun added exactly what the killed run had not committed, and nothing more."""
    after = snapshot(idx)
    assert {p: after[p] for p in before} == before, "a committed file was embedded again"
    new_segments = sum(len(segs) for p, (_, _, segs) in after.items() if p not in before)
    assert report["added"] == len(media_files(lib)) - len(before)
    assert report["unchanged"] == len(before)
    assert report["segments"] == new_segments
    assert (report["updated"], report["removed"], report["skipped"]) == (0, 0, [])


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    make_files(lib / "a", 120, 40, seed=1)
    make_files(lib / "b", 120, 40, seed=2)
    return lib


def test_killed_early_then_rerun(lib: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    proc = start(lib, idx)
    wait_for(lambda: (idx / "manifest.json").exists(), proc)
    kill(proc)
    before = snapshot(idx) if (idx / "index.sqlite").exists() else {}
    check_rerun(before, run_to_completion(lib, idx), lib, idx)
    check_index(lib, idx)


def test_killed_mid_run_then_rerun(lib: Path, tmp_path: Path) -> None:
    total = len(media_files(lib))
    idx = tmp_path / "idx"
    proc = start(lib, idx)
    wait_for(lambda: asset_count(idx) > 0, proc)
    kill(proc)
    before = snapshot(idx)
    assert 0 < len(before) < total, "killed too late: no batch left to do"
    check_rerun(before, run_to_completion(lib, idx), lib, idx)
    check_index(lib, idx)


def _pause_at(flag: Path, proc: subprocess.Popen[str], wanted: Callable[[str], bool]) -> None:
    """Wait until the save is held before a rename onto a file ``wanted`` accepts."""
    while True:
        wait_for(flag.exists, proc)
        target = flag.read_text()
        if wanted(target):
            return
        flag.unlink()  # not this one: let it through


def test_killed_inside_the_vector_file_save_then_rerun(lib: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    flag = tmp_path / "pause"
    assert run_to_completion(lib, idx)["added"] == len(media_files(lib))
    newest = max(snapshot(idx).items(), key=lambda item: max(item[1][2]))[0]

    # Change the file whose segments have the largest ids, add files; kill before the
    # new vector file replaces the old one (SQLite has committed everything by then).
    Path(newest).write_bytes(b"a changed note about copper lamps " * 20)
    make_files(lib / "c", 30, 10, seed=3)
    proc = start(lib, idx, pause=flag)
    _pause_at(flag, proc, lambda target: ".fresh-" in target)  # the part an update writes
    kill(proc)
    before = snapshot(idx)
    assert set(before) == media_files(lib)
    report = run_to_completion(lib, idx)
    assert (report["added"], report["updated"], report["segments"]) == (0, 0, 0)
    assert snapshot(idx) == before
    check_index(lib, idx)

    # Again, killed between the vector file's rename and its stamp's; with a deletion.
    Path(newest).write_bytes(b"changed again: a violin by the harbour window " * 20)
    (lib / "a" / "img000.jpg").unlink()
    make_files(lib / "d", 30, 10, seed=4)
    flag.unlink(missing_ok=True)
    proc = start(lib, idx, pause=flag)
    _pause_at(flag, proc, lambda target: target.endswith(".json"))
    kill(proc)
    before = snapshot(idx)
    report = run_to_completion(lib, idx)
    assert (report["added"], report["updated"], report["segments"]) == (0, 0, 0)
    assert snapshot(idx) == before
    check_index(lib, idx)


def test_a_second_writer_fails_at_once_and_harms_nothing(lib: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    flag = tmp_path / "pause"
    total = len(media_files(lib))
    first = start(lib, idx, pause=flag)
    _pause_at(flag, first, lambda _target: asset_count(idx) == total)  # held in its last save
    started = time.monotonic()
    second = subprocess.run([*index_cmd(lib, idx), "--json"], capture_output=True, text=True)
    assert second.returncode == 1 and time.monotonic() - started < 10
    assert second.stderr.startswith("Error: another mmsearch process is writing")
    assert second.stderr.count("\n") == 1 and second.stdout == ""
    while first.poll() is None:  # release each pause of the first writer's save
        flag.unlink(missing_ok=True)
        time.sleep(0.01)
    out, err = first.communicate()
    assert first.returncode == 0, err
    assert json.loads(out)["added"] == total
    check_index(lib, idx)
