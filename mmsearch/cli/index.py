"""``mmsearch index``, ``watch`` and ``roots``: bringing the index up to date with the library."""

from __future__ import annotations

import json
from typing import Any

import click

from mmsearch.cli.options import (
    index_option,
    json_option,
    open_engine,
    plural,
    progress_bar,
    setting_option,
    space_options,
)
from mmsearch.cli.render import print_report
from mmsearch.ingest.report import IndexReport


def _counts(report: IndexReport) -> str:
    line = (
        f"added {report.added}, updated {report.updated}, moved {report.moved},"
        f" removed {report.removed}"
    )
    if report.skipped:
        line += f", skipped {len(report.skipped)} (--json lists why)"
    return line


@click.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@index_option
@space_options
@setting_option("vectors", metavar="STORE")
@setting_option("ray", metavar="ADDRESS", is_flag=False, flag_value="local")
@setting_option("precision")
@setting_option("batch_size", metavar="N")
@setting_option("workers", metavar="N")
@setting_option("chunk_overlap", metavar="N")
@setting_option("max_text_bytes", metavar="N")
@setting_option("max_image_pixels", metavar="N")
@setting_option("frame_rate", metavar="FPS")
@setting_option("shot_threshold", metavar="SCORE")
@setting_option("frame_dedup", metavar="COSINE")
@setting_option("ocr")
@setting_option("palette")
@click.option(
    "--ocr-only",
    is_flag=True,
    help="Only run OCR over indexed images that have not had it at --ocr (default on).",
)
@json_option
def index_cmd(
    paths: tuple[str, ...], index: str | None, as_json: bool, ocr_only: bool, **settings: Any
) -> None:
    """Index files and folders (images, text, video; walks folders recursively).

    Unchanged files are skipped, moved files keep their vectors, files gone
    from a folder are forgotten. Exit status 0 when the run finished, even if
    some files were skipped (they are listed).
    """
    if ocr_only:
        with open_engine(index, **settings) as engine, progress_bar(not as_json) as bar:
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
    with open_engine(index, create=True, **settings) as engine, progress_bar(not as_json) as bar:
        report = engine.index(list(paths), on_progress=bar)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    print_report(report)


@click.command("watch")
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
                f" watching {plural(len(paths), 'path')} (Ctrl-C stops)"
            )
        else:
            click.echo(f"{plural(burst.changes, 'change')}: {_counts(report)}")

    try:
        with open_engine(index, create=True, model=model) as engine:
            watch(engine, list(paths), debounce_ms=debounce_ms, on_burst=show)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@click.command("roots")
@click.option(
    "--move",
    nargs=2,
    type=click.Path(),
    metavar="OLD NEW",
    help="The library folder OLD (a root, or a folder in one) now lives at NEW.",
)
@index_option
@json_option
def roots_cmd(move: tuple[str, str] | None, index: str | None, as_json: bool) -> None:
    """List the indexed folders (roots), or tell the index that one moved.

    --move rewrites stored paths only: nothing is read or embedded again. NEW
    must exist and must not lie inside (or contain) another root.
    """
    with open_engine(index) as engine:
        moved = engine.move_root(*move) if move else None
        roots = engine.roots()
    if as_json:
        out: dict[str, Any] = {"roots": roots}
        if move:
            out["moved"] = moved
        click.echo(json.dumps(out))
        return
    if move:
        click.echo(f"{move[0]} -> {move[1]}: {plural(moved or 0, 'file')}")
    for root in roots:
        missing = "" if root["exists"] else "  (folder missing)"
        click.echo(f"{root['path']}  {plural(root['files'], 'file')}{missing}")
