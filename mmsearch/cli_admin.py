"""``mmsearch watch`` and ``mmsearch roots``: registered on the group of :mod:`mmsearch.cli`."""

from __future__ import annotations

import json
from typing import Any

import click

from mmsearch.cli import _open, cli, debug_option, index_option, json_option, setting_option
from mmsearch.indexer import IndexReport


def _counts(report: IndexReport) -> str:
    line = (
        f"added {report.added}, updated {report.updated}, moved {report.moved},"
        f" removed {report.removed}"
    )
    if report.skipped:
        line += f", skipped {len(report.skipped)} (--json lists why)"
    return line


@cli.command("watch")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--debounce",
    "debounce_ms",
    default=500,
    show_default=True,
    type=click.IntRange(min=1),
    metavar="MS",
    help="Handle a burst of changes once this many milliseconds pass without a new one.",
)
@index_option
@setting_option("model", metavar="NAME")
@json_option
@debug_option
def watch_cmd(
    paths: tuple[str, ...], debounce_ms: int, index: str | None, as_json: bool, model: str | None
) -> None:
    """Keep the index current as files under PATHS are added, changed, moved, deleted.

    Indexes PATHS first, then prints one line per burst of changes (with --json,
    one JSON object per line). Ctrl-C stops it (exit status 0). It is the
    index's one writer while it runs: other index, rm and roots --move runs fail.
    """
    from mmsearch.watch import Burst, watch

    def show(burst: Burst) -> None:
        report = burst.report
        if as_json:
            click.echo(json.dumps({"changes": burst.changes, **report.to_dict()}))
        elif burst.changes == 0:
            click.echo(
                f"indexed: {_counts(report)}, unchanged {report.unchanged};"
                f" watching {len(paths)} path{'s' if len(paths) != 1 else ''} (Ctrl-C stops)"
            )
        else:
            click.echo(
                f"{burst.changes} change{'s' if burst.changes != 1 else ''}: {_counts(report)}"
            )

    try:
        with _open(index, create=True, model=model) as engine:
            watch(engine, list(paths), debounce_ms=debounce_ms, on_burst=show)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@cli.command("roots")
@click.option(
    "--move",
    nargs=2,
    type=click.Path(),
    metavar="OLD NEW",
    help="The library folder OLD (a root, or a folder in one) now lives at NEW.",
)
@index_option
@json_option
@debug_option
def roots_cmd(move: tuple[str, str] | None, index: str | None, as_json: bool) -> None:
    """List the indexed folders (roots), or tell the index that one moved.

    --move rewrites stored paths only: nothing is read or embedded again. NEW
    must exist and must not lie inside (or contain) another root.
    """
    with _open(index) as engine:
        moved = engine.move_root(*move) if move else None
        roots = engine.roots()
    if as_json:
        out: dict[str, Any] = {"roots": roots}
        if move:
            out["moved"] = moved
        click.echo(json.dumps(out))
        return
    if move:
        click.echo(f"{move[0]} -> {move[1]}: {moved} file{'s' if moved != 1 else ''}")
    for root in roots:
        missing = "" if root["exists"] else "  (folder missing)"
        click.echo(
            f"{root['path']}  {root['files']} file{'s' if root['files'] != 1 else ''}{missing}"
        )
