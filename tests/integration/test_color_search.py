"""Search by colour: --color parts, colour words, filters, fusion modes, old indexes, errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mmsearch import Engine
from mmsearch.cli import cli
from mmsearch.errors import QueryError
from mmsearch.search.query import Query
from mmsearch.store.schema import SCHEMA_VERSION
from tests.support.media import real_photos, solid


def names(hits) -> list[str]:
    return [Path(h.path).stem for h in hits]


def half_and_half(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    arr = np.empty((120, 160, 3), np.uint8)
    arr[:60], arr[60:] = top, bottom
    return Image.fromarray(arr)


@pytest.fixture(scope="module")
def colour_index(tmp_path_factory: pytest.TempPathFactory):
    """Real photos and generated pictures, indexed once with the hash embedder."""
    root = tmp_path_factory.mktemp("colour")
    lib = root / "lib"
    real_photos(lib / "real")
    (lib / "made").mkdir()
    solid((215, 30, 35), seed=1).save(lib / "made" / "red.jpg", quality=92)
    solid((35, 150, 45), seed=2).save(lib / "made" / "green.png")
    solid((30, 60, 200), seed=3).save(lib / "made" / "blue.png")
    half_and_half((215, 30, 35), (245, 245, 245)).save(lib / "made" / "red-white.png")
    (lib / "made" / "note.txt").write_text("a red note about red things\n", encoding="utf-8")
    index = root / "idx"
    with Engine.open(index, model="hash") as engine:
        engine.index([lib])
    return lib, index


def run_cli(index: Path, *args: str):
    return CliRunner().invoke(cli, ["search", "--index", str(index), *args])


def test_color_alone_finds_the_red_picture(colour_index) -> None:
    _, index = colour_index
    with Engine.open(index) as engine:
        hits = engine.run(Query().color("red")).hits
        assert names(hits)[:2] == ["red", "red-white"]
        assert all(h.modality == "image" for h in hits)  # the note has no colours
        assert names(engine.run(Query().color("#1e3cc8")).hits)[0] == "blue"
        assert names(engine.run(Query().color("green")).hits)[0] == "green"
        # at least 80% red: only the solid red picture
        assert names(engine.run(Query().color("red:80%")).hits) == ["red"]
    result = run_cli(index, "--color", "red", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    top = out["results"][0]
    assert Path(top["path"]).stem == "red"
    part = top["explain"]["parts"][0]
    assert part["part"] == "color:red" and part["coverage"] > 0.95 and part["rank"] == 1
    assert top["explain"]["palette"][0]["name"] == "red"
    assert top["similarity"] == pytest.approx(part["coverage"], abs=1e-4)


def test_two_colours_and_a_share(colour_index) -> None:
    _, index = colour_index
    with Engine.open(index) as engine:
        for fusion in ("vector", "rrf", "weighted"):
            q = Query().color("red").color("white:30%").options(fusion=fusion)
            assert names(engine.run(q).hits)[0] == "red-white", fusion


@pytest.mark.parametrize("fusion", ["vector", "rrf", "weighted"])
def test_color_with_text_and_filters(colour_index, fusion: str) -> None:
    lib, index = colour_index
    with Engine.open(index) as engine:
        q = Query().text("a picture").color("red:40%").options(fusion=fusion, cutoff=False)
        assert names(engine.run(q).hits)[0] == "red"
        # filters apply before the cut: the solid red picture is outside --path
        q = Query().color("red").where(paths=[str(lib / "real")]).options(fusion=fusion)
        found = names(engine.run(q).hits)
        assert found and "red" not in found and "red-white" not in found
        assert engine.run(Query().color("red").where(modalities=["text"])).hits == []
        q = Query().text("a picture").color("red").where(modalities=["text"])
        (note,) = engine.run(q.options(fusion=fusion, cutoff=False)).hits  # found by its text
        assert names([note]) == ["note"] and note.explain["parts"][1]["coverage"] == 0
    args = ["a picture", "--color", "red:40%", "--fusion", fusion, "--type", "image", "--all"]
    result = run_cli(index, *args)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "│" in line]
    assert "red.jpg" in rows[0], result.output


def test_colour_words_on_and_off(colour_index) -> None:
    _, index = colour_index
    with Engine.open(index) as engine:
        on = engine.run(Query().text("something red").options(cutoff=False)).hits
        labels = [p["part"] for p in on[0].explain["parts"]]
        assert labels == ["query", "color:red (from 'something red')"]
        assert names(on)[0] in ("red", "red-white")
        off_q = Query().text("something red").options(cutoff=False, color_words=False)
        off = engine.run(off_q).hits
        assert [p["part"] for p in off[0].explain["parts"]] == ["query"]
        assert "palette" not in off[0].explain
    result = run_cli(index, "something red", "--no-color-words", "--all", "--json")
    parts = json.loads(result.output)["results"][0]["explain"]["parts"]
    assert [p["part"] for p in parts] == ["query"]


@pytest.fixture(scope="module")
def red_and_green(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A red and a green picture, indexed with the hash embedder (which knows no word)."""
    root = tmp_path_factory.mktemp("red-green")
    (root / "lib").mkdir()
    solid((215, 30, 35), seed=1).save(root / "lib" / "red.png")
    solid((35, 150, 45), seed=2).save(root / "lib" / "green.png")
    with Engine.open(root / "idx", model="hash") as engine:
        engine.index([root / "lib"])
    return root / "idx"


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("rojo", "red"),
        ("红色", "red"),
        ("赤い車", "red"),
        ("красная машина", "red"),
        ("ein rotes Motorrad", "red"),
        ("une voiture rouge", "red"),
        ("سيارة حمراء", "red"),
        ("verde", "green"),
        ("緑色", "green"),
        ("grün", "green"),
    ],
)
def test_colour_words_of_other_languages_rank_by_colour(red_and_green, text, first) -> None:
    """The colour part ranks the named colour's picture first, whatever the text's order.

    The hash embedder orders the two pictures at random; under RRF the colour
    ranking (its one match, at half weight) breaks the tie of the text's two ranks.
    """
    with Engine.open(red_and_green) as engine:
        hits = engine.run(Query().text(text).options(cutoff=False, fusion="rrf")).hits
        assert names(hits) == [first, "green" if first == "red" else "red"]
        colour = hits[0].explain["parts"][1]
        assert colour["part"] == f"color:{first} (from {text!r})"
        assert colour["rank"] == 1 and colour["coverage"] > 0.95
        # the default fusion carries the same colour part; off, there is none
        default = engine.run(Query().text(text).options(cutoff=False)).hits
        assert f"color:{first} (from {text!r})" in [p["part"] for p in default[0].explain["parts"]]
        off = engine.run(Query().text(text).options(cutoff=False, color_words=False)).hits
        assert [p["part"] for p in off[0].explain["parts"]] == ["query"]


def test_colour_words_of_other_languages_on_the_command_line(red_and_green) -> None:
    result = run_cli(red_and_green, "红色", "--fusion", "rrf", "--all", "--json")
    assert result.exit_code == 0, result.output
    top = json.loads(result.output)["results"][0]
    assert Path(top["path"]).stem == "red"
    assert top["explain"]["parts"][1]["part"] == "color:red (from '红色')"


def test_colour_words_only_reorder_what_the_text_found(tmp_path: Path) -> None:
    """With the cutoff on, a colour word adds no result the text would not give."""
    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(6):
        solid((215, 30, 35), seed=i).save(lib / f"red{i}.png")
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        engine.index([lib])
        plain = engine.run(Query().text("zebra").options(color_words=False))
        worded = engine.run(Query().text("zebra red"))
        given = engine.run(Query().text("zebra").color("red"))
    assert len(worded.hits) <= max(len(plain.hits), 6)
    assert {h.path for h in given.hits} == {str(lib / f"red{i}.png") for i in range(6)}


@pytest.mark.parametrize(
    ("value", "says"),
    [("reddish", "unknown colour 'reddish'"), ("red:200%", "bad colour share"), ("#12", "unknown")],
)
def test_bad_colours_are_one_line_errors(colour_index, value: str, says: str) -> None:
    _, index = colour_index
    result = run_cli(index, "--color", value)
    assert result.exit_code == 2
    assert says in result.output and len(result.output.strip().splitlines()) == 1
    with pytest.raises(QueryError, match=says):
        Query().color(value)
    with pytest.raises(QueryError, match="can't be excluded"):
        Query().color("red").exclude("blue", kind="color").validate()


def test_color_query_json_round_trip(colour_index) -> None:
    _, index = colour_index
    q = Query().color("blue:20%").text("sky").options(color_words=False)
    again = Query.from_dict(json.loads(json.dumps(q.to_dict())))
    assert again == q
    with Engine.open(index) as engine:
        assert engine.run(again).hits


def test_old_index_without_palettes_still_searches_and_is_filled_in(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    solid((215, 30, 35), seed=1).save(lib / "red.png")
    solid((30, 60, 200), seed=2).save(lib / "blue.png")
    index = tmp_path / "idx"
    with Engine.open(index, model="hash") as engine:
        engine.index([lib])
    db = next(p for p in index.iterdir() if p.suffix in (".db", ".sqlite", ".sqlite3"))
    with sqlite3.connect(db) as con:  # what a schema-2 index looks like
        con.execute("ALTER TABLE segments DROP COLUMN palette")
        con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with Engine.open(index) as engine:
        assert names(engine.search("a picture", cutoff=False))  # text search unaffected
        result = engine.run(Query().color("red"))
        assert (
            result.hits == []
            and "2 pictures were indexed without a colour palette" in (result.notes[0])
        )
        mixed = engine.run(Query().text("a picture").color("red").options(cutoff=False))
        assert len(mixed.hits) == 2  # the text still ranks; the colour part matches nothing
    cli_out = run_cli(index, "--color", "red")
    assert cli_out.exit_code == 0 and "without a colour palette" in cli_out.output
    with sqlite3.connect(db) as con:
        version = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)  # migrated on open
    with Engine.open(index) as engine:
        report = engine.index([lib])  # unchanged files: only their palettes are read
        assert report.palettes == 2 and report.added == 0
        assert names(engine.run(Query().color("red")).hits) == ["red"]
        assert engine.run(Query().color("red")).notes == []


def test_palette_off_keeps_none(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    solid((215, 30, 35), seed=1).save(lib / "red.png")
    with Engine.open(tmp_path / "idx", model="hash", palette="off") as engine:
        report = engine.index([lib])
        assert report.palettes == 0
        result = engine.run(Query().color("red"))
    assert result.hits == [] and result.notes


def test_video_frames_are_searched_by_colour(tmp_path: Path) -> None:
    from tests.support.videogen import make_video

    lib = tmp_path / "lib"
    lib.mkdir()
    blue, red = solid((30, 60, 200), seed=1), solid((215, 30, 35), seed=2)
    make_video(lib / "clip.mp4", [(blue, 3.0), (red, 3.0)], fps=5, size=(160, 120))
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        engine.index([lib])
        hits = engine.run(Query().color("red")).hits
    assert len(hits) == 1 and hits[0].modality == "video" and hits[0].view == "frame"
    assert hits[0].start is not None and hits[0].start >= 2.5
    assert hits[0].explain["palette"][0]["name"] == "red"
