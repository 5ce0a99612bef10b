"""open_clip embedder: any open_clip architecture with a pretrained tag or local weights.

``OpenClipEmbedder(clip_model="ViT-B-32", pretrained="laion2b_s34b_b79k")``
loads weights from the usual cache (downloading them once if the network
allows). ``weights=PATH`` loads a local state-dict file instead, and
``clip_model`` may be the path of a model-config JSON file for a custom
architecture. On CPUs with native bf16 the model runs in bf16 (see
:func:`mmsearch.embedders.base.resolve_precision`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from mmsearch.embedders.base import EmbedderIdentity, l2_normalise, resolve_precision
from mmsearch.errors import ConfigError, WeightsNotFoundError, import_optional

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
_WORD = re.compile(r"[^\W\d_]+|\d|[^\w\s]", re.UNICODE)


def _open_clip() -> Any:
    return import_optional("open_clip", "clip", "the open_clip embedder")


def _weights_digest(path: str) -> str:
    digest = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _model_name(clip_model: str) -> str:
    """Register a config JSON file with open_clip and return its model name."""
    if clip_model.endswith(".json"):
        if not os.path.isfile(clip_model):
            raise ConfigError(f"model config {clip_model} does not exist")
        _open_clip().add_model_config(clip_model)
        return os.path.splitext(os.path.basename(clip_model))[0]
    return clip_model


def cached_weights(clip_model: str, pretrained: str) -> str | None:
    """Path of the pretrained weights in the local cache, or ``None``."""
    open_clip = _open_clip()
    cfg = open_clip.get_pretrained_cfg(clip_model, pretrained)
    if not cfg:
        return None
    if cfg.get("file"):
        return str(cfg["file"]) if os.path.exists(cfg["file"]) else None
    hub = cfg.get("hf_hub", "")
    if not hub:
        return None
    from huggingface_hub import try_to_load_from_cache

    repo, filename = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub[:-1], "")
    names = [filename] if filename else []
    names += ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    for name in names:
        found = try_to_load_from_cache(repo, name)
        if isinstance(found, str):
            return found
    return None


def openclip_identity(
    clip_model: str, dim: int, pretrained: str | None = None, weights: str | None = None
) -> EmbedderIdentity:
    """The identity of open_clip model ``clip_model`` (a name or a config JSON file) with
    a pretrained tag or the local ``weights`` file (absolute, existing), making vectors
    of length ``dim``: what an index records. The model is not loaded."""
    options: dict[str, Any] = {
        "clip_model": os.path.abspath(clip_model) if clip_model.endswith(".json") else clip_model
    }
    if weights:
        weights_id = f"file-{_weights_digest(weights)}"
        options["weights"] = weights
    else:
        weights_id = pretrained or DEFAULT_PRETRAINED
        options["pretrained"] = weights_id
    return EmbedderIdentity("openclip", _model_name(clip_model), weights_id, dim, options)


class OpenClipEmbedder:
    """CLIP-style embedder through open_clip; see the module docstring."""

    def __init__(
        self,
        clip_model: str = DEFAULT_MODEL,
        pretrained: str | None = DEFAULT_PRETRAINED,
        weights: str | None = None,
        precision: str | None = None,
        batch_size: int = 32,
    ) -> None:
        open_clip = _open_clip()
        import torch

        self._torch = torch
        name = _model_name(clip_model)
        if name not in open_clip.list_models():
            raise ConfigError(f"unknown open_clip model {clip_model!r}")
        self.precision = resolve_precision(precision)
        self.batch_size = batch_size
        if weights:
            weights = os.path.abspath(os.path.expanduser(weights))
            if not os.path.isfile(weights):
                raise WeightsNotFoundError(f"weights file {weights} does not exist")
            source = weights
        else:
            source = pretrained or DEFAULT_PRETRAINED
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=source)
        except (RuntimeError, FileNotFoundError, OSError, ValueError) as exc:
            raise WeightsNotFoundError(
                f"can't load open_clip weights {source!r} for {name}: {exc}. "
                "Pass --weights PATH for a local file, or --model offline for the built-in model."
            ) from exc
        model.eval()
        if self.precision == "bf16":
            model = model.to(torch.bfloat16)
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(name)
        context = int(getattr(self.tokenizer, "context_length", 77) or 77)
        self.max_tokens = context - 2
        size = getattr(model.visual, "image_size", 224)
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        with torch.inference_mode():
            probe = self._run_text(self.tokenizer(["a"]))
        self.identity = openclip_identity(clip_model, int(probe.shape[1]), source, weights)

    @property
    def dim(self) -> int:
        return self.identity.dim

    def _run_text(self, tokens: Any) -> np.ndarray:
        out = self.model.encode_text(tokens)
        return out.float().numpy()

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        with self._torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = self.tokenizer(list(texts[start : start + self.batch_size]))
                parts.append(self._run_text(tokens))
        return l2_normalise(np.concatenate(parts))

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        torch = self._torch
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        parts = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = images[start : start + self.batch_size]
                pixels = torch.stack([self.preprocess(im.convert("RGB")) for im in batch])
                parts.append(self.model.encode_image(pixels.to(dtype)).float().numpy())
        return l2_normalise(np.concatenate(parts))

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """One span per BPE token: each word's span repeated once per token of it."""
        inner = getattr(self.tokenizer, "tokenizer", None)
        if inner is not None and getattr(inner, "is_fast", False):
            enc = inner(text, add_special_tokens=False, return_offsets_mapping=True)
            return [tuple(span) for span in enc["offset_mapping"]]  # type: ignore[misc]
        spans: list[tuple[int, int]] = []
        for match in _WORD.finditer(text):
            n = _bpe_count(self.tokenizer, match.group())
            spans.extend([match.span()] * n)
        return spans


def _bpe_count(tokenizer: Any, word: str) -> int:
    return _bpe_count_cached(id(tokenizer), tokenizer, word.lower())


@lru_cache(maxsize=65536)
def _bpe_count_cached(_key: int, tokenizer: Any, word: str) -> int:
    try:
        return max(1, len(tokenizer.encode(word)))
    except Exception:  # a tokenizer without encode(): count the word once
        return 1
