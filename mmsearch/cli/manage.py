"""``mmsearch show``, ``info``, ``rm``, ``verify`` and ``tag``: looking at and managing an index."""

from __future__ import annotations

import json

import click

from mmsearch.cli.options import index_option, json_option, open_engine, pairs, plural
from mmsearch.cli.render import print_info, print_show


@click.command("show")
@click.argument("path", type=click.Path())
@index_option
@json_option
def show_cmd(path: str, index: str | None, as_json: bool) -> None:
    """Everything the index knows of one file: metadata, views, tags, OCR lines."""
    with open_engine(index) as engine:
        facts = engine.show(path)
    if as_json:
        click.echo(json.dumps(facts))
        return
    print_show(facts)


@click.command("info")
@index_option
@json_option
def info_cmd(index: str | None, as_json: bool) -> None:
    """What is in the index and which model built it."""
    with open_engine(index) as engine:
        info = engine.info()
    if as_json:
        click.echo(json.dumps(info))
        return
    print_info(info)


@click.command("rm")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@index_option
@json_option
def rm_cmd(paths: tuple[str, ...], index: str | None, as_json: bool) -> None:
    """Forget files or whole folders (the files themselves are not touched)."""
    with open_engine(index) as engine:
        removed = engine.remove(list(paths))
    if as_json:
        click.echo(json.dumps({"removed": removed}))
    else:
        click.echo(f"removed {plural(removed, 'file')} from the index")


@click.command("verify")
@click.option("--repair", is_flag=True, help="Fix what can be fixed from SQLite.")
@index_option
@json_option
def verify_cmd(repair: bool, index: str | None, as_json: bool) -> None:
    """Check that the database, the vector file and the manifest agree.

    Exit status 0 when they agree (or were repaired), 1 when problems remain.
    """
    with open_engine(index) as engine:
        report = engine.verify(repair=repair)
        after = engine.verify() if repair and not report.ok else report
    if as_json:
        click.echo(json.dumps({**report.to_dict(), "ok_after_repair": after.ok}))
    else:
        click.echo(
            f"{report.segments} segments in the metadata, {report.vectors} in the vector store"
        )
        for problem in report.problems:
            click.echo(f"problem: {problem}")
        for fix in report.repaired:
            click.echo(f"repaired: {fix}")
        click.echo("ok" if after.ok else "NOT ok: run mmsearch verify --repair")
    if not after.ok:
        raise SystemExit(1)


@click.command("tag")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--set", "set_pairs", multiple=True, metavar="KEY=VALUE", help="Tag to set.")
@click.option("--remove", multiple=True, metavar="KEY", help="Tag to remove.")
@index_option
@json_option
def tag_cmd(
    paths: tuple[str, ...],
    set_pairs: tuple[str, ...],
    remove: tuple[str, ...],
    index: str | None,
    as_json: bool,
) -> None:
    """Tag indexed files or folders: mmsearch tag PATH... --set trip=rome [--remove KEY].

    Search with --where trip=rome. A trailing KEY=VALUE argument works as --set.
    """
    files = [p for p in paths if "=" not in p]
    tags: dict[str, str | None] = {**pairs(tuple(p for p in paths if "=" in p), "KEY=VALUE")}
    tags.update(pairs(set_pairs, "--set"))
    tags.update({key: None for key in remove})
    if not files or not tags:
        raise click.UsageError("give files or folders and at least one KEY=VALUE or --remove KEY")
    with open_engine(index) as engine:
        count = engine.tag(files, tags)
    if as_json:
        click.echo(json.dumps({"tagged": count}))
    else:
        click.echo(f"tagged {plural(count, 'file')}")
