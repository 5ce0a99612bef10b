"""Palettes for pictures indexed without one, read by every ``mmsearch index`` run.

An index made before palettes (schema 2) or with ``--palette off`` has picture
segments (``pixels``, ``frame``) with no palette: they match no colour. Each
index run with ``--palette on`` gives the files under its paths the palettes
they lack, without the model: an image is decoded again (in worker processes),
a video frame is read at its time. Vectors and everything else stay as they
are. When nothing lacks a palette the pass costs one SQL query.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from sqlalchemy import select, update

from mmsearch.ingest.report import IndexReport, Skip
from mmsearch.kinds import VISUAL_VIEWS
from mmsearch.media.decode import DecodeError, load_image, worker_init
from mmsearch.media.palette import extract_palette
from mmsearch.store.metadata import PALETTE_MARK, MetadataStore
from mmsearch.store.schema import Meta, Segment

FRAME_SIDE = 128  # short side a video frame is read at for its palette


def _image_palette(path: str, max_pixels: int) -> Any:
    try:
        return load_image(path, FRAME_SIDE, max_pixels, palette=True).palette
    except DecodeError as exc:
        return str(exc)
    except OSError as exc:
        return exc.strerror or str(exc)


def _lacking(meta: MetadataStore, paths: list[str]) -> list[tuple[int, str, str, float | None]]:
    """(segment id, file path, modality, frame time) of picture segments without a palette."""
    no_palette = Segment.view.in_(VISUAL_VIEWS) & Segment.palette.is_(None)
    with meta.sessions() as s:
        if s.scalar(select(Segment.id).where(no_palette).limit(1)) is None:
            return []
        under = {a.id: a for p in paths for a in meta.assets_under(s, p)}
        rows = s.execute(
            select(Segment.id, Segment.asset_id, Segment.best_time).where(no_palette)
        ).all()
        return [
            (seg, meta.abspath(under[asset]), under[asset].modality, at)
            for seg, asset, at in rows
            if asset in under
        ]


def backfill_palettes(
    meta: MetadataStore, paths: list[str], max_pixels: int, workers: int, report: IndexReport
) -> int:
    """Give the picture segments under ``paths`` the palettes they lack; return how many."""
    todo = _lacking(meta, paths)
    if not todo:
        return 0
    images = [(seg, path) for seg, path, modality, _ in todo if modality == "image"]
    found: dict[int, Any] = {}
    if images:
        ctx = multiprocessing.get_context("spawn")
        n = max(1, min(len(images), workers or (os.cpu_count() or 2) - 1))
        with ProcessPoolExecutor(n, mp_context=ctx, initializer=worker_init) as pool:
            results = pool.map(_image_palette, [p for _, p in images], [max_pixels] * len(images))
            for (seg, path), result in zip(images, results, strict=True):
                if isinstance(result, str):
                    report.partial.append(Skip(path, f"no colour palette: {result}"))
                else:
                    found[seg] = result
    found.update(_frame_palettes([t for t in todo if t[2] == "video"], report))
    with meta.sessions.begin() as s:
        for seg, palette in found.items():
            s.execute(update(Segment).where(Segment.id == seg).values(palette=palette))
        mark = s.get(Meta, PALETTE_MARK)
        if mark is None:
            s.add(Meta(key=PALETTE_MARK, value=str(time.time())))
        else:
            mark.value = str(time.time())
    return len(found)


def _frame_palettes(
    frames: list[tuple[int, str, str, float | None]], report: IndexReport
) -> dict[int, Any]:
    from mmsearch.media.video.frames import frame_at
    from mmsearch.media.video.reader import VideoDecodeError

    out: dict[int, Any] = {}
    for seg, path, _, at in frames:
        try:
            out[seg] = extract_palette(frame_at(path, at or 0.0, FRAME_SIDE))
        except VideoDecodeError as exc:
            report.partial.append(Skip(path, f"no colour palette for a frame: {exc}"))
    return out
