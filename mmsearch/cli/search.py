"""``mmsearch search``: queries with parts, filters and ranking options.

The filter options are derived from the fields of :class:`Filters` (each
field's metadata names its option), so a new filter needs no CLI code.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click

from mmsearch.cli.options import index_option, json_option, open_engine, pairs, setting_option
from mmsearch.cli.render import print_hits
from mmsearch.kinds import DEFAULT_FUSION, FUSIONS, SORTS
from mmsearch.search.query import Filters, Query

F = Any


def _filter_options(f: F) -> F:
    """One click option per :class:`Filters` field, named as its metadata says."""
    for fld in reversed(dataclasses.fields(Filters)):
        meta = fld.metadata
        kwargs: dict[str, Any] = {"help": meta["help"]}
        if meta.get("multiple") or meta.get("pairs"):
            kwargs["multiple"] = True
        if meta.get("choices"):
            kwargs["type"] = click.Choice(meta["choices"])
        elif meta.get("type") in (int, float):
            kwargs["type"] = meta["type"]
        if meta.get("metavar"):
            kwargs["metavar"] = meta["metavar"]
        f = click.option(meta["option"], fld.name, **kwargs)(f)
    return f


def _filters(o: dict[str, Any]) -> Filters:
    """The :class:`Filters` the filter options describe (popped from ``o``)."""
    values: dict[str, Any] = {}
    for fld in dataclasses.fields(Filters):
        value = o.pop(fld.name)
        if fld.metadata.get("pairs"):
            value = pairs(value, fld.metadata["option"])
        elif isinstance(value, tuple):
            value = list(value)
        if value not in (None, [], {}):
            values[fld.name] = value
    return Filters(**values)


def _read_query_json(source: str) -> Query:
    """The query in a JSON file (or stdin), read as strictly as ``POST /api/search`` reads it."""
    raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--query-json") from None
    return Query.from_dict(data)


def build_query(text: str | None, o: dict[str, Any]) -> Query:
    """The :class:`Query` the search options describe."""
    if o["query_json"]:
        return _read_query_json(o["query_json"])
    q = Query(filters=_filters(o))
    if text:
        q.text(text)
    weight = o["weight"]
    for path in o["image"]:
        q.image(path, weight)
    for path in o["video"]:
        q.video(path, weight)
    for asset in o["like"]:
        q.like(asset, weight)
    for color in o["color"]:
        q.color(color)
    for negative in o["not_text"]:
        q.exclude(negative)
    for path in o["not_image"]:
        q.exclude(path, kind="image")
    q.options(
        fusion=o["fusion"],
        limit=o["limit"] or o["k"],
        offset=o["offset"],
        min_score=o["min_score"],
        cutoff=not o["show_all"],
        sort=o["sort"],
        collapse=None if o["no_collapse"] else o["collapse"],
        diverse=o["diverse"],
        negative_threshold=o["not_threshold"],
        color_words=not o["no_color_words"],
        more_like=list(o["more_like"]),
        less_like=list(o["less_like"]),
    )
    if not q.parts and not q.more_like:
        raise click.UsageError(
            "give a TEXT to search for, or --image, --video, --color, --like FILE or --more-like ID"
        )
    return q


_PART_AND_RANKING_OPTIONS = [
    click.option("--image", multiple=True, type=click.Path(), help="Example image (repeatable)."),
    click.option("--video", multiple=True, type=click.Path(), help="Example clip (repeatable)."),
    click.option("--like", multiple=True, help="An indexed file (path or asset id) as example."),
    click.option(
        "--color",
        "--colour",
        "color",
        multiple=True,
        metavar="NAME|#RRGGBB[:SHARE%]",
        help="Pictures showing this colour (repeatable); red:30% = at least 30% of the picture.",
    ),
    click.option(
        "--no-color-words",
        "--no-colour-words",
        "no_color_words",
        is_flag=True,
        help="Colour words in the TEXT (a red car) add no colour part.",
    ),
    click.option(
        "--weight",
        type=float,
        default=1.0,
        show_default=True,
        help="Weight of the example parts against the text (weight 1).",
    ),
    click.option("--not", "not_text", multiple=True, help="Text to avoid (repeatable)."),
    click.option("--not-image", multiple=True, type=click.Path(), help="Image to avoid."),
    click.option(
        "--not-threshold",
        type=float,
        help="Late fusion: drop results this similar to a --not part "
        "[default: 90th percentile of the index's similarities to it].",
    ),
    click.option(
        "--fusion",
        type=click.Choice(FUSIONS),
        default=DEFAULT_FUSION,
        show_default=True,
        help="vector: sum the parts; rrf / weighted: search each part, fuse ranks.",
    ),
    click.option(
        "-k", "--k", "k", type=int, default=10, show_default=True, help="Number of results."
    ),
    click.option("--limit", type=int, help="Results per page (same as -k)."),
    click.option("--offset", type=int, default=0, help="Skip this many results (paging)."),
    click.option("--min-score", type=float, help="Drop results whose cosine is lower."),
    click.option(
        "--all",
        "show_all",
        is_flag=True,
        help="No adaptive relevance cutoff: rank everything that matches.",
    ),
    click.option(
        "--sort",
        type=click.Choice(SORTS),
        default="score",
        show_default=True,
        help="time: newest first (EXIF time, else mtime).",
    ),
    click.option(
        "--collapse",
        type=float,
        default=0.95,
        show_default=True,
        help="Fold results this similar (cosine) into a better one.",
    ),
    click.option("--no-collapse", is_flag=True, help="Keep near-duplicate results."),
    click.option("--diverse", is_flag=True, help="Reorder for variety (MMR)."),
    click.option("--more-like", multiple=True, type=int, help="Asset id to move towards."),
    click.option("--less-like", multiple=True, type=int, help="Asset id to move away from."),
]


def _part_and_ranking_options(f: F) -> F:
    for opt in reversed(_PART_AND_RANKING_OPTIONS):
        f = opt(f)
    return f


@click.command("search")
@click.argument("text", required=False)
@_part_and_ranking_options
@_filter_options
@click.option(
    "--query-json",
    metavar="FILE",
    help="Read the whole query as JSON (a Query.to_dict()); - for stdin.",
)
@click.option("--thumbnails", is_flag=True, help="Make thumbnails; JSON gives their paths.")
@index_option
@setting_option("precision")
@json_option
def search_cmd(
    text: str | None,
    index: str | None,
    as_json: bool,
    precision: str | None,
    thumbnails: bool,
    **o: Any,
) -> None:
    """Search with a TEXT, example images or clips, or indexed files; filter and rank.

    \b
    mmsearch search "a red car" --image ref.jpg --weight 0.5 --not night
    mmsearch search "beach" --type image --taken-after 2021-06-01 --where trip=greece
    mmsearch search "invoice" --all --sort time --offset 20 --limit 20
    mmsearch search --color red --color white:20% --type image
    """
    query = build_query(text, o)
    if query.limit < 1:
        raise click.BadParameter("must be at least 1", param_hint="--k")
    with open_engine(index, precision=precision) as engine:
        result = engine.run(query)
        thumbs = [engine.thumbnail(h) for h in result.hits] if thumbnails else []
    if as_json:
        out = result.to_dict()
        for hit, thumb in zip(out["results"], thumbs, strict=False):
            hit["thumbnail"] = thumb
        click.echo(json.dumps(out))
        return
    for note in result.notes:
        click.echo(f"Note: {note}", err=True)
    print_hits(result.hits, offset=query.offset, total=result.total)
