"""The duplicates report: a read-only report over the whole index, not a search.

``finder`` finds the groups in three tiers (exact, near, similar), ``groups``
holds the report's types and the keeper rules, ``video`` the frame signatures
that match one video against another. It reads the stores and decodes media;
nothing above it (engine, server, CLI) is imported here.
"""

from mmsearch.duplicates.finder import TIERS, DuplicateFinder, Tier
from mmsearch.duplicates.groups import DuplicateGroup, DuplicateMember, DuplicateReport

__all__ = [
    "TIERS",
    "DuplicateFinder",
    "DuplicateGroup",
    "DuplicateMember",
    "DuplicateReport",
    "Tier",
]
