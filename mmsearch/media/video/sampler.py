"""Frame sampling: decode a video once and yield the frames worth embedding.

:func:`sample_frames` decodes the video sequentially (no seeking) and yields
:class:`SampledFrame`: one every ``1 / rate`` seconds plus the first frame of
every detected shot. Only kept frames are converted to RGB, directly at model
resolution (short side = ``size``) and turned upright according to the
rotation metadata. The returned :class:`FrameSampler` is an iterator that also
reports, once exhausted, whether the file was truncated or damaged
(``.error``, ``.truncated``) and how far decoding got (``.end_time``). A
truncated file yields the frames before the damage and stops without raising.

Timestamps are seconds from the first decoded frame, computed from the stream's
``pts * time_base`` (never from frame counting), so variable-frame-rate video is
timed correctly.

Opening and reading a file lives in :mod:`mmsearch.media.video.reader`, the shot
detector in :mod:`mmsearch.media.video.shots`; folding redundant frames after
embedding is an ingest step (:mod:`mmsearch.ingest.video`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from types import TracebackType

import av
import av.error
import numpy as np
from PIL import Image

from mmsearch.media.video.reader import (
    Reader,
    VideoDecodeError,
    VideoInfo,
    ffmpeg_reason,
    frame_to_image,
    probe,
    rotation_cw,
)
from mmsearch.media.video.shots import (
    DEFAULT_MIN_SHOT,
    DEFAULT_SHOT_THRESHOLD,
    Thumbnailer,
    shot_score,
)

__all__ = [
    "DEFAULT_MIN_SHOT",
    "DEFAULT_RATE",
    "DEFAULT_SHOT_THRESHOLD",
    "DEFAULT_SIZE",
    "FrameSampler",
    "SampledFrame",
    "VideoDecodeError",
    "VideoInfo",
    "probe",
    "sample_frames",
]

DEFAULT_RATE = 1.0
"""Uniform sampling rate, frames per second."""

DEFAULT_SIZE = 224
"""Short side, in pixels, of the images yielded by :func:`sample_frames`."""

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
        the duration a truncated file's frames span.
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
        clock = _Clock(reader.time_base, 1.0 / reader.fps if reader.fps else 1.0 / 30)
        cuts = _CutDetector(shot_threshold, min_shot)
        schedule = _Schedule(1.0 / rate)

        def frames() -> Iterator[av.VideoFrame]:
            yield first
            yield from reader.frames

        try:
            for frame in frames():
                time = clock.time_of(frame)
                self.frames_decoded += 1
                self.end_time = max(self.end_time, time + clock.frame_duration)
                is_cut = cuts.is_cut(frame, time)
                if not schedule.keep(time, is_cut):
                    continue
                image = self._convert(frame, size)
                if image is None:
                    continue
                is_start = is_cut or self.frames_kept == 0
                self.frames_kept += 1
                yield SampledFrame(time=time, image=image, shot=cuts.shot, is_shot_start=is_start)
                if max_frames is not None and self.frames_kept >= max_frames:
                    break  # not an error, and not truncation
            else:
                self._finish()
        finally:
            reader.close()

    def _convert(self, frame: av.VideoFrame, size: int) -> Image.Image | None:
        """The frame as an upright RGB image, or ``None`` (counted as damage) if it can't be."""
        reader = self._reader
        rotation = rotation_cw(frame, reader.rotate_tag) if frame.rotation else self.info.rotation
        try:
            return frame_to_image(frame, size, reader.sar, rotation)
        except (av.error.FFmpegError, ValueError) as exc:
            reader.damaged_packets += 1
            reader.last_decode_error = f"conversion failed: {ffmpeg_reason(exc)}"
            return None

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


class _Clock:
    """Seconds from the first frame, from ``pts``; time never runs backwards."""

    def __init__(self, time_base: float, nominal: float) -> None:
        self.time_base = time_base
        self.nominal = nominal  # one frame's duration when a frame doesn't say
        self.frame_duration = nominal
        self._origin: int | None = None  # pts of the first frame
        self._offset = 0.0  # added after a backwards timestamp jump
        self._prev = -math.inf

    def time_of(self, frame: av.VideoFrame) -> float:
        if frame.pts is None:
            time = self._prev + self.nominal if self._prev > -math.inf else 0.0
        else:
            if self._origin is None:
                self._origin = frame.pts
            time = (frame.pts - self._origin) * self.time_base + self._offset
            if time < self._prev - 1e-6:  # timestamps went backwards: keep going forward
                self._offset += self._prev + self.nominal - time
                time = self._prev + self.nominal
        if frame.duration:
            self.frame_duration = frame.duration * self.time_base
        self._prev = time
        return time


class _CutDetector:
    """Shot changes from a tiny grey copy of each frame (see :mod:`.shots`)."""

    def __init__(self, threshold: float, min_shot: float) -> None:
        self.threshold = threshold
        self.min_shot = min_shot
        self.shot = 0  # the current shot's number
        self._thumbnail = Thumbnailer()
        self._prev: np.ndarray | None = None
        self._last_cut = 0.0

    def is_cut(self, frame: av.VideoFrame, time: float) -> bool:
        try:
            thumb: np.ndarray | None = self._thumbnail(frame)
        except (av.error.FFmpegError, ValueError):  # an odd frame: no detection
            thumb = None
        cut = (
            thumb is not None
            and self._prev is not None
            and time - self._last_cut >= self.min_shot
            and shot_score(thumb, self._prev, self.threshold) >= self.threshold
        )
        self._prev = thumb
        if cut:
            self.shot += 1
            self._last_cut = time
        return cut


class _Schedule:
    """The uniform sampling clock: one frame per ``step`` seconds, restarted at each cut."""

    def __init__(self, step: float) -> None:
        self.step = step
        self._next = 0.0

    def keep(self, time: float, is_cut: bool) -> bool:
        if is_cut:
            self._next = time + self.step
            return True
        if time >= self._next - 1e-6:  # after a gap, catch up instead of emitting a burst
            self._next += self.step * (math.floor((time - self._next) / self.step) + 1)
            return True
        return False


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
