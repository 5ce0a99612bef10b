"""The test-dependency helper: a skip on a developer's machine, a failure in CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.deps import in_ci, need

MISSING = "mmsearch_no_such_module_for_tests"
ROOT = Path(__file__).resolve().parents[2]


def test_a_present_module_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert need("json") is json


@pytest.mark.parametrize("value", [None, "", "0", "false", "No"])
def test_a_missing_module_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert not in_ci()
    with pytest.raises(pytest.skip.Exception, match=MISSING):
        need(MISSING)


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_a_missing_module_fails_under_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci()
    with pytest.raises(pytest.fail.Exception, match=f"CI is set.*{MISSING}"):
        need(MISSING)


def test_a_missing_submodule_of_a_present_package_counts_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"json\.nowhere"):
        need("json.nowhere")


def test_a_module_level_skip_skips_the_module(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside CI a module that needs a missing package is skipped whole; in CI it errors."""
    pytester.makepyfile(
        test_needing=f"""
        from tests.support.deps import need

        need({MISSING!r})

        def test_never_runs():
            raise AssertionError
        """
    )
    pytester.syspathinsert(str(ROOT))
    monkeypatch.delenv("CI", raising=False)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(skipped=1)
    monkeypatch.setenv("CI", "true")
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(errors=1)
