"""Opening a video with PyAV: checks, stream choice, metadata, packet-by-packet decode.

:func:`probe` opens a file, decodes its first frame and returns a
:class:`VideoInfo`. :class:`Reader` is the open stream that
:mod:`mmsearch.media.video.sampler`'s sampler decodes from: damaged packets are skipped and
counted, a read error ends the stream and is recorded, so decoding always ends.
:func:`frame_to_image` turns a decoded frame into an upright RGB image.

Limits: truncation is noticed from a read error or from frames ending more than
0.5 s before the duration the container announces; an mp4/mov written with its
index (``moov``) at the end can't be opened at all once cut, and raises
:class:`VideoDecodeError`. Damage a demuxer silently resyncs over (Matroska
clusters) is not reported. Only the rotation part of a display matrix is
applied; mirroring is ignored.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
from PIL import Image

from mmsearch.errors import MmsearchError

# Give up on a file when no frame comes out of this many packets at its start.
_MAX_PACKETS_BEFORE_FIRST_FRAME = 500


class VideoDecodeError(MmsearchError):
    """A file can't be read as a video: missing, empty, corrupt, or no video stream."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video.

    ``width`` and ``height`` are the display size: after the sample aspect ratio
    and the rotation are applied (a portrait phone video is reported portrait).
    ``rotation`` is the clockwise angle, one of 0, 90, 180, 270, by which the
    decoded pictures are turned for display (the convention of the old ``rotate``
    tag). ``duration`` is in seconds as the container announces it, 0.0 when it
    doesn't; ``fps`` is the average frame rate, ``None`` when unknown.
    ``has_video`` is always true for a returned info (probe raises otherwise).
    """

    duration: float
    width: int
    height: int
    codec: str
    fps: float | None
    rotation: int
    has_video: bool = True


# --------------------------------------------------------------------------- opening


def rotation_cw(frame: av.VideoFrame, stream_tag: int) -> int:
    """Clockwise display rotation of ``frame`` in {0, 90, 180, 270}."""
    ccw = frame.rotation  # from the DISPLAYMATRIX side data, counter-clockwise
    if ccw == 0:
        return stream_tag
    return (round(-ccw / 90) % 4) * 90


def stream_rotate_tag(stream: av.video.stream.VideoStream) -> int:
    """The legacy ``rotate`` metadata (clockwise degrees) some demuxers still set."""
    raw = stream.metadata.get("rotate")
    if not raw:
        return 0
    try:
        return (round(float(raw) / 90) % 4) * 90
    except ValueError:
        return 0


def _display_size(width: int, height: int, sar: Fraction | None, rotation: int) -> tuple[int, int]:
    w = float(width)
    if sar is not None and sar > 0 and sar != 1:
        w = width * float(sar)
    dw, dh = max(1, round(w)), height
    return (dh, dw) if rotation in (90, 270) else (dw, dh)


def _parse_hms(text: str) -> float | None:
    """Parse Matroska's per-track ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``)."""
    try:
        h, m, s = text.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except ValueError:
        return None


def _stream_duration(container: Any, stream: av.video.stream.VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION")
    if tag:
        parsed = _parse_hms(tag)
        if parsed is not None:
            return parsed
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _stream_fps(stream: av.video.stream.VideoStream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate:
            return float(rate)
    return None


def ffmpeg_reason(exc: BaseException) -> str:
    """A short human reason from an FFmpeg error (without the file name)."""
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return str(exc.strerror).lower()
    return str(exc) or type(exc).__name__


class Reader:
    """An open video stream, decoded packet by packet with errors recorded."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._check_file()
        try:
            self.container = av.open(str(self.path), metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(f"cannot open video: {ffmpeg_reason(exc)}") from exc
        except (OSError, ValueError) as exc:  # pragma: no cover - depends on the platform
            raise VideoDecodeError(f"cannot open video: {exc}") from exc
        try:
            self.stream = self._pick_stream()
            ctx = self.stream.codec_context
            if ctx is None:
                raise VideoDecodeError("no decoder for this video codec")
            ctx.thread_type = "AUTO"
            self.codec = ctx.codec.canonical_name or ctx.name  # 'av1', not 'libdav1d'
            self.time_base = float(self.stream.time_base or Fraction(1, 90000))
            self.rotate_tag = stream_rotate_tag(self.stream)
            self.duration = _stream_duration(self.container, self.stream)
            self.fps = _stream_fps(self.stream)
            self.sar = self.stream.sample_aspect_ratio
        except BaseException:
            self.container.close()
            raise
        self.error: str | None = None
        self.damaged_packets = 0
        self.last_decode_error = ""
        self.frames = self._decode()

    def _check_file(self) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError as exc:
            raise VideoDecodeError("no such file") from exc
        except OSError as exc:
            raise VideoDecodeError(f"cannot read file: {exc.strerror or exc}") from exc
        if not self.path.is_file():
            raise VideoDecodeError("not a regular file")
        if size == 0:
            raise VideoDecodeError("empty file (0 bytes)")

    def _pick_stream(self) -> av.video.stream.VideoStream:
        videos = list(self.container.streams.video)
        if not videos:
            kinds = sorted({s.type for s in self.container.streams})
            what = " and ".join(kinds) + " only" if kinds else "no streams"
            raise VideoDecodeError(f"no video stream ({what})")
        attached = av.stream.Disposition.attached_pic
        moving = [s for s in videos if not (s.disposition & attached)]
        if not moving:
            raise VideoDecodeError("no video stream (only a cover picture)")
        best = max(moving, key=lambda s: (s.codec_context is not None, s.width * s.height))
        return best

    def _decode(self) -> Generator[av.VideoFrame, None, None]:
        """Yield decoded frames; record damage in ``error`` / ``damaged_packets``.

        A packet that fails to decode is skipped (the decoder resumes at the next
        keyframe); a read error from the demuxer ends the stream. Every packet
        moves the demuxer forward, so this always ends.
        """
        packets = self.container.demux(self.stream)
        seen_frame = False
        packets_read = 0
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as exc:
                self.error = f"read error: {ffmpeg_reason(exc)}"
                break
            packets_read += 1
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                self.damaged_packets += 1
                self.last_decode_error = ffmpeg_reason(exc)
                frames = []
            for frame in frames:
                seen_frame = True
                yield frame
            if not seen_frame and packets_read >= _MAX_PACKETS_BEFORE_FIRST_FRAME:
                self.error = f"no frame decoded from the first {packets_read} packets"
                return
        # Stopped early: drain the frames the (threaded) decoder still holds.
        with contextlib.suppress(av.error.FFmpegError):
            yield from self.stream.codec_context.decode(None)

    def first_frame(self) -> av.VideoFrame:
        """Decode the first frame, or raise :class:`VideoDecodeError`."""
        try:
            return next(self.frames)
        except StopIteration:
            reason = self.error or (
                f"decode error: {self.last_decode_error}" if self.last_decode_error else ""
            )
            suffix = f": {reason}" if reason else ""
            raise VideoDecodeError(f"no decodable video frame{suffix}") from None

    def info(self, first: av.VideoFrame) -> VideoInfo:
        rotation = rotation_cw(first, self.rotate_tag)
        width, height = _display_size(first.width, first.height, self.sar, rotation)
        return VideoInfo(
            duration=self.duration,
            width=width,
            height=height,
            codec=self.codec,
            fps=self.fps,
            rotation=rotation,
        )

    def close(self) -> None:
        self.frames.close()
        self.container.close()


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Open ``path``, decode its first video frame and describe the video.

    Raises :class:`VideoDecodeError` for a missing, empty, corrupt or unsupported
    file and for files without a video stream (audio only).
    """
    reader = Reader(path)
    try:
        return reader.info(reader.first_frame())
    finally:
        reader.close()


_TRANSPOSE = {
    90: Image.Transpose.ROTATE_270,  # PIL rotates counter-clockwise
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}


def frame_to_image(
    frame: av.VideoFrame, size: int, sar: Fraction | None, rotation: int
) -> Image.Image:
    """RGB image of ``frame`` with short side ``size``, aspect kept, upright."""
    disp_w = frame.width * float(sar) if sar is not None and sar > 0 else float(frame.width)
    disp_h = float(frame.height)
    scale = size / min(disp_w, disp_h)
    width = max(1, round(disp_w * scale))
    height = max(1, round(disp_h * scale))
    image: Image.Image = frame.to_image(width=width, height=height, interpolation="AREA")
    if rotation in _TRANSPOSE:
        image = image.transpose(_TRANSPOSE[rotation])
    return image
