"""The OCR view end to end: gated at index time, fused with pixels, filtered, shown."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFont

from mmsearch import Engine
from mmsearch.cli import cli
from mmsearch.search.query import Query
from tests.support.deps import need
from tests.support.media import solid
from tests.support.videogen import make_video

pytestmark = pytest.mark.model

need("rapidocr_onnxruntime")


def render(lines: list[str], size: tuple[int, int] = (900, 320)) -> Image.Image:
    """Dark text on white, with the font that ships inside Pillow."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=40)
    for i, line in enumerate(lines):
        draw.text((30, 30 + 70 * i), line, fill="black", font=font)
    return image


@pytest.fixture
def library(tmp_path: Path) -> Path:
    import skimage.data as data

    lib = tmp_path / "lib"
    lib.mkdir()
    render(["ACME Supplies", "Invoice total 42.50 EUR", "Due 14 March 2024"]).save(
        lib / "invoice.png"
    )
    solid((220, 30, 30), size=(640, 480)).save(lib / "red-car.jpg", quality=92)
    Image.fromarray(data.chelsea()).save(lib / "cat.png")
    return lib


def names(hits) -> list[str]:
    return [os.path.basename(h.path) for h in hits]


def test_ocr_view_is_gated_fused_and_filtered(tmp_path: Path, library: Path) -> None:
    with Engine.open(tmp_path / "idx", model="hash", ocr="auto") as engine:
        report = engine.index([library])
        assert report.added == 3 and report.skipped == []
        views = {n: engine.show(library / n)["views"] for n in ("invoice.png", "cat.png")}
        assert views["invoice.png"]["ocr"] >= 2 and "ocr" not in views["cat.png"]
        assert engine.show(library / "cat.png")["meta"]["ocr"]["gated"] is True

        [best, *_] = engine.search("invoice total 42.50", k=3, cutoff=False)
        assert names([best]) == ["invoice.png"] and best.view == "ocr"
        assert "42.50" in (best.snippet or "") and "42.50" in (best.ocr_line or "")
        assert best.explain["view"] == "ocr"
        assert names(engine.search("red", k=1, cutoff=False)) == ["red-car.jpg"]

        phrase = Query().text("a document").where(text_match="42.50").options(cutoff=False)
        assert names(engine.run(phrase).hits) == ["invoice.png"]


def test_ocr_off_then_a_later_ocr_only_pass(tmp_path: Path, library: Path) -> None:
    runner = CliRunner()
    idx = ["--index", str(tmp_path / "idx")]
    first = runner.invoke(cli, ["index", str(library), "--model", "hash", "--ocr", "off", *idx])
    assert first.exit_code == 0, first.output
    show = json.loads(
        runner.invoke(cli, ["show", str(library / "invoice.png"), "--json", *idx]).stdout
    )
    assert show["ocr_lines"] == []
    later = runner.invoke(cli, ["index", str(library), "--ocr-only", "--json", *idx])
    assert later.exit_code == 0, later.output
    summary = json.loads(later.stdout)
    assert summary["ocr_images"] == 3 and summary["ocr_with_text"] == 1
    shown = runner.invoke(cli, ["show", str(library / "invoice.png"), *idx])
    assert "Invoice total 42.50 EUR" in shown.stdout
    again = json.loads(
        runner.invoke(cli, ["index", str(library), "--ocr-only", "--json", *idx]).stdout
    )
    assert again["ocr_images"] == 0  # nothing left to read at this policy
    found = runner.invoke(cli, ["search", "invoice total", "--text-match", "42.50", "--json", *idx])
    assert [os.path.basename(r["path"]) for r in json.loads(found.stdout)["results"]] == [
        "invoice.png"
    ]


def test_a_slide_in_a_video_is_found_by_its_words(tmp_path: Path) -> None:
    import skimage.data as data

    folder = tmp_path / "talks"
    folder.mkdir()
    slide = np.asarray(render(["Quarterly revenue", "grew 12 percent"], size=(640, 480)))
    make_video(
        folder / "talk.mp4",
        [(data.coffee(), 3.0), (slide, 3.0), (data.rocket(), 3.0)],
        size=(640, 480),
    )
    with Engine.open(tmp_path / "idx", model="hash", ocr="auto") as engine:
        engine.index([folder])
        [best, *_] = engine.search("revenue grew 12 percent", k=3, cutoff=False)
        assert best.modality == "video" and best.view == "ocr"
        assert best.start >= 3.0 - 1.0 and best.end <= 6.0 + 1.0
        lines = [line["text"] for line in engine.show(folder / "talk.mp4")["ocr_lines"]]
        assert any("12 percent" in line for line in lines)


def test_skimage_page_is_found_by_a_phrase_on_it(tmp_path: Path) -> None:
    import shutil

    import skimage

    data = Path(skimage.__file__).parent / "data"
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("page.png", "text.png", "coffee.png", "chelsea.png", "rocket.jpg"):
        shutil.copy(data / name, lib / name)
    with Engine.open(tmp_path / "idx", model="hash") as engine:  # --ocr auto, the default
        report = engine.index([lib])
        assert report.added == 5 and report.skipped == []
        [best, *_] = engine.search("markers of the coins and the background", k=3, cutoff=False)
        assert names([best]) == ["page.png"] and best.view == "ocr"
        assert "coins" in best.ocr_line
