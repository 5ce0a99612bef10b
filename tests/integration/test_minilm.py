"""The numpy MiniLM (``mmsearch.embedders.minilm``) against sentence-transformers.

The offline model's text vectors now come from numpy; these tests hold them to
the reference implementation they replace, on texts chosen to hit the edges:
empty and blank, one character, unicode of several scripts and emoji, long
texts cut at 256 word pieces, and batches that mix lengths (padding).
"""

from __future__ import annotations

import numpy as np
import pytest

from mmsearch.embedders import minilm, offline_weights
from mmsearch.embedders.offline import OfflineEmbedder
from tests.support.deps import need

pytestmark = pytest.mark.model

need("sentence_transformers")

TEXTS = [
    "a cup of coffee",
    "",
    " ",
    "\n\t ",
    "x",
    "?",
    "A Photo Of A TABBY CAT.",
    "Héllo wörld, it's a naïve café! Ünïcödé façade",
    "東京の夜景とラーメン",
    "Москва — столица России",
    "emoji 🚀🙂🐈 and symbols ©®™ ½ ∑ √",
    "invoice total 42.50 EUR, due 2024-03-01 (ref #A-1193)",
    "word " * 400,  # 400 word pieces: cut at 256
    "The quick brown fox jumps over the lazy dog. " * 30,
    " ".join(f"token{i}" for i in range(300)),
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    model = offline_weights.load_text_model("cpu")
    out = model.encode(TEXTS, batch_size=8, convert_to_numpy=True, normalize_embeddings=True)
    return np.asarray(out, dtype=np.float32)


def test_vectors_match_sentence_transformers(reference: np.ndarray) -> None:
    encoder = minilm.load_minilm(offline_weights.minilm_dir())
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(vectors * reference, axis=1)
    assert cosines.min() >= 0.9999, dict(zip(TEXTS, cosines.round(6).tolist(), strict=True))


def test_long_texts_are_cut_at_the_model_length() -> None:
    encoder = minilm.load_minilm(offline_weights.minilm_dir())
    ids = encoder.token_ids(["word " * 400, "word " * 10])
    assert len(ids[0]) == minilm.MAX_SEQ_LENGTH and len(ids[1]) == 12
    model = offline_weights.load_text_model("cpu")
    assert model.max_seq_length == minilm.MAX_SEQ_LENGTH
    # past the cut nothing counts: 400 and 500 words give the same vector
    a, b = encoder.encode(["word " * 400, "word " * 500])
    assert float(a @ b) > 0.999999


def test_a_text_gets_the_same_vector_alone_and_in_a_batch() -> None:
    """Batches pad to their longest text; padding must not leak into the vectors."""
    encoder = minilm.load_minilm(offline_weights.minilm_dir())
    batch = encoder.encode(TEXTS)
    for i in (0, 6, 13):
        alone = encoder.encode([TEXTS[i]])[0]
        assert float(alone @ batch[i]) > 0.999999


def test_the_offline_embedder_uses_it(reference: np.ndarray) -> None:
    emb = OfflineEmbedder()
    vectors = emb.embed_texts(TEXTS)
    assert np.sum(vectors * reference, axis=1).min() >= 0.9999
