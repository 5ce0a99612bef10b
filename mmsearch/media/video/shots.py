"""Shot-cut detection on decoded frames, used by :mod:`mmsearch.media.video.sampler`'s sampler.

Every decoded frame is reduced to a 64x36 grey thumbnail read
straight from the 8-bit luma plane (a gather of 4x4 samples per cell and their
mean, in numpy: several times cheaper than
``frame.reformat(width=64, height=36, format="gray")``; docs/benchmarks.md,
section "Video"). The
score of a frame is the mean absolute difference (0-255 scale) to the previous
thumbnail, minimised over global shifts of up to ±2 thumbnail pixels so that
camera pans don't look like cuts. A cut is a score ≥ ``shot_threshold``
(:data:`DEFAULT_SHOT_THRESHOLD`), at most one per ``min_shot`` seconds.

The default threshold sits between the scores of hard cuts (real footage,
cuts between two photos) and those of continuous motion (a car crossing the
frame, a pan); the scores of both groups on this project's material are in
docs/benchmarks.md, section "Video".
"""

from __future__ import annotations

import av
import av.error
import numpy as np

DEFAULT_SHOT_THRESHOLD = 25.0
"""Shift-compensated mean absolute difference (0-255) between 64x36 grey
thumbnails of consecutive frames above which a frame starts a new shot."""

DEFAULT_MIN_SHOT = 0.5
"""Shortest shot, in seconds: a second cut within this time of the previous one
is ignored (flashes, very fast motion)."""

# Thumbnail used by the shot detector: GRID_W x GRID_H cells, each the mean of
# CELL x CELL luma samples spread over the cell.
_GRID_W, _GRID_H, _CELL = 64, 36, 4
_MAX_SHIFT = 2

# Pixel formats whose first plane is 8-bit luma (or grey), read without swscale.
_LUMA8_FORMATS = frozenset(
    {
        "yuv420p",
        "yuvj420p",
        "yuv422p",
        "yuvj422p",
        "yuv444p",
        "yuvj444p",
        "yuv440p",
        "yuvj440p",
        "yuv411p",
        "yuv410p",
        "yuva420p",
        "yuva422p",
        "yuva444p",
        "nv12",
        "nv21",
        "nv16",
        "nv24",
        "gray",
    }
)


class Thumbnailer:
    """Turns frames into 64x36 float32 grey thumbnails, cheaply."""

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self._rows = np.zeros(0, np.intp)
        self._cols = np.zeros(0, np.intp)

    def _grid(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        if self._key != (height, width):
            gh, gw = _GRID_H * _CELL, _GRID_W * _CELL
            self._rows = ((np.arange(gh) + 0.5) * height / gh).astype(np.intp)
            self._cols = ((np.arange(gw) + 0.5) * width / gw).astype(np.intp)
            self._key = (height, width)
        return self._rows, self._cols

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        height, width = frame.height, frame.width
        luma: np.ndarray | None = None
        if frame.format.name in _LUMA8_FORMATS:
            plane = frame.planes[0]
            stride = plane.line_size
            if plane.buffer_size >= stride * height:
                luma = np.frombuffer(memoryview(plane), np.uint8, count=stride * height).reshape(
                    height, stride
                )
        if luma is None:  # other pixel formats (10-bit, RGB, paletted): let swscale do it
            height, width = _GRID_H * _CELL, _GRID_W * _CELL
            small = frame.reformat(width=width, height=height, format="gray")
            luma = small.to_ndarray()
        rows, cols = self._grid(height, width)
        # Gather rows then columns (two cheap takes), then sum each cell's samples;
        # this is faster than np.ix_ plus a two-axis mean (docs/benchmarks.md, "Video").
        sample = luma[rows][:, cols].astype(np.float32)
        cells = sample.reshape(_GRID_H, _CELL, _GRID_W, _CELL).sum(axis=3).sum(axis=1)
        return cells * np.float32(1.0 / (_CELL * _CELL))


def shot_score(current: np.ndarray, previous: np.ndarray, threshold: float) -> float:
    """Mean absolute difference, minimised over small global shifts.

    The plain difference is computed first; the shift search (25 small
    differences) only runs when the plain one reaches ``threshold``.
    """
    plain = float(np.abs(current - previous).mean())
    if plain < threshold:
        return plain
    r = _MAX_SHIFT
    h, w = current.shape
    inner = current[r : h - r, r : w - r]
    best = plain
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            moved = previous[r + dy : h - r + dy, r + dx : w - r + dx]
            best = min(best, float(np.abs(inner - moved).mean()))
            if best < threshold:
                return best
    return best
