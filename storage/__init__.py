"""The ports of `core`, implemented: PostgreSQL or SQLite through SQLAlchemy (async), the Redis
and in-process snippet caches, and the email outbox.

Entry points: `storage.database.Database` (units of work, outbox queue, health),
`storage.cache.create_snippet_cache`, `storage.migrate.upgrade`.
"""
