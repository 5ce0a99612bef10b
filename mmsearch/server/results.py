"""The answer of a search: the CLI's ``--json`` object, each hit with a ``thumbnail_url`` and a
``file_url`` (for a video moment, with ``#t=START``)."""

from __future__ import annotations

from typing import Any

from mmsearch.search.results import SearchResult


def seconds(value: float) -> str:
    """A time for a URL: millisecond precision, no exponent, no trailing zeros (``3``, ``12.5``)."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def hit_urls(hit: dict[str, Any]) -> dict[str, Any]:
    """``thumbnail_url`` and ``file_url`` of one hit of a search's JSON."""
    asset = hit["asset_id"]
    base = f"/api/assets/{asset}"
    if hit["modality"] == "video":
        at = hit.get("best_time") or hit.get("start") or 0.0
        hit["thumbnail_url"] = f"{base}/thumbnail?t={seconds(at)}"
        hit["file_url"] = f"{base}/file#t={seconds(hit.get('start') or 0.0)}"
    else:
        hit["thumbnail_url"] = f"{base}/thumbnail" if hit["modality"] == "image" else None
        hit["file_url"] = f"{base}/file"
    return hit


def result_json(result: SearchResult) -> dict[str, Any]:
    out = result.to_dict()
    out["results"] = [hit_urls(h) for h in out["results"]]
    return out
