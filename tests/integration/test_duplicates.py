"""``mmsearch duplicates`` end to end: real photos, transformed copies, generated videos."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageOps

from mmsearch import Engine
from mmsearch.cli import cli
from mmsearch.errors import PathError
from tests.support.media import skimage_data_dir
from tests.support.videogen import make_video


def _photo(name: str) -> Image.Image:
    return Image.open(skimage_data_dir() / name).convert("RGB")


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """a/: the cat, an exact copy (older), a half-size JPEG with a grey border; b/: coffee,
    a copy of the cat."""
    lib = tmp_path / "lib"
    (lib / "a").mkdir(parents=True)
    (lib / "b").mkdir()
    cat = _photo("chelsea.png")
    cat.save(lib / "a" / "cat.png")
    shutil.copy(lib / "a" / "cat.png", lib / "a" / "cat-copy.png")
    os.utime(lib / "a" / "cat-copy.png", (1_000_000_000, 1_000_000_000))  # older: the keeper
    half = cat.resize((cat.width // 2, cat.height // 2))
    ImageOps.expand(half, border=12, fill=(128, 128, 128)).save(
        lib / "a" / "cat-small.jpg", quality=60
    )
    _photo("coffee.png").save(lib / "b" / "coffee.png")
    shutil.copy(lib / "a" / "cat.png", lib / "b" / "cat.png")
    return lib


def _groups(engine: Engine, *paths: Path, tiers: list[str] | None = None) -> list[dict]:
    return engine.duplicates([str(p) for p in paths] or None, tiers).to_dict()["groups"]


def _names(group: dict) -> set[str]:
    return {os.path.relpath(m["path"], Path(group["keeper"]).parents[1]) for m in group["members"]}


def test_tiers_keeper_and_json_shape(tmp_path: Path, photos: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["index", str(photos), "--model", "hash", "--ocr", "off"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["duplicates", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"groups"}
    for group in out["groups"]:
        assert set(group) == {"tier", "keeper", "members"}
        assert group["keeper"] in [m["path"] for m in group["members"]]
        for m in group["members"]:
            assert set(m) == {"path", "reason", "similarity"} and isinstance(m["similarity"], float)
    exact, near = out["groups"]  # largest first: three identical cats, then cat + its small copy
    assert exact["tier"] == "exact" and _names(exact) == {
        "a/cat.png",
        "a/cat-copy.png",
        "b/cat.png",
    }
    assert exact["keeper"].endswith("a/cat-copy.png")  # same size: the oldest wins
    assert all(m["similarity"] == 1.0 for m in exact["members"])
    assert near["tier"] == "near"
    assert _names(near) == {
        "a/cat-copy.png",
        "a/cat-small.jpg",
    }  # the exact group's keeper stands in
    assert near["keeper"].endswith("a/cat-copy.png")  # largest resolution
    small = next(m for m in near["members"] if m["path"].endswith("cat-small.jpg"))
    assert "pixels" in small["reason"] and "cosine" in small["reason"]
    # coffee is in no group: the model's cosine alone never makes a duplicate
    assert not any("coffee" in m["path"] for g in out["groups"] for m in g["members"])

    human = runner.invoke(cli, ["duplicates", "--tier", "near"], catch_exceptions=False)
    assert human.exit_code == 0 and "near: 2 files" in human.stdout and "exact" not in human.stdout


def test_path_scope_and_tier_filter(tmp_path: Path, photos: Path) -> None:
    with Engine.open(tmp_path / "idx", model="hash", ocr="off") as engine:
        engine.index([photos])
        only_b = _groups(engine, photos / "b")
        assert only_b == []  # b/cat.png's copies live in a/
        only_a = _groups(engine, photos / "a", tiers=["exact"])
        assert [g["tier"] for g in only_a] == ["exact"] and len(only_a[0]["members"]) == 2
        assert [g["tier"] for g in _groups(engine, tiers=["near"])] == ["near"]
        with pytest.raises(PathError):
            engine.duplicates([str(tmp_path / "nowhere")])
        before = engine.info()
        _groups(engine)
        assert engine.info() == before  # a read-only report


def _black() -> np.ndarray:
    return np.zeros((240, 320, 3), np.uint8)


def test_videos_starting_on_black_group_only_with_their_copy(tmp_path: Path) -> None:
    import skimage.data as data

    lib = tmp_path / "videos"
    lib.mkdir()
    scenes = [(_black(), 3.0), (data.chelsea(), 3.0), (data.rocket(), 2.0)]
    make_video(lib / "cat.mp4", scenes, motion=2.0)
    make_video(lib / "cat-reencoded.avi", scenes, motion=2.0)  # another codec and container
    make_video(lib / "coffee.mp4", [(_black(), 3.0), (data.coffee(), 5.0)], motion=2.0)
    with Engine.open(tmp_path / "idx", model="hash", ocr="off") as engine:
        engine.index([lib])
        groups = _groups(engine)
    assert len(groups) == 1, groups
    [group] = groups
    assert group["tier"] == "near"
    assert {Path(m["path"]).name for m in group["members"]} == {"cat.mp4", "cat-reencoded.avi"}
    copy = next(m for m in group["members"] if m["path"] != group["keeper"])
    assert "in order by pixels" in copy["reason"]


@pytest.mark.model
def test_offline_model_near_duplicates_and_look_alikes(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    cat = _photo("chelsea.png")
    cat.save(lib / "cat.png")
    w, h = cat.size
    cat.crop((w // 20, h // 20, w - w // 20, h - h // 20)).save(lib / "cat-crop.jpg", quality=40)
    rotated = cat.transpose(Image.Transpose.ROTATE_90)
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.save(lib / "cat-exif.jpg", quality=90, exif=exif.tobytes())
    _photo("motorcycle_left.png").save(lib / "moto-left.png")
    _photo("motorcycle_right.png").save(lib / "moto-right.png")
    _photo("coffee.png").save(lib / "coffee.png")
    with Engine.open(tmp_path / "idx", model="offline", ocr="off") as engine:
        engine.index([lib])
        groups = _groups(engine)
    by_tier = {g["tier"]: {Path(m["path"]).name for m in g["members"]} for g in groups}
    assert by_tier["near"] == {"cat.png", "cat-crop.jpg", "cat-exif.jpg"}
    # the stereo pair is the same scene from another eye: never near, at most similar
    assert by_tier.get("similar", {"moto-left.png", "moto-right.png"}) == {
        "moto-left.png",
        "moto-right.png",
    }
    assert "coffee.png" not in {n for names in by_tier.values() for n in names}
