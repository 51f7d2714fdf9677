"""The process tests' shared fixtures (tests/processes.py)."""

from tests.processes import bot_api, smtp_inbox, tg  # noqa: F401 - fixtures, used by name
