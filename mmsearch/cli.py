"""The ``mmsearch`` command line: a thin face over :class:`mmsearch.Engine`.

Library errors become one line on stderr and a non-zero exit status (2 for
bad input, 1 otherwise); ``--debug`` shows the traceback instead. Progress
bars appear only when stderr is a terminal.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from mmsearch.errors import MmsearchError
from mmsearch.settings import setting

F = Callable[..., Any]


def _quiet_libraries() -> None:
    """Model libraries log and warn freely; users see only mmsearch's own lines."""
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class MmsearchGroup(click.Group):
    """Turns library errors into one-line messages unless ``--debug``."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = "--debug" in sys.argv[1:] or os.environ.get("MMSEARCH_DEBUG") == "1"
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


def index_option(f: F) -> F:
    return setting_option("index", metavar="DIR", help="Index folder [default: indexes/default].")(
        f
    )


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def debug_option(f: F) -> F:
    return click.option(
        "--debug", is_flag=True, expose_value=False, help="Show tracebacks on errors."
    )(f)


def _notice(message: str) -> None:
    click.echo(f"Note: {message}", err=True)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[Any], None] | None]:
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


@click.group(cls=MmsearchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mmsearch")
@click.option("--debug", is_flag=True, expose_value=False, help="Show tracebacks on errors.")
def cli() -> None:
    """Multimodal search over your own photos, videos and notes."""


def _open(index: str | None, create: bool = False, **settings: Any) -> Any:
    from mmsearch.engine import Engine

    return Engine.open(index, create=create, on_notice=_notice, **settings)


@cli.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@index_option
@setting_option("model", metavar="NAME")
@setting_option("clip_model", metavar="NAME|FILE")
@setting_option("pretrained", metavar="TAG")
@setting_option("weights", metavar="FILE")
@setting_option("precision")
@setting_option("batch_size", metavar="N")
@setting_option("conse_top_t", metavar="N")
@setting_option("conse_temperature", metavar="T")
@setting_option("conse_templates", metavar="TEMPLATES")
@setting_option("workers", metavar="N")
@setting_option("chunk_overlap", metavar="N")
@setting_option("max_text_bytes", metavar="N")
@setting_option("max_image_pixels", metavar="N")
@setting_option("frame_rate", metavar="FPS")
@setting_option("shot_threshold", metavar="SCORE")
@setting_option("frame_dedup", metavar="COSINE")
@setting_option("ocr")
@click.option(
    "--ocr-only",
    is_flag=True,
    help="Only run OCR over indexed images that have not had it at --ocr (default on).",
)
@json_option
@debug_option
def index_cmd(
    paths: tuple[str, ...], index: str | None, as_json: bool, ocr_only: bool, **settings: Any
) -> None:
    """Index files and folders (images, text, video; walks folders recursively).

    Unchanged files are skipped, moved files keep their vectors, files gone
    from a folder are forgotten. Exit status 0 when the run finished, even if
    some files were skipped (they are listed).
    """
    if ocr_only:
        with _open(index, **settings) as engine, _progress(not as_json) as bar:
            ocr_report = engine.ocr_pass(list(paths), policy=settings.get("ocr"), on_progress=bar)
        if as_json:
            click.echo(json.dumps(ocr_report.to_dict()))
        else:
            click.echo(
                f"OCR read {ocr_report.images} images, text in {ocr_report.with_text}"
                f" ({ocr_report.lines} lines)"
            )
            for skip in ocr_report.skipped:
                click.echo(f"  {skip.path}: {skip.reason}")
        return
    with _open(index, create=True, **settings) as engine, _progress(not as_json) as bar:
        report = engine.index(list(paths), on_progress=bar)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    from mmsearch.display import print_report

    print_report(report)


@cli.command("show")
@click.argument("path", type=click.Path())
@index_option
@json_option
@debug_option
def show_cmd(path: str, index: str | None, as_json: bool) -> None:
    """Everything the index knows of one file: metadata, views, tags, OCR lines."""
    with _open(index) as engine:
        facts = engine.show(path)
    if as_json:
        click.echo(json.dumps(facts))
        return
    from mmsearch.display import print_show

    print_show(facts)


@cli.command("info")
@index_option
@json_option
@debug_option
def info_cmd(index: str | None, as_json: bool) -> None:
    """What is in the index and which model built it."""
    with _open(index) as engine:
        info = engine.info()
    if as_json:
        click.echo(json.dumps(info))
        return
    from mmsearch.display import print_info

    print_info(info)


@cli.command("rm")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@index_option
@json_option
@debug_option
def rm_cmd(paths: tuple[str, ...], index: str | None, as_json: bool) -> None:
    """Forget files or whole folders (the files themselves are not touched)."""
    with _open(index) as engine:
        removed = engine.remove(list(paths))
    if as_json:
        click.echo(json.dumps({"removed": removed}))
    else:
        click.echo(f"removed {removed} file{'s' if removed != 1 else ''} from the index")


@cli.command("verify")
@click.option("--repair", is_flag=True, help="Fix what can be fixed from SQLite.")
@index_option
@json_option
@debug_option
def verify_cmd(repair: bool, index: str | None, as_json: bool) -> None:
    """Check that the database, the vector file and the manifest agree.

    Exit status 0 when they agree (or were repaired), 1 when problems remain.
    """
    with _open(index) as engine:
        report = engine.verify(repair=repair)
        after = engine.verify() if repair and not report.ok else report
    if as_json:
        click.echo(json.dumps({**report.to_dict(), "ok_after_repair": after.ok}))
    else:
        click.echo(f"{report.segments} segments in SQLite, {report.vectors} vectors in FAISS")
        for problem in report.problems:
            click.echo(f"problem: {problem}")
        for fix in report.repaired:
            click.echo(f"repaired: {fix}")
        click.echo("ok" if after.ok else "NOT ok: run mmsearch verify --repair")
    if not after.ok:
        raise SystemExit(1)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="mmsearch")


from mmsearch import cli_admin, cli_search  # noqa: E402, F401  (they register commands)
