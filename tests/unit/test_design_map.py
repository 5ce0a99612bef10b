"""docs/design.md's module list is generated from the modules' docstrings and kept current."""

from __future__ import annotations

from pathlib import Path

import pytest
from cogapp import Cog

ROOT = Path(__file__).resolve().parents[2]


def test_the_module_list_is_not_stale(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regenerate with ``cog -r docs/design.md`` after adding, moving or re-describing a module."""
    monkeypatch.chdir(ROOT)
    status = Cog().main(
        ["cog", "--check", "--check-fail-msg", "run: cog -r docs/design.md", "docs/design.md"]
    )
    assert status == 0, capsys.readouterr().err


def test_the_module_list_names_every_module() -> None:
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "mmsearch").rglob("*.py"))
    missing = [m for m in modules if f"- `{m}`: " not in text]
    assert not missing, missing
