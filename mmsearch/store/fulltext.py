"""Full-text search over segment text (passages, OCR lines): the index on each database.

SQLite keeps an FTS5 table, ``segments_fts``, in step with ``segments`` by
triggers. PostgreSQL has a GIN index over :data:`POSTGRES_WORDS`; a phrase
query must repeat that expression (with :data:`POSTGRES_PHRASE`) for the index
to be used (see :func:`mmsearch.search.filters.text_match_assets`). Both split
words alike, so a phrase filter gives the same answers on either.
"""

from __future__ import annotations

SQLITE_FTS_SCHEMA = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS segments_fts USING fts5("
    "text, content='segments', content_rowid='id')",
    "CREATE TRIGGER IF NOT EXISTS segments_fts_insert AFTER INSERT ON segments "
    "WHEN new.text IS NOT NULL BEGIN "
    "INSERT INTO segments_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS segments_fts_delete AFTER DELETE ON segments "
    "WHEN old.text IS NOT NULL BEGIN "
    "INSERT INTO segments_fts(segments_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
)
"""The FTS5 table over segment text and the triggers that keep it in step."""

SQLITE_FTS_REBUILD = "INSERT INTO segments_fts(segments_fts) VALUES ('rebuild')"
"""Fill the FTS5 table from the segments already there (an index made before it)."""

# PostgreSQL full text, made to split words as SQLite's FTS5 (unicode61) does: ASCII
# punctuation and white space separate words (so "42.50" is "42 50", "New-York" is
# "new york", as in FTS5; PostgreSQL's own parser would keep "42.50" whole), then the
# 'simple' configuration lower-cases them, with no stemming and no stop words.
_SEPARATORS = "'[!-/:-@[-`{-~[:space:]]+'"

POSTGRES_WORDS = (
    f"to_tsvector('simple'::regconfig, regexp_replace(coalesce(segments.text, ''),"
    f" {_SEPARATORS}, ' ', 'g'))"
)
"""The words of a segment's text: the GIN index's expression, which queries must repeat."""

POSTGRES_PHRASE = (
    f"phraseto_tsquery('simple'::regconfig, regexp_replace(:phrase, {_SEPARATORS}, ' ', 'g'))"
)
"""A phrase (the words in order) split the same way, with the bind parameter ``phrase``."""

POSTGRES_FTS_SCHEMA = (
    f"CREATE INDEX IF NOT EXISTS ix_segments_text_fts ON segments USING gin ({POSTGRES_WORDS})",
)
"""The GIN index over :data:`POSTGRES_WORDS`."""
