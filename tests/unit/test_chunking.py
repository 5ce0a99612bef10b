from __future__ import annotations

import itertools
import re

import pytest

from mmsearch.ingest.chunking import chunk_text


def spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\w+", text)]


def test_short_text_is_one_chunk() -> None:
    text = "a cat on a sofa"
    [chunk] = chunk_text(text, spans(text), max_tokens=10)
    assert (chunk.start, chunk.end, chunk.text) == (0, 15, text)


def test_long_text_windows_overlap_and_cover_everything() -> None:
    words = [f"w{i}" for i in range(100)]
    text = " ".join(words)
    chunks = chunk_text(text, spans(text), max_tokens=20, overlap=5)
    assert all(len(c.text.split()) <= 20 for c in chunks)
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end  # overlap
        assert a.text.split()[-5:] == b.text.split()[:5]
    covered = set()
    for c in chunks:
        covered.update(c.text.split())
    assert covered == set(words)
    for c in chunks:
        assert text[c.start : c.end] == c.text


def test_no_tokens_no_chunks_and_bad_window() -> None:
    assert chunk_text("   ", [], max_tokens=10) == []
    with pytest.raises(ValueError):
        chunk_text("x", [(0, 1)], max_tokens=0)


def test_text_without_spaces_is_cut_between_its_tokens() -> None:
    """Chinese has no spaces: the tokens (one per character here) are what is cut."""
    text = "北京是中华人民共和国的首都也是全国的政治文化和国际交往中心" * 10
    per_char = [(i, i + 1) for i in range(len(text))]
    chunks = chunk_text(text, per_char, max_tokens=50, overlap=10)
    assert all(len(c.text) <= 50 for c in chunks)
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for a, b in itertools.pairwise(chunks):
        assert a.end - b.start == 10
        assert text[b.start : a.end] == a.text[-10:] == b.text[:10]
