"""The README's Quick start, as a new user runs it: index scikit-image's photos, ask for coffee.

``mmsearch index DIR --model offline`` then ``mmsearch search "a cup of coffee"``:
coffee's photo scores far above a slow slope of unrelated photos (and a few
blank ones far below those), so the relevance cutoff keeps coffee alone, or a
few more at most, never the whole folder.
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

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def photo_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return index_skimage_photos(tmp_path_factory.mktemp("quickstart") / "idx", "offline")


def _search(index: Path, *args: str) -> dict:
    result = CliRunner().invoke(
        cli, ["search", *args, "--index", str(index), "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_cup_of_coffee_finds_coffee_and_little_else(photo_index: Path) -> None:
    out = _search(photo_index, "a cup of coffee")
    names = [Path(hit["path"]).name for hit in out["results"]]
    assert names[0] == "coffee.png"
    assert out["total"] <= 5, names


def test_without_the_cutoff_the_whole_folder_ranks_with_coffee_first(photo_index: Path) -> None:
    out = _search(photo_index, "a cup of coffee", "--all", "--limit", "100")
    names = [Path(hit["path"]).name for hit in out["results"]]
    assert names[0] == "coffee.png"
    assert out["total"] > 20  # the cutoff above is what kept the list short
