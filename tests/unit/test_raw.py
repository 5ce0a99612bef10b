"""Camera RAW files through rawpy (LibRaw): preview or half-size demosaic, upright, or a skip.

No RAW sample ships with rawpy or any installed package, so the RAW files here are
DNGs made with tifffile: a Bayer (RGGB) mosaic with the tags LibRaw needs (DNGVersion,
ColorMatrix1 mapping XYZ to linear sRGB, AsShotNeutral, WhiteLevel), optionally with
an uncompressed RGB preview in IFD0 and the mosaic in a SubIFD, as cameras lay it out.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mmsearch.media.decode import DecodeError, DecodeOptions, decode_file, load_image
from mmsearch.media.formats import RAW_EXTENSIONS, modality_of
from tests.support.deps import need

WHITE = 4095  # a 12-bit sensor
# XYZ (D65) to linear sRGB: the fake camera's native space is linear sRGB.
XYZ_TO_SRGB = [3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570]


def make_dng(
    path: Path, scene: np.ndarray, orientation: int = 1, preview: np.ndarray | None = None
) -> Path:
    """Write ``scene`` (HxWx3 linear RGB in 0..1) as a 12-bit RGGB DNG."""
    tifffile: Any = need("tifffile")
    linear = (np.clip(scene, 0, 1) * WHITE).astype(np.uint16)
    mosaic = np.empty(scene.shape[:2], np.uint16)
    mosaic[0::2, 0::2] = linear[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = linear[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = linear[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = linear[1::2, 1::2, 2]
    matrix = [v for x in XYZ_TO_SRGB for v in (round(x * 10000), 10000)]
    main = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (271, "s", 0, "mmsearch", True),  # Make
        (272, "s", 0, "test camera", True),  # Model
        (50708, "s", 0, "mmsearch test camera", True),  # UniqueCameraModel
        (274, "H", 1, orientation, True),  # Orientation
        (50721, "2i", 9, matrix, True),  # ColorMatrix1 (SRATIONAL)
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
        (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),  # AsShotNeutral
    ]
    raw = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern: RGGB
        (50717, "I", 1, WHITE, True),  # WhiteLevel
        (50714, "H", 1, 0, True),  # BlackLevel
    ]
    with tifffile.TiffWriter(path) as tw:
        if preview is None:
            tw.write(mosaic, photometric=32803, subfiletype=0, extratags=main + raw)
        else:
            tw.write(preview, photometric="rgb", subfiletype=1, subifds=1, extratags=main)
            tw.write(mosaic, photometric=32803, subfiletype=0, extratags=raw)
    return path


def scene(size: tuple[int, int], left: tuple, right: tuple | None = None) -> np.ndarray:
    """A (width, height) scene, its left half one colour and its right half another."""
    out = np.empty((size[1], size[0], 3))
    out[:] = left
    if right is not None:
        out[:, size[0] // 2 :] = right
    return out


def mean(im: Image.Image) -> np.ndarray:
    return np.asarray(im, np.float32).reshape(-1, 3).mean(axis=0)


@pytest.fixture
def rawpy() -> object:
    return need("rawpy")


def test_raw_extensions_are_images() -> None:
    for ext in RAW_EXTENSIONS:
        assert modality_of(f"photo{ext.upper()}") == "image"


def test_red_dng_demosaics_red_at_model_size(tmp_path: Path, rawpy: object) -> None:
    path = make_dng(tmp_path / "red.dng", scene((600, 400), (0.8, 0.05, 0.05)))
    out = load_image(str(path), 224)
    assert out.image.mode == "RGB"
    assert (out.width, out.height) == (600, 400)
    assert min(out.image.size) == 200  # half-size demosaic, smaller than the target
    r, g, b = mean(out.image)
    assert r > 180 and g < 90 and b < 90

    decoded = decode_file(str(path), "image", DecodeOptions(224, 1 << 20))
    assert decoded.image is not None and mean(decoded.image.image)[0] > 180
    assert decoded.image.palette  # the palette reads the RAW decode like any other


def test_orientation_of_a_demosaic(tmp_path: Path, rawpy: object) -> None:
    # Left red, right blue; orientation 6 means "rotate 90 degrees clockwise to view".
    raw = scene((600, 400), (0.8, 0.05, 0.05), (0.05, 0.05, 0.8))
    out = load_image(str(make_dng(tmp_path / "turned.dng", raw, orientation=6)), 224)
    assert (out.width, out.height) == (400, 600)
    assert out.image.width < out.image.height
    arr = np.asarray(out.image, np.float32)
    top, bottom = arr[: arr.shape[0] // 4].reshape(-1, 3).mean(0), arr[-arr.shape[0] // 4 :]
    assert top[0] > 150 and top[2] < 100  # red went to the top
    assert bottom.reshape(-1, 3).mean(0)[2] > 150


def test_large_enough_preview_is_used_and_turned(tmp_path: Path, rawpy: object) -> None:
    # The sensor saw red; the camera's preview is green over blue once turned upright.
    preview = np.zeros((750, 1000, 3), np.uint8)
    preview[:, :500] = (20, 200, 20)
    preview[:, 500:] = (20, 20, 200)
    raw = scene((1200, 900), (0.8, 0.05, 0.05))
    path = make_dng(tmp_path / "p.dng", raw, orientation=6, preview=preview)

    out = load_image(str(path), 224)  # decodes at 800 px: the 1000 px preview is enough
    assert (out.width, out.height) == (900, 1200)
    assert out.image.size == (224, 299)
    arr = np.asarray(out.image, np.float32)
    assert arr[:50].reshape(-1, 3).mean(0)[1] > 150  # green on top: preview, turned
    assert arr[-50:].reshape(-1, 3).mean(0)[2] > 150

    sharp = load_image(str(path), 224, long_side=2000)  # OCR wants more: demosaic
    assert sharp.image.size == (450, 600)
    assert mean(sharp.image)[0] > 180


def test_without_rawpy_a_raw_is_a_skip_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "photo.nef"
    path.write_bytes(b"\0" * 64)
    monkeypatch.setitem(sys.modules, "rawpy", None)  # import rawpy raises ImportError
    with pytest.raises(DecodeError, match=r"pip install 'mmsearch\[raw\]'"):
        decode_file(str(path), "image", DecodeOptions(224, 1 << 20))


@pytest.mark.parametrize("content", [b"not a raw file at all" * 100, b"II*\0" + bytes(200)])
def test_damaged_raw_is_a_one_line_skip(tmp_path: Path, rawpy: object, content: bytes) -> None:
    path = tmp_path / "broken.dng"
    path.write_bytes(content)
    with pytest.raises(DecodeError, match="unreadable RAW file") as err:
        decode_file(str(path), "image", DecodeOptions(224, 1 << 20))
    assert "\n" not in str(err.value)


def test_truncated_dng_is_a_skip(tmp_path: Path, rawpy: object) -> None:
    path = make_dng(tmp_path / "cut.dng", scene((600, 400), (0.8, 0.05, 0.05)))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DecodeError):
        load_image(str(path), 224)


def test_raw_over_the_pixel_limit_is_refused(tmp_path: Path, rawpy: object) -> None:
    path = make_dng(tmp_path / "big.dng", scene((600, 400), (0.5, 0.5, 0.5)))
    with pytest.raises(DecodeError, match="over the limit"):
        load_image(str(path), 224, max_pixels=100_000)
