"""The settings table drives the CLI, the environment and the docs."""

from __future__ import annotations

from pathlib import Path

import pytest
from cogapp import Cog

from mmsearch.cli import cli
from mmsearch.errors import ConfigError
from mmsearch.settings import SETTINGS, Setting, Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
SETTINGS_PAGE = DOCS / "settings.md"
CLI_PAGE = DOCS / "cli.md"


def test_settings_page_is_not_stale(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/settings.md is generated from SETTINGS: regenerate with ``cog -r docs/settings.md``."""
    status = Cog().main(
        ["cog", "--check", "--check-fail-msg", "run: cog -r docs/settings.md", str(SETTINGS_PAGE)]
    )
    assert status == 0, capsys.readouterr().err


def _settings_rows() -> dict[str, str]:
    """The settings page's table: option -> its row."""
    rows = {}
    for line in SETTINGS_PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `--"):
            rows[line.split("`")[1]] = line
    return rows


@pytest.mark.parametrize("s", SETTINGS, ids=lambda s: s.name)
def test_setting_is_documented(s: Setting) -> None:
    row = _settings_rows().get(s.option)
    assert row is not None, f"docs/settings.md has no row for {s.option}"
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
def test_command_is_documented(name: str) -> None:
    assert f"## `mmsearch {name}" in CLI_PAGE.read_text(encoding="utf-8"), name


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
