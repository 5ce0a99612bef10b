"""Colour words in zh, ja, de, es, fr, ru and ar, each mapped to a name of the colour table.

Pure data: :func:`mmsearch.media.colors.colour_words` builds its matcher from
these tables (``docs/color.md`` states the rules). Each value is a name of
:data:`mmsearch.media.colors.NAMES` (or one of its ``ALIASES``).

- **WORDS** (de, es, fr, ru, ar): matched as whole words, case-insensitively,
  in every form people type: gender, number and case endings are generated
  from a stem (``_de``, ``_es``, ``_ru``...). Arabic words are written as
  :func:`normalise_arabic` leaves them, and may carry a proclitic (و, ف, ال,
  بال, لل...).
- **CJK** (zh, ja): matched as substrings, as there are no spaces, so only
  safe forms are listed: a colour with 色 (红色, 赤色), Japanese adjectives
  (赤い, 青く), 真っ赤-style forms, and a few clear compounds (黑猫, 蓝天). Never
  a bare colour character: 白 is in 明白 (understand) and 白天 (daytime), 红
  in 网红 (influencer), 赤 in 赤ちゃん (baby).
- **KATAKANA** loanwords (レッド, ブルー) match only as a whole katakana run:
  ブルー is not found in ブルーベリー, nor グレー in グレープ.

Left out on purpose: fr "rose" alone (an English word; "rose pâle", "rose
vif", "couleur rose" count), fr "or" (English again) and "argent" (money),
es "café" (coffee), ar بنية (also "structure"), and bare CJK characters.
"""

from __future__ import annotations

import re
import unicodedata


def _forms(stem: str, endings: str) -> list[str]:
    return [stem + e for e in endings.split(",")]


def _de(stem: str) -> list[str]:
    """A German colour adjective: rot, rote, roter, rotes, roten, rotem."""
    return _forms(stem, ",e,er,es,en,em")


def _es(stem: str) -> list[str]:
    """A Spanish adjective in -o: rojo, roja, rojos, rojas."""
    return _forms(stem, "o,a,os,as")


def _fr(stem: str, fem: str | None = None) -> list[str]:
    """A French adjective: vert, verte, verts, vertes (``fem`` when irregular)."""
    f = fem if fem is not None else stem + "e"
    return [stem, f, stem + "s", f + "s"]


_RU_HARD = "ый,ая,ое,ые,ого,ому,ым,ом,ую,ой,ых,ыми"
_RU_STRESSED = "ой,ая,ое,ые,ого,ому,ым,ом,ую,ых,ыми"  # голубой, золотой
_RU_SOFT = "ий,яя,ее,ие,его,ему,им,ем,юю,ей,их,ими"  # синий


def _ru(stem: str, endings: str = _RU_HARD) -> list[str]:
    """A Russian adjective in every gender, number and case: красный ... красными."""
    out = _forms(stem, endings)
    if "ё" in stem:  # жёлтый is mostly typed желтый
        out += _forms(stem.replace("ё", "е"), endings)
    return out


_BY_NAME: dict[str, list[str]] = {
    "red": [
        *_de("rot"),
        *_es("roj"),
        *_fr("rouge", "rouge"),
        *_ru("красн"),
        "احمر",
        "حمراء",
    ],
    "dark red": [
        *_de("dunkelrot"),
        "rojo oscuro",
        "roja oscura",
        "rouge foncé",
        *_ru("тёмно-красн"),
    ],
    "burgundy": [*_de("weinrot"), "burdeos", *_ru("бордов"), "عنابي", "عنابيه"],
    "orange": [
        *_de("orangen")[1:],  # orangene, orangener...; "orange" is the English word
        "naranja",
        "naranjas",
        *_es("anaranjad"),
        *_ru("оранжев"),
        *_ru("рыж", "ий,ая,ее,ие,его,ему,им,ем,ую,ей,их,ими"),
        "برتقالي",
        "برتقاليه",
    ],
    "yellow": [
        *_de("gelb"),
        *_es("amarill"),
        *_fr("jaune", "jaune"),
        *_ru("жёлт"),
        "اصفر",
        "صفراء",
    ],
    "gold": [
        *_de("golden")[1:],
        "goldfarben",
        "oro",
        *_es("dorad"),
        *_fr("doré"),
        *_fr("dore"),
        *_ru("золот", _RU_STRESSED),
        *_ru("золотист"),
        "ذهبي",
        "ذهبيه",
    ],
    "green": [
        *_de("grün"),
        *_de("gruen"),
        "verde",
        "verdes",
        *_fr("vert"),
        *_ru("зелён"),
        "اخضر",
        "خضراء",
    ],
    "dark green": [*_de("dunkelgrün"), "verde oscuro", "vert foncé", *_ru("тёмно-зелён")],
    "turquoise": [*_de("türkis"), "turquesa", "turquesas", *_ru("бирюзов"), "فيروزي", "فيروزيه"],
    "blue": [
        *_de("blau"),
        "azul",
        "azules",
        *_fr("bleu", "bleue"),
        *_ru("син", _RU_SOFT),
        *_ru("голуб", _RU_STRESSED),
        "ازرق",
        "زرقاء",
    ],
    "sky blue": [
        *_de("hellblau"),
        *_de("himmelblau"),
        "celeste",
        "celestes",
        "azul claro",
        "azul cielo",
        "bleu ciel",
        "bleu clair",
        "سماوي",
        "سماويه",
    ],
    "navy": [
        *_de("dunkelblau"),
        *_de("marineblau"),
        "azul marino",
        "bleu marine",
        "bleu foncé",
        *_ru("тёмно-син", _RU_SOFT),
        "كحلي",
        "كحليه",
    ],
    "purple": [
        "lila",
        *_de("violett"),
        *_es("morad"),
        "violeta",
        "violetas",
        "púrpura",
        "purpura",
        *_fr("violet", "violette"),
        "pourpre",
        "pourpres",
        *_ru("фиолетов"),
        *_ru("пурпурн"),
        "بنفسجي",
        "بنفسجيه",
        "ارجواني",
        "ارجوانيه",
    ],
    "pink": [
        "rosa",  # de and es; es "rosas" (roses) left out
        *_de("pink")[1:],
        *_es("rosad"),
        *_ru("розов"),
        "rose clair",  # fr "rose" alone is an English word: only these
        "rose pâle",
        "rose vif",
        "rose foncé",
        "couleur rose",
        "وردي",
        "ورديه",
        "زهري",
        "زهريه",
    ],
    "brown": [
        *_de("braun"),
        "marrón",
        "marron",
        "marrones",
        "marrons",
        *_fr("brun"),
        *_ru("коричнев"),
        "بني",  # the feminine بنية is also "structure": left out
    ],
    "beige": ["beiges", *_ru("бежев"), "بيج"],
    "black": [*_de("schwarz"), *_es("negr"), *_fr("noir"), *_ru("чёрн"), "اسود", "سوداء"],
    "grey": [
        *_de("grau"),
        "gris",
        "grises",
        "grise",
        *_ru("сер"),
        "رمادي",
        "رماديه",
    ],
    "charcoal": [*_de("dunkelgrau"), "gris oscuro", "gris foncé", *_ru("тёмно-сер")],
    "silver": [
        *_de("silbern"),
        "silber",
        *_de("hellgrau"),
        *_es("platead"),
        *_fr("argenté"),
        *_fr("argente"),
        "gris claro",
        "gris clair",
        *_ru("серебрян"),
        *_ru("серебрист"),
        "فضي",
        "فضيه",
    ],
    "white": [
        *_de("weiß"),
        *_de("weiss"),
        *_es("blanc"),
        *_fr("blanc", "blanche"),
        *_ru("бел"),
        "ابيض",
        "بيضاء",
    ],
}

# zh (simplified; traditional forms are added below) and ja: matched as substrings
_CJK_BY_NAME: dict[str, list[str]] = {
    "red": [
        "红色",
        "红花",
        "红旗",
        "红衣",
        "红裙",
        "红酒",
        "红叶",
        "红墙",
        "红玫瑰",
        "红苹果",
        "赤色",
        "赤い",
        "赤く",
        "真っ赤",
    ],
    "dark red": ["深红色", "暗红色"],
    "burgundy": ["酒红色"],
    "orange": ["橙色", "橘色", "桔色", "橘黄色"],
    "yellow": ["黄色", "黄叶", "黄狗", "黄色い", "黄色く"],
    "gold": ["金色", "金黄色"],
    "green": ["绿色", "绿叶", "绿草", "緑", "緑色"],
    "dark green": ["深绿色", "墨绿色"],
    "teal": ["青绿色"],
    "blue": ["蓝色", "蓝天", "青色", "青い", "青く", "真っ青"],  # 青色: ja blue (zh cyan)
    "sky blue": ["天蓝色", "浅蓝色", "水色"],
    "navy": ["深蓝色", "藏青色", "藏蓝色", "紺色"],
    "purple": ["紫色"],
    "pink": ["粉色", "粉红", "粉红色", "桃色"],
    "brown": ["棕色", "褐色", "咖啡色", "茶色", "茶色い"],
    "beige": ["米色", "米黄色"],
    "black": [
        "黑色",
        "黑猫",
        "黑狗",
        "黑衣",
        "黑发",
        "黒色",
        "黒猫",
        "黒髪",
        "黒い",
        "黒く",
        "真っ黒",
    ],
    "grey": ["灰色"],
    "charcoal": ["深灰色"],
    "silver": ["银色", "浅灰色", "銀色"],
    "white": [
        "白色",
        "白云",
        "白雪",
        "白猫",
        "白狗",
        "白衣",
        "白墙",
        "白鸽",
        "白玫瑰",
        "白い",
        "白く",
        "真っ白",
    ],
}
CJK_NOT_AFTER: dict[str, str] = {"白い": "面", "白く": "面", "黒い": "腹"}
"""Characters a CJK form must not follow: 面白い is "funny", 腹黒い "scheming"."""

_KATAKANA_BY_NAME: dict[str, list[str]] = {
    "red": ["レッド"],
    "orange": ["オレンジ"],
    "yellow": ["イエロー"],
    "gold": ["ゴールド"],
    "green": ["グリーン"],
    "blue": ["ブルー"],
    "navy": ["ネイビー"],
    "turquoise": ["ターコイズ"],
    "purple": ["パープル", "バイオレット"],
    "pink": ["ピンク"],
    "brown": ["ブラウン"],
    "beige": ["ベージュ"],
    "black": ["ブラック"],
    "grey": ["グレー", "グレイ"],
    "silver": ["シルバー"],
    "white": ["ホワイト"],
}

_TRADITIONAL = str.maketrans("红绿蓝黄银浅猫车云叶鸽墙发", "紅綠藍黃銀淺貓車雲葉鴿牆髮")

MOSTLY_WORDS: tuple[str, ...] = (
    # de, es, fr, ru: an adverb before the colour word ("überwiegend grün")
    "überwiegend",
    "hauptsächlich",
    "größtenteils",
    "vorwiegend",
    "mayormente",
    "principalmente",
    "predominantemente",
    "principalement",
    "majoritairement",
    "surtout",
    "entièrement",
    "в основном",
    "преимущественно",
    "полностью",
)
MOSTLY_CJK: tuple[str, ...] = (
    "主要是",
    "大部分是",
    "大多是",
    "几乎全是",
    "全是",
    "全部是",
    "ほとんど",
)
"""Words before a colour word that ask for most of the picture, beside the English ones."""

_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u0640]")  # harakat, tatweel
_ARABIC_LETTERS = str.maketrans("أإآٱةى", "اااا" + "هي")


def normalise_arabic(text: str) -> str:
    """Arabic as typed many ways, one way: no harakat or tatweel, bare alef, ه for ة, ي for ى."""
    return _ARABIC_MARKS.sub("", text).translate(_ARABIC_LETTERS)


def normalise_text(text: str) -> str:
    """What colour words are looked for in: NFC, with :func:`normalise_arabic`."""
    return normalise_arabic(unicodedata.normalize("NFC", text))


def word_key(word: str) -> str:
    """How a word is looked up in the tables: normalised, lower case, one space for ``[\\s_-]+``."""
    return re.sub(r"[\s_-]+", " ", normalise_text(word).strip()).lower()


def _table(by_name: dict[str, list[str]], traditional: bool = False) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, words in by_name.items():
        for word in words:
            out[word_key(word)] = name
            if traditional:
                out[word_key(word.translate(_TRADITIONAL))] = name
    return out


WORDS: dict[str, str] = _table(_BY_NAME)
"""de, es, fr, ru and ar colour words (as :func:`word_key` leaves them) → colour name."""
CJK: dict[str, str] = _table(_CJK_BY_NAME, traditional=True)
"""zh (simplified and traditional) and ja forms, matched as substrings → colour name."""
KATAKANA: dict[str, str] = _table(_KATAKANA_BY_NAME)
"""Japanese loanwords, matched as whole katakana runs → colour name."""
