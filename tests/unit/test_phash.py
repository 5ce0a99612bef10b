"""The pixel check: copies agree, look-alikes don't, flat pictures carry no information."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps
from skimage import data

from mmsearch.media.phash import fingerprint, hash_distance, pixel_match, trim_border


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def test_copies_of_a_photo_match_and_other_photos_do_not() -> None:
    cat = Image.fromarray(data.chelsea())
    w, h = cat.size
    original = fingerprint(cat)
    copies = {
        "jpeg q30": _jpeg(cat, 30),
        "quarter size": cat.resize((w // 4, h // 4)),
        "crop 10%": cat.crop((w // 10, h // 10, w, h)),
        "grey border": ImageOps.expand(cat, border=24, fill=(128, 128, 128)),
    }
    for name, copy in copies.items():
        assert pixel_match(original, fingerprint(copy)) >= 0.95, name
    assert hash_distance(original.phash, fingerprint(_jpeg(cat, 30)).phash) <= 4
    for other in (data.coffee(), data.astronaut(), data.rocket()):
        theirs = fingerprint(Image.fromarray(other))
        assert pixel_match(original, theirs) < 0.5
        assert hash_distance(original.phash, theirs.phash) > 16


def test_flat_pictures_carry_no_information() -> None:
    black = fingerprint(Image.new("RGB", (160, 120)))
    grey = fingerprint(Image.new("RGB", (160, 120), (90, 90, 90)))
    dim = fingerprint(Image.fromarray((data.chelsea() * 0.05).astype(np.uint8)))  # a fade's end
    assert not black.informative and not grey.informative and not dim.informative
    assert pixel_match(black, grey) == 0.0  # two black frames are not the same picture
    assert fingerprint(Image.fromarray(data.chelsea())).informative


def test_trim_border_removes_flat_margins_only() -> None:
    photo = np.asarray(Image.fromarray(data.coffee()).convert("L"), dtype=np.float32)
    framed = np.pad(photo, 20, constant_values=128.0)
    assert trim_border(framed).shape == photo.shape
    assert trim_border(photo).shape == photo.shape
