"""A sample library (real photos, notes, a generated video) and a real ``mmsearch serve``.

lib = sample_library(tmp / "lib")
with serving(index_folder) as url:   # python -m mmsearch serve --port 0, in a subprocess
    requests.get(url + "api/health")
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support.media import real_photos
from tests.support.videogen import make_video

REPO = Path(__file__).resolve().parents[2]


def sample_library(folder: Path) -> Path:
    """Six real photos, two notes and a 6 s video (3 s coffee cup, 3 s cat) under ``folder``."""
    import skimage.data as data

    real_photos(folder / "photos")
    (folder / "notes").mkdir(parents=True, exist_ok=True)
    (folder / "notes" / "fox.txt").write_text(
        "The quick red fox jumps over the lazy dog near the river bank.\n", encoding="utf-8"
    )
    (folder / "notes" / "garden.md").write_text(
        "# Garden\n\nTomatoes and green beans grow in the garden every summer.\n",
        encoding="utf-8",
    )
    (folder / "videos").mkdir(exist_ok=True)
    make_video(folder / "videos" / "scenes.webm", [(data.coffee(), 3.0), (data.chelsea(), 3.0)])
    return folder


def env() -> dict[str, str]:
    """The environment for a subprocess that imports this checkout's mmsearch."""
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(REPO), out.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return out


@contextmanager
def serving(index: Path, args: Sequence[str] = (), timeout: float = 60.0) -> Iterator[str]:
    """Run ``mmsearch serve --index INDEX --port 0 ARGS`` and yield its URL (ends with /)."""
    cmd = [sys.executable, "-m", "mmsearch", "serve", "--index", str(index), "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = proc.stdout.readline()
        if "http://" not in line:
            proc.kill()
            raise RuntimeError(f"mmsearch serve did not start: {line!r} {proc.stderr.read()!r}")
        url = line[line.index("http://") :].split()[0]
        import requests

        while time.monotonic() < deadline:
            try:
                if requests.get(url + "api/health", timeout=2).status_code in (200, 401):
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
