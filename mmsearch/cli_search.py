"""``mmsearch search`` and ``mmsearch tag``: queries with parts, filters and ranking options."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from mmsearch.cli import _open, cli, debug_option, index_option, json_option, setting_option
from mmsearch.query import DEFAULT_FUSION, FUSIONS, Query


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint=what)
        out[key] = value
    return out


def _filters(o: dict[str, Any]) -> dict[str, Any]:
    names = {
        "path": "paths",
        "glob": "globs",
        "min_size": "min_size",
        "max_size": "max_size",
        "after": "modified_after",
        "before": "modified_before",
        "taken_after": "taken_after",
        "taken_before": "taken_before",
        "min_width": "min_width",
        "max_width": "max_width",
        "min_height": "min_height",
        "max_height": "max_height",
        "min_duration": "min_duration",
        "max_duration": "max_duration",
        "text_match": "text_match",
    }
    out: dict[str, Any] = {}
    for option, field_name in names.items():
        value = o.pop(option)
        if value not in (None, ()):
            out[field_name] = list(value) if isinstance(value, tuple) else value
    types = o.pop("types")
    if types:
        out["modalities"] = list(types)
    where = _pairs(o.pop("where"), "--where")
    if where:
        out["tags"] = where
    return out


def build_query(text: str | None, o: dict[str, Any]) -> Query:
    """The :class:`Query` the search options describe."""
    if o["query_json"]:
        source = o.pop("query_json")
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        return Query.from_dict(json.loads(raw))
    o.pop("query_json")
    q = Query()
    if text:
        q.text(text)
    weight = o.pop("weight")
    for path in o.pop("image"):
        q.image(path, weight)
    for path in o.pop("video"):
        q.video(path, weight)
    for asset in o.pop("like"):
        q.like(asset, weight)
    for negative in o.pop("not_text"):
        q.exclude(negative)
    for path in o.pop("not_image"):
        q.exclude(path, kind="image")
    q.where(**_filters(o))
    collapse = None if o.pop("no_collapse") else o.pop("collapse")
    o.pop("collapse", None)
    limit = o.pop("limit") or o.pop("k")
    o.pop("k", None)
    q.options(
        fusion=o.pop("fusion"),
        limit=limit,
        offset=o.pop("offset"),
        min_score=o.pop("min_score"),
        cutoff=not o.pop("show_all"),
        sort=o.pop("sort"),
        collapse=collapse,
        diverse=o.pop("diverse"),
        negative_threshold=o.pop("not_threshold"),
        more_like=list(o.pop("more_like")),
        less_like=list(o.pop("less_like")),
    )
    if not q.parts and not q.more_like:
        raise click.UsageError(
            "give a TEXT to search for, or --image, --video, --like FILE or --more-like ID"
        )
    return q


def _option_groups(f: Any) -> Any:
    opts = [
        click.option(
            "--image", multiple=True, type=click.Path(), help="Example image (repeatable)."
        ),
        click.option(
            "--video", multiple=True, type=click.Path(), help="Example clip (repeatable)."
        ),
        click.option(
            "--like", multiple=True, help="An indexed file (path or asset id) as example."
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
            type=click.Choice(["score", "time"]),
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
        click.option(
            "--type",
            "types",
            multiple=True,
            type=click.Choice(["image", "text", "video"]),
            help="Only these modalities.",
        ),
        click.option("--path", multiple=True, help="Only under this folder (repeatable)."),
        click.option("--glob", multiple=True, help="Only paths matching this pattern."),
        click.option("--where", multiple=True, help="Only files tagged key=value (ANDed)."),
        click.option(
            "--text-match", help="Only files whose text or recognised text has this phrase."
        ),
        click.option("--min-size", type=int, help="Bytes."),
        click.option("--max-size", type=int, help="Bytes."),
        click.option("--after", help="Modified on or after (ISO date)."),
        click.option("--before", help="Modified before (ISO date)."),
        click.option("--taken-after", help="EXIF capture time on or after (ISO date)."),
        click.option("--taken-before", help="EXIF capture time before (ISO date)."),
        click.option("--min-width", type=int),
        click.option("--max-width", type=int),
        click.option("--min-height", type=int),
        click.option("--max-height", type=int),
        click.option("--min-duration", type=float, help="Video seconds."),
        click.option("--max-duration", type=float, help="Video seconds."),
        click.option(
            "--query-json",
            metavar="FILE",
            help="Read the whole query as JSON (a Query.to_dict()); - for stdin.",
        ),
        click.option("--thumbnails", is_flag=True, help="Make thumbnails; JSON gives their paths."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@cli.command("search")
@click.argument("text", required=False)
@_option_groups
@index_option
@setting_option("precision")
@json_option
@debug_option
def search_cmd(
    text: str | None, index: str | None, as_json: bool, precision: str | None, **o: Any
) -> None:
    """Search with a TEXT, example images or clips, or indexed files; filter and rank.

    \b
    mmsearch search "a red car" --image ref.jpg --weight 0.5 --not night
    mmsearch search "beach" --type image --taken-after 2021-06-01 --where trip=greece
    mmsearch search "invoice" --all --sort time --offset 20 --limit 20
    """
    thumbnails = o.pop("thumbnails")
    query = build_query(text, o)
    if query.limit < 1:
        raise click.BadParameter("must be at least 1", param_hint="--k")
    with _open(index, precision=precision) as engine:
        result = engine.run(query)
        thumbs = [engine.thumbnail(h) for h in result.hits] if thumbnails else []
    if as_json:
        out = result.to_dict()
        for hit, thumb in zip(out["results"], thumbs, strict=False):
            hit["thumbnail"] = thumb
        click.echo(json.dumps(out))
        return
    from mmsearch.display import print_hits

    print_hits(result.hits, offset=query.offset, total=result.total)


@cli.command("tag")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE", help="Tag to set.")
@click.option("--remove", multiple=True, metavar="KEY", help="Tag to remove.")
@index_option
@json_option
@debug_option
def tag_cmd(
    paths: tuple[str, ...],
    pairs: tuple[str, ...],
    remove: tuple[str, ...],
    index: str | None,
    as_json: bool,
) -> None:
    """Tag indexed files or folders: mmsearch tag PATH... --set trip=rome [--remove KEY].

    Search with --where trip=rome. A trailing KEY=VALUE argument works as --set.
    """
    files = [p for p in paths if "=" not in p]
    tags: dict[str, str | None] = {**_pairs(tuple(p for p in paths if "=" in p), "KEY=VALUE")}
    tags.update(_pairs(pairs, "--set"))
    tags.update({key: None for key in remove})
    if not files or not tags:
        raise click.UsageError("give files or folders and at least one KEY=VALUE or --remove KEY")
    with _open(index) as engine:
        count = engine.tag(files, tags)
    if as_json:
        click.echo(json.dumps({"tagged": count}))
    else:
        click.echo(f"tagged {count} file{'s' if count != 1 else ''}")
