"""Split long texts into token windows that fit the text encoder.

Chunks are cut by tokens, not characters, so each fits the encoder's context
(CLIP reads 77 tokens, MiniLM 256 word pieces, the ``multilingual`` model's
USE 256 SentencePiece pieces, its e5 variant 500). Consecutive chunks overlap
by a few tokens so a phrase cut at a boundary is still whole in one of them.
Each chunk keeps its character span in the original text, so a hit can show
its snippet.

The spans come from the embedder's own tokenizer (``token_spans``), so text
written without spaces (Chinese, Japanese, Thai) is cut between two of its
tokens like any other, never by words it does not have.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int
    text: str


def chunk_text(
    text: str,
    spans: list[tuple[int, int]],
    max_tokens: int,
    overlap: int = 8,
) -> list[Chunk]:
    """Group token ``spans`` of ``text`` into windows of at most ``max_tokens``.

    ``overlap`` tokens are repeated between neighbours (clamped below
    ``max_tokens // 2``). A text without tokens gives no chunks.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be positive")
    if not spans:
        return []
    overlap = max(0, min(overlap, max_tokens // 2))
    step = max_tokens - overlap
    chunks: list[Chunk] = []
    first = 0
    while True:
        last = min(first + max_tokens, len(spans)) - 1
        start, end = spans[first][0], spans[last][1]
        chunks.append(Chunk(start, end, text[start:end]))
        if last >= len(spans) - 1:
            return chunks
        first += step
