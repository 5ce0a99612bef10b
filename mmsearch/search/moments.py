"""Video moments: adjacent matching frames of one video, merged after fusion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mmsearch.search.retrieve import Candidate

MOMENT_MARGIN = 0.25  # of the gap between the best and the median candidate score


def moment_margin(scores: Any) -> float:
    """How far below a moment's best frame a neighbouring frame may score and still join it.

    A fraction (``MOMENT_MARGIN``) of the gap between the best and the median score, in
    whatever scale the ranking uses: frames that match about as well as the
    best extend the moment, frames that score like the background don't.
    Without it, a query over a small index would fetch every frame and merge a
    whole video into one moment.
    """
    arr = np.asarray(list(scores), dtype=np.float64)
    if len(arr) == 0:
        return 0.0
    return MOMENT_MARGIN * float(np.max(arr) - np.median(arr))


@dataclass
class Moment:
    """A run of adjacent matching frames of one video."""

    asset_id: int
    ords: set[int]
    start: float
    end: float
    best: tuple[float, Candidate]


def group_moments(frames: list[tuple[float, Candidate]], margin: float) -> list[Moment]:
    """Merge matching frames of a video that are adjacent in time into moments.

    ``frames`` are ``(score, frame)`` pairs. Taken best first, a frame whose
    ``ord`` is next to a moment of its video, and whose score is within
    ``margin`` of that moment's best, extends the moment; a frame next to no
    moment starts a new one; a weaker neighbour is dropped. So a video appears
    once per distinct moment.
    """
    moments: list[Moment] = []
    for score, seg in sorted(frames, key=lambda f: (-f[0], f[1].segment_id)):
        mine = [m for m in moments if m.asset_id == seg.asset_id]
        near = [m for m in mine if {seg.ord - 1, seg.ord + 1} & m.ords]
        if not near:
            if not any(seg.ord in m.ords for m in mine):
                start, end = seg.start or 0.0, seg.end or 0.0
                moments.append(Moment(seg.asset_id, {seg.ord}, start, end, (score, seg)))
            continue
        moment = near[0]
        if score < moment.best[0] - margin:
            continue
        moment.ords.add(seg.ord)
        moment.start = min(moment.start, seg.start or 0.0)
        moment.end = max(moment.end, seg.end or 0.0)
        for other in near[1:]:  # the frame bridges two moments: join them
            if other.best[0] - margin <= score:
                moment.ords |= other.ords
                moment.start = min(moment.start, other.start)
                moment.end = max(moment.end, other.end)
                moments.remove(other)
    return moments
