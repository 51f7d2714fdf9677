"""Tags, versions, undo and share links as use cases, on the fakes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.entities import User
from core.errors import ShareGone, ValidationError
from core.organise import (
    MAX_VERSIONS,
    OrganiseService,
    clean_tags,
    first_changed_line,
    parse_share_expiry,
    split_title_tags,
)
from core.snippets import SnippetService

from .fakes import FakeClock, FakeDatabase, FakeSnippetCache, add_user


@pytest.fixture
def organise(db: FakeDatabase, cache: FakeSnippetCache, clock: FakeClock) -> OrganiseService:
    return OrganiseService(db.unit_of_work, cache, clock)


@pytest.fixture
async def ada(db: FakeDatabase) -> User:
    return await add_user(db, "ada@example.com")


def test_tags_are_lower_cased_deduplicated_and_bounded() -> None:
    assert clean_tags(["Python", "#python", "C++", "node.js", "c#"]) == (
        "c#",
        "c++",
        "node.js",
        "python",
    )
    with pytest.raises(ValidationError, match="at most 10"):
        clean_tags([f"t{n}" for n in range(11)])
    with pytest.raises(ValidationError, match="at most 32"):
        clean_tags(["a" * 33])
    for bad in ("9lives", "", "#", "a b", "<b>", "_x"):
        with pytest.raises(ValidationError):
            clean_tags([bad])


def test_title_tags() -> None:
    assert split_title_tags("Quick sort #Python #algo")[1] == ("algo", "python")
    assert split_title_tags("Fix #3 in C#")[1] == ()
    assert split_title_tags("no tags") == ("no tags", ())


def test_first_changed_line() -> None:
    assert first_changed_line("a\nb\nc", "a\nB\nc") == "B"
    assert first_changed_line("a", "a\nb") == "b"
    assert first_changed_line("a\nb", "a") == "(lines removed at the end)"
    assert first_changed_line("a", "a") == ""


def test_share_expiries() -> None:
    assert parse_share_expiry("")[1] is False
    assert parse_share_expiry("ONCE")[1] is True
    assert parse_share_expiry("1h")[0].total_seconds() == 3600
    with pytest.raises(ValidationError):
        parse_share_expiry("2w")


async def test_versions_capped_and_restore_is_a_new_version(
    snippets: SnippetService, organise: OrganiseService, ada: User
) -> None:
    await snippets.create(ada, "Counter", "n = 0")
    for number in range(1, MAX_VERSIONS + 5):
        await snippets.edit(ada, 1, f"n = {number}")

    snippet, versions = await organise.history(ada, 1)
    assert len(versions) == MAX_VERSIONS
    oldest = versions[0]
    restored = await organise.restore(ada, snippet.id, oldest.number)
    assert restored.code == oldest.code
    _, after = await organise.history(ada, 1)
    assert after[-1].code == oldest.code and after[-2].code == f"n = {MAX_VERSIONS + 4}"


async def test_a_share_is_found_by_the_hash_of_its_token_only(
    db: FakeDatabase, snippets: SnippetService, organise: OrganiseService, ada: User
) -> None:
    await snippets.create(ada, "Shared", "x = 1")
    created = await organise.share(ada, 1)
    assert (await organise.open_share(created.payload)).code == "x = 1"

    link = db.committed.shares[created.link.id]
    db.committed.shares[link.id] = replace(link, token_hash="0" * 64)

    with pytest.raises(ShareGone):
        await organise.open_share(created.payload)
