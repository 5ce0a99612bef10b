"""Shared fixtures: generated media in tmp_path, real photos from installed packages.

The whole run uses one temporary ``MMSEARCH_CACHE`` (the offline model's class
vectors are computed once and shared by every test), so no test writes to the
user's ``~/.cache``. Helpers live in ``tests/support/``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.support.media import COLOURS, solid

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_CACHE = tempfile.TemporaryDirectory(prefix="mmsearch-test-cache-")
os.environ["MMSEARCH_CACHE"] = _CACHE.name


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``MMSEARCH_VECTORS`` naming another store, tests of the FAISS file itself skip."""
    store = os.environ.get("MMSEARCH_VECTORS", "faiss")
    if store == "faiss":
        return
    skip = pytest.mark.skip(
        reason=f"checks the FAISS vector file; this run stores vectors in {store}"
    )
    for item in items:
        if "faiss_file" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A small library: three colour photos and two notes."""
    lib = tmp_path / "lib"
    (lib / "photos").mkdir(parents=True)
    (lib / "notes").mkdir()
    for i, (name, colour) in enumerate(COLOURS.items()):
        solid(colour, seed=i).save(lib / "photos" / f"{name}.jpg", quality=95)
    (lib / "notes" / "fox.txt").write_text(
        "The quick red fox jumps over the lazy dog near the river bank.\n", encoding="utf-8"
    )
    (lib / "notes" / "garden.md").write_text(
        "# Garden\n\nTomatoes and green beans grow in the garden every summer.\n",
        encoding="utf-8",
    )
    return lib
