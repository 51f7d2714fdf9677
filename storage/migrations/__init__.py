"""Alembic scripts; run them through `storage.migrate`, which configures Alembic in code."""
