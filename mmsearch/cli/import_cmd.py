"""``mmsearch import``: load embeddings computed elsewhere (a GPU box, a cluster)."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from mmsearch.cli.options import (
    index_option,
    json_option,
    open_engine,
    setting_option,
    space_options,
)
from mmsearch.cli.render import print_report


@click.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--table",
    type=click.Path(exists=True, dir_okay=False),
    metavar="FILE",
    help="With a .npy matrix: the Parquet or JSON Lines table of its rows (path, ...).",
)
@index_option
@space_options
@setting_option("ann")
@json_option
def import_cmd(
    source: str, table: str | None, index: str | None, as_json: bool, **settings: Any
) -> None:
    """Import precomputed embeddings: a Parquet file (path, vector, [modality, start, end,
    text, tags]) or a .npy matrix with --table.

    A new index records --model (the model need not be loadable here, only named);
    an existing one checks the vectors' model and length against its own. The
    files need not exist on this machine: they are searchable, found by --like,
    and show says they are not here.
    """
    from mmsearch.engine import Engine
    from mmsearch.ingest.bulk_import import import_identity, vector_dim
    from mmsearch.settings import Settings
    from mmsearch.store.manifest import read_manifest

    resolved = Settings.resolve(index=index, **settings)
    folder = os.path.abspath(os.path.expanduser(resolved.index))
    identity = None
    model = settings.get("model")
    if read_manifest(folder) is None or model not in (None, "auto"):
        identity = import_identity(resolved.model, resolved, vector_dim(source))
    extra = {k: v for k, v in settings.items() if k != "model"}
    with (
        open_engine(index, create=True, identity=identity, **extra)
        if identity is not None
        else Engine.open(folder, create=False, **extra)
    ) as engine:
        report = engine.import_embeddings(source, table)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    print_report(report)
