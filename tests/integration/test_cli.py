"""The CLI contract: JSON shapes, exit codes, one-line errors, --index and MMSEARCH_INDEX."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmsearch.cli import cli

pytestmark = pytest.mark.usefixtures("metadata_db")  # SQLite and PostgreSQL


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MMSEARCH_INDEX", raising=False)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output + result.stderr
        return result

    return invoke


def test_index_search_info_rm_json(run, library: Path, tmp_path: Path) -> None:
    out = json.loads(run("index", str(library), "--model", "hash", "--json").stdout)
    assert {"added", "updated", "removed", "unchanged", "skipped"} <= set(out)
    assert (out["added"], out["skipped"]) == (5, [])
    assert (tmp_path / "indexes" / "default" / "manifest.json").exists()  # default location

    res = json.loads(run("search", "red", "--json", "--k", "3").stdout)["results"]
    assert len(res) == 3 and res[0]["path"] == str(library / "photos" / "red.jpg")
    assert res[0]["modality"] == "image" and isinstance(res[0]["score"], float)
    assert [r["score"] for r in res] == sorted((r["score"] for r in res), reverse=True)

    texts = json.loads(run("search", "lazy dog", "--type", "text", "--json").stdout)["results"]
    assert {r["modality"] for r in texts} == {"text"}
    assert "lazy dog" in texts[0]["snippet"] and len(texts[0]["span"]) == 2

    by_image = json.loads(
        run("search", "--image", str(library / "photos" / "green.jpg"), "--json").stdout
    )["results"]
    assert by_image[0]["path"].endswith("green.jpg")

    info = json.loads(run("info", "--json").stdout)
    assert info["by_modality"] == {"image": 3, "text": 2}
    assert info["embedder"]["name"] == "hash" and info["size_bytes"] > 0

    assert json.loads(run("rm", str(library / "notes"), "--json").stdout) == {"removed": 2}
    assert json.loads(run("info", "--json").stdout)["assets"] == 3


def test_human_output(run, library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # the table folds long paths (tmp_path's vary)
    out = run("index", str(library), "--model", "hash").stdout
    assert "added 5" in out
    table = run("search", "red").stdout
    assert "red.jpg" in table and "score" in table
    assert "hash" in run("info").stdout
    assert "removed 1 file" in run("rm", str(library / "photos" / "red.jpg")).stdout


def test_index_option_and_environment(
    run, library: Path, tmp_path: Path, monkeypatch, metadata_db: str | None
) -> None:
    run("index", str(library), "--model", "hash", "--index", str(tmp_path / "a"))
    if metadata_db is None:
        assert (tmp_path / "a" / "index.sqlite").exists()
    else:  # recorded in the manifest; the next index (b) is a SQLite one
        assert not (tmp_path / "a" / "index.sqlite").exists()
        assert json.loads((tmp_path / "a" / "manifest.json").read_text())["db"] == metadata_db
        monkeypatch.delenv("MMSEARCH_DB")
    monkeypatch.setenv("MMSEARCH_INDEX", str(tmp_path / "b"))
    run("index", str(library / "photos"), "--model", "hash")
    assert json.loads(run("info", "--json").stdout)["assets"] == 3


def test_skipped_files_exit_zero(run, library: Path) -> None:
    (library / "broken.jpg").write_text("nope")
    out = json.loads(run("index", str(library), "--model", "hash", "--json").stdout)
    assert out["skipped"] == [
        {"path": str(library / "broken.jpg"), "reason": out["skipped"][0]["reason"]}
    ]


def test_errors_are_one_line_with_nonzero_exit(run, library: Path, tmp_path: Path) -> None:
    r = run("search", "x", "--index", str(tmp_path / "none"), code=1)
    assert r.stderr.startswith("Error: no index at") and r.stderr.count("\n") == 1
    r = run("index", str(tmp_path / "missing"), "--model", "hash", code=2)
    assert "does not exist" in r.stderr and "Traceback" not in r.stderr
    run("index", str(library), "--model", "hash")
    r = run("index", str(library), "--model", "openclip", code=1)
    assert "rebuild" in r.stderr and r.stderr.count("\n") == 1
    r = run("search", code=2)
    assert "give a TEXT" in r.stderr
    (tmp_path / "x").mkdir()
    r = run("index", str(tmp_path / "x"), "--model", "no-such-model", "--index", "o", code=2)
    assert "unknown model" in r.stderr and not (tmp_path / "o").exists()


@pytest.mark.subprocess
def test_real_command_in_a_subprocess(library: Path, tmp_path: Path) -> None:
    env = {**os.environ, "MMSEARCH_INDEX": str(tmp_path / "idx")}
    cmd = [sys.executable, "-m", "mmsearch", "index", str(library), "--model", "hash", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    assert json.loads(done.stdout)["added"] == 5
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    bad = subprocess.run(
        [sys.executable, "-m", "mmsearch", "search", "--image", "nope.jpg"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("Error:") and "Traceback" not in bad.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "mmsearch", "--debug", "search", "--image", "nope.jpg"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr
