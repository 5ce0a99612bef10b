"""The settings table drives the CLI, the environment and the docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsearch.cli import cli
from mmsearch.errors import ConfigError
from mmsearch.settings import SETTINGS, Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    for s in SETTINGS:
        assert f"`{s.option}`" in text and f"`{s.env}`" in text, s.name


def test_every_setting_is_a_cli_option() -> None:
    options = {
        opt
        for command in cli.commands.values()
        for param in command.params
        for opt in getattr(param, "opts", [])
    }
    for s in SETTINGS:
        assert s.option in options, s.name


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
