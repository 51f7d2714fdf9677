"""The email of a snippet just shown is a copy of what the user has: it is written through the
units of work that need not wait for the disk, and nothing else is."""

from __future__ import annotations

from core.entities import EmailKind
from core.ports import UnitOfWork
from core.snippets import SnippetService

from .fakes import MAX_SNIPPET_BYTES, FakeClock, FakeDatabase, FakeSnippetCache, add_user


class CopiesUnitsOfWork:
    """The units of work for copies: the same fake database, counted."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self.opened = 0

    def __call__(self) -> UnitOfWork:
        self.opened += 1
        return self._db.unit_of_work()


async def test_only_the_email_of_a_shown_snippet_goes_through_the_copies_units_of_work(
    db: FakeDatabase, cache: FakeSnippetCache, clock: FakeClock
) -> None:
    copies = CopiesUnitsOfWork(db)
    snippets = SnippetService(db.unit_of_work, cache, clock, MAX_SNIPPET_BYTES, copies_uow=copies)
    ada = await add_user(db, "ada@example.com")

    saved = await snippets.create(ada, "Add", "def add(a, b):\n    return a + b\n")
    await snippets.edit(ada, saved.snippet.ref, "def add(a, b):\n    return b + a\n")
    assert copies.opened == 0

    shown = await snippets.get(ada, saved.snippet.ref)

    assert shown.emailed
    assert copies.opened == 1
    assert [email.kind for email in db.outbox] == [
        EmailKind.SNIPPET_CREATED,
        EmailKind.SNIPPET_RETRIEVED,
    ]
    await snippets.delete(ada, saved.snippet.ref)
    assert copies.opened == 1
