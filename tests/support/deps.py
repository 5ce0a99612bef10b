"""Optional test dependencies: skipped on a developer's machine, a failure in CI.

``pytest.importorskip`` skips a test (or a whole module) when a package is
missing, so CI would pass without ever running it. :func:`need` skips the
same way locally, but when the ``CI`` environment variable is set (``.ci/run``
sets it) a missing package fails the run instead, naming the install that
brings it (``pip install -e ".[dev]"`` carries every test dependency).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

_OFF = ("", "0", "false", "no")


def in_ci() -> bool:
    """Whether this run is CI's (``CI`` set to anything but empty, 0, false or no)."""
    return os.environ.get("CI", "").strip().lower() not in _OFF


def need(module: str) -> ModuleType:
    """Import ``module``; without it, skip here and fail under ``CI``.

    Works at module level (the whole module skips) and inside tests and fixtures.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = f"needs {module!r} ({exc}); pip install -e '.[dev]' brings it"
        if in_ci():
            pytest.fail(f"CI is set and a test dependency is missing: {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)
