"""Snippet use cases on fakes: refs, ownership, emails, paging and the cache protocol."""

from __future__ import annotations

import pytest

from core.entities import EmailKind, Snippet, User
from core.errors import NotFound, NotText, SnippetTooLarge, ValidationError
from core.ports import CachedList
from core.snippets import MAX_REF, SnippetService, parse_ref
from core.text import unwrap_fence

from .fakes import MAX_SNIPPET_BYTES, FakeClock, FakeDatabase, FakeSnippetCache, add_user

PYTHON = "def add(a, b):\n    return a + b\n"


@pytest.fixture
async def ada(db: FakeDatabase) -> User:
    return await add_user(db, "ada@example.com")


@pytest.fixture
async def bob(db: FakeDatabase) -> User:
    return await add_user(db, "bob@example.com")


@pytest.fixture
async def newcomer(db: FakeDatabase) -> User:
    return await add_user(db, "new@example.com", verified=False)


async def save_many(
    snippets: SnippetService, clock: FakeClock, owner: User, count: int
) -> list[Snippet]:
    saved = []
    for n in range(1, count + 1):
        saved.append((await snippets.create(owner, f"Snippet {n}", f"print({n})\n")).snippet)
        clock.advance(seconds=1)
    return saved


def stored(db: FakeDatabase, owner: User, ref: int) -> Snippet | None:
    return next(
        (s for s in db.committed.snippets.values() if s.owner_id == owner.id and s.ref == ref),
        None,
    )


# -- parse_ref ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "ref"),
    [("3", 3), ("#3", 3), (" 42 ", 42), ("#1", 1), ("007", 7), (str(MAX_REF), MAX_REF)],
)
def test_parse_ref_accepts_numbers(raw: str, ref: int) -> None:
    assert parse_ref(raw) == ref


@pytest.mark.parametrize(
    "raw",
    [
        "0",
        "#0",
        "-1",
        "+1",
        "1.0",
        "1e3",
        "",
        "#",
        "##3",
        "abc",
        "3a",
        "٣",  # Arabic-Indic three
        "３",  # full-width three
        "²",
        str(MAX_REF + 1),
        str(2**63),
        "9" * 5000,  # int() itself refuses this many digits
        "1 2",
    ],
)
def test_parse_ref_refuses_everything_else(raw: str) -> None:
    with pytest.raises(ValidationError, match="not a snippet number"):
        parse_ref(raw)


# -- create -------------------------------------------------------------------------------


async def test_create_stores_the_snippet_and_emails_the_owner(
    snippets: SnippetService, db: FakeDatabase, clock: FakeClock, ada: User
) -> None:
    saved = await snippets.create(ada, "Adder", PYTHON, language_hint="py")

    snippet = saved.snippet
    assert saved.emailed
    assert (snippet.ref, snippet.title, snippet.code, snippet.language) == (
        1,
        "Adder",
        PYTHON,
        "Python",
    )
    assert snippet.created_at == snippet.updated_at == clock()
    assert db.committed.snippets[snippet.id] == snippet
    [mail] = db.emails(kind=EmailKind.SNIPPET_CREATED)
    assert mail.to == "ada@example.com"
    assert mail.context == {
        "title": "Adder",
        "language": "Python",
        "ref": 1,
        "created_at": clock().isoformat(),
    }


async def test_create_from_a_fenced_message(snippets: SnippetService, ada: User) -> None:
    fenced = unwrap_fence("```rust\nfn main() {}\n```")
    saved = await snippets.create(ada, "Main", fenced.code, language_hint=fenced.language_hint)
    assert (saved.snippet.code, saved.snippet.language) == ("fn main() {}", "Rust")


@pytest.mark.parametrize(
    ("code", "hint", "filename", "language"),
    [
        ("x = 1\n", "python", None, "Python"),
        ("x = 1\n", None, "setup.py", "Python"),
        ("let x = 1;\n", None, "app.js", "JavaScript"),
        # An unknown hint falls back to the content.
        ("SELECT id FROM users;\n", "nosuchlanguage", None, "SQL"),
        (PYTHON, None, None, "Python"),
        ("package main\n\nfunc main() {\n}\n", None, "notes.unknownext", "Go"),
        ("just some words\n", None, None, "Text"),
    ],
)
async def test_create_detects_the_language(
    snippets: SnippetService,
    ada: User,
    code: str,
    hint: str | None,
    filename: str | None,
    language: str,
) -> None:
    saved = await snippets.create(ada, "t", code, language_hint=hint, filename=filename)
    assert saved.snippet.language == language


@pytest.mark.parametrize(
    ("title", "cleaned"),
    [
        ("  Quick   sort  ", "Quick sort"),
        ("line one\r\nline two", "line one line two"),
        ("tab\there", "tab here"),
        ("bell\x07 and\x00nul", "bell and nul"),
        ("bidi\u202eevil", "bidi evil"),
        ("para\u2029graph", "para graph"),
        ("emoji 👩\u200d💻 kept", "emoji 👩\u200d💻 kept"),
        ("x" * 200, "x" * 200),
    ],
)
async def test_create_cleans_the_title(
    snippets: SnippetService, ada: User, title: str, cleaned: str
) -> None:
    assert (await snippets.create(ada, title, PYTHON)).snippet.title == cleaned


@pytest.mark.parametrize("title", ["", "   ", "\r\n\t", "x" * 201, "y" * 10_000])
async def test_create_refuses_bad_titles(
    snippets: SnippetService, db: FakeDatabase, ada: User, title: str
) -> None:
    with pytest.raises(ValidationError):
        await snippets.create(ada, title, PYTHON)
    assert db.committed.snippets == {}


@pytest.mark.parametrize(
    "code",
    ["a" * MAX_SNIPPET_BYTES, "é" * (MAX_SNIPPET_BYTES // 2), "😀" * (MAX_SNIPPET_BYTES // 4)],
)
async def test_create_accepts_code_up_to_the_limit_in_utf8_bytes(
    snippets: SnippetService, ada: User, code: str
) -> None:
    assert (await snippets.create(ada, "big", code)).snippet.code == code


@pytest.mark.parametrize(
    "code",
    [
        "a" * (MAX_SNIPPET_BYTES + 1),
        "é" * (MAX_SNIPPET_BYTES // 2 + 1),  # fewer characters than the limit, more bytes
        "😀" * (MAX_SNIPPET_BYTES // 4 + 1),
    ],
)
async def test_create_refuses_code_over_the_limit_in_utf8_bytes(
    snippets: SnippetService, db: FakeDatabase, ada: User, code: str
) -> None:
    with pytest.raises(SnippetTooLarge, match="too large"):
        await snippets.create(ada, "big", code)
    assert db.committed.snippets == {}


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("", ValidationError),
        ("  \n\t\n", ValidationError),
        ("print(1)\x00", NotText),
        ("lone \ud800 surrogate", NotText),
    ],
)
async def test_create_refuses_empty_and_non_text_code(
    snippets: SnippetService, db: FakeDatabase, ada: User, code: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await snippets.create(ada, "t", code)
    assert db.committed.snippets == {}
    assert (await snippets.create(ada, "t", PYTHON)).snippet.ref == 1  # no ref was spent


async def test_refs_count_per_user_and_are_never_reused(
    snippets: SnippetService, ada: User, bob: User
) -> None:
    refs = [(await snippets.create(ada, "t", PYTHON)).snippet.ref for _ in range(3)]
    bob_refs = [(await snippets.create(bob, "t", PYTHON)).snippet.ref for _ in range(2)]
    assert refs == [1, 2, 3]
    assert bob_refs == [1, 2]
    await snippets.delete(ada, 3)
    assert (await snippets.create(ada, "t", PYTHON)).snippet.ref == 4


async def test_create_from_file(snippets: SnippetService, ada: User) -> None:
    saved = await snippets.create_from_file(ada, b"import os\nprint(os.sep)\n", "tool.py")
    assert (saved.snippet.title, saved.snippet.language) == ("tool.py", "Python")
    captioned = await snippets.create_from_file(ada, b"x = 1\n", "a.py", title="My caption")
    assert captioned.snippet.title == "My caption"


async def test_a_file_name_several_languages_claim_is_weighed_by_the_guess(
    db: FakeDatabase, cache: FakeSnippetCache, clock: FakeClock, ada: User
) -> None:
    asked: list[tuple[str, str | None]] = []

    async def guess(sample: str, filename: str | None) -> str:
        asked.append((sample, filename))
        return "Objective-C"

    snippets = SnippetService(
        db.unit_of_work, cache, clock, MAX_SNIPPET_BYTES, guess_language=guess
    )
    saved = await snippets.create_from_file(ada, b"@interface Shape : NSObject\n@end\n", "shape.h")
    assert saved.snippet.language == "Objective-C"
    assert asked == [("@interface Shape : NSObject\n@end\n", "shape.h")]
    # One language claims `.py`: no guess is asked for.
    await snippets.create_from_file(ada, b"x = 1\n", "tool.py")
    assert len(asked) == 1


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", ValidationError),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10", NotText),
        (b"a" * (MAX_SNIPPET_BYTES + 1), SnippetTooLarge),
        # Fits the limit as UTF-16 bytes, but not as the UTF-8 it is stored in.
        (("漢" * (MAX_SNIPPET_BYTES // 2 - 1)).encode("utf-16"), SnippetTooLarge),
    ],
)
async def test_create_from_file_refuses(
    snippets: SnippetService, db: FakeDatabase, ada: User, data: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await snippets.create_from_file(ada, data, "file.txt")
    assert db.committed.snippets == {}


async def test_an_unverified_owner_gets_no_creation_email(
    snippets: SnippetService, db: FakeDatabase, newcomer: User
) -> None:
    saved = await snippets.create(newcomer, "t", PYTHON)
    assert not saved.emailed
    assert db.outbox == []


# -- get and view -------------------------------------------------------------------------


async def test_get_emails_the_code_with_a_file_name(
    snippets: SnippetService, db: FakeDatabase, ada: User
) -> None:
    await snippets.create(ada, "Quick sort", PYTHON)

    saved = await snippets.get(ada, 1)

    assert saved.emailed
    assert saved.snippet.code == PYTHON
    [mail] = db.emails(kind=EmailKind.SNIPPET_RETRIEVED)
    assert mail.to == "ada@example.com"
    assert mail.context == {
        "title": "Quick sort",
        "language": "Python",
        "ref": 1,
        "code": PYTHON,
        "filename": "Quick_sort.py",
    }


async def test_get_by_an_unverified_owner_is_not_emailed(
    snippets: SnippetService, db: FakeDatabase, newcomer: User
) -> None:
    await snippets.create(newcomer, "t", PYTHON)
    saved = await snippets.get(newcomer, 1)
    assert saved.snippet.code == PYTHON
    assert not saved.emailed
    assert db.outbox == []


async def test_view_does_not_email(snippets: SnippetService, db: FakeDatabase, ada: User) -> None:
    await snippets.create(ada, "t", PYTHON)
    assert (await snippets.view(ada, 1)).code == PYTHON
    assert (await snippets.view(ada, 1)).code == PYTHON  # from the cache this time
    assert db.emails(kind=EmailKind.SNIPPET_RETRIEVED) == []


@pytest.mark.parametrize("warm", [False, True], ids=["cold cache", "warm cache"])
async def test_another_users_snippet_is_answered_like_a_missing_one(
    snippets: SnippetService, db: FakeDatabase, ada: User, bob: User, warm: bool
) -> None:
    await snippets.create(ada, "mine", PYTHON)
    for _ in range(3):
        await snippets.create(bob, "bob's", "secret = 1\n")
    if warm:
        await snippets.get(bob, 3)
        await snippets.get(bob, 3)
    carol = await add_user(db, "carol@example.com")
    with pytest.raises(NotFound) as missing:
        await snippets.get(carol, 3)

    for attempt in (
        snippets.get(ada, 3),
        snippets.view(ada, 3),
        snippets.edit(ada, 3, "stolen = 1\n"),
        snippets.rename(ada, 3, "stolen"),
        snippets.delete(ada, 3),
    ):
        with pytest.raises(NotFound) as caught:
            await attempt
        assert str(caught.value) == str(missing.value)

    assert str(missing.value) == "There is no snippet 3 among yours."
    assert missing.value.ref == 3
    bob3 = stored(db, bob, 3)
    assert bob3 is not None
    assert (bob3.title, bob3.code) == ("bob's", "secret = 1\n")
    assert db.emails(to="ada@example.com", kind=EmailKind.SNIPPET_RETRIEVED) == []


# -- list and search ----------------------------------------------------------------------


async def test_list_is_newest_first_and_pages_beyond_the_cached_part(
    snippets: SnippetService, cache: FakeSnippetCache, clock: FakeClock, ada: User
) -> None:
    await save_many(snippets, clock, ada, 8)
    assert cache.LIST_LIMIT == 5

    first = await snippets.list(ada, 0, 3)
    second = await snippets.list(ada, 3, 3)
    third = await snippets.list(ada, 6, 3)
    beyond = await snippets.list(ada, 9, 3)

    assert [s.ref for s in first.items] == [8, 7, 6]
    assert [s.ref for s in second.items] == [5, 4, 3]  # crosses the cached five
    assert [s.ref for s in third.items] == [2, 1]
    assert beyond.items == ()
    assert {page.total for page in (first, second, third, beyond)} == {8}
    assert (first.has_previous, first.has_next) == (False, True)
    assert (third.has_previous, third.has_next) == (True, False)
    cached = cache.peek(cache.list_key(ada.id))
    assert isinstance(cached, CachedList)
    assert ([s.ref for s in cached.items], cached.total) == ([8, 7, 6, 5, 4], 8)


async def test_list_breaks_ties_by_ref(snippets: SnippetService, ada: User) -> None:
    for _ in range(3):
        await snippets.create(ada, "same second", PYTHON)
    assert [s.ref for s in (await snippets.list(ada, 0, 10)).items] == [3, 2, 1]


async def test_list_shows_changes_at_once(
    snippets: SnippetService, clock: FakeClock, ada: User, bob: User
) -> None:
    await save_many(snippets, clock, ada, 2)
    assert (await snippets.list(ada, 0, 10)).total == 2  # now cached
    await snippets.create(ada, "third", PYTHON)
    assert (await snippets.list(ada, 0, 10)).items[0].title == "third"
    await snippets.rename(ada, 1, "renamed")
    assert "renamed" in [s.title for s in (await snippets.list(ada, 0, 10)).items]
    await snippets.delete(ada, 2)
    assert [s.ref for s in (await snippets.list(ada, 0, 10)).items] == [3, 1]
    assert (await snippets.list(bob, 0, 10)).total == 0


async def test_search_finds_by_title_or_code_ignoring_case(
    snippets: SnippetService, ada: User, bob: User
) -> None:
    await snippets.create(ada, "Quick sort", "def qs(xs):\n    return xs\n")
    await snippets.create(ada, "Adder", PYTHON)
    await snippets.create(bob, "Bob's quicksort", "quick = 1\n")

    by_title = await snippets.search(ada, "QUICK", 0, 10)
    by_code = await snippets.search(ada, "return A + b", 0, 10)
    spaced = await snippets.search(ada, "  quick \n sort ", 0, 10)
    nothing = await snippets.search(ada, "bubble", 0, 10)

    assert [s.title for s in by_title.items] == ["Quick sort"]
    assert [s.title for s in by_code.items] == ["Adder"]
    assert [s.title for s in spaced.items] == ["Quick sort"]
    assert (nothing.items, nothing.total) == ((), 0)


@pytest.mark.parametrize("query", ["", "  \n ", "x" * 201])
async def test_search_refuses_empty_and_long_queries(
    snippets: SnippetService, ada: User, query: str
) -> None:
    with pytest.raises(ValidationError):
        await snippets.search(ada, query, 0, 10)


# -- edit, rename, delete -----------------------------------------------------------------


async def test_edit_replaces_the_code_and_keeps_the_language(
    snippets: SnippetService, db: FakeDatabase, clock: FakeClock, ada: User
) -> None:
    created = (await snippets.create(ada, "Adder", PYTHON)).snippet
    await snippets.get(ada, 1)
    await snippets.get(ada, 1)  # cached now
    clock.advance(minutes=1)

    edited = await snippets.edit(ada, 1, "SELECT 1;\n")  # looks like SQL, stays Python

    assert (edited.code, edited.language, edited.title) == ("SELECT 1;\n", "Python", "Adder")
    assert edited.created_at == created.created_at
    assert edited.updated_at == clock()
    assert stored(db, ada, 1) == edited
    assert (await snippets.get(ada, 1)).snippet == edited
    assert (await snippets.view(ada, 1)) == edited


async def test_edit_with_a_hint_changes_the_language(snippets: SnippetService, ada: User) -> None:
    await snippets.create(ada, "Adder", PYTHON)
    edited = await snippets.edit(ada, 1, "const x = 1;\n", language_hint="js")
    assert edited.language == "JavaScript"


@pytest.mark.parametrize("code", ["", "x\x00", "a" * (MAX_SNIPPET_BYTES + 1)])
async def test_edit_refuses_bad_code_and_changes_nothing(
    snippets: SnippetService, db: FakeDatabase, ada: User, code: str
) -> None:
    created = (await snippets.create(ada, "Adder", PYTHON)).snippet
    with pytest.raises(ValidationError):
        await snippets.edit(ada, 1, code)
    assert stored(db, ada, 1) == created


async def test_rename_cleans_the_title(
    snippets: SnippetService, db: FakeDatabase, ada: User
) -> None:
    await snippets.create(ada, "Adder", PYTHON)
    await snippets.get(ada, 1)
    renamed = await snippets.rename(ada, 1, " Sum\r\nof two ")
    assert renamed.title == "Sum of two"
    assert (await snippets.get(ada, 1)).snippet.title == "Sum of two"
    with pytest.raises(ValidationError):
        await snippets.rename(ada, 1, "x" * 10_000)
    assert (await snippets.view(ada, 1)).title == "Sum of two"


async def test_delete_emails_the_title_and_the_snippet_is_gone(
    snippets: SnippetService, db: FakeDatabase, ada: User
) -> None:
    await snippets.create(ada, "Adder", PYTHON)
    await snippets.get(ada, 1)
    await snippets.get(ada, 1)  # ref and snippet cached

    saved = await snippets.delete(ada, 1)

    assert saved.emailed
    assert saved.snippet.title == "Adder"
    [mail] = db.emails(kind=EmailKind.SNIPPET_DELETED)
    assert mail.context == {"title": "Adder", "ref": 1}
    assert set(db.committed.deleted) == set(db.committed.snippets)  # hidden until the purge
    for attempt in (snippets.get(ada, 1), snippets.view(ada, 1), snippets.delete(ada, 1)):
        with pytest.raises(NotFound):
            await attempt
    assert (await snippets.list(ada, 0, 10)).total == 0


async def test_delete_by_an_unverified_owner_is_not_emailed(
    snippets: SnippetService, db: FakeDatabase, newcomer: User
) -> None:
    await snippets.create(newcomer, "t", PYTHON)
    assert not (await snippets.delete(newcomer, 1)).emailed
    assert db.outbox == []


# -- the cache ----------------------------------------------------------------------------


async def test_reads_fill_the_cache_and_writes_empty_it(
    snippets: SnippetService, cache: FakeSnippetCache, ada: User
) -> None:
    snippet = (await snippets.create(ada, "Adder", PYTHON)).snippet
    key = cache.snippet_key(snippet.id)
    await snippets.get(ada, 1)  # the first read caches the snippet (and its ref)
    assert cache.peek(key) == snippet
    assert cache.peek(cache.ref_key(ada.id, 1)) == snippet.id

    edited = await snippets.edit(ada, 1, "x = 2\n")
    assert cache.peek(key) is None
    await snippets.get(ada, 1)
    assert cache.peek(key) == edited

    await snippets.delete(ada, 1)
    assert cache.peek(key) is None
    assert cache.peek(cache.list_key(ada.id)) is None


async def test_a_first_read_by_id_fills_the_cache(
    snippets: SnippetService, cache: FakeSnippetCache, ada: User
) -> None:
    snippet = (await snippets.create(ada, "Adder", PYTHON)).snippet
    assert (await snippets.get(ada, snippet.id)).snippet == snippet
    assert cache.peek(cache.snippet_key(snippet.id)) == snippet
    assert (await snippets.view(ada, 1)) == snippet


@pytest.mark.parametrize("known_ref", [True, False], ids=["ref-cached", "first-read"])
@pytest.mark.parametrize("change", ["edit", "rename", "delete"])
async def test_a_read_that_started_before_a_change_cannot_cache_the_old_snippet(
    snippets: SnippetService, cache: FakeSnippetCache, ada: User, change: str, known_ref: bool
) -> None:
    old = (await snippets.create(ada, "Adder", PYTHON)).snippet
    if known_ref:
        await snippets.get(ada, 1)
        await cache.forget_snippet(ada.id, old.id)  # the ref is cached, the snippet is not

    async def change_commits_meanwhile() -> None:
        # Runs after the reader missed, took its ticket and read `old` from the database.
        if change == "edit":
            await snippets.edit(ada, 1, "new = 1\n")
        elif change == "rename":
            await snippets.rename(ada, 1, "Renamed")
        else:
            await snippets.delete(ada, 1)

    cache.before_next_put.append(change_commits_meanwhile)
    racing = await snippets.view(ada, 1)
    assert racing == old  # it started first, so it may still answer with what it read

    assert cache.peek(cache.snippet_key(old.id)) != old
    if change == "delete":
        with pytest.raises(NotFound):
            await snippets.get(ada, 1)
    else:
        for _ in range(2):
            fresh = (await snippets.get(ada, 1)).snippet
            assert fresh != old
            assert (fresh.code, fresh.title) in {("new = 1\n", "Adder"), (PYTHON, "Renamed")}


async def test_a_list_read_that_started_before_a_create_cannot_cache_the_old_list(
    snippets: SnippetService, cache: FakeSnippetCache, clock: FakeClock, ada: User
) -> None:
    await save_many(snippets, clock, ada, 2)

    async def create_commits_meanwhile() -> None:
        await snippets.create(ada, "newest", PYTHON)

    cache.before_next_put.append(create_commits_meanwhile)
    racing = await snippets.list(ada, 0, 10)
    assert racing.total == 2

    after = await snippets.list(ada, 0, 10)
    assert after.total == 3
    assert after.items[0].title == "newest"


async def test_everything_works_with_the_cache_down(
    snippets: SnippetService, cache: FakeSnippetCache, db: FakeDatabase, ada: User
) -> None:
    cache.down = True
    await snippets.create(ada, "Adder", PYTHON)
    assert (await snippets.get(ada, 1)).snippet.code == PYTHON
    assert (await snippets.get(ada, 1)).snippet.code == PYTHON
    assert (await snippets.list(ada, 0, 10)).total == 1
    assert (await snippets.edit(ada, 1, "x = 2\n")).code == "x = 2\n"
    assert (await snippets.get(ada, 1)).snippet.code == "x = 2\n"
    await snippets.delete(ada, 1)
    with pytest.raises(NotFound):
        await snippets.get(ada, 1)
    kinds = [mail.kind for mail in db.emails(to=ada.email)]
    assert kinds == [
        EmailKind.SNIPPET_CREATED,
        *[EmailKind.SNIPPET_RETRIEVED] * 3,
        EmailKind.SNIPPET_DELETED,
    ]


async def test_cached_snippets_expire(
    snippets: SnippetService, cache: FakeSnippetCache, clock: FakeClock, ada: User
) -> None:
    snippet = (await snippets.create(ada, "Adder", PYTHON)).snippet
    await snippets.get(ada, 1)
    await snippets.get(ada, 1)
    assert cache.peek(cache.snippet_key(snippet.id)) == snippet
    clock.advance(minutes=5)
    assert cache.peek(cache.snippet_key(snippet.id)) is None
    assert (await snippets.get(ada, 1)).snippet == snippet
