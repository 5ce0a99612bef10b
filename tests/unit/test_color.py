"""Colour: sRGB → Lab, CIEDE2000, palettes of generated pictures, the named-colour table."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mmsearch.errors import QueryError
from mmsearch.media.color_words import CJK, KATAKANA, WORDS
from mmsearch.media.colors import (
    ALIASES,
    CENTRES_LAB,
    FAMILIES,
    NAMED_COLORS,
    NAMES,
    colour_words,
    coverage,
    nearest_names,
    parse_color,
)
from mmsearch.media.palette import (
    ciede2000,
    delta_e76,
    extract_palette,
    lab_to_srgb,
    srgb_to_lab,
    to_hex,
)

# sRGB (D65) → CIELAB reference values (Bruce Lindbloom's calculator, colormine.org)
LAB_REFERENCE = [
    ((255, 255, 255), (100.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
    ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
    ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
    ((128, 128, 128), (53.5850, 0.0, 0.0)),
    ((255, 255, 0), (97.1393, -21.5537, 94.4780)),
]


@pytest.mark.parametrize(("rgb", "lab"), LAB_REFERENCE)
def test_srgb_to_lab_matches_reference_values(rgb, lab) -> None:
    assert srgb_to_lab(rgb) == pytest.approx(lab, abs=0.01)
    assert tuple(lab_to_srgb(lab)) == rgb


# Sharma, Wu & Dalal (2005), table 1: pairs 1, 7, 10, 14, 17, 25, 30, 34
CIEDE2000_PAIRS = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.5, 0.0), (50.0, 0.0, -2.5), 4.3065),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (56.0, -27.0, -3.0), 31.9030),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((90.8027, -2.0831, 1.441), (91.1528, -1.6435, 0.0447), 1.4441),
    ((2.0776, 0.0795, -1.135), (0.9033, -0.0636, -0.5514), 0.9082),
]


def test_ciede2000_matches_sharma_test_data() -> None:
    first = np.array([p[0] for p in CIEDE2000_PAIRS])
    second = np.array([p[1] for p in CIEDE2000_PAIRS])
    expected = [p[2] for p in CIEDE2000_PAIRS]
    assert ciede2000(first, second) == pytest.approx(expected, abs=1e-4)
    assert ciede2000(second, first) == pytest.approx(expected, abs=1e-4)  # symmetric


def test_delta_e76_is_euclidean_in_lab() -> None:
    assert float(delta_e76((50, 0, 0), (53, 4, 0))) == pytest.approx(5.0)
    assert float(ciede2000((50, 10, 10), (50, 10, 10))) == 0.0


def _two_colour(top: tuple[int, int, int], bottom: tuple[int, int, int], top_rows: int):
    arr = np.empty((100, 120, 3), np.uint8)
    arr[:top_rows] = top
    arr[top_rows:] = bottom
    return Image.fromarray(arr)


def test_palette_of_a_70_30_picture_gives_those_shares() -> None:
    red, blue = (210, 30, 35), (30, 60, 200)
    palette = extract_palette(_two_colour(red, blue, 70))
    assert len(palette) == 2
    (first, second) = palette
    assert first[3] == pytest.approx(0.70, abs=0.02)
    assert second[3] == pytest.approx(0.30, abs=0.02)
    assert float(ciede2000(first[:3], srgb_to_lab(red))) < 2
    assert float(ciede2000(second[:3], srgb_to_lab(blue))) < 2
    assert sum(p[3] for p in palette) == pytest.approx(1.0, abs=0.002)


def test_palette_merges_shades_and_drops_specks() -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(-4, 5, (200, 200, 3))
    arr = np.clip(np.full((200, 200, 3), (40, 150, 40)) + noise, 0, 255)
    arr[:1, :2] = (255, 255, 255)  # a speck, far below 1% of the picture
    palette = extract_palette(Image.fromarray(arr.astype(np.uint8)))
    assert len(palette) == 1 and palette[0][3] == 1.0
    assert NAMES[int(nearest_names(np.array(palette[0][:3])))] == "green"


def test_every_name_is_its_own_nearest_and_every_family_a_name() -> None:
    assert len(NAMED_COLORS) >= 30
    assert list(nearest_names(CENTRES_LAB)) == list(range(len(NAMES)))
    assert set(FAMILIES) <= set(NAMES)
    assert set(ALIASES.values()) <= set(NAMES)
    for basic in ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown"):
        assert basic in FAMILIES
    for other in ("black", "white", "grey", "gold", "beige", "navy", "teal"):
        assert other in NAMES


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((220, 20, 30), "red"),
        ((250, 140, 20), "orange"),
        ((250, 230, 30), "yellow"),
        ((30, 140, 50), "green"),
        ((30, 80, 200), "blue"),
        ((20, 30, 80), "navy"),
        ((5, 5, 5), "black"),
        ((255, 255, 255), "white"),
        ((125, 125, 125), "grey"),
        ((120, 70, 35), "brown"),
    ],
)
def test_everyday_colours_get_their_names(rgb, name) -> None:
    assert NAMES[int(nearest_names(srgb_to_lab(rgb)))] == name


def test_parse_color_names_hex_and_shares() -> None:
    red = parse_color("Red")
    assert red.is_named and "maroon" in [NAMES[i] for i in red.names] and red.share is None
    assert [NAMES[i] for i in parse_color("navy").names] == ["navy"]
    assert parse_color("gray").text == "grey"
    assert parse_color("Sky-Blue").text == "sky blue"
    assert parse_color("red:30%").share == pytest.approx(0.3)
    assert parse_color("red:0.3").share == pytest.approx(0.3)
    exact = parse_color("#1F5FBF:10%")
    assert exact.text == "#1f5fbf" and not exact.is_named and exact.share == pytest.approx(0.1)
    assert parse_color("#f00").text == "#ff0000"
    assert to_hex(exact.lab) == "#1f5fbf"


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("reddish", "unknown colour 'reddish'"),
        ("#12345", "unknown colour"),
        ("red:150%", "bad colour share"),
        ("red:0%", "bad colour share"),
        ("red:lots", "bad colour share"),
    ],
)
def test_bad_colours_are_refused_with_the_reason(given: str, says: str) -> None:
    with pytest.raises(QueryError, match=says):
        parse_color(given)


def test_colour_words_in_text() -> None:
    assert colour_words("a red car by a dark green door") == ["red", "dark green"]
    assert colour_words("photos that are mostly green") == ["green:50%"]
    assert colour_words("a Gray cat, a grey dog") == ["grey"]
    assert colour_words("a cat on a sofa") == []
    assert colour_words("redwood forest") == []  # whole words only


@pytest.mark.parametrize(
    "text",
    [
        "un coche rojo",
        "ein rotes Motorrad",
        "一辆红色的车",
        "一輛紅色的車",  # traditional
        "赤い車",
        "レッドの車",
        "красная машина",
        "une voiture rouge",
        "سيارة حمراء",
        "السيارة الحمراء",  # with the article
        "سيّارة حَمْراء",  # with harakat
    ],
)
def test_colour_words_in_the_benchmarked_languages(text: str) -> None:
    assert colour_words(text) == ["red"]


@pytest.mark.parametrize(
    ("words", "name"),
    [
        ("rojo roja rojos rojas", "red"),
        ("rot rote roter rotes roten rotem ROT", "red"),
        ("vert verte verts vertes", "green"),
        ("красный красная красное красные красного красную красным красными", "red"),
        ("синий синяя синее синие синего синюю синим", "blue"),
        ("жёлтый желтая", "yellow"),
        ("weiß weiße WEISS weisses", "white"),
        ("blanc blanche blancs blanches blanco blanca", "white"),
        ("أحمر احمر الأحمر حمراء والحمراء بالأحمر للأحمر", "red"),
        ("红色 紅色 赤色 赤い 赤く 真っ赤 レッド 红酒", "red"),
        ("蓝色 藍色 青い 青色 ブルー 蓝天", "blue"),
        ("黑色 黒い 黒色 ブラック 黑猫", "black"),
        ("白色 白い 白雪 ホワイト", "white"),
        ("grau gris grise серый серая رمادي 灰色 グレー", "grey"),
    ],
)
def test_colour_words_in_every_form(words: str, name: str) -> None:
    for word in words.split():
        assert colour_words(f"x {word} x") == [name], word


def test_colour_words_of_other_languages_keep_their_names_and_modifiers() -> None:
    assert colour_words("un coche azul marino") == ["navy"]
    assert colour_words("тёмно-синий кот") == ["navy"]
    assert colour_words("ein dunkelgrünes Tor") == ["dark green"]
    assert colour_words("粉红色的花") == ["pink"]  # not 红色 inside it
    assert colour_words("金黄色的麦田") == ["gold"]
    assert colour_words("überwiegend grün") == ["green:50%"]
    assert colour_words("в основном зелёный") == ["green:50%"]
    assert colour_words("主要是红色") == ["red:50%"]
    assert colour_words("ein rotes Auto und une voiture verte") == ["red", "green"]
    assert colour_words("rojo y red") == ["red"]  # once each


@pytest.mark.parametrize(
    "text",
    [
        "明白",  # understand: 白 alone is never a colour
        "白天的海滩",  # daytime
        "网红",  # influencer
        "赤ちゃん",  # baby
        "面白い写真",  # a funny photo
        "ブルーベリー",  # blueberry: katakana as a whole run only
        "グレープ",  # grape
        "Rotwein",  # whole words only
        "una taza de café",  # coffee, not brown
        "une rose",  # fr "rose" is left out (an English word)
        "a rose in a vase",
        "бельё",
    ],
)
def test_colour_words_that_are_not_colours(text: str) -> None:
    assert colour_words(text) == []


BASIC = (
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
    "black",
    "white",
    "grey",
)


@pytest.mark.parametrize(
    "words",
    [
        "rojo naranja amarillo verde azul morado rosa marrón negro blanco gris",
        "rot orangene gelb grün blau lila rosa braun schwarz weiß grau",
        "rouge orange jaune vert bleu violette rose_pâle brun noir blanc gris",
        "красный оранжевый жёлтый зелёный синий фиолетовый розовый коричневый чёрный белый серый",
        "أحمر برتقالي أصفر أخضر أزرق بنفسجي وردي بني أسود أبيض رمادي",
        "红色 橙色 黄色 绿色 蓝色 紫色 粉色 棕色 黑色 白色 灰色",
        "赤い オレンジ 黄色い 緑色 青い 紫色 ピンク 茶色 黒い 白い グレー",
    ],
)
def test_every_language_has_the_basic_colours(words: str) -> None:
    found = [colour_words(w.replace("_", " ")) for w in words.split()]
    assert found == [[name] for name in BASIC]


def test_every_colour_word_names_a_colour() -> None:
    for word, name in {**WORDS, **CJK, **KATAKANA}.items():
        assert parse_color(name).is_named, (word, name)


def test_coverage_of_named_and_hex_colours() -> None:
    palettes = [
        [[*srgb_to_lab((210, 30, 35)), 0.7], [*srgb_to_lab((30, 60, 200)), 0.3]],
        [[*srgb_to_lab((25, 35, 90)), 1.0], [0, 0, 0, 0.0]],
    ]
    arr = np.asarray(palettes, dtype=np.float32)
    lab, share = arr[..., :3], arr[..., 3]
    names = nearest_names(lab)
    assert coverage(parse_color("red"), lab, share, names) == pytest.approx([0.7, 0.0], abs=1e-6)
    assert coverage(parse_color("blue"), lab, share, names) == pytest.approx([0.3, 1.0], abs=1e-6)
    assert coverage(parse_color("navy"), lab, share, names) == pytest.approx([0.0, 1.0], abs=1e-6)
    exact = coverage(parse_color("#d21e23"), lab, share, names)
    assert exact[0] == pytest.approx(0.7, abs=1e-3) and exact[1] == 0.0
