"""docs/install.md's table names every extra in pyproject.toml and what each adds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _rows() -> dict[str, str]:
    """The table's rows: install (``[name]``, or ``pip install mmsearch``) -> what it adds."""
    rows = {}
    for line in (ROOT / "docs" / "install.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 3:
            rows[cells[0].strip("`")] = cells[1]
    return rows


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\s]", requirement, maxsplit=1)[0]


def test_every_extra_has_a_row_naming_its_packages() -> None:
    rows = _rows()
    extras = _project()["optional-dependencies"]
    assert set(rows) == {"pip install mmsearch"} | {f"[{extra}]" for extra in extras}
    for extra, requirements in extras.items():
        if extra == "dev":
            continue
        for requirement in requirements:
            assert _name(requirement) in rows[f"[{extra}]"], (extra, requirement)


def test_the_default_row_names_every_dependency() -> None:
    default = _rows()["pip install mmsearch"]
    for requirement in _project()["dependencies"]:
        assert _name(requirement) in default, requirement


def test_no_extra_repeats_a_default_dependency() -> None:
    """An extra that only repeats the default install means nothing."""
    project = _project()
    default = {_name(r).lower() for r in project["dependencies"]}
    for extra, requirements in project["optional-dependencies"].items():
        assert requirements, extra
        assert not {_name(r).lower() for r in requirements} & default, extra


def test_every_install_hint_in_the_package_names_a_real_extra() -> None:
    """``pip install 'mmsearch[x]'`` in a message, or ``import_optional(m, "x", ...)``."""
    extras = set(_project()["optional-dependencies"])
    named = []
    for path in (ROOT / "mmsearch").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        named += [(path.name, x) for x in re.findall(r"mmsearch\[([a-z_,]+)\]", text)]
        named += [
            (path.name, x) for x in re.findall(r"import_optional\(\s*\"[\w.]+\",\s*\"(\w+)\"", text)
        ]
        named += [(path.name, x) for x in re.findall(r"^EXTRA = \"(\w+)\"", text, re.M)]
    assert named
    wrong = [(f, x) for f, x in named if not set(x.split(",")) <= extras]
    assert not wrong, f"extras that do not exist: {wrong}"
