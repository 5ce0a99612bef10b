"""The offline model's image features: ConSE vectors and pooled features from one pass.

``OfflineEmbedder.embed_images_with_features`` (issue 23, an image-only space)
must give exactly the ConSE vectors of ``embed_images`` beside unit rows of
EfficientNet-Lite0's pooled layer. Photos ship with scikit-image and
scikit-learn. chelsea.png is the only cat among them, so the look-alike check
uses the stereo motorcycle pair (two cameras side by side, one scene).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mmsearch.embedders import offline
from mmsearch.embedders.offline import OfflineEmbedder
from tests.support.deps import need

pytestmark = pytest.mark.model

need("timm")


@pytest.fixture(scope="module")
def embedder() -> OfflineEmbedder:
    return OfflineEmbedder()


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    data = need("skimage.data")
    datasets = need("sklearn.datasets")
    left, right, _ = data.stereo_motorcycle()
    arrays = {
        "motorcycle-left": left,
        "motorcycle-right": right,
        "cat": data.chelsea(),
        "coffee": data.coffee(),
        "rocket": data.rocket(),
        "astronaut": data.astronaut(),
        "temple": datasets.load_sample_image("china.jpg"),
        "flower": datasets.load_sample_image("flower.jpg"),
    }
    return {name: Image.fromarray(a).convert("RGB") for name, a in arrays.items()}


def test_one_pass_gives_conse_and_unit_features(
    embedder: OfflineEmbedder, photos: dict[str, Image.Image]
) -> None:
    images = list(photos.values())
    conse, features = embedder.embed_images_with_features(images)
    assert conse.shape == (len(images), offline.DIM)
    assert features.shape == (len(images), offline.FEATURE_DIM)
    assert conse.dtype == features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(conse, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(conse, embedder.embed_images(images))


def test_no_images_gives_empty_arrays(embedder: OfflineEmbedder) -> None:
    conse, features = embedder.embed_images_with_features([])
    assert conse.shape == (0, offline.DIM)
    assert features.shape == (0, offline.FEATURE_DIM)


def test_features_put_the_stereo_pair_together(
    embedder: OfflineEmbedder, photos: dict[str, Image.Image]
) -> None:
    names = list(photos)
    _, features = embedder.embed_images_with_features(list(photos.values()))
    sims = features @ features[names.index("motorcycle-left")]
    pair = sims[names.index("motorcycle-right")]
    others = [sims[i] for i, name in enumerate(names) if not name.startswith("motorcycle")]
    # Measured 2026-12-06: 0.90 for the pair, at most 0.34 for the others.
    assert pair > max(others) + 0.3
