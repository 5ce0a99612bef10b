"""What the command modules share: options derived from the settings table, and the engine.

Every command module imports from here (and from the library), never from
another command module or from the group in ``mmsearch.cli``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from mmsearch.errors import QueryError
from mmsearch.search.query import parse_pairs
from mmsearch.settings import setting

if TYPE_CHECKING:
    from mmsearch.engine import Engine
    from mmsearch.ingest.report import Progress

F = Callable[..., Any]


def setting_option(name: str, **extra: Any) -> Callable[[F], F]:
    """A click option derived from the settings table."""
    s = setting(name)
    default = f" [default: {s.default}]" if s.default is not None else ""
    kwargs: dict[str, Any] = {
        "default": None,
        "envvar": s.env,
        "show_envvar": True,
        "help": s.help + default,
    }
    if s.choices:
        kwargs["type"] = click.Choice(s.choices)
    elif s.type in (int, float):
        kwargs["type"] = s.type
    kwargs.update(extra)
    return click.option(s.option, name, **kwargs)


# The settings that make an index's vector space (read when an index is created), with
# their metavars: every command that may create an index takes them.
SPACE_OPTIONS = (
    ("model", "NAME"),
    ("clip_model", "NAME|FILE"),
    ("pretrained", "TAG"),
    ("weights", "FILE"),
    ("conse_top_t", "N"),
    ("conse_temperature", "T"),
    ("conse_templates", "TEMPLATES"),
)


def space_options(f: F) -> F:
    """The model settings of a new index (see :data:`SPACE_OPTIONS`)."""
    for name, metavar in reversed(SPACE_OPTIONS):
        f = setting_option(name, metavar=metavar)(f)
    return f


def index_option(f: F) -> F:
    """``--index DIR`` and ``--db URL`` (kept in the click context for :func:`open_engine`)."""
    f = _db_option(f)
    return setting_option("index", metavar="DIR", help="Index folder [default: indexes/default].")(
        f
    )


def _keep_db(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta["mmsearch.db"] = value


_db_option = setting_option(
    "db",
    metavar="URL",
    expose_value=False,
    callback=_keep_db,
    help="Metadata database of a new index, e.g. postgresql+psycopg://user@host:5432/dbname;"
    " an existing index uses the one it was built with (give it again for its password)."
    " [default: index.sqlite in the index folder]",
)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def notice(message: str) -> None:
    click.echo(f"Note: {message}", err=True)


def open_engine(index: str | None, create: bool = False, **settings: Any) -> Engine:
    """The engine for ``--index``, with notices as ``Note:`` lines on stderr."""
    from mmsearch.engine import Engine

    ctx = click.get_current_context(silent=True)
    if ctx is not None and "mmsearch.db" in ctx.meta and settings.get("db") is None:
        settings["db"] = ctx.meta["mmsearch.db"]
    return Engine.open(index, create=create, on_notice=notice, **settings)


def pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    """``key=value`` arguments as a dict; a bad one is a usage error naming ``what``."""
    try:
        return parse_pairs(values, what)
    except QueryError as exc:
        raise click.BadParameter(str(exc), param_hint=what) from None


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[Progress], None] | None]:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}", style="dim"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def update(p: Any) -> None:
            name = os.path.basename(p.path)
            bar.update(task, completed=p.done, total=p.total, description=name[-40:])

        yield update
