"""Single frames and short clips, for thumbnails and for clips used as queries.

Indexing decodes a whole video sequentially (:mod:`mmsearch.media.video.sampler`);
a thumbnail needs one frame at a given time (:func:`frame_at`, one seek), and a
query clip needs its sampled frames as images (:func:`clip_images`).
"""

from __future__ import annotations

from fractions import Fraction

from PIL import Image

from mmsearch.media.video.reader import (
    VideoDecodeError,
    frame_to_image,
    rotation_cw,
    stream_rotate_tag,
)
from mmsearch.media.video.sampler import sample_frames

QUERY_CLIP_MAX_FRAMES = 32


def frame_at(path: str, at: float, size: int) -> Image.Image:
    """The frame shown at ``at`` seconds, upright, short side ``size``.

    Seeks to the keyframe before ``at`` and decodes forward (one seek: a
    thumbnail is one frame, unlike indexing, which decodes sequentially).
    Raises :class:`VideoDecodeError` when there is no such frame.
    """
    import av
    import av.error

    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            base = stream.time_base or Fraction(1, 90000)
            first = stream.start_time or 0
            container.seek(first + int(at / base), stream=stream, backward=True, any_frame=False)
            chosen = None
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                chosen = frame
                if (frame.pts - first) * base >= at - 1e-3:
                    break
            if chosen is None:
                raise VideoDecodeError(f"no frame at {at:.2f} s")
            rotation = rotation_cw(chosen, stream_rotate_tag(stream))
            return frame_to_image(chosen, size, stream.sample_aspect_ratio, rotation)
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise VideoDecodeError(f"can't read a frame at {at:.2f} s: {exc}") from exc


def clip_images(
    path: str,
    *,
    rate: float,
    size: int,
    shot_threshold: float,
    max_frames: int = QUERY_CLIP_MAX_FRAMES,
) -> list[Image.Image]:
    """The sampled frames of a short clip (at most ``max_frames``), as model-size images."""
    with sample_frames(
        path, rate=rate, size=size, shot_threshold=shot_threshold, max_frames=max_frames
    ) as frames:
        return [f.image for f in frames]
