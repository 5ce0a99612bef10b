"""Decoding every supported image format and text encoding into model input."""

from __future__ import annotations

import codecs
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch.media.decode import (
    DecodeError,
    DecodeOptions,
    decode_file,
    decode_text,
    load_image,
    register_heif,
)
from mmsearch.media.formats import modality_of
from tests.support.media import real_photos, solid


def _mean(im: Image.Image) -> np.ndarray:
    return np.asarray(im, np.float32).reshape(-1, 3).mean(axis=0)


IMAGE_FORMATS = ["jpg", "png", "webp", "avif", "bmp", "tiff", "gif", "heic"]
IMAGE_FORMATS += ["jp2", "j2k", "jpx", "jpf", "ppm", "pnm"]  # JPEG 2000 and netpbm


@pytest.mark.parametrize("ext", IMAGE_FORMATS)
def test_every_image_format_decodes_to_rgb_at_model_size(tmp_path: Path, ext: str) -> None:
    register_heif()
    path = tmp_path / f"red.{ext}"
    img = solid((220, 30, 30), size=(640, 480))
    fmt = {"jpx": "JPEG2000", "jpf": "JPEG2000", "pnm": "PPM"}.get(ext)
    img.save(path, fmt, **({"quality": 95} if ext in ("jpg", "webp", "avif", "heic") else {}))
    assert modality_of(str(path)) == "image"
    out = load_image(str(path), 224)
    assert out.image.mode == "RGB"
    assert (out.width, out.height) == (640, 480)
    assert min(out.image.size) == 224
    r, g, b = _mean(out.image)
    assert r > 180 and g < 80 and b < 80


def test_netpbm_16_bit_grey_and_1_bit(tmp_path: Path) -> None:
    """A 16-bit PGM (mode I;16B in Pillow) and a 1-bit PBM convert like any other mode."""
    deep = tmp_path / "deep.pgm"
    Image.fromarray(np.full((300, 400), 65535 // 4, np.uint16)).save(deep)
    with Image.open(deep) as im:
        assert im.format == "PPM" and im.mode.startswith("I")
    out = load_image(str(deep), 224)
    assert out.image.mode == "RGB" and (out.width, out.height) == (400, 300)
    assert np.allclose(_mean(out.image), 255 / 4, atol=2)

    bits = np.zeros((300, 400), bool)
    bits[:, 200:] = True  # right half white
    Image.fromarray(bits).save(tmp_path / "half.pbm")
    with Image.open(tmp_path / "half.pbm") as im:
        assert im.mode == "1"
    arr = np.asarray(load_image(str(tmp_path / "half.pbm"), 224).image, np.float32)
    assert arr[:, :100].max() < 10 and arr[:, -100:].min() > 245


def test_large_jpeg_is_drafted_and_aspect_kept(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    solid((30, 60, 220), size=(4000, 3000)).save(path, quality=90)
    out = load_image(str(path), 224)
    assert out.image.size == (299, 224)
    assert (out.width, out.height) == (4000, 3000)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Left half red, right half blue; orientation 6 means "rotate 90° clockwise to view".
    arr = np.zeros((200, 400, 3), np.uint8)
    arr[:, :200] = (255, 0, 0)
    arr[:, 200:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8769)[0x9003] = "2021:07:04 12:30:00"
    path = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    out = load_image(str(path), 224)
    assert (out.width, out.height) == (200, 400)  # upright size
    top, bottom = np.asarray(out.image)[10].mean(0), np.asarray(out.image)[-10].mean(0)
    assert top[0] > 200 and bottom[2] > 200  # red went to the top after rotation
    assert out.taken_at == "2021-07-04T12:30:00"


def test_alpha_palette_16bit_and_cmyk(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (300, 300), (255, 0, 0, 0))  # fully transparent red
    rgba.save(tmp_path / "alpha.png")
    assert _mean(load_image(str(tmp_path / "alpha.png"), 224).image).min() > 250  # white

    pal = solid((30, 180, 30)).convert("P", palette=Image.Palette.ADAPTIVE)
    pal.save(tmp_path / "pal.gif")
    assert _mean(load_image(str(tmp_path / "pal.gif"), 224).image)[1] > 140

    deep = Image.fromarray(np.full((256, 256), 65535 // 2, np.uint16))
    deep.save(tmp_path / "deep.png")
    grey = _mean(load_image(str(tmp_path / "deep.png"), 224).image)
    assert np.allclose(grey, 127.5, atol=2)

    cmyk = solid((220, 30, 30)).convert("CMYK")
    cmyk.save(tmp_path / "cmyk.jpg", quality=95)
    r, g, _b = _mean(load_image(str(tmp_path / "cmyk.jpg"), 224).image)
    assert r > 180 and g < 90


def test_animated_gif_gives_its_first_frame(tmp_path: Path) -> None:
    frames = [solid((220, 30, 30)), solid((30, 60, 220))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    r, _, b = _mean(load_image(str(tmp_path / "anim.gif"), 224).image)
    assert r > b


def test_real_photos_from_packages(tmp_path: Path) -> None:
    for name, path in real_photos(tmp_path).items():
        out = load_image(str(path), 224)
        assert out.image.mode == "RGB" and min(out.image.size) == 224, name


def test_broken_files_raise_decode_error(tmp_path: Path) -> None:
    (tmp_path / "fake.jpg").write_text("this is not a jpeg")
    with pytest.raises(DecodeError, match="not a readable image"):
        decode_file(str(tmp_path / "fake.jpg"), "image", DecodeOptions(224, 1000))
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DecodeError, match="empty file"):
        decode_file(str(tmp_path / "empty.png"), "image", DecodeOptions(224, 1000))
    good = tmp_path / "cut.jpg"
    solid((1, 2, 3), size=(800, 600)).save(good, quality=95)
    good.write_bytes(good.read_bytes()[:400])
    with pytest.raises(DecodeError):
        decode_file(str(good), "image", DecodeOptions(224, 1000))


def test_text_encodings() -> None:
    assert decode_text("café".encode()) == "café"
    assert decode_text("café".encode("latin-1")) == "café"
    assert decode_text(codecs.BOM_UTF16_LE + "naïve".encode("utf-16-le")) == "naïve"
    assert decode_text(codecs.BOM_UTF8 + b"plain") == "plain"
    with pytest.raises(DecodeError, match="binary"):
        decode_text(b"\x00\x01\x02ELF\x00")


def test_text_limits(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("word " * 1000)
    with pytest.raises(DecodeError, match="over the limit"):
        decode_file(str(big), "text", DecodeOptions(224, 100))
    blank = tmp_path / "blank.md"
    blank.write_text("   \n\n ")
    with pytest.raises(DecodeError, match="empty text"):
        decode_file(str(blank), "text", DecodeOptions(224, 1000))
    ok = decode_file(str(big), "text", DecodeOptions(224, 10_000))
    assert ok.text and ok.size == 5000 and len(ok.content_hash) == 32
