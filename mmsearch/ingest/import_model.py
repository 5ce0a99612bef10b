"""The identity of the model that made imported vectors, without loading the model.

The model's weights may live only where the vectors were made (a GPU box, a
cluster), so a new index takes its identity from the names alone: open_clip's
follows from ``--clip-model`` and ``--pretrained``/``--weights`` exactly as
``mmsearch index`` would record it (:func:`mmsearch.embedders.openclip.openclip_identity`),
``hash`` takes the vectors' length as its size, and other models are
constructed (the offline model loads its weights lazily) for their identity.
"""

from __future__ import annotations

import os

from mmsearch.embedders import canonical_name, create_embedder
from mmsearch.embedders.base import EmbedderIdentity
from mmsearch.errors import ConfigError, PathError
from mmsearch.settings import Settings


def import_identity(name: str, settings: Settings, dim: int) -> EmbedderIdentity:
    """The identity a new index gets for vectors made by model ``name`` of length ``dim``."""
    from mmsearch.embedders.auto import embedder_options

    key = canonical_name(name)
    if key == "auto":
        raise ConfigError("say which model made the vectors: --model NAME (auto can't know)")
    if key == "openclip":
        from mmsearch.embedders.openclip import openclip_identity

        weights = None
        if settings.weights:
            weights = os.path.abspath(os.path.expanduser(str(settings.weights)))
            if not os.path.isfile(weights):
                raise PathError(f"weights file {weights} does not exist")
        pretrained = str(settings.pretrained) if settings.pretrained else None
        return openclip_identity(str(settings.clip_model), dim, pretrained, weights)
    extra = {"dim": dim} if key == "hash" else embedder_options(key, settings)
    return create_embedder(name, **extra).identity
