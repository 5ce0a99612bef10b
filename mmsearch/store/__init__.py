"""Storage: SQLite metadata (the source of truth) and vector stores (derived caches)."""
