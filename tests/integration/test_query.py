"""Queries that combine parts, filters before top-k, cutoff, paging, duplicates, feedback."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import mmsearch.search.retrieve as searcher_module
from mmsearch import Engine
from mmsearch.cli import cli
from mmsearch.embedders.hashing import HashEmbedder
from mmsearch.errors import QueryError
from mmsearch.search.query import Query
from tests.support.media import solid

pytestmark = pytest.mark.usefixtures("metadata_db")  # SQLite and PostgreSQL

OTHER = [
    (20, 160, 40),
    (30, 60, 220),
    (240, 220, 40),
    (140, 40, 180),
    (120, 70, 30),
    (128, 128, 128),
]


def names(hits) -> list[str]:
    return [os.path.basename(h.path) for h in hits]


def make_images(folder: Path, colour: tuple[int, int, int], n: int, prefix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        shade = tuple(max(0, min(255, c + (i * 7) % 30 - 15)) for c in colour)
        solid(shade, size=(64 + i, 48), seed=i).save(folder / f"{prefix}{i:02d}.png")


@pytest.fixture
def engine(tmp_path: Path):
    with Engine.open(tmp_path / "idx", model="hash") as e:
        yield e


@pytest.mark.parametrize("scan", ["exact", "faiss-selector"])
def test_filtered_search_returns_k_even_far_down_the_ranking(
    tmp_path: Path, engine: Engine, scan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if scan == "faiss-selector":
        monkeypatch.setattr(searcher_module, "SCAN_MAX", 0)
    make_images(tmp_path / "lib" / "reds", (220, 30, 30), 40, "red")
    make_images(tmp_path / "lib" / "greens", (30, 180, 30), 6, "green")
    engine.index([tmp_path / "lib"])
    unfiltered = names(engine.search("red", k=40, cutoff=False))
    assert all(n.startswith("red") for n in unfiltered)  # every green is below 40 reds
    q = Query().text("red").where(paths=[str(tmp_path / "lib" / "greens")]).options(limit=5)
    hits = engine.run(q).hits
    assert len(hits) == 5 and all(n.startswith("green") for n in names(hits))
    assert names(engine.search("red", k=5, modalities=["text"])) == []


def test_metadata_filters(tmp_path: Path, engine: Engine) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2019:05:01 10:00:00"
    solid((220, 30, 30), size=(800, 600)).save(lib / "big-2019.jpg", exif=exif)
    exif.get_ifd(0x8769)[0x9003] = "2023:08:15 18:30:00"
    solid((210, 40, 30), size=(100, 80)).save(lib / "small-2023.jpg", exif=exif)
    solid((200, 30, 40), size=(300, 300)).save(lib / "noexif.png")
    (lib / "notes.txt").write_text("red notes about red things")
    os.utime(lib / "notes.txt", (1_600_000_000, 1_600_000_000))  # 2020-09-13
    engine.index([lib])

    def only(**filters) -> list[str]:
        q = Query().text("red").where(**filters).options(cutoff=False, limit=10)
        return sorted(names(engine.run(q).hits))

    assert only(modalities=["image"]) == ["big-2019.jpg", "noexif.png", "small-2023.jpg"]
    assert only(min_width=500) == ["big-2019.jpg"]
    assert only(max_height=100) == ["small-2023.jpg"]
    assert only(taken_after="2020-01-01") == ["small-2023.jpg"]
    assert only(taken_before="2020-01-01") == ["big-2019.jpg"]
    assert only(modified_before="2021-01-01") == ["notes.txt"]
    assert only(globs=["*.png"]) == ["noexif.png"]
    assert only(paths=[str(lib / "notes.txt")]) == ["notes.txt"]
    big = (lib / "big-2019.jpg").stat().st_size
    assert "big-2019.jpg" not in only(max_size=big - 1)
    with pytest.raises(QueryError, match="ISO date"):
        only(taken_after="last tuesday")


def test_tags_filter_and_cli(tmp_path: Path, library: Path) -> None:
    runner = CliRunner()
    idx = ["--index", str(tmp_path / "idx")]
    assert runner.invoke(cli, ["index", str(library), "--model", "hash", *idx]).exit_code == 0
    out = runner.invoke(cli, ["tag", str(library / "photos"), "trip=rome", *idx, "--json"])
    assert json.loads(out.stdout) == {"tagged": 3}
    runner.invoke(cli, ["tag", str(library / "photos" / "red.jpg"), "--set", "fav=yes", *idx])
    res = runner.invoke(cli, ["search", "red", "--where", "trip=rome", "--all", "--json", *idx])
    found = json.loads(res.stdout)["results"]
    assert {os.path.basename(r["path"]) for r in found} == {"red.jpg", "green.jpg", "blue.jpg"}
    both = ["search", "red", "--where", "trip=rome", "--where", "fav=yes", "--json", *idx]
    assert [
        os.path.basename(r["path"]) for r in json.loads(runner.invoke(cli, both).stdout)["results"]
    ] == ["red.jpg"]
    runner.invoke(cli, ["tag", str(library), "--remove", "trip", *idx])
    none = runner.invoke(cli, ["search", "red", "--where", "trip=rome", "--json", *idx])
    assert json.loads(none.stdout)["results"] == []
    bad = runner.invoke(cli, ["tag", str(library), *idx])
    assert bad.exit_code == 2


def _car_notes(lib: Path) -> None:
    lib.mkdir(parents=True)
    (lib / "night.txt").write_text("a red car parked in the street at night under lamps")
    (lib / "day.txt").write_text("a red car parked in the street on a sunny day")
    (lib / "fox.txt").write_text("a red fox runs across the field")
    for i in range(12):
        (lib / f"other{i}.txt").write_text(f"notes {i} about gardening tomatoes and soil {i * 7}")


@pytest.mark.parametrize("fusion", ["vector", "rrf", "weighted"])
def test_negative_parts(tmp_path: Path, engine: Engine, fusion: str) -> None:
    _car_notes(tmp_path / "lib")
    engine.index([tmp_path / "lib"])
    plain = names(engine.search("red car", k=3, cutoff=False, fusion=fusion))
    assert set(plain[:2]) == {"night.txt", "day.txt"}
    q = Query().text("red car").exclude("night").options(fusion=fusion, cutoff=False, limit=20)
    ranked = names(engine.run(q).hits)
    assert ranked[0] == "day.txt"
    if fusion == "vector":  # subtracted: pushed down, still there
        assert ranked.index("night.txt") > ranked.index("fox.txt")
    else:  # late modes: excluded above the threshold
        assert "night.txt" not in ranked


def test_parts_are_fused_and_explained(tmp_path: Path, library: Path, engine: Engine) -> None:
    engine.index([library])
    red = library / "photos" / "red.jpg"
    for fusion in ("vector", "rrf", "weighted"):
        q = Query().text("lazy dog").image(str(red)).options(fusion=fusion, cutoff=False)
        hits = engine.run(q).hits
        assert {"fox.txt", "red.jpg"} <= set(names(hits[:2])), fusion
        explain = hits[0].explain
        assert explain["fusion"] == fusion and explain["segment_id"] == hits[0].segment_id
        if fusion != "vector":
            parts = {p["part"]: p for p in explain["parts"]}
            assert set(parts) == {"text:lazy dog", f"image:{red}"}
            assert all(p["rank"] is None or p["rank"] >= 1 for p in parts.values())
    # an indexed file as a part, by path or asset id
    like = engine.run(Query().like(str(red)).options(cutoff=False)).hits
    assert names(like)[0] == "red.jpg"


def test_modality_gap_is_calibrated(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    make_images(lib, (220, 30, 30), 3, "red")
    for i, colour in enumerate(OTHER * 5):  # calibration needs 30+ segments per group
        solid(colour, seed=i).save(lib / f"img{i:02d}.png")
    for i, words in enumerate(["a red apple", "red shoes by the door", "the red house"]):
        (lib / f"red{i}.txt").write_text(words)
    for i in range(30):
        (lib / f"t{i:02d}.txt").write_text(f"words {i} like stones river bread {i * 3} tower")
    # images sit on a smaller text->image scale, as in CLIP spaces
    with Engine.open(tmp_path / "idx", embedder=HashEmbedder(modality_offset=3.0)) as engine:
        engine.index([lib])
        hits = engine.search(  # views only: the colour word's palette ranking would favour images
            "red", k=6, cutoff=False, collapse=None, fusion="vector", color_words=False
        )
    by_raw = sorted(hits, key=lambda h: -h.similarity)
    assert {h.modality for h in by_raw[:3]} == {"text"}  # a raw merge favours texts
    assert {h.modality for h in hits[:3]} == {"image", "text"}  # calibrated: both
    assert sorted(names(hits)) == sorted(
        ["red00.png", "red01.png", "red02.png", "red0.txt", "red1.txt", "red2.txt"]
    )


def test_cutoff_keeps_the_known_matches_and_all_turns_it_off(
    tmp_path: Path, engine: Engine
) -> None:
    make_images(tmp_path / "lib", (220, 30, 30), 3, "red")
    for i, colour in enumerate(OTHER * 7):
        solid(colour, size=(60 + i, 50), seed=100 + i).save(tmp_path / "lib" / f"x{i:02d}.png")
    engine.index([tmp_path / "lib"])
    kept = engine.run(Query().text("red").options(limit=50))
    assert sorted(names(kept.hits)) == ["red00.png", "red01.png", "red02.png"]
    everything = engine.run(Query().text("red").options(limit=50, cutoff=False))
    assert everything.total == 45
    high = engine.run(Query().text("red").options(limit=50, cutoff=False, min_score=0.5))
    assert sorted(names(high.hits)) == ["red00.png", "red01.png", "red02.png"]


def test_paging_is_stable(tmp_path: Path, engine: Engine) -> None:
    make_images(tmp_path / "lib", (220, 30, 30), 12, "red")
    engine.index([tmp_path / "lib"])
    full = names(engine.run(Query().text("red").options(limit=12, cutoff=False)).hits)
    pages = []
    for offset in range(0, 12, 5):
        q = Query().text("red").options(limit=5, offset=offset, cutoff=False)
        pages += names(engine.run(q).hits)
    assert pages == full and len(set(full)) == 12


def test_sort_by_time_newest_first(tmp_path: Path, engine: Engine) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    for year in (2015, 2022, 2018):
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = f"{year}:01:01 00:00:00"
        solid((220, 30, 30), seed=year).save(lib / f"{year}.jpg", exif=exif)
    engine.index([lib])
    q = Query().text("red").options(sort="time", cutoff=False, collapse=None)
    assert names(engine.run(q).hits) == ["2022.jpg", "2018.jpg", "2015.jpg"]


def test_near_duplicates_collapse(tmp_path: Path, library: Path, engine: Engine) -> None:
    shutil.copy(library / "photos" / "red.jpg", library / "red-copy.jpg")
    engine.index([library])
    [hit, *_] = engine.search("red", k=5)
    assert len(hit.duplicates) == 1 and hit.to_dict()["duplicates"] == 1
    paths = {hit.path, *hit.duplicates}
    assert paths == {str(library / "photos" / "red.jpg"), str(library / "red-copy.jpg")}
    kept = engine.search("red", k=5, collapse=None)
    assert {"red.jpg", "red-copy.jpg"} <= set(names(kept))


def test_diverse_and_feedback(tmp_path: Path, engine: Engine) -> None:
    make_images(tmp_path / "lib", (220, 30, 30), 4, "red")
    make_images(tmp_path / "lib", (240, 140, 20), 2, "orange")
    engine.index([tmp_path / "lib"])
    plain_hits = engine.search("red", k=6, cutoff=False, collapse=None)
    diverse_hits = engine.search("red", k=6, cutoff=False, collapse=None, diverse=True)
    plain, diverse = names(plain_hits), names(diverse_hits)
    assert plain[0] == diverse[0] and set(plain) == set(diverse)
    vecs = engine.searcher.vectors_of([h.segment_id for h in plain_hits])

    def second_sim(hits) -> float:
        return float(vecs[hits[0].segment_id] @ vecs[hits[1].segment_id])

    assert second_sim(diverse_hits) <= second_sim(plain_hits)  # MMR: less like the first
    orange = next(h for h in engine.search("orange", k=6, cutoff=False) if "orange00" in h.path)

    def margin(**feedback) -> float:
        """How far the other orange photo trails the best red one (vector fusion: cosines)."""
        options = {"cutoff": False, "collapse": None, "fusion": "vector", "color_words": False}
        q = Query().text("red").options(**options, **feedback)
        scores = {names([h])[0]: h.score for h in engine.run(q).hits}
        return scores["red00.png"] - scores["orange01.png"]

    assert margin(more_like=[orange.asset_id]) < margin() < margin(less_like=[orange.asset_id])


def test_query_json_round_trip_and_validation(tmp_path: Path, library: Path) -> None:
    q = (
        Query()
        .text("a red car")
        .image("ref.jpg", weight=0.5)
        .exclude("night")
        .where(modality="image", tags={"trip": "rome"}, min_width=100)
        .options(fusion="weighted", limit=20, diverse=True)
    )
    assert Query.from_dict(json.loads(json.dumps(q.to_dict()))) == q
    with pytest.raises(QueryError):
        Query().exclude("night").validate()
    with pytest.raises(QueryError):
        Query().text("x").options(fusion="magic").validate()
    with pytest.raises(QueryError):
        Query().where(colour="red")
    runner = CliRunner()
    idx = ["--index", str(tmp_path / "idx")]
    runner.invoke(cli, ["index", str(library), "--model", "hash", *idx])
    saved = tmp_path / "q.json"
    saved.write_text(json.dumps(Query().text("red").where(modality="image").to_dict()))
    out = runner.invoke(cli, ["search", "--query-json", str(saved), "--json", *idx])
    assert out.exit_code == 0 and json.loads(out.stdout)["results"][0]["path"].endswith("red.jpg")


def test_query_json_is_read_strictly_by_one_function(tmp_path: Path, library: Path) -> None:
    from mmsearch.search.query import parse_pairs

    text = {"parts": [{"kind": "text", "value": "red"}]}
    for bad, message in [
        ({**text, "colour": 1}, "unknown query field(s): colour"),
        ({**text, "filters": {"colour": 1}}, "filters.colour"),
        ({"parts": [{"kind": "text", "value": "x", "w": 1}]}, "parts.w"),
        ({"parts": [{"kind": "text", "value": 5}]}, "bad query: parts.0.value"),
        ({**text, "limit": "many"}, "bad query: limit"),
        ([1, 2], "JSON object"),
    ]:
        with pytest.raises(QueryError, match=re.escape(message)):
            Query.from_dict(bad)
    unchecked = Query.from_dict({"parts": []}, validate=False)
    with pytest.raises(QueryError, match="positive part"):
        unchecked.validate()
    assert parse_pairs(["a=1", "b=x=y", "a=2"], "where") == {"a": "2", "b": "x=y"}
    with pytest.raises(QueryError, match="where takes key=value"):
        parse_pairs(["=1"], "where")
    runner = CliRunner()
    idx = ["--index", str(tmp_path / "idx")]
    runner.invoke(cli, ["index", str(library), "--model", "hash", *idx])
    saved = tmp_path / "q.json"
    for body, message in [({**text, "colour": 1}, "colour"), ("{nope", "not valid JSON")]:
        saved.write_text(body if isinstance(body, str) else json.dumps(body))
        out = runner.invoke(cli, ["search", "--query-json", str(saved), *idx])
        assert out.exit_code != 0 and message in out.output and "Traceback" not in out.output
    out = runner.invoke(cli, ["search", "red", "--where", "k", *idx])
    assert out.exit_code == 2 and "key=value" in out.output


def test_cli_combined_query(tmp_path: Path, library: Path) -> None:
    runner = CliRunner()
    idx = ["--index", str(tmp_path / "idx")]
    runner.invoke(cli, ["index", str(library), "--model", "hash", *idx])
    args = ["search", "lazy dog", "--image", str(library / "photos" / "red.jpg"), "--weight", "0.5"]
    args += ["--not", "garden", "--fusion", "rrf", "--json", *idx]
    out = runner.invoke(cli, args)
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert body["fusion"] == "rrf" and "explain" in body["results"][0]
    assert all(not r["path"].endswith("garden.md") for r in body["results"])
    page = runner.invoke(cli, ["search", "red", "--all", "--limit", "2", "--offset", "2", *idx])
    assert page.exit_code == 0 and "3 " in page.stdout
    assert np.isfinite(body["results"][0]["score"])


def test_text_match_filters_on_the_exact_phrase(tmp_path: Path, engine: Engine) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "invoice.txt").write_text("Invoice 2023-17: total 42.50 EUR, due in May")
    (lib / "other.txt").write_text("total of 50 42 apples for the invoice")
    (lib / "none.txt").write_text("nothing about money here")
    engine.index([lib])
    q = Query().text("invoice total").where(text_match="42.50").options(cutoff=False)
    assert names(engine.run(q).hits) == ["invoice.txt"]
    q = Query().text("invoice").where(text_match='due in "May"').options(cutoff=False)
    assert names(engine.run(q).hits) == ["invoice.txt"]  # quotes are escaped, not syntax
    engine.remove([lib / "invoice.txt"])  # the FTS index follows deletions
    q = Query().text("invoice total").where(text_match="42.50").options(cutoff=False)
    assert engine.run(q).hits == []
