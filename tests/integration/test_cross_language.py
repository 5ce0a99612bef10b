"""Notes are found across languages with the ``multilingual`` model.

A few of the hand-written parallel notes of ``benchmarks/cross_language_notes.json``
(the benchmark there measures all twenty): the English notes and the Chinese
ones are indexed through ``Engine`` in ``tmp_path``; each note's short
English query must find its Chinese version first among the Chinese notes,
and each Chinese query its English version among the English notes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmsearch import Engine
from mmsearch.embedders import available_embedders

pytestmark = pytest.mark.model

NOTES = json.loads(
    (Path(__file__).parents[2] / "benchmarks" / "cross_language_notes.json").read_text("utf-8")
)
CHOSEN = ("pancakes", "dentist", "train", "vet", "plumber")
if "multilingual" not in available_embedders():
    pytest.skip("the multilingual model is not registered yet", allow_module_level=True)


def _notes_folder(root: Path, language: str) -> Path:
    folder = root / language
    folder.mkdir()
    for note in NOTES["notes"]:
        if note["id"] in CHOSEN:
            version = note[language]
            text = f"{version['title']}\n\n{version['text']}\n"
            (folder / f"{note['id']}.txt").write_text(text, encoding="utf-8")
    return folder


def _first_hits(index: Path, notes: Path, query_language: str) -> dict[str, str]:
    """Each chosen note's query in ``query_language`` -> the id of the first note found."""
    with Engine.open(index, model="multilingual") as engine:
        report = engine.index([notes])
        assert report.added == len(CHOSEN) and not report.skipped
        first = {}
        for note in NOTES["notes"]:
            if note["id"] in CHOSEN:
                [hit] = engine.search(note[query_language]["query"], k=1, modalities=["text"])
                first[note["id"]] = Path(hit.path).stem
    return first


@pytest.mark.parametrize(("query_language", "note_language"), [("en", "zh"), ("zh", "en")])
def test_a_query_finds_the_note_in_the_other_language(
    tmp_path: Path, query_language: str, note_language: str
) -> None:
    notes = _notes_folder(tmp_path, note_language)
    first = _first_hits(tmp_path / "idx", notes, query_language)
    assert first == {note_id: note_id for note_id in first}
    assert len(first) == len(CHOSEN)
