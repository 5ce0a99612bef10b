"""Hostile and odd input: each file is indexed correctly or reported with a reason."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch import Engine
from tests.support.media import solid
from tests.support.videogen import make_video, truncated_copy


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, dict[str, str | None]]:
    """Build the corpus; map file name -> expected reason fragment (None = indexed)."""
    root = tmp_path / "hostile"
    root.mkdir()
    expect: dict[str, str | None] = {}

    (root / "zero.jpg").write_bytes(b"")
    expect["zero.jpg"] = "empty"
    good = root / "good.jpg"
    solid((200, 40, 40), size=(640, 480)).save(good, quality=95)
    expect["good.jpg"] = None
    (root / "cut.jpg").write_bytes(good.read_bytes()[:300])
    expect["cut.jpg"] = "image"
    png = root / "good.png"
    solid((40, 200, 40), size=(320, 240)).save(png)
    expect["good.png"] = None
    (root / "cut.png").write_bytes(png.read_bytes()[:200])
    expect["cut.png"] = "image"
    (root / "lies.jpg").write_bytes(b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n")
    expect["lies.jpg"] = "not a readable image"
    (root / "text.png").write_text("just some text pretending to be a picture")
    expect["text.png"] = "not a readable image"
    (root / "bomb.png").write_bytes(_png_claiming(50_000, 50_000))
    expect["bomb.png"] = "decompression bomb"

    modes = {
        "cmyk.jpg": solid((10, 120, 200)).convert("CMYK"),
        "deep16.png": Image.fromarray(np.full((120, 160), 40000, np.uint16)),
        "palette.gif": solid((200, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE),
        "alpha.png": Image.new("RGBA", (200, 100), (0, 0, 255, 128)),
    }
    for name, image in modes.items():
        image.save(root / name)
        expect[name] = None
    exif = Image.Exif()
    exif[0x0112] = 8
    solid((90, 90, 200), size=(300, 200)).save(root / "rotated.jpg", exif=exif)
    expect["rotated.jpg"] = None
    frames = [solid((220, 30, 30)), solid((30, 30, 220))]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(root / "anim.webp", save_all=True, append_images=frames[1:], duration=100)
    expect["anim.gif"] = expect["anim.webp"] = None

    (root / "latin1.txt").write_bytes("Grüße aus Köln, café au lait".encode("latin-1"))
    (root / "utf16.txt").write_bytes("\ufeffnaïve façade".encode("utf-16-le"))
    expect["latin1.txt"] = expect["utf16.txt"] = None
    (root / "binary.txt").write_bytes(bytes(range(256)) * 4)
    expect["binary.txt"] = "binary"
    with open(root / "huge.txt", "wb") as f:  # 200 MB: refused by size, never read
        f.truncate(200 * 1024 * 1024)
    expect["huge.txt"] = "over the limit"

    import skimage.data as data

    video = make_video(tmp_path / "full.mp4", [(data.coffee(), 2.0), (data.rocket(), 2.0)])
    truncated_copy(video, root / "cut.mp4", keep=0.4)
    expect["cut.mp4"] = "video"

    (root / "loop").mkdir()
    (root / "loop" / "back").symlink_to(root, target_is_directory=True)  # a symlink loop
    outside = tmp_path / "outside"
    outside.mkdir()
    solid((1, 2, 3)).save(outside / "elsewhere.png")
    (root / "link-out.png").symlink_to(outside / "elsewhere.png")  # file link: read
    expect["link-out.png"] = None
    (root / "dir-out").symlink_to(outside, target_is_directory=True)  # folder link: not followed
    (root / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    expect["dangling.jpg"] = "broken symbolic link"
    os.mkfifo(root / "pipe.jpg")
    expect["pipe.jpg"] = "not a regular file"

    solid((5, 200, 5)).save(root / "with space.png")
    solid((5, 5, 200)).save(root / "new\nline.png")
    expect["with space.png"] = expect["new\nline.png"] = None
    bad_name = os.fsencode(root) + b"/bad-\xff\xfe.png"
    solid((50, 50, 50)).save(bad_name.decode("utf-8", "surrogateescape"))
    expect[os.fsdecode(b"bad-\xff\xfe.png")] = "not valid UTF-8"
    return root, expect


def test_hostile_corpus(tmp_path: Path, corpus: tuple[Path, dict[str, str | None]]) -> None:
    root, expect = corpus
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        report = engine.index([root])
        info = engine.info()
        assert engine.verify().ok
    skipped = {os.path.basename(s.path): s.reason for s in report.skipped}
    skipped.update({os.path.basename(s.path): s.reason for s in report.partial})
    for name, fragment in expect.items():
        if fragment is None:
            assert name not in skipped, (name, skipped.get(name))
        else:
            assert name in skipped, name
            assert fragment in skipped[name], (name, skipped[name])
    indexed = [n for n, f in expect.items() if f is None]
    assert report.added == len(indexed) == info["assets"]
    assert "elsewhere.png" not in str(info)  # the folder link out of the root was not followed


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_20000_pixel_square_jpeg_is_indexed_in_bounded_memory(tmp_path: Path) -> None:
    lib = tmp_path / "big"
    lib.mkdir()
    big = Image.new("RGB", (20_000, 20_000), (30, 90, 200))
    big.save(lib / "huge.jpg", quality=70)
    del big
    # index in a fresh process and read its peak memory (VmHWM: ru_maxrss would carry
    # this process's peak across exec): decoded at 1/8 scale with
    # Image.draft, it never holds the 1.2 GB a full decode would need
    script = (
        "import json, sys\n"
        "from mmsearch import Engine\n"
        "with Engine.open(sys.argv[1], model='hash', workers=1) as engine:\n"
        "    report = engine.index([sys.argv[2]])\n"
        "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
        "peak = int(status.split()[0])\n"
        "print(json.dumps({'added': report.added, 'skipped': len(report.skipped), 'kb': peak}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "idx"), str(lib)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    assert (result["added"], result["skipped"]) == (1, 0)
    assert result["kb"] < 600_000, result


@pytest.mark.subprocess
def test_unreadable_files_and_folders_are_reported(tmp_path: Path) -> None:
    """Permission denied, for real: the indexer runs without root's right to read anything."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and util-linux setpriv to drop the DAC capabilities")
    lib = tmp_path / "lib"
    (lib / "locked").mkdir(parents=True)
    solid((200, 40, 40)).save(lib / "ok.png")
    solid((40, 200, 40)).save(lib / "secret.png")
    solid((40, 40, 200)).save(lib / "locked" / "inside.png")
    (lib / "secret.png").chmod(0o000)
    (lib / "locked").chmod(0o000)
    script = (
        "import json, sys\n"
        "from mmsearch import Engine\n"
        "with Engine.open(sys.argv[1], model='hash', ocr='off') as engine:\n"
        "    report = engine.index([sys.argv[2]])\n"
        "print(json.dumps(report.to_dict()))\n"
    )
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    try:
        done = subprocess.run(
            [*drop, sys.executable, "-c", script, str(tmp_path / "idx"), str(lib)],
            capture_output=True,
            text=True,
        )
    finally:
        (lib / "locked").chmod(0o755)
        (lib / "secret.png").chmod(0o644)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    reasons = {os.path.basename(s["path"]): s["reason"] for s in report["skipped"]}
    assert report["added"] == 1
    assert "Permission denied" in reasons["secret.png"]
    assert "Permission denied" in reasons["locked"]


def test_a_file_that_disappears_while_indexing_is_reported(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(4):
        solid((60 * i, 100, 200), seed=i).save(lib / f"{i}.png")

    def vanish(progress) -> None:  # after the first file, the last one disappears
        if progress.done == 1:
            (lib / "3.png").unlink()

    with Engine.open(tmp_path / "idx", model="hash", workers=0) as engine:
        report = engine.index([lib], on_progress=vanish)
        assert report.added == 3
        assert [(os.path.basename(s.path), s.reason) for s in report.skipped] == [
            ("3.png", "No such file or directory")
        ]
        assert engine.verify().ok
