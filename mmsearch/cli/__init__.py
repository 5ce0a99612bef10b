"""The ``mmsearch`` command line: a thin face over :class:`mmsearch.Engine`.

This module builds the group; each command lives in a module of its own
(``index``, ``search``, ``manage``) and shares only :mod:`mmsearch.cli.options`.
Library errors become one line on stderr and a non-zero exit status (2 for
bad input, 1 otherwise); ``--debug``, anywhere on the command line, shows the
traceback instead. Progress bars appear only when stderr is a terminal.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

import click

from mmsearch.cli import duplicates, import_cmd, index, manage, search, serve
from mmsearch.errors import MmsearchError

DEBUG_FLAG = "--debug"


def _quiet_libraries() -> None:
    """Model libraries log and warn freely; users see only mmsearch's own lines."""
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class MmsearchGroup(click.Group):
    """Takes ``--debug`` before or after the command; turns library errors into one line."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        ctx.meta["debug"] = DEBUG_FLAG in args[:end] or os.environ.get("MMSEARCH_DEBUG") == "1"
        kept = [a for a in args[:end] if a != DEBUG_FLAG] + args[end:]
        return super().parse_args(ctx, kept)

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.meta.get("debug"))
        if not debug:
            _quiet_libraries()
        try:
            return super().invoke(ctx)
        except MmsearchError as exc:
            if debug:
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)
        except Exception as exc:
            if debug:
                raise
            click.echo(
                f"Error: unexpected {type(exc).__name__}: {exc} (run with --debug for details)",
                err=True,
            )
            ctx.exit(1)


@click.group(cls=MmsearchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mmsearch")
@click.option(
    DEBUG_FLAG,
    is_flag=True,
    expose_value=False,
    help="Show tracebacks on errors (also after the command, or MMSEARCH_DEBUG=1).",
)
def cli() -> None:
    """Multimodal search over your own photos, videos and notes."""


for command in (
    index.index_cmd,
    search.search_cmd,
    manage.show_cmd,
    manage.info_cmd,
    manage.rm_cmd,
    manage.verify_cmd,
    manage.tag_cmd,
    index.watch_cmd,
    index.roots_cmd,
    duplicates.duplicates_cmd,
    serve.serve_cmd,
    import_cmd.import_cmd,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="mmsearch")
