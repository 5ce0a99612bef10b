"""A text query over an offline-model index starts fast: no torch, no model frameworks.

A fresh process opens the index and runs ``mmsearch search "text"``, then
looks at ``sys.modules``: the query is answered by numpy MiniLM
(``mmsearch.embedders.minilm``) and the saved search statistics, so none of
torch, timm, sentence-transformers, transformers or open_clip may be loaded.
Timing lives in ``benchmarks/coldstart.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mmsearch import Engine
from tests.support.deps import need
from tests.support.media import solid

pytestmark = [pytest.mark.model, pytest.mark.subprocess]

need("timm")

HEAVY = ("torch", "timm", "sentence_transformers", "transformers", "open_clip", "torchvision")


@pytest.fixture(scope="module")
def offline_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("coldstart")
    lib = root / "lib"
    lib.mkdir()
    solid((200, 30, 30), seed=1).save(lib / "red.png")
    solid((30, 30, 200), seed=2).save(lib / "blue.png")
    (lib / "coffee.txt").write_text("A cup of hot black coffee on a wooden table.\n")
    (lib / "garden.txt").write_text("Tomatoes and green beans grow in the garden.\n")
    with Engine.open(root / "idx", model="offline", ocr="off") as engine:
        engine.index([lib])
    return root / "idx"


def _run(script: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=root,
    )


def test_a_cli_text_query_imports_no_torch(offline_index: Path) -> None:
    done = _run(
        f"""
        import json, sys
        from mmsearch.cli import cli
        try:
            cli(["search", "a cup of coffee", "--index", {str(offline_index)!r}, "--json"],
                prog_name="mmsearch")
        except SystemExit as exc:
            assert not exc.code, exc.code
        heavy = [m for m in {HEAVY!r} if m in sys.modules]
        print(json.dumps(heavy))
        """
    )
    assert done.returncode == 0, done.stderr
    result_text, heavy_text = done.stdout.strip().rsplit("\n", 1)
    assert json.loads(heavy_text) == []
    results = json.loads(result_text)["results"]
    assert Path(results[0]["path"]).name == "coffee.txt"


def test_opening_and_encoding_through_the_library_imports_no_torch(offline_index: Path) -> None:
    done = _run(
        f"""
        import sys
        from mmsearch import Engine
        with Engine.open({str(offline_index)!r}, create=False) as engine:
            vector = engine.encode_query("tomatoes in the garden")
            hits = engine.search("tomatoes in the garden", k=1)
            engine.info()
        assert vector.shape == (384,)
        assert hits[0].path.endswith("garden.txt"), hits
        heavy = [m for m in {HEAVY!r} if m in sys.modules]
        assert not heavy, heavy
        """
    )
    assert done.returncode == 0, done.stderr


def test_the_cli_itself_is_cheap_to_import() -> None:
    done = _run(
        f"""
        import sys
        import mmsearch.cli
        heavy = [m for m in {(*HEAVY, "numpy", "sqlalchemy", "faiss", "PIL")!r} if m in sys.modules]
        assert not heavy, heavy
        """
    )
    assert done.returncode == 0, done.stderr
