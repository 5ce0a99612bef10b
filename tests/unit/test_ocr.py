"""OCR: the gate, the recognised lines and their boxes (mmsearch.media.ocr).

Text images are rendered in tmp_path with Pillow's built-in font (Aileron,
inside Pillow since 10.1); the plain photos and ``page.png`` ship with
scikit-image. RapidOCR's models ship inside its wheel and load in ~0.3 s.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from mmsearch.errors import ConfigError, MissingDependencyError
from mmsearch.media import ocr
from tests.support.deps import need

pytestmark = pytest.mark.model

needs_rapidocr = pytest.mark.skipif(
    importlib.util.find_spec("rapidocr_onnxruntime") is None,
    reason="needs rapidocr-onnxruntime (the 'ocr' extra)",
)

INVOICE_LINES = ["ACME WIDGETS", "Invoice total 42.50 EUR", "Thank you for your order"]


def skimage_image(name: str) -> Image.Image:
    skimage = need("skimage")
    return Image.open(Path(skimage.__file__).parent / "data" / name)


def render(
    path: Path, size: tuple[int, int], lines: list[tuple[tuple[int, int], str, int]]
) -> Path:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for xy, text, font_size in lines:
        draw.text(xy, text, font=ImageFont.load_default(size=font_size), fill="black")
    image.save(path)
    return path


@pytest.fixture(scope="module")
def invoice(tmp_path_factory: pytest.TempPathFactory) -> Image.Image:
    """An A4 page at 150 dpi (1240x1754), 40-56 px text in its top half."""
    path = tmp_path_factory.mktemp("ocr") / "invoice.png"
    rows = [
        ((100, 120 + 160 * i), text, 56 if i == 0 else 40) for i, text in enumerate(INVOICE_LINES)
    ]
    render(path, (1240, 1754), rows)
    return Image.open(path).convert("RGB")


@needs_rapidocr
def test_engine_loads_once() -> None:
    engine = ocr.get_engine()
    assert engine is ocr.get_engine()
    assert hasattr(engine, "text_det") and hasattr(engine, "text_rec")


@needs_rapidocr
def test_on_reads_the_invoice_with_boxes_in_reading_order(invoice: Image.Image) -> None:
    result = ocr.ocr_image(invoice, "on")
    assert not result.gated and result.seconds > 0
    assert "42.50" in result.text and "Invoice" in result.text
    # the recogniser may drop a space in tightly set capitals ("ACMEWIDGETS")
    assert [line.text.replace(" ", "") for line in result.lines] == [
        text.replace(" ", "") for text in INVOICE_LINES
    ]
    for line in result.lines:
        x0, y0, x1, y1 = line.box
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        assert ocr.MIN_SCORE <= line.score <= 1
    total = result.lines[1].box  # drawn at (100, 280) on 1240x1754, 40 px high
    assert total[0] == pytest.approx(100 / 1240, abs=0.02)
    assert total[1] == pytest.approx(280 / 1754, abs=0.02)
    tops = [line.box[1] for line in result.lines]
    assert tops == sorted(tops)


@needs_rapidocr
def test_lines_on_one_row_read_left_to_right(tmp_path: Path) -> None:
    rows = [((60, 60), "Left words", 36), ((560, 64), "Right words", 36), ((60, 200), "Below", 36)]
    image = Image.open(render(tmp_path / "row.png", (900, 300), rows)).convert("RGB")
    texts = [line.text for line in ocr.ocr_image(image, "on").lines]
    assert texts == ["Left words", "Right words", "Below"]


@needs_rapidocr
@pytest.mark.parametrize("name", ["coffee.png", "chelsea.png"])
def test_auto_skips_plain_photos(name: str) -> None:
    result = ocr.ocr_image(skimage_image(name).convert("RGB"), "auto")
    assert result.gated and result.lines == []
    assert result.gate_score < ocr.GATE_THRESHOLD
    assert result.seconds < 1


@needs_rapidocr
def test_auto_reads_the_invoice(invoice: Image.Image) -> None:
    result = ocr.ocr_image(invoice, "auto")
    assert not result.gated and result.gate_score >= ocr.GATE_THRESHOLD
    assert "42.50" in result.text


@needs_rapidocr
def test_auto_reads_skimage_page() -> None:
    page = skimage_image("page.png")  # greyscale, 384x191: any mode is accepted
    result = ocr.ocr_image(page, "auto")
    assert not result.gated
    assert "Region-based segmentation" in result.text
    assert "markers" in result.text


def test_off_does_nothing(invoice: Image.Image) -> None:
    result = ocr.ocr_image(invoice, "off")
    assert result.gated and result.lines == [] and result.seconds == 0


def test_bad_options_are_config_errors(invoice: Image.Image) -> None:
    with pytest.raises(ConfigError, match="policy"):
        ocr.ocr_image(invoice, "sometimes")
    with pytest.raises(ConfigError, match="max_side"):
        ocr.ocr_image(invoice, "on", max_side=8)
    with pytest.raises(ConfigError, match="threads"):
        ocr.set_threads(0)


@needs_rapidocr
def test_reload_is_asked_only_when_full_ocr_runs(invoice: Image.Image) -> None:
    asked: list[int] = []

    def reload(side: int) -> Image.Image:
        asked.append(side)
        return invoice

    small = invoice.resize((566, 800))  # what a caller decodes for the gate
    photo = skimage_image("chelsea.png").convert("RGB")
    assert ocr.ocr_image(photo, "auto", reload=reload).gated and asked == []
    result = ocr.ocr_image(small, "auto", reload=reload)
    assert asked == [ocr.MAX_SIDE] and "42.50" in result.text


@needs_rapidocr
def test_gate_score_is_a_fraction(invoice: Image.Image) -> None:
    assert 0 < ocr.ocr_gate(invoice) <= 1
    assert ocr.ocr_gate(Image.new("RGB", (640, 480), "grey")) == 0
    assert ocr.ocr_gate(Image.new("RGB", (5, 3), "white")) == 0


@needs_rapidocr
def test_result_pickles(invoice: Image.Image) -> None:
    result = ocr.ocr_image(invoice, "on")
    assert pickle.loads(pickle.dumps(result)) == result


@pytest.mark.parametrize(
    ("raw", "fixed"),
    [
        ("AcmeWidgetsLtd,12HarbourRoad,Bristol", "Acme Widgets Ltd, 12 Harbour Road, Bristol"),
        ("Date14March2024", "Date 14 March 2024"),
        ("background.These markers", "background. These markers"),
        ("Total 60.00EUR", "Total 60.00 EUR"),
        ("iPhone McDonald COVID19 M8 42.50 e.g.", "iPhone McDonald COVID19 M8 42.50 e.g."),
        ("the 21st century", "the 21st century"),
        ("https://example.com/Page.html me@mail.com", "https://example.com/Page.html me@mail.com"),
    ],
)
def test_respace(raw: str, fixed: str) -> None:
    assert ocr.respace(raw) == fixed


def test_missing_rapidocr_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # import fails
    ocr.set_threads(2)  # drops this process's engine
    try:
        with pytest.raises(MissingDependencyError, match=r"mmsearch\[ocr\]"):
            ocr.get_engine()
    finally:
        ocr.set_threads(ocr.THREADS)
