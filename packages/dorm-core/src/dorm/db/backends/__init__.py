"""Database backends: SQLite and PostgreSQL (plugins add more through ``dorm_backend_for``)."""
