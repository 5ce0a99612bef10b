"""Turning one video into frame segments: sample, embed in batches, fold redundancy.

Frames are decoded by a background thread (PyAV releases the GIL while it
decodes) into a small bounded queue, and embedded in batches by the caller's
thread, so decoding overlaps the model and memory holds only a few batches of
frames, whatever the video's length. After embedding, near-identical frames of
a shot are folded into the frame before them (:func:`mmsearch.video.fold_redundant`):
each kept frame becomes a segment with its time and the span it stands for.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from PIL import Image

from mmsearch.embedders.base import Embedder
from mmsearch.settings import Settings
from mmsearch.store.metadata import SegmentRow
from mmsearch.video import (
    SampledFrame,
    VideoDecodeError,
    VideoInfo,
    fold_redundant,
    sample_frames,
)

_END = object()


@dataclass
class EmbeddedVideo:
    info: VideoInfo
    segments: list[SegmentRow]
    sampled: int
    error: str | None = None  # truncated or damaged: the frames before it were kept
    meta: dict[str, Any] = field(default_factory=dict)


def _producer(frames: Any, out: queue.Queue[Any], stop: threading.Event) -> None:
    try:
        for frame in frames:
            while not stop.is_set():
                try:
                    out.put(frame, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
    except BaseException as exc:  # surfaced in the consumer
        out.put(exc)
        return
    out.put(_END)


def embed_video(
    path: str, embedder: Embedder, settings: Settings, ocr_policy: str = "off"
) -> EmbeddedVideo:
    """Sample, embed and fold one video. Raises ``VideoDecodeError`` if it can't be opened.

    With ``ocr_policy`` other than ``off``, the first kept frame of each shot
    (a keyframe) is read again at OCR resolution and its recognised lines become
    ``ocr`` segments spanning that frame's time (see :func:`keyframe_ocr`).
    """
    sampler = sample_frames(
        path,
        rate=settings.frame_rate,
        size=embedder.image_size,
        shot_threshold=settings.shot_threshold,
    )
    batch = settings.batch_size
    frames: queue.Queue[Any] = queue.Queue(maxsize=2 * batch)
    stop = threading.Event()
    thread = threading.Thread(target=_producer, args=(sampler, frames, stop), daemon=True)
    thread.start()
    times: list[float] = []
    shots: list[int] = []
    vectors: list[np.ndarray] = []
    pending: list[SampledFrame] = []
    try:
        while True:
            item = frames.get()
            if item is _END or isinstance(item, BaseException):
                if isinstance(item, BaseException):
                    raise item
                break
            pending.append(item)
            if len(pending) >= batch:
                vectors.append(embedder.embed_images([f.image for f in pending]))
                times += [f.time for f in pending]
                shots += [f.shot for f in pending]
                pending = []
        if pending:
            vectors.append(embedder.embed_images([f.image for f in pending]))
            times += [f.time for f in pending]
            shots += [f.shot for f in pending]
    finally:
        stop.set()
        thread.join()
        sampler.close()
    info = sampler.info
    vecs = np.concatenate(vectors) if vectors else np.zeros((0, embedder.dim), np.float32)
    duration = sampler.end_time if sampler.truncated else max(info.duration, sampler.end_time)
    kept = fold_redundant(times, shots, vecs, duration, threshold=settings.frame_dedup)
    segments = [
        SegmentRow(
            view="frame",
            vector=vecs[k.index],
            ord=i,
            t_start=k.start,
            t_end=k.end,
            t_best=k.time,
        )
        for i, k in enumerate(kept)
    ]
    meta: dict[str, Any] = {
        "codec": info.codec,
        "fps": info.fps,
        "rotation": info.rotation,
        "frames_sampled": len(times),
        "frames_kept": len(kept),
    }
    if ocr_policy != "off":
        firsts = [
            i for i, k in enumerate(kept) if i == 0 or shots[k.index] != shots[kept[i - 1].index]
        ]
        lines = keyframe_ocr(path, [segments[i] for i in firsts], embedder, ocr_policy)
        segments += lines
        meta["ocr"] = {"policy": ocr_policy, "keyframes": len(firsts), "lines": len(lines)}
    return EmbeddedVideo(info, segments, len(times), sampler.error, meta)


OCR_FRAME_SHORT_SIDE = 900  # about 1600 px long for 16:9, what mmsearch.ocr reads best


def keyframe_ocr(
    path: str, keyframes: list[SegmentRow], embedder: Embedder, policy: str
) -> list[SegmentRow]:
    """OCR segments for the given keyframes: one per recognised line, on the frame's span."""
    from mmsearch.ocr import ocr_image

    rows: list[tuple[SegmentRow, Any]] = []
    for frame in keyframes:
        try:
            image = frame_at(path, frame.t_best or 0.0, OCR_FRAME_SHORT_SIDE)
        except VideoDecodeError:
            continue  # the frame was indexed; its words just stay unread
        for line in ocr_image(image, policy).lines:
            rows.append((frame, line))
    vectors: Any = embedder.embed_texts([line.text for _, line in rows]) if rows else []
    return [
        SegmentRow(
            view="ocr",
            vector=vec,
            ord=frame.ord,
            t_start=frame.t_start,
            t_end=frame.t_end,
            t_best=frame.t_best,
            text=line.text,
            box=list(line.box),
        )
        for (frame, line), vec in zip(rows, vectors, strict=True)
    ]


def frame_at(path: str, at: float, size: int) -> Image.Image:
    """The frame shown at ``at`` seconds, upright, short side ``size``.

    Seeks to the keyframe before ``at`` and decodes forward (one seek: a
    thumbnail is one frame, unlike indexing, which decodes sequentially).
    """
    import av
    import av.error

    from mmsearch.video_reader import frame_to_image, rotation_cw, stream_rotate_tag

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


def query_frames(
    path: str, embedder: Embedder, settings: Settings, max_frames: int = 32
) -> np.ndarray:
    """Vectors of a short query clip's sampled frames (at most ``max_frames``)."""
    with sample_frames(
        path,
        rate=settings.frame_rate,
        size=embedder.image_size,
        shot_threshold=settings.shot_threshold,
        max_frames=max_frames,
    ) as frames:
        images = [f.image for f in frames]
    return embedder.embed_images(images)
