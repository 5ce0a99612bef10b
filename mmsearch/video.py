"""Video decoding and frame sampling for indexing.

Three pieces, all pure library code (no engine wiring, no printing):

:func:`probe`
    Open a video, check that it has a decodable video stream and return a
    :class:`VideoInfo` (duration, display size, codec, frame rate, rotation).

:func:`sample_frames`
    Decode the video once, sequentially (no seeking), and yield the frames worth
    embedding as :class:`SampledFrame`: one every ``1 / rate`` seconds plus the
    first frame of every detected shot. Only kept frames are converted to RGB,
    directly at model resolution (short side = ``size``) and turned upright
    according to the rotation metadata. The returned :class:`FrameSampler` is an
    iterator that also reports, once exhausted, whether the file was truncated or
    damaged (``.error``, ``.truncated``) and how far decoding got
    (``.end_time``). A truncated file yields the frames before the damage and
    stops without raising.

:func:`fold_redundant`
    After embedding, drop sampled frames that look like the previous kept frame
    of the same shot (cosine ≥ ``threshold``) and give each kept frame the time
    span it stands for; the spans tile ``[0, duration]``.

Timestamps are seconds from the first decoded frame, computed from the stream's
``pts * time_base`` (never from frame counting), so variable-frame-rate video is
timed correctly.

Opening and reading a file lives in :mod:`mmsearch.video_reader`, the shot
detector in :mod:`mmsearch.video_shots`.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

import av
import av.error
import numpy as np
from PIL import Image

from mmsearch.video_reader import (
    Reader,
    VideoDecodeError,
    VideoInfo,
    ffmpeg_reason,
    frame_to_image,
    probe,
    rotation_cw,
)
from mmsearch.video_shots import (
    DEFAULT_MIN_SHOT,
    DEFAULT_SHOT_THRESHOLD,
    Thumbnailer,
    shot_score,
)

__all__ = [
    "DEFAULT_FOLD_THRESHOLD",
    "DEFAULT_MIN_SHOT",
    "DEFAULT_RATE",
    "DEFAULT_SHOT_THRESHOLD",
    "DEFAULT_SIZE",
    "VIDEO_EXTENSIONS",
    "FrameSampler",
    "KeptFrame",
    "SampledFrame",
    "VideoDecodeError",
    "VideoInfo",
    "fold_redundant",
    "probe",
    "sample_frames",
]

VIDEO_EXTENSIONS: frozenset[str] = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"})
"""File name suffixes (lower case) treated as videos."""

DEFAULT_RATE = 1.0
"""Uniform sampling rate, frames per second."""

DEFAULT_SIZE = 224
"""Short side, in pixels, of the images yielded by :func:`sample_frames`."""

DEFAULT_FOLD_THRESHOLD = 0.95
"""Cosine similarity at or above which :func:`fold_redundant` folds a frame into
the previous kept frame of the same shot."""

# A decode that ends this much before the duration the container announces
# (or by two frame durations, if longer) counts as truncated.
_TRUNCATION_SLACK = 0.5


@dataclass(frozen=True)
class SampledFrame:
    """A kept frame: its time (seconds from the first frame), an RGB image with
    short side ``size``, upright, the shot it belongs to (0, 1, ...) and whether
    it is the first frame of that shot."""

    time: float
    image: Image.Image
    shot: int
    is_shot_start: bool


@dataclass(frozen=True)
class KeptFrame:
    """A frame kept by :func:`fold_redundant`: ``index`` into the input lists,
    its ``time``, and the span ``[start, end)`` of the video it stands for."""

    index: int
    time: float
    start: float
    end: float


class FrameSampler(Iterator[SampledFrame]):
    """Iterator over the sampled frames of one video (see :func:`sample_frames`).

    Attributes, final once the iterator is exhausted:

    ``info``
        The :class:`VideoInfo` (available from the start).
    ``error``
        ``None`` when the whole stream decoded cleanly; otherwise a short reason:
        the file is truncated, or some packets were damaged and skipped.
    ``truncated``
        True when decoding stopped before the end of the video (read/decode
        error, or the frames ran out well before the announced duration).
    ``end_time``
        Seconds of video actually decoded (last frame time plus its duration);
        the duration to give :func:`fold_redundant` for a truncated file.
    ``frames_decoded`` / ``frames_kept``
        Counters.

    Use it as a context manager (or call :meth:`close`) to release the file
    early when not iterating to the end.
    """

    def __init__(
        self,
        reader: Reader,
        *,
        rate: float,
        size: int,
        shot_threshold: float,
        min_shot: float,
        max_frames: int | None,
    ) -> None:
        self._reader = reader
        first = reader.first_frame()
        self.info: VideoInfo = reader.info(first)
        self.error: str | None = None
        self.truncated = False
        self.end_time = 0.0
        self.frames_decoded = 0
        self.frames_kept = 0
        self._gen = self._run(first, rate, size, shot_threshold, min_shot, max_frames)

    def __iter__(self) -> FrameSampler:
        return self

    def __next__(self) -> SampledFrame:
        return next(self._gen)

    def close(self) -> None:
        """Stop decoding and release the file."""
        self._gen.close()
        self._reader.close()

    def __enter__(self) -> FrameSampler:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(
        self,
        first: av.VideoFrame,
        rate: float,
        size: int,
        shot_threshold: float,
        min_shot: float,
        max_frames: int | None,
    ) -> Generator[SampledFrame, None, None]:
        reader = self._reader
        tb = reader.time_base
        step = 1.0 / rate
        nominal = 1.0 / reader.fps if reader.fps else 1.0 / 30
        thumbnail = Thumbnailer()
        rotation = self.info.rotation

        origin: int | None = None  # pts of the first frame
        offset = 0.0  # added after a backwards timestamp jump
        prev_time = -math.inf
        prev_thumb: np.ndarray | None = None
        next_time = 0.0
        last_cut = 0.0
        shot = 0
        frame_duration = nominal

        def frames() -> Iterator[av.VideoFrame]:
            yield first
            yield from reader.frames

        try:
            for frame in frames():
                # ---- time from pts
                pts = frame.pts
                if pts is None:
                    time = prev_time + nominal if prev_time > -math.inf else 0.0
                else:
                    if origin is None:
                        origin = pts
                    time = (pts - origin) * tb + offset
                    if time < prev_time - 1e-6:  # timestamps went backwards: keep going forward
                        offset += prev_time + nominal - time
                        time = prev_time + nominal
                if frame.duration:
                    frame_duration = frame.duration * tb
                prev_time = time
                self.frames_decoded += 1
                self.end_time = max(self.end_time, time + frame_duration)

                # ---- shot detector on a tiny grey frame
                try:
                    thumb: np.ndarray | None = thumbnail(frame)
                except (av.error.FFmpegError, ValueError):  # an odd frame: no detection
                    thumb = None
                is_cut = False
                if thumb is not None and prev_thumb is not None and time - last_cut >= min_shot:
                    is_cut = shot_score(thumb, prev_thumb, shot_threshold) >= shot_threshold
                prev_thumb = thumb

                # ---- keep?
                keep = False
                if is_cut:
                    shot += 1
                    last_cut = time
                    next_time = time + step  # restart the uniform clock at the cut
                    keep = True
                elif time >= next_time - 1e-6:
                    next_time += step * (math.floor((time - next_time) / step) + 1)
                    keep = True
                if keep:
                    is_start = is_cut or self.frames_kept == 0
                    frame_rotation = (
                        rotation_cw(frame, reader.rotate_tag) if frame.rotation else rotation
                    )
                    try:
                        image = frame_to_image(frame, size, reader.sar, frame_rotation)
                    except (av.error.FFmpegError, ValueError) as exc:
                        reader.damaged_packets += 1
                        reader.last_decode_error = f"conversion failed: {ffmpeg_reason(exc)}"
                        continue
                    self.frames_kept += 1
                    yield SampledFrame(time=time, image=image, shot=shot, is_shot_start=is_start)
                    if max_frames is not None and self.frames_kept >= max_frames:
                        break  # not an error, and not truncation
            else:
                self._finish()
        finally:
            reader.close()

    def _finish(self) -> None:
        """Set ``error`` / ``truncated`` once every frame has been read."""
        reader = self._reader
        expected = reader.duration
        short = expected > 0 and self.end_time < expected - max(
            _TRUNCATION_SLACK, 2.0 / (reader.fps or 30.0)
        )
        if reader.error is not None:
            self.truncated = True
            self.error = f"stopped at {self.end_time:.1f} s: {reader.error}"
        elif short:
            self.truncated = True
            self.error = f"truncated: decoded {self.end_time:.1f} s of {expected:.1f} s"
        elif reader.damaged_packets:
            self.error = (
                f"damaged: {reader.damaged_packets} packet(s) could not be decoded"
                f" ({reader.last_decode_error})"
            )


def sample_frames(
    path: str | os.PathLike[str],
    *,
    rate: float = DEFAULT_RATE,
    size: int = DEFAULT_SIZE,
    shot_threshold: float = DEFAULT_SHOT_THRESHOLD,
    min_shot: float = DEFAULT_MIN_SHOT,
    max_frames: int | None = None,
) -> FrameSampler:
    """Decode ``path`` sequentially and yield the frames worth embedding.

    A frame is kept when its time reaches the next uniform sample time (one
    every ``1 / rate`` seconds; after a gap in the timestamps the clock catches
    up instead of emitting a burst) or when it starts a new shot (its shot
    score is ≥ ``shot_threshold``; the uniform clock then restarts from it).
    Kept frames are converted to RGB with short side ``size``, upright.
    At most ``max_frames`` frames are yielded when given.

    Opening is eager: a missing, empty, corrupt or audio-only file, or one whose
    first frame can't be decoded, raises :class:`VideoDecodeError` here.
    Iterating never raises for damaged data: decoding stops, and the returned
    :class:`FrameSampler`'s ``error`` / ``truncated`` say what happened::

        frames = sample_frames("clip.mp4")
        for f in frames:
            ...
        if frames.truncated:
            log(frames.error)
    """
    if not rate > 0:
        raise ValueError(f"rate must be positive, got {rate}")
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    reader = Reader(path)
    try:
        return FrameSampler(
            reader,
            rate=rate,
            size=size,
            shot_threshold=shot_threshold,
            min_shot=min_shot,
            max_frames=max_frames,
        )
    except BaseException:
        reader.close()
        raise


# --------------------------------------------------------------------------- folding


def fold_redundant(
    times: Sequence[float],
    shots: Sequence[int],
    vectors: np.ndarray,
    duration: float,
    threshold: float = DEFAULT_FOLD_THRESHOLD,
) -> list[KeptFrame]:
    """Fold near-duplicate sampled frames into the frame before them.

    ``times``, ``shots`` and the rows of ``vectors`` (embeddings, any scale)
    describe the sampled frames in time order. A frame whose embedding has
    cosine similarity ≥ ``threshold`` with the last *kept* frame of the same
    shot is dropped; the first frame of each shot is always kept. Each kept
    frame covers ``[start, end)``: from its time (the first from 0) to the next
    kept frame's time (the last to ``duration``, or to its own time if that is
    later), so the spans tile the video.
    """
    n = len(times)
    vecs = np.asarray(vectors, dtype=np.float64)
    if len(shots) != n or vecs.ndim != 2 or vecs.shape[0] != n:
        raise ValueError(
            f"times ({n}), shots ({len(shots)}) and vectors {vecs.shape} must describe "
            "the same frames"
        )
    if n == 0:
        return []
    if any(b < a for a, b in itertools.pairwise(times)):
        raise ValueError("times must be in increasing order")
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    unit = np.divide(vecs, norms, out=np.zeros_like(vecs), where=norms > 0)

    kept = [0]
    for i in range(1, n):
        last = kept[-1]
        if shots[i] == shots[last] and float(unit[i] @ unit[last]) >= threshold:
            continue
        kept.append(i)

    out: list[KeptFrame] = []
    for k, index in enumerate(kept):
        time = float(times[index])
        start = 0.0 if k == 0 else time
        end = float(times[kept[k + 1]]) if k + 1 < len(kept) else max(float(duration), time)
        out.append(KeptFrame(index=index, time=time, start=start, end=end))
    return out
