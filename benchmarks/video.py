"""Video ingest speed: decode alone, model alone, whole pipeline, in one run.

    python -m benchmarks.video [--file CLIP.mp4] [--seconds 60] [--model openclip|offline|hash]

Without ``--file`` it makes a 720p (1280x720, 30 fps) H.264 video of the
given length from real photos that ship in installed packages, a slow pan
across each photo with a cut every 5 seconds. It prints:

- decode only: frames/s of sequential decoding with the shot detector and
  RGB conversion of the sampled frames (``sample_frames`` drained, no model);
- model only: images/s of the embedder on those sampled frames;
- whole pipeline: ``Engine.index`` on the file, as seconds of video per second
  of wall time ("x realtime"), with the segments kept after folding.

The ``openclip`` model is ViT-B-32 with random weights (real weights can't be
downloaded here; speed does not depend on weight values), in bf16 where the
CPU supports it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import package_photos, scratch, table
from benchmarks.ingest import make_embedder
from mmsearch import Engine
from mmsearch.media.video.sampler import sample_frames


def make_test_video(path: Path, seconds: float, fps: int = 30, shot: float = 5.0) -> Path:
    """A 1280x720 H.264 video panning across real photos, one photo per shot."""
    import av

    photos = package_photos()
    width, height = 1280, 720
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        frames = int(seconds * fps)
        for i in range(frames):
            t = i / fps
            photo = photos[int(t // shot) % len(photos)]
            big = photo.resize((int(width * 1.3), int(height * 1.3)), Image.Resampling.BILINEAR)
            progress = (t % shot) / shot
            x = int(progress * (big.width - width))
            y = int(progress * (big.height - height) / 2)
            arr = np.asarray(big.crop((x, y, x + width, y + height)))
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", type=Path, help="measure this video instead of a generated one")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--model", default="openclip", choices=["openclip", "offline", "hash"])
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    args = parser.parse_args()
    with scratch() as tmp:
        root = Path(tmp)
        (root / "videos").mkdir()
        if args.file:
            video = Path(args.file).resolve()
        else:
            video = make_test_video(root / "videos" / "test-720p.mp4", args.seconds)
        embedder = make_embedder(args.model, root, args.precision)

        start = time.perf_counter()
        frames = sample_frames(video, size=embedder.image_size)
        images = [f.image for f in frames]
        decode_s = time.perf_counter() - start
        duration = frames.end_time

        embedder.embed_images(images[:8])  # warm-up
        start = time.perf_counter()
        for i in range(0, len(images), 32):
            embedder.embed_images(images[i : i + 32])
        model_s = time.perf_counter() - start

        with Engine.open(root / "idx", embedder=embedder) as engine:
            start = time.perf_counter()
            report = engine.index([video])
            whole_s = time.perf_counter() - start
            segments = engine.info()["segments"]
        assert report.skipped == [], report.skipped
    label = f"{args.model} ({getattr(embedder, 'precision', '-')})"
    print(f"{video.name}: {duration:.1f} s, {frames.frames_decoded} frames decoded,")
    print(f"{len(images)} sampled (1/s plus shot changes), {segments} kept after folding\n")
    rows = [
        [
            "decode + sample (no model)",
            f"{frames.frames_decoded / decode_s:.0f} frames/s",
            f"{duration / decode_s:.1f}x realtime",
        ],
        [
            f"model only: {label}",
            f"{len(images) / model_s:.1f} images/s",
            f"{duration / model_s:.1f}x realtime",
        ],
        [
            "whole pipeline (Engine.index)",
            f"{whole_s:.1f} s",
            f"{duration / whole_s:.1f}x realtime",
        ],
    ]
    print(table(["stage", "rate", "video s per s"], rows))


if __name__ == "__main__":
    main()
