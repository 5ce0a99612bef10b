"""Distributed ingestion on a real local Ray cluster gives the local path's results."""

from __future__ import annotations

import contextlib
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from mmsearch import Engine
from mmsearch.store.schema import Asset, Segment
from tests.support.deps import need
from tests.support.media import real_photos, solid
from tests.support.videogen import make_video

ray = need("ray")

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> object:
    """One head node on this machine for the module (about 15 s to start)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def make_library(lib: Path) -> Path:
    photos = real_photos(lib / "photos")
    (lib / "notes").mkdir(parents=True)
    (lib / "notes" / "fox.txt").write_text("The quick red fox jumps over the lazy dog. " * 40)
    (lib / "notes" / "garden.md").write_text("# Garden\n\nTomatoes and beans grow in summer.\n")
    (lib / "notes" / "empty.txt").write_text("   \n")
    (lib / "broken.jpg").write_bytes(b"not a jpeg at all")
    scenes = [(solid((200, 40, 40)), 2.0), (solid((40, 40, 200)), 2.0)]
    make_video(lib / "clip.mp4", scenes, size=(160, 120))
    shutil.copy(photos["coffee"], lib / "coffee-copy.png")
    return lib


def contents(engine: Engine) -> dict[str, list[tuple]]:
    """Per file: its segments' view, order, times and text, and the vectors."""
    out: dict[str, list[tuple]] = {}
    with engine.meta.sessions() as s:
        for asset in s.scalars(select(Asset)):
            rows = s.scalars(select(Segment).where(Segment.asset_id == asset.id))
            key = f"{asset.relpath}|{asset.content_hash}|{asset.width}|{asset.height}"
            out[key] = sorted(
                (seg.view, seg.ord, seg.start, seg.end, seg.text, seg.vector) for seg in rows
            )
    return out


def test_ray_ingestion_equals_the_local_path(cluster: object, tmp_path: Path) -> None:
    lib = make_library(tmp_path / "lib")
    with Engine.open(tmp_path / "local", model="hash", ocr="off") as local:
        local_report = local.index([lib])
    with Engine.open(tmp_path / "ray", model="hash", ocr="off", ray="auto") as remote:
        ray_report = remote.index([lib])
        ray_contents = contents(remote)
        hits = [h.path for h in remote.search("red fox", k=3)]
    for field in ("added", "reused", "segments", "unchanged"):
        assert getattr(ray_report, field) == getattr(local_report, field), field
    assert sorted(s.path for s in ray_report.skipped) == sorted(
        s.path for s in local_report.skipped
    )
    with Engine.open(tmp_path / "local") as local:
        local_contents = contents(local)
    assert ray_contents.keys() == local_contents.keys()
    for key, segments in local_contents.items():
        theirs = ray_contents[key]
        assert [s[:5] for s in theirs] == [s[:5] for s in segments], key
        for mine, other in zip(segments, theirs, strict=True):
            a, b = (np.frombuffer(x[5], np.float16).astype(np.float32) for x in (mine, other))
            assert float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) >= 0.999
    assert str(lib / "notes" / "fox.txt") in hits


def test_ray_runs_keep_the_incremental_rules(cluster: object, tmp_path: Path) -> None:
    lib = make_library(tmp_path / "lib")
    idx = tmp_path / "idx"
    with Engine.open(idx, model="hash", ocr="off", ray="auto") as engine:
        first = engine.index([lib])
        assert first.added == 10 and sorted(s.path for s in first.skipped) == [
            str(lib / "broken.jpg"),
            str(lib / "notes" / "empty.txt"),
        ]
        again = engine.index([lib])
        assert again.added == again.updated == 0 and again.unchanged == first.added + first.reused
        (lib / "photos" / "chelsea.png").rename(lib / "cat.png")
        (lib / "notes" / "garden.md").write_text("# Garden\n\nNow only potatoes.\n")
        third = engine.index([lib])
        assert (third.moved, third.updated, third.added) == (1, 1, 0)
        assert engine.verify().ok


def test_a_driver_killed_mid_run_loses_nothing(cluster: object, tmp_path: Path) -> None:
    """``mmsearch index --ray auto`` killed with SIGKILL after some batches: rerun, verify."""
    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(60):
        solid(((i * 37) % 256, (i * 91) % 256, (i * 53) % 256), (96, 72), seed=i).save(
            lib / f"img{i:02d}.png"
        )
    idx = tmp_path / "idx"
    cmd = [sys.executable, "-m", "mmsearch", "index", str(lib), "--index", str(idx)]
    cmd += ["--model", "hash", "--ocr", "off", "--batch-size", "2", "--ray", "auto", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = idx / "index.sqlite"
    deadline = time.monotonic() + 120
    committed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(sqlite3.Error), sqlite3.connect(db) as conn:
            committed = conn.execute("SELECT count(*) FROM assets").fetchone()[0]
        if committed >= 4:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert 0 < committed < 60, "the driver should be killed mid-run"
    with Engine.open(idx, ray="auto") as engine:
        report = engine.index([lib])
        assert report.added + report.unchanged == 60 and report.unchanged >= committed
        assert engine.verify().ok
        assert engine.info()["assets"] == 60 and engine.info()["segments"] == 60
