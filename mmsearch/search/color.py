"""The colour view: pictures' palettes, and one ranking per colour part of a query.

A colour part (``--color red``, ``Query().color("#1f5fbf")``, or a colour word
of a text part) has no model vector. It ranks the pictures (the ``pixels`` of
images, the ``frame`` segments of videos) by *coverage*: the share of the
picture its palette gives that colour (:func:`mmsearch.media.colors.coverage`).
A picture matches when the colour covers at least the part's share (``red:30%``),
or ``MIN_COVERAGE`` without one. The ranking is then fused late with the
other parts' rankings (see :mod:`mmsearch.search.rank` and ``docs/color.md``).

The palettes of the whole index are read once into arrays and kept until the
index changes (segment count and top id, and when old segments were last given
palettes: :mod:`mmsearch.ingest.palette_pass`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from mmsearch.kinds import VISUAL_VIEWS
from mmsearch.media.colors import (
    NAMED_COLORS,
    QueryColor,
    colour_words,
    coverage,
    nearest_names,
    parse_color,
)
from mmsearch.media.palette import to_hex
from mmsearch.search.query import Query
from mmsearch.search.results import Key
from mmsearch.store.metadata import PALETTE_MARK, MetadataStore
from mmsearch.store.schema import Asset, Meta, Segment

MIN_COVERAGE = 0.05  # without a share, a colour must cover 5% of a picture to match it
COLOR_WORD_WEIGHT = 0.5  # a colour word weighs half the text it came from (tuning split)


@dataclass
class ColorPart:
    """A colour part of a query: given (``--color``), or a colour word of a text part."""

    label: str
    color: QueryColor
    weight: float
    from_words: bool = False


def color_parts(query: Query) -> list[ColorPart]:
    """The query's colour parts, then (with ``color_words``) those its texts name."""
    given = [p for p in query.parts if p.kind == "color"]
    out = [ColorPart(p.describe(), parse_color(p.value), p.weight) for p in given]
    if query.color_words:
        seen = {c.color.text for c in out}
        for part in query.parts:
            if part.kind != "text" or part.negative:
                continue
            for word in colour_words(part.value):
                color = parse_color(word)
                if color.text not in seen:
                    seen.add(color.text)
                    label = f"color:{word} (from {part.value!r})"
                    out.append(ColorPart(label, color, part.weight * COLOR_WORD_WEIGHT, True))
    return out


@dataclass
class Palettes:
    """Every picture segment's palette as arrays (rows padded with share 0)."""

    segment_ids: np.ndarray  # (n,)
    keys: list[Key]
    lab: np.ndarray  # (n, p, 3)
    share: np.ndarray  # (n, p)
    names: np.ndarray  # (n, p): index of the nearest named colour
    missing: int = 0  # picture segments indexed without a palette (before schema 3)
    row_of: dict[Key, int] = field(default_factory=dict)

    @classmethod
    def build(cls, rows: list[tuple[int, Key, list[list[float]]]], missing: int) -> Palettes:
        width = max((len(p) for _, _, p in rows), default=1) or 1
        lab = np.zeros((len(rows), width, 3), np.float32)
        share = np.zeros((len(rows), width), np.float32)
        for i, (_, _, palette) in enumerate(rows):
            if palette:
                arr = np.asarray(palette, dtype=np.float32).reshape(-1, 4)
                lab[i, : len(arr)] = arr[:, :3]
                share[i, : len(arr)] = arr[:, 3]
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        keys = [r[1] for r in rows]
        names = nearest_names(lab) if len(rows) else np.zeros((0, width), np.int16)
        return cls(ids, keys, lab, share, names, missing, {k: i for i, k in enumerate(keys)})


class ColorView:
    """Rankings by colour over the index's palettes (cached per index state)."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta
        self._cache: tuple[tuple[tuple[int, int], str], Palettes] | None = None

    def palettes(self) -> Palettes:
        with self.meta.sessions() as s:
            mark = s.get(Meta, PALETTE_MARK)
            backfilled = mark.value if mark is not None else ""
        stamp = (self.meta.segment_stamp(), backfilled)
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        query = (
            select(Segment.id, Segment.asset_id, Asset.modality, Segment.palette)
            .join(Asset, Segment.asset_id == Asset.id)
            .where(Segment.view.in_(VISUAL_VIEWS))
            .order_by(Segment.id)
        )
        rows: list[tuple[int, Key, list[list[float]]]] = []
        missing = 0
        with self.meta.sessions() as s:
            for seg_id, asset_id, modality, palette in s.execute(query):
                if palette is None:
                    missing += 1
                    continue
                key = Key(asset_id, seg_id if modality == "video" else 0)
                rows.append((int(seg_id), key, palette))
        found = Palettes.build(rows, missing)
        self._cache = (stamp, found)
        return found

    def ranking(
        self,
        color: QueryColor,
        want: int,
        allowed: np.ndarray | None,
        also: set[Key] | None = None,
    ) -> dict[Key, tuple[int, float]]:
        """Matching pictures best first: key → (segment id, coverage).

        The ``want`` best matches among the ``allowed`` segment ids, plus any
        key of ``also`` (the other parts' candidates) that matches, so the
        late fusion knows the colour of every candidate it ranks.
        """
        pal = self.palettes()
        if not len(pal.segment_ids):
            return {}
        cov = coverage(color, pal.lab, pal.share, pal.names)
        floor = color.share if color.share is not None else MIN_COVERAGE
        ok = cov >= floor - 1e-9
        if allowed is not None:
            ok &= np.isin(pal.segment_ids, allowed)
        rows = np.flatnonzero(ok)
        rows = rows[np.lexsort((pal.segment_ids[rows], -cov[rows]))]
        chosen = list(rows[:want])
        if also:
            extra = {pal.row_of[k] for k in also if k in pal.row_of}
            chosen += sorted(r for r in extra - set(chosen) if ok[r])
        return {pal.keys[r]: (int(pal.segment_ids[r]), float(cov[r])) for r in chosen}

    def coverage_of(self, color: QueryColor, keys: set[Key]) -> dict[Key, float]:
        """The coverage of ``color`` in each of ``keys`` (0 for a key with no palette)."""
        pal = self.palettes()
        rows = {k: pal.row_of[k] for k in keys if k in pal.row_of}
        out = dict.fromkeys(keys, 0.0)
        if rows:
            order = np.fromiter(rows.values(), dtype=np.int64)
            cov = coverage(color, pal.lab[order], pal.share[order], pal.names[order])
            out.update({k: float(c) for k, c in zip(rows, cov, strict=True)})
        return out

    def describe(self, key: Key) -> list[dict[str, Any]] | None:
        """A picture's palette for ``explain``: hex, nearest name and share of each colour."""
        pal = self.palettes()
        row = pal.row_of.get(key)
        if row is None:
            return None
        return [
            {
                "hex": to_hex(pal.lab[row, j]),
                "name": NAMED_COLORS[int(pal.names[row, j])][0],
                "share": round(float(pal.share[row, j]), 3),
            }
            for j in range(pal.share.shape[1])
            if pal.share[row, j] > 0
        ]


def color_notes(view: ColorView, colors: list[ColorPart]) -> list[str]:
    """What a colour query must tell: pictures that have no palette match no colour."""
    if not colors:
        return []
    missing = view.palettes().missing
    if not missing:
        return []
    return [
        f"{missing} pictures were indexed without a colour palette (an index made before"
        " palettes, or with --palette off) and match no colour; run mmsearch index on their"
        " folders (with --palette on) to read their palettes"
    ]
