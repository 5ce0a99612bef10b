"""Are two videos the same footage? Their informative frames must match in order.

A video's *signature* is a frame a second (at most ``MAX_SAMPLES``, spread over
the whole length), each with its pixel fingerprint
(:mod:`mmsearch.media.phash`) and the stored vector of the frame segment that
covers its time. Frames that carry no information (black, one flat colour, the
dark end of a fade) are dropped from the signature, so two videos that start
or end on black are not alike for it. Two signatures match over the longest
common subsequence of their frames (in order, gaps allowed: a re-encode may
drop or add a frame, a shot change adds a sample), where two frames match by
pixels (near) or by the model's cosine (similar); the share of the longer
signature that the match covers decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmsearch.media.phash import FLAT_STD, fingerprint
from mmsearch.media.video.sampler import VideoDecodeError, sample_frames

SAMPLE_RATE = 1.0  # signature frames per second
MAX_SAMPLES = 240  # longer videos are sampled more sparsely
SAMPLE_SIDE = 64  # short side of the decoded signature frames
FRAME_PIXELS = 0.90  # correlation of two 16x16 grey frames at which they are the same frame
FRAME_HASH_BITS = 10  # ...or pHash distance at most this
_SMALL = 16


@dataclass
class VideoSignature:
    """The informative sampled frames of a video, in order."""

    times: np.ndarray  # seconds
    hashes: np.ndarray  # uint64 pHashes
    thumbs: np.ndarray  # (n, 256) zero-mean unit-norm grey 16x16 frames
    vectors: np.ndarray  # (n, dim) the model's vector of the segment covering each time
    sampled: int  # frames sampled, informative or not

    @property
    def size(self) -> int:
        return len(self.times)


def _unit(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(len(values), -1).astype(np.float32)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return flat / np.maximum(norms, 1e-6)


def video_signature(
    path: str, duration: float | None, segments: list[tuple[float, float, np.ndarray]], dim: int
) -> VideoSignature | None:
    """The signature of the video at ``path``; ``None`` when it can't be decoded.

    ``segments`` are the stored frame segments ``(start, end, vector)`` in time order.
    """
    from PIL import Image

    rate = SAMPLE_RATE
    if duration and duration * rate > MAX_SAMPLES:
        rate = MAX_SAMPLES / duration
    times, hashes, thumbs = [], [], []
    sampled = 0
    try:
        with sample_frames(
            path, rate=rate, size=SAMPLE_SIDE, shot_threshold=1.0, max_frames=MAX_SAMPLES + 8
        ) as frames:
            for frame in frames:
                sampled += 1
                print_ = fingerprint(frame.image)
                if not print_.informative or print_.std < FLAT_STD:
                    continue
                small = Image.fromarray(print_.thumb, mode="F").resize(
                    (_SMALL, _SMALL), Image.Resampling.BILINEAR
                )
                times.append(frame.time)
                hashes.append(print_.phash)
                thumbs.append(np.asarray(small, dtype=np.float32))
    except (VideoDecodeError, OSError):
        return None
    vectors = np.zeros((len(times), dim), np.float32)
    for i, t in enumerate(times):
        vectors[i] = _vector_at(segments, t, dim)
    return VideoSignature(
        np.asarray(times, np.float64),
        np.asarray(hashes, np.uint64),
        _unit(np.asarray(thumbs)) if thumbs else np.zeros((0, _SMALL * _SMALL), np.float32),
        vectors,
        sampled,
    )


def _vector_at(segments: list[tuple[float, float, np.ndarray]], t: float, dim: int) -> np.ndarray:
    best: np.ndarray | None = None
    for start, end, vector in segments:
        if start <= t + 1e-6:
            best = vector
        if start <= t < end:
            return vector
    return best if best is not None else np.zeros(dim, np.float32)


def _lcs(match: np.ndarray) -> int:
    """Length of the longest in-order chain of matching frames (``match`` is n x m bool)."""
    n, m = match.shape
    prev = np.zeros(m + 1, np.int32)
    for i in range(n):
        cur = np.zeros(m + 1, np.int32)
        row = match[i]
        for j in range(m):
            cur[j + 1] = prev[j] + 1 if row[j] else max(prev[j + 1], cur[j])
        prev = cur
    return int(prev[m])


@dataclass(frozen=True)
class VideoMatch:
    pixel_share: float  # share of the longer signature matched in order by pixels
    cosine_share: float  # ... by the model's cosine
    cosine: float  # mean cosine of the aligned frames (by time order)
    matched: int
    frames: int  # informative frames of the longer signature


def match_videos(a: VideoSignature, b: VideoSignature, cosine_floor: float) -> VideoMatch:
    """How much of two videos' informative frames match in order."""
    longer = max(a.size, b.size)
    if a.size == 0 or b.size == 0:
        return VideoMatch(0.0, 0.0, 0.0, 0, longer)
    distance = np.bitwise_count(a.hashes[:, None] ^ b.hashes[None, :])
    pixels = (a.thumbs @ b.thumbs.T >= FRAME_PIXELS) | (distance <= FRAME_HASH_BITS)
    cosines = a.vectors @ b.vectors.T
    by_pixels = _lcs(pixels)
    by_cosine = _lcs(cosines >= cosine_floor)
    return VideoMatch(
        by_pixels / longer,
        by_cosine / longer,
        float(cosines.max(axis=1).mean()),
        by_pixels,
        longer,
    )
