"""Search (issue 16): the text pipeline shared by indexing and querying (text.py), the
query language (query.py), the index port (ports.py) and its two adapters: SQLite FTS5
(the embedded default) and PostgreSQL full-text search (scale-out), both on the same
pre-segmented text, keyed by conversation."""
