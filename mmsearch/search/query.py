"""Queries: parts with weights and negatives, filters, and how to rank, as one typed model.

    from mmsearch.search.query import Query
    q = (Query()
         .text("a red car")
         .image("ref.jpg", weight=0.5)
         .color("blue:20%")
         .exclude("night")
         .where(modality="image", tags={"trip": "rome"})
         .options(fusion="rrf", limit=20))
    hits = engine.search(q)

A query serialises to JSON (:meth:`Query.to_dict` / :meth:`Query.from_dict`, the one
strict reader, used by ``--query-json`` and ``POST /api/search``) so a query can be
saved and sent as a whole. Validation happens in
:meth:`Query.validate` and raises :class:`mmsearch.errors.QueryError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from mmsearch.errors import QueryError
from mmsearch.kinds import (
    DEFAULT_FUSION,
    FUSIONS,
    MODALITIES,
    NORMALISERS,
    PART_KINDS,
    SORTS,
    Fusion,
    Normaliser,
    Sort,
)


@dataclass
class Part:
    """One part of a query: a text, an image or video file, an indexed file (``asset``),
    or a colour (``color``: a name or ``#RRGGBB``, optionally ``:SHARE%``).

    ``weight`` scales its contribution; ``negative`` parts push results away
    (subtracted in ``vector`` fusion, excluded above a similarity threshold in
    the late modes).
    """

    kind: str
    value: str
    weight: float = 1.0
    negative: bool = False

    def describe(self) -> str:
        sign = "-" if self.negative else ""
        return f"{sign}{self.kind}:{self.value}" + (f"*{self.weight:g}" if self.weight != 1 else "")


def _one(option: str, help: str, kind: type = str, metavar: str | None = None) -> Any:
    """A single-valued filter, with the CLI option that sets it."""
    meta = {"option": option, "help": help, "type": kind, "metavar": metavar}
    return field(default=None, metadata=meta)


def _many(option: str, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A repeatable filter (a list), with the CLI option that adds to it."""
    meta = {"option": option, "help": help, "multiple": True, "choices": choices}
    return field(default_factory=list, metadata=meta)


def _pairs(option: str, help: str) -> Any:
    """A ``key=value`` filter (a dict), with the repeatable CLI option that adds to it."""
    return field(default_factory=dict, metadata={"option": option, "help": help, "pairs": True})


@dataclass
class Filters:
    """Metadata filters, applied before the top-k cut (translated to SQL).

    Times are ISO 8601 strings (``2021-07-04`` or ``2021-07-04T12:00:00``);
    ``modified_*`` is the file's mtime, ``taken_*`` the EXIF capture time.
    ``paths`` are folder or file prefixes, ``globs`` shell patterns on the
    absolute path; ``tags`` must all match (AND); ``text_match`` keeps files
    whose text (passages, recognised lines) contains the phrase. Each field's
    metadata names the CLI option that sets it.
    """

    modalities: list[str] = _many("--type", "Only these modalities.", MODALITIES)
    paths: list[str] = _many("--path", "Only under this folder (repeatable).")
    globs: list[str] = _many("--glob", "Only paths matching this pattern.")
    tags: dict[str, str] = _pairs("--where", "Only files tagged key=value (ANDed).")
    text_match: str | None = _one(
        "--text-match", "Only files whose text or recognised text has this phrase."
    )
    min_size: int | None = _one("--min-size", "Bytes.", int)
    max_size: int | None = _one("--max-size", "Bytes.", int)
    modified_after: str | None = _one("--after", "Modified on or after (ISO date).")
    modified_before: str | None = _one("--before", "Modified before (ISO date).")
    taken_after: str | None = _one("--taken-after", "EXIF capture time on or after (ISO date).")
    taken_before: str | None = _one("--taken-before", "EXIF capture time before (ISO date).")
    min_width: int | None = _one("--min-width", "Pixels.", int)
    max_width: int | None = _one("--max-width", "Pixels.", int)
    min_height: int | None = _one("--min-height", "Pixels.", int)
    max_height: int | None = _one("--max-height", "Pixels.", int)
    min_duration: float | None = _one("--min-duration", "Video seconds.", float)
    max_duration: float | None = _one("--max-duration", "Video seconds.", float)

    def is_empty(self) -> bool:
        return self == Filters()


@dataclass
class Query:
    """Parts, filters and ranking options; see the module docstring."""

    parts: list[Part] = field(default_factory=list)
    filters: Filters = field(default_factory=Filters)
    fusion: Fusion = DEFAULT_FUSION
    normaliser: Normaliser = "zscore"  # for weighted fusion
    limit: int = 10
    offset: int = 0
    min_score: float | None = None
    cutoff: bool = True  # adaptive relevance cutoff; False returns the whole ranking
    sort: Sort = "score"
    collapse: float | None = 0.95  # near-duplicate cosine; None keeps duplicates
    diverse: bool = False  # MMR reordering
    negative_threshold: float | None = None  # None: adaptive (see search/rank.py)
    color_words: bool = True  # colour words in text parts ("a red car") add colour parts
    more_like: list[int] = field(default_factory=list)  # asset ids (Rocchio feedback)
    less_like: list[int] = field(default_factory=list)

    # -- builder ---------------------------------------------------------------

    def _add(self, kind: str, value: str, weight: float, negative: bool) -> Query:
        self.parts.append(Part(kind, str(value), float(weight), negative))
        return self

    def text(self, text: str, weight: float = 1.0) -> Query:
        return self._add("text", text, weight, False)

    def image(self, path: str, weight: float = 1.0) -> Query:
        return self._add("image", path, weight, False)

    def video(self, path: str, weight: float = 1.0) -> Query:
        return self._add("video", path, weight, False)

    def color(self, color: str, weight: float = 1.0) -> Query:
        """A colour the pictures should show: ``red``, ``#1f5fbf``, ``red:30%`` (at least 30%)."""
        from mmsearch.media.colors import parse_color  # numpy: loaded when colours are used

        parse_color(color)  # a bad colour is refused here, with the reason
        return self._add("color", color, weight, False)

    def like(self, asset: str | int, weight: float = 1.0) -> Query:
        """An indexed file (path or asset id) as an example."""
        return self._add("asset", str(asset), weight, False)

    def exclude(self, text: str, weight: float = 1.0, kind: str = "text") -> Query:
        """A negative part: results like it are pushed away or dropped."""
        return self._add(kind, text, weight, True)

    def where(self, **filters: Any) -> Query:
        for key, value in filters.items():
            if key == "modality":
                key, value = "modalities", [value] if isinstance(value, str) else list(value)
            if not hasattr(self.filters, key):
                raise QueryError(f"unknown filter {key!r}")
            setattr(self.filters, key, value)
        return self

    def options(self, **options: Any) -> Query:
        for key, value in options.items():
            if key in ("parts", "filters") or not hasattr(self, key):
                raise QueryError(f"unknown query option {key!r}")
            setattr(self, key, value)
        return self

    # -- checks and JSON -------------------------------------------------------

    def validate(self) -> Query:
        if not any(not p.negative for p in self.parts) and not self.more_like:
            raise QueryError(
                "a query needs at least one positive part (a text, image, video or colour)"
            )
        for part in self.parts:
            if part.kind not in PART_KINDS:
                raise QueryError(f"unknown part kind {part.kind!r}; use one of {PART_KINDS}")
            if not part.value.strip():
                raise QueryError(f"empty {part.kind} part")
            if part.weight <= 0:
                raise QueryError(f"weights must be positive (negate a part instead): {part.weight}")
            if part.kind == "color":
                from mmsearch.media.colors import parse_color

                parse_color(part.value)
                if part.negative:
                    raise QueryError("a colour can't be excluded (negative colour parts)")
        for name, allowed in (("fusion", FUSIONS), ("sort", SORTS), ("normaliser", NORMALISERS)):
            if getattr(self, name) not in allowed:
                raise QueryError(f"{name} must be one of {', '.join(allowed)}")
        if self.limit < 1 or self.offset < 0:
            raise QueryError("limit must be at least 1 and offset at least 0")
        if self.collapse is not None and not 0 < self.collapse <= 1:
            raise QueryError("collapse must be a cosine in (0, 1]")
        bad = set(self.filters.modalities) - set(MODALITIES)
        if bad:
            raise QueryError(f"unknown modality {sorted(bad)[0]!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, validate: bool = True) -> Query:
        """The query of a :meth:`to_dict` object, strictly: unknown fields and values of the
        wrong type are a :class:`QueryError` naming the field. ``validate=False`` leaves
        :meth:`validate` to the caller (parts may still come)."""
        from pydantic import TypeAdapter, ValidationError  # the CLI pays for it only here

        if not isinstance(data, dict):
            raise QueryError("the query must be a JSON object (Query.to_dict())")
        unknown = _unknown_fields(data)
        if unknown:
            raise QueryError(f"unknown query field(s): {', '.join(sorted(unknown))}")
        try:
            query = TypeAdapter(cls).validate_python(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise QueryError(f"bad query: {where}: {first['msg']}") from None
        return query.validate() if validate else query


def _unknown_fields(data: dict[str, Any]) -> set[str]:
    """The fields of a :meth:`Query.to_dict` object that no dataclass here has."""

    def names(cls: type) -> set[str]:
        return {f.name for f in fields(cls)}

    def mapping(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    unknown = set(data) - names(Query)
    unknown |= {f"filters.{k}" for k in mapping(data.get("filters")) if k not in names(Filters)}
    parts = data.get("parts")
    for part in parts if isinstance(parts, list) else []:
        unknown |= {f"parts.{k}" for k in mapping(part) if k not in names(Part)}
    return unknown


def parse_pairs(values: Iterable[str], what: str) -> dict[str, str]:
    """``key=value`` strings as a dict (a later key wins); :class:`QueryError` naming ``what``
    for one without ``=`` or with an empty key."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise QueryError(f"{what} takes key=value, not {item!r}")
        out[key] = value
    return out


def simple_query(
    text: str | None,
    image: str | os.PathLike[str] | None,
    video: str | os.PathLike[str] | None,
    options: dict[str, Any],
) -> Query:
    """A query from at most one text, image and video (the short forms of search)."""
    query = Query()
    if text is not None and text.strip():
        query.text(text)
    if image is not None:
        query.image(os.fspath(image))
    if video is not None:
        query.video(os.fspath(video))
    if not query.parts:
        raise QueryError("a query needs a text, an image or a video")
    return query.options(**options)
