"""Tags: #words in a /save title, /tag, /untag, /tags, /list #tag, /search text #tag, and the
cache after each change."""

from __future__ import annotations

from uuid import UUID

from core.entities import Client
from storage.cache import MemorySnippetCache, list_key, snippet_key
from tests.bot.conftest import BotHarness


def cached_keys(harness: BotHarness) -> set[str]:
    cache = harness.services.cache
    assert isinstance(cache, MemorySnippetCache)
    return set(cache._values)


async def owner_id(harness: BotHarness, chat_id: int) -> UUID:
    return (await harness.services.accounts.current_user(Client.chat(chat_id))).id


async def snippet_id(harness: BotHarness, chat_id: int, ref: int) -> UUID:
    user = await harness.services.accounts.current_user(Client.chat(chat_id))
    return (await harness.services.snippets.view(user, ref)).id


async def test_hash_words_in_a_save_title_become_tags(harness: BotHarness) -> None:
    await harness.user(1)

    reply = await harness.say(1, "/save Quick sort #Python #algo\ndef qs(xs):\n    return xs")

    assert "Saved Quick sort · #1" in reply
    shown = await harness.say(1, "/get 1")
    assert shown.startswith("Quick sort · #1 · Python\n#algo #python\ndef qs")
    assert "#1 Quick sort · Python · #algo #python" in await harness.say(1, "/list")


async def test_tag_untag_and_the_tag_list_with_counts(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def sort(xs):\n    return sorted(xs)")
    await harness.save(1, "Sum", "def total(xs):\n    return sum(xs)")

    assert await harness.say(1, "/tag 1 Python sorting") == "🏷 Sort · #1 · Python\n#python #sorting"
    await harness.say(1, "/tag 2 #python")
    assert await harness.say(1, "/tags") == (
        "Your tags:\n\n#python · 2\n#sorting · 1\n\nFilter with /list #tag"
    )

    assert await harness.say(1, "/untag 1 sorting") == "🏷 Sort · #1 · Python\n#python"
    assert "#sorting" not in await harness.say(1, "/tags")


async def test_list_and_search_filter_by_tag(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Sort #python", "def sort(xs):\n    return sorted(xs)")
    await harness.save(1, "Sort #js", "const sort = xs => xs.sort()")
    await harness.save(1, "Sum #python", "def total(xs):\n    return sum(xs)")

    tagged = await harness.say(1, "/list #python")
    assert tagged.startswith("Snippets tagged #python (1–2 of 2):")
    assert "#3 Sum" in tagged and "#1 Sort" in tagged and "#2 Sort" not in tagged

    found = await harness.say(1, "/search sort #python")
    assert "(1–1 of 1)" in found and "#1 Sort" in found

    assert await harness.say(1, "/list #nothing") == "None tagged #nothing."


async def test_tag_limits(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def sort(xs):\n    return sorted(xs)")

    ten = " ".join(f"t{n}" for n in range(10))
    assert "#t9" in await harness.say(1, f"/tag 1 {ten}")
    assert await harness.say(1, "/tag 1 eleventh") == "A snippet has at most 10 tags."
    assert await harness.say(1, "/tag 1 " + "x" * 33) == "A tag has at most 32 characters."
    assert "is not a tag" in await harness.say(1, "/tag 1 9lives")
    assert "is not a tag" in await harness.say(1, "/tag 1 <b>")
    assert (
        await harness.say(1, "/save Too many " + " ".join(f"#a{n}" for n in range(11)) + "\nx = 1")
        == "A snippet has at most 10 tags."
    )
    assert "/tag 3 python" in await harness.say(1, "/tag 1")


async def test_another_users_snippet_is_not_found_when_tagging(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.user(2)
    await harness.save(1, "Mine #secret", "x = 1")

    for command in ("/tag 1 stolen", "/untag 1 secret"):
        theirs = await harness.say(2, command)
        missing = await harness.say(2, command.replace(" 1 ", " 99 "))
        assert theirs == missing.replace("99", "1")
        assert theirs == "There is no snippet 1 among yours. Send /list to see them."
    assert await harness.say(2, "/list #secret") == "None tagged #secret."
    assert "You have no tags yet" in await harness.say(2, "/tags")
    assert "#secret" in await harness.say(1, "/get 1")


async def test_a_tag_change_drops_exactly_that_snippet_and_the_list(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def sort(xs):\n    return sorted(xs)")
    await harness.save(1, "Sum", "def total(xs):\n    return sum(xs)")
    for _ in range(2):  # the first miss caches the ref, the second the snippet
        await harness.say(1, "/get 1")
        await harness.say(1, "/get 2")
    await harness.say(1, "/list")
    owner = await owner_id(harness, 1)
    first, second = await snippet_id(harness, 1, 1), await snippet_id(harness, 1, 2)
    assert {snippet_key(first), snippet_key(second), list_key(owner)} <= cached_keys(harness)

    await harness.say(1, "/tag 1 python")

    keys = cached_keys(harness)
    assert snippet_key(first) not in keys and list_key(owner) not in keys
    assert snippet_key(second) in keys  # untouched
    assert "#python" in await harness.say(1, "/get 1")
    assert "Sort · Python · #python" in await harness.say(1, "/list")

    await harness.say(1, "/untag 1 python")

    assert "#python" not in await harness.say(1, "/get 1")
    assert "#python" not in await harness.say(1, "/list")
