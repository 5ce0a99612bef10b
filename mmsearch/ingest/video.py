"""Turning one video into frame segments: sample, embed in batches, fold redundancy.

Frames are decoded by a background thread (PyAV releases the GIL while it
decodes) into a small bounded queue, and embedded in batches by the caller's
thread, so decoding overlaps the model and memory holds only a few batches of
frames, whatever the video's length. After embedding, near-identical frames of
a shot are folded into the frame before them (:func:`fold_redundant`): each
kept frame becomes a segment with its time and the span it stands for. With
OCR on, the first kept frame of each shot is read again at OCR resolution
(:func:`keyframe_ocr`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch.embedders.base import Embedder
from mmsearch.ingest.ahead import ahead
from mmsearch.media.palette import extract_palette
from mmsearch.media.video.frames import frame_at
from mmsearch.media.video.sampler import (
    FrameSampler,
    SampledFrame,
    VideoDecodeError,
    VideoInfo,
    sample_frames,
)
from mmsearch.settings import Settings
from mmsearch.store.schema import Segment

DEFAULT_FOLD_THRESHOLD = 0.95
"""Cosine similarity at or above which :func:`fold_redundant` folds a frame into
the previous kept frame of the same shot."""

OCR_FRAME_SHORT_SIDE = 900  # about 1600 px long for 16:9, what mmsearch.media.ocr reads best


@dataclass
class EmbeddedVideo:
    info: VideoInfo
    segments: list[Segment]
    sampled: int
    error: str | None = None  # truncated or damaged: the frames before it were kept
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Embedded:
    """The sampled frames of a video, embedded: time, shot and vector of each."""

    times: list[float] = field(default_factory=list)
    shots: list[int] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    palettes: list[list[list[float]] | None] = field(default_factory=list)

    def add(self, frames: list[SampledFrame], embedder: Embedder, palette: bool) -> None:
        if frames:
            self.vectors.append(embedder.embed_images([f.image for f in frames]))
            self.times += [f.time for f in frames]
            self.shots += [f.shot for f in frames]
            self.palettes += [extract_palette(f.image) if palette else None for f in frames]

    def matrix(self, dim: int) -> np.ndarray:
        return np.concatenate(self.vectors) if self.vectors else np.zeros((0, dim), np.float32)


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
    embedded = _Embedded()
    for batch in _batches_in_background(sampler, settings.batch_size):
        embedded.add(batch, embedder, settings.palette == "on")
    info = sampler.info
    vectors = embedded.matrix(embedder.dim)
    duration = sampler.end_time if sampler.truncated else max(info.duration, sampler.end_time)
    kept = fold_redundant(
        embedded.times, embedded.shots, vectors, duration, threshold=settings.frame_dedup
    )
    segments = [
        Segment.new(
            "frame",
            vectors[k.index],
            ord=i,
            start=k.start,
            end=k.end,
            best_time=k.time,
            palette=embedded.palettes[k.index],
        )
        for i, k in enumerate(kept)
    ]
    meta: dict[str, Any] = {
        "codec": info.codec,
        "fps": info.fps,
        "rotation": info.rotation,
        "frames_sampled": len(embedded.times),
        "frames_kept": len(kept),
    }
    if ocr_policy != "off":
        shot_of = [embedded.shots[k.index] for k in kept]
        firsts = [i for i in range(len(kept)) if i == 0 or shot_of[i] != shot_of[i - 1]]
        lines = keyframe_ocr(path, [segments[i] for i in firsts], embedder, ocr_policy)
        segments += lines
        meta["ocr"] = {"policy": ocr_policy, "keyframes": len(firsts), "lines": len(lines)}
    return EmbeddedVideo(info, segments, len(embedded.times), sampler.error, meta)


def _batches_in_background(sampler: FrameSampler, size: int) -> Iterator[list[SampledFrame]]:
    """The sampler's frames in batches of ``size``, decoded ahead by a thread (at most two
    batches queued; an error while decoding is raised here). The sampler is closed at the end.
    """
    batch: list[SampledFrame] = []
    frames = ahead(sampler, 2 * size)
    try:
        for frame in frames:
            batch.append(frame)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        frames.close()  # the thread stopped before the sampler is closed under it
        sampler.close()


def keyframe_ocr(
    path: str, keyframes: list[Segment], embedder: Embedder, policy: str
) -> list[Segment]:
    """OCR segments for the given keyframes: one per recognised line, on the frame's span."""
    from mmsearch.media.ocr import ocr_image

    found: list[tuple[Segment, Any]] = []
    for frame in keyframes:
        try:
            image = frame_at(path, frame.best_time or 0.0, OCR_FRAME_SHORT_SIDE)
        except VideoDecodeError:
            continue  # the frame was indexed; its words just stay unread
        found += [(frame, line) for line in ocr_image(image, policy).lines]
    vectors: Any = embedder.embed_texts([line.text for _, line in found]) if found else []
    return [
        Segment.new(
            "ocr",
            vector,
            ord=frame.ord,
            start=frame.start,
            end=frame.end,
            best_time=frame.best_time,
            text=line.text,
            box=list(line.box),
        )
        for (frame, line), vector in zip(found, vectors, strict=True)
    ]


@dataclass(frozen=True)
class KeptFrame:
    """A frame kept by :func:`fold_redundant`: ``index`` into the input lists,
    its ``time``, and the span ``[start, end)`` of the video it stands for."""

    index: int
    time: float
    start: float
    end: float


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
