"""Named colours: everyday colour words, their CIELAB centres, and query colours.

Each name has a centre (given in sRGB, the table below, and converted to Lab
once) and a *family*: the basic colour term it belongs to (navy is a blue,
maroon a red, gold a yellow). A picture's palette colour takes the name whose
centre is nearest (CIEDE2000); a query for a family name (``blue``) matches the
palette colours named by any member of the family (blue, navy, sky blue), a
query for another name (``navy``) the colours of that name only. The table is
``docs/color.md``'s table; change both together.

A query colour is ``NAME`` or ``#RRGGBB`` (``#RGB``), optionally with a share
of the picture it should at least cover: ``red:30%`` (``:0.3`` works too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from mmsearch.errors import QueryError
from mmsearch.media.color_words import (
    CJK,
    CJK_NOT_AFTER,
    KATAKANA,
    MOSTLY_CJK,
    MOSTLY_WORDS,
    WORDS,
    normalise_text,
    word_key,
)
from mmsearch.media.palette import srgb_to_lab

# name, sRGB centre, family. Centres are typical of photographs (a red car,
# a red dress), not the pure primaries no camera records.
NAMED_COLORS: tuple[tuple[str, str, str], ...] = (
    ("red", "#c8242b", "red"),
    ("dark red", "#7f1416", "red"),
    ("maroon", "#5e1a1d", "red"),
    ("burgundy", "#6d1a36", "red"),
    ("orange", "#ee7f1f", "orange"),
    ("coral", "#f07b63", "orange"),
    ("copper", "#b5652f", "orange"),
    ("yellow", "#f4d221", "yellow"),
    ("gold", "#d1a23b", "yellow"),
    ("lime", "#9acd32", "green"),
    ("olive", "#7d7a2c", "green"),
    ("green", "#3d9a3f", "green"),
    ("dark green", "#1e4a28", "green"),
    ("teal", "#1a7f80", "teal"),
    ("turquoise", "#3fc9c2", "teal"),
    ("cyan", "#27b9dc", "teal"),
    ("sky blue", "#8ec5ea", "blue"),
    ("blue", "#2660b6", "blue"),
    ("navy", "#1d2c5c", "blue"),
    ("purple", "#6f2c8f", "purple"),
    ("violet", "#8c62c9", "purple"),
    ("lavender", "#b9a8dc", "purple"),
    ("magenta", "#c8247f", "pink"),
    ("pink", "#f1a1b6", "pink"),
    ("brown", "#7b4a26", "brown"),
    ("dark brown", "#48301f", "brown"),
    ("tan", "#c19a6b", "brown"),
    ("beige", "#dccdae", "beige"),
    ("cream", "#f2ead2", "beige"),
    ("black", "#141414", "black"),
    ("charcoal", "#383a3c", "grey"),
    ("grey", "#808080", "grey"),
    ("silver", "#c0c0c2", "grey"),
    ("white", "#f6f6f4", "white"),
)
ALIASES = {
    "gray": "grey",
    "dark grey": "charcoal",
    "dark gray": "charcoal",
    "light grey": "silver",
    "light gray": "silver",
    "light blue": "sky blue",
    "navy blue": "navy",
    "golden": "gold",
}
"""Other spellings and words for a name."""

NAMES: tuple[str, ...] = tuple(n for n, _, _ in NAMED_COLORS)
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(f for _, _, f in NAMED_COLORS))


def _rgb(hexcode: str) -> tuple[int, int, int]:
    h = hexcode.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


CENTRES_LAB: np.ndarray = srgb_to_lab(np.array([_rgb(h) for _, h, _ in NAMED_COLORS]))
"""Lab centre of each name, in the order of :data:`NAMES`."""


@dataclass(frozen=True)
class QueryColor:
    """A colour asked for: a named colour (the names it covers) or an exact one (``#hex``)."""

    text: str  # as given, normalised (``red``, ``#1f5fbf``)
    lab: tuple[float, float, float]
    names: tuple[int, ...] = ()  # indices into NAMES it covers; empty for a #hex colour
    share: float | None = None  # at least this share of the picture (0-1]

    @property
    def is_named(self) -> bool:
        return bool(self.names)


def normalise_name(name: str) -> str:
    key = re.sub(r"[\s_-]+", " ", name.strip().lower())
    return ALIASES.get(key, key)


def _names_of(name: str) -> tuple[int, ...]:
    if name in FAMILIES:
        return tuple(i for i, (_, _, fam) in enumerate(NAMED_COLORS) if fam == name)
    return (NAMES.index(name),)


_HEX = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")
_SHARE = re.compile(r"(\d+(?:\.\d+)?)(%?)")


def _share(raw: str, given: str) -> float:
    m = _SHARE.fullmatch(raw.strip())
    value = float(m.group(1)) / (100 if m.group(2) else 1) if m else -1.0
    if m and not m.group(2) and value > 1:
        value /= 100  # red:30 means 30%
    if not m or not 0 < value <= 1:
        raise QueryError(f"bad colour share in {given!r}: give a percentage such as red:30%")
    return value


def parse_color(given: str) -> QueryColor:
    """``NAME``, ``#RRGGBB`` or ``#RGB``, optionally ``:SHARE``; :class:`QueryError` if not."""
    value, _, share_text = given.strip().partition(":")
    share = _share(share_text, given) if share_text else None
    if _HEX.fullmatch(value.strip()):
        rgb = _rgb(value.strip())
        lab = srgb_to_lab(rgb)
        text = "#{:02x}{:02x}{:02x}".format(*rgb)
        return QueryColor(text, (float(lab[0]), float(lab[1]), float(lab[2])), (), share)
    name = normalise_name(value)
    if name not in NAMES and name not in FAMILIES:
        raise QueryError(
            f"unknown colour {value.strip()!r}: give a name such as red, navy or beige"
            " (see docs/color.md) or a hex colour such as #1f5fbf"
        )
    centre = CENTRES_LAB[NAMES.index(name)]  # every family is also a name
    lab_centre = (float(centre[0]), float(centre[1]), float(centre[2]))
    return QueryColor(name, lab_centre, _names_of(name), share)


def nearest_names(lab: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Index into :data:`NAMES` of the nearest centre (CIEDE2000) of each ``(..., 3)`` colour."""
    from mmsearch.media.palette import ciede2000

    flat = np.asarray(lab, dtype=np.float64).reshape(-1, 3)
    out = np.empty(len(flat), dtype=np.int16)
    for start in range(0, len(flat), chunk):
        part = flat[start : start + chunk]
        out[start : start + chunk] = ciede2000(part[:, None, :], CENTRES_LAB[None]).argmin(axis=1)
    return out.reshape(np.shape(lab)[:-1])


# Colour words in running text, in English and in zh, ja, de, es, fr, ru and ar
# (mmsearch/media/color_words.py). One pattern, longest words first, so "dark
# green" wins over "green" and 粉红色 over 红色. Whole words, case-insensitive,
# except CJK forms (substrings: the safe list) and katakana (whole katakana runs).
_ENGLISH = {*NAMES, *ALIASES}
_WORDS = sorted([*_ENGLISH, *(w for w in WORDS if w not in _ENGLISH)], key=lambda w: -len(w))


def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(w).replace(r"\ ", r"[\s-]+") for w in words)


def _is_arabic(word: str) -> bool:
    return any("\u0600" <= c <= "\u06ff" for c in word)


_CJK_WORDS = sorted(CJK, key=lambda w: -len(w))
_KANA = "[\u30a1-\u30fa\u30fc]"  # katakana letters and the long-vowel mark
_WORD_RE = re.compile(
    r"(?<!\w)(?P<word>" + _alternation([w for w in _WORDS if not _is_arabic(w)]) + r")(?!\w)"
    # an Arabic word may carry a proclitic: و ف (and), ال (the), بال كال لل (with/as/for the)
    r"|(?<!\w)(?:[وف]?(?:[بك]?ال|لل)|[وف])?(?P<ar>"
    + _alternation([w for w in _WORDS if _is_arabic(w)])
    + r")(?!\w)"
    + "|(?P<cjk>"
    + "|".join(
        (f"(?<!{re.escape(CJK_NOT_AFTER[w])})" if w in CJK_NOT_AFTER else "") + re.escape(w)
        for w in _CJK_WORDS
    )
    + ")"
    + f"|(?<!{_KANA})(?P<kana>"
    + "|".join(re.escape(w) for w in sorted(KATAKANA, key=lambda w: -len(w)))
    + f")(?!{_KANA})",
    re.IGNORECASE,
)
_MOSTLY = ("mostly", "mainly", "all", "entirely", "largely", *MOSTLY_WORDS)
_MOSTLY_RE = re.compile(
    r"(?:(?<!\w)(?:" + _alternation([*_MOSTLY]).replace(r"[\s-]+", r"\s+") + r")\s+"
    r"|(?:" + "|".join(map(re.escape, MOSTLY_CJK)) + r")\s*)$",
    re.IGNORECASE,
)
MOSTLY_SHARE = 0.5  # "mostly green": at least half the picture


def _name_of(m: re.Match[str]) -> str:
    if m.group("word") is not None:
        english = normalise_name(m.group("word"))
        return english if english in _ENGLISH else WORDS[word_key(m.group("word"))]
    if m.group("ar") is not None:
        return WORDS[word_key(m.group("ar"))]
    if m.group("cjk") is not None:
        return CJK[m.group("cjk")]
    return KATAKANA[m.group("kana")]


def colour_words(text: str) -> list[str]:
    """The colour parts a text asks for, as :func:`parse_color` takes them, in order, once each.

    ``"a red car by a dark green door"`` → ``["red", "dark green"]``; "mostly
    green" asks for at least half the picture (``green:50%``). Colour words of
    zh, ja, de, es, fr, ru and ar count too: ``"ein rotes Motorrad"``,
    ``"一辆红色的车"`` and ``"سيارة حمراء"`` → ``["red"]``.
    """
    text = normalise_text(text)
    found: dict[str, str] = {}
    for m in _WORD_RE.finditer(text):
        name = normalise_name(_name_of(m))
        mostly = _MOSTLY_RE.search(text[: m.start()])
        found.setdefault(name, f"{name}:{MOSTLY_SHARE:.0%}" if mostly else name)
    return list(found.values())


HEX_NEAR = 10.0  # CIEDE2000: a palette colour this close to a #hex colour counts fully
HEX_FAR = 25.0  # and one this far, or farther, not at all (linear between)


def coverage(
    color: QueryColor, lab: np.ndarray, share: np.ndarray, names: np.ndarray
) -> np.ndarray:
    """The share of each picture that shows ``color``, in [0, 1].

    ``lab`` ``(n, p, 3)``, ``share`` ``(n, p)`` and ``names`` ``(n, p)`` (from
    :func:`nearest_names`) describe ``n`` palettes of up to ``p`` colours
    (padding has share 0). A named colour covers the palette colours whose
    nearest name it covers; a ``#hex`` colour covers palette colours within
    ``HEX_NEAR`` fully and fades to nothing at ``HEX_FAR``.
    """
    from mmsearch.media.palette import ciede2000

    if color.is_named:
        weight = np.isin(names, color.names).astype(np.float32)
    else:
        distance = ciede2000(lab, np.asarray(color.lab))
        weight = np.clip((HEX_FAR - distance) / (HEX_FAR - HEX_NEAR), 0.0, 1.0)
    return np.asarray((share * weight).sum(axis=-1), dtype=np.float64)
