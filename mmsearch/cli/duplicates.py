"""``mmsearch duplicates``: exact copies, near-duplicates and similar shots, as a report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from mmsearch.cli.options import index_option, json_option, notice, open_engine, plural
from mmsearch.kinds import DUPLICATE_TIERS

if TYPE_CHECKING:
    from mmsearch.duplicates import DuplicateReport


@click.command("duplicates")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--tier",
    "tiers",
    multiple=True,
    type=click.Choice(DUPLICATE_TIERS),
    help="Only this tier (repeatable): exact (same bytes), near (the same picture or"
    " video re-encoded, resized, cropped a little), similar (the same scene a moment"
    " later) [default: all].",
)
@index_option
@json_option
def duplicates_cmd(
    paths: tuple[str, ...], tiers: tuple[str, ...], index: str | None, as_json: bool
) -> None:
    """Groups of duplicate files under PATHs (default: the whole index), largest first.

    Each group names a suggested keeper (largest resolution, then oldest capture
    time) and why each member is in it. A read-only report: nothing is deleted.
    """
    with open_engine(index) as engine:
        report = engine.duplicates(list(paths), list(tiers) or None)
    if report.unreadable:
        notice(
            f"{plural(len(report.unreadable), 'file')} could not be read for the pixel check"
            f" (moved or deleted? run mmsearch index): {report.unreadable[0]}"
        )
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    print_duplicates(report)


def print_duplicates(report: DuplicateReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console.width = max(console.width, 160)
    if not report.groups:
        console.print("no duplicates")
        return
    for number, group in enumerate(report.groups, start=1):
        title = f"{number}. {group.tier}: {plural(len(group.members), 'file')}"
        table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("", width=1)
        table.add_column("similarity", justify="right")
        table.add_column("path", overflow="fold")
        table.add_column("why", overflow="fold")
        for m in group.members:
            mark = "*" if m.path == group.keeper else ""
            table.add_row(mark, f"{m.similarity:.3f}", m.path, m.reason)
        console.print(table, markup=False)
    exact = sum(len(g.members) - 1 for g in report.groups if g.tier == "exact")
    console.print(
        f"{plural(len(report.groups), 'group')}; * marks the suggested keeper"
        + (f"; {exact} exact {'copy' if exact == 1 else 'copies'} could go" if exact else ""),
        markup=False,
    )
