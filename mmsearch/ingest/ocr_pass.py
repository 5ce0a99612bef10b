"""A later OCR pass over an index: ``mmsearch index --ocr-only``.

A first index can run with ``--ocr off`` (fast); this pass then reads the
words of the images that have not had OCR at the requested policy: images
never OCR'd, and, for ``--ocr on``, images the ``auto`` gate skipped. Each
image is decoded again at OCR resolution in worker processes; its old OCR
segments are replaced by the new lines, embedded with the index's text
encoder. Pixels, tags and everything else stay as they are.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, select

from mmsearch.embedders.base import Embedder
from mmsearch.ingest.report import Progress, ProgressCallback, Skip
from mmsearch.kinds import OCR_STRENGTH
from mmsearch.media.decode import (
    DecodeError,
    DecodeOptions,
    load_image_for_ocr,
    ocr_summary,
    worker_init,
)
from mmsearch.store.metadata import MetadataStore
from mmsearch.store.schema import Asset, Segment
from mmsearch.store.sync import save_written
from mmsearch.store.vectors import VectorStore


@dataclass
class OcrReport:
    images: int = 0  # images read
    with_text: int = 0  # images where lines were found
    lines: int = 0
    skipped: list[Skip] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ocr_images": self.images,
            "ocr_with_text": self.with_text,
            "ocr_lines": self.lines,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
        }


def needs_ocr(meta: dict[str, Any] | None, policy: str) -> bool:
    """Whether an image's recorded OCR is weaker than ``policy``."""
    done = (meta or {}).get("ocr")
    if not done:
        return True
    stronger = OCR_STRENGTH[policy] > OCR_STRENGTH.get(done.get("policy", "off"), 0)
    return bool(done.get("gated")) and stronger


def _read(path: str, options: DecodeOptions) -> Any:
    try:
        _, result = load_image_for_ocr(path, options)
        return result
    except DecodeError as exc:
        return str(exc)
    except OSError as exc:
        return exc.strerror or str(exc)


def run_ocr_pass(
    meta: MetadataStore,
    vectors: VectorStore,
    embedder: Embedder,
    options: DecodeOptions,
    paths: list[str],
    workers: int,
    on_progress: ProgressCallback | None = None,
) -> OcrReport:
    """OCR the images under ``paths`` that need it; see the module docstring."""
    report = OcrReport()
    with meta.sessions() as s:
        todo = [
            (a.id, meta.abspath(a))
            for p in paths
            for a in meta.assets_under(s, p)
            if a.modality == "image" and needs_ocr(a.meta, options.ocr)
        ]
    if not todo:
        return report
    ctx = multiprocessing.get_context("spawn")
    n = max(1, workers or (os.cpu_count() or 2) - 1)
    with ProcessPoolExecutor(n, mp_context=ctx, initializer=worker_init) as pool:
        results = pool.map(_read, [p for _, p in todo], [options] * len(todo))
        for done, ((asset_id, path), result) in enumerate(zip(todo, results, strict=True), 1):
            if isinstance(result, str):
                report.skipped.append(Skip(path, result))
            else:
                _store(meta, vectors, embedder, asset_id, result, options.ocr, report)
            if on_progress:
                on_progress(Progress(done, len(todo), path))
    save_written(meta, vectors)
    return report


def _store(
    meta: MetadataStore,
    vectors: VectorStore,
    embedder: Embedder,
    asset_id: int,
    result: Any,
    policy: str,
    report: OcrReport,
) -> None:
    """Replace one image's OCR segments with ``result``'s lines."""
    texts = [line.text for line in result.lines]
    vecs = embedder.embed_texts(texts) if texts else np.zeros((0, embedder.dim), np.float32)
    rows = [
        Segment.new("ocr", v, ord=i, text=line.text, box=list(line.box))
        for i, (v, line) in enumerate(zip(vecs, result.lines, strict=True))
    ]
    with meta.sessions.begin() as s:
        old = list(
            s.scalars(select(Segment.id).where(Segment.asset_id == asset_id, Segment.view == "ocr"))
        )
        s.execute(delete(Segment).where(Segment.id.in_(old)))
        meta.add_segments(s, asset_id, rows)
        new = [
            i
            for i in s.scalars(
                select(Segment.id).where(Segment.asset_id == asset_id, Segment.view == "ocr")
            )
        ]
        asset = s.get(Asset, asset_id)
        if asset is not None:
            asset.meta = {**(asset.meta or {}), "ocr": ocr_summary(result, policy)}
    vectors.remove(np.asarray(old, dtype=np.int64))
    with meta.sessions() as s:
        for ids, batch in meta.vectors(s, new):
            vectors.add(ids, batch)
    report.images += 1
    report.lines += len(rows)
    report.with_text += bool(rows)
