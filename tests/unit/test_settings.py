"""The settings table drives the CLI, the environment and the docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsearch.cli import cli
from mmsearch.errors import ConfigError
from mmsearch.settings import SETTINGS, Setting, Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _settings_rows() -> dict[str, str]:
    """README's settings table: option -> its row."""
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `--"):
            rows[line.split("`")[1]] = line
    return rows


@pytest.mark.parametrize("s", SETTINGS, ids=lambda s: s.name)
def test_setting_is_documented_in_the_readme(s: Setting) -> None:
    row = _settings_rows().get(s.option)
    assert row is not None, f"README's settings table has no row for {s.option}"
    assert f"`{s.env}`" in row, f"the {s.option} row does not name {s.env}"
    default = "—" if s.default is None else str(s.default).replace("|", "\\|")
    assert default in row, f"the {s.option} row does not give its default {s.default!r}"


@pytest.mark.parametrize("s", SETTINGS, ids=lambda s: s.name)
def test_setting_is_a_cli_option(s: Setting) -> None:
    options = {
        opt
        for command in cli.commands.values()
        for param in command.params
        for opt in getattr(param, "opts", [])
    }
    assert s.option in options, s.name


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_command_is_documented_in_the_readme(name: str) -> None:
    assert f"mmsearch {name}" in README.read_text(encoding="utf-8"), name


def test_precedence_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMSEARCH_BATCH_SIZE", "7")
    assert Settings.resolve().batch_size == 7
    assert Settings.resolve(batch_size=3).batch_size == 3
    monkeypatch.setenv("MMSEARCH_BATCH_SIZE", "many")
    with pytest.raises(ConfigError, match="batch_size must be an int"):
        Settings.resolve()
    with pytest.raises(ConfigError, match="precision must be one of"):
        Settings.resolve(precision="fp8")
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.resolve(colour="red")
