"""The scale benchmark runs end to end (small sizes) and its numbers are sane (loose bounds)."""

from __future__ import annotations

import pytest

from benchmarks import scale

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_scale_benchmark_small() -> None:
    result = scale.main(["--sizes", "2000,22000", "--growth", "20000,26000,2", "--json"])
    small, large = result["sizes"]
    assert small["index"] == "exact" and large["index"].startswith("IVF")
    assert small["recall_at_10"] == 1.0 and large["recall_at_10"] >= 0.9
    assert all(row["gap"] <= 0.01 for row in result["growth"])
    assert large["vectors_mb"] < 60  # float16 rows + 8-bit codes, not float32 copies
