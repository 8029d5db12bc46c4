"""SQLite storage adapter (aiosqlite, WAL): migrations and one module per aggregate."""
