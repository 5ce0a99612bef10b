"""Importing the package's light parts stays light: the heavy libraries load where used."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "numpy", "PIL", "torch", "faiss", "av")


@pytest.mark.subprocess
@pytest.mark.parametrize("module", ["mmsearch", "mmsearch.errors", "mmsearch.kinds"])
def test_light_modules_load_no_heavy_library(module: str) -> None:
    code = f"import sys, {module}; print(' '.join(sorted(set(sys.modules))))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.subprocess
def test_engine_is_still_one_attribute_away() -> None:
    code = "import mmsearch; print(mmsearch.Engine.__module__, mmsearch.Query.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["mmsearch.engine", "mmsearch.search.query"]
