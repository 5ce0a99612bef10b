"""mmsearch: multimodal search for your own photos, videos and notes."""

__version__ = "0.1.0"

from mmsearch.engine import Engine
from mmsearch.errors import MmsearchError
from mmsearch.indexer import IndexReport, Skip
from mmsearch.results import Hit

__all__ = ["Engine", "Hit", "IndexReport", "MmsearchError", "Skip", "__version__"]
