"""The database: engines, column types, every PostgreSQL/SQLite difference, error kinds."""
