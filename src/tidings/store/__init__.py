"""Store port and its SQL adapter (SQLite embedded; PostgreSQL for scale-out)."""
