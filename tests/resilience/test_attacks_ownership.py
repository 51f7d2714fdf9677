"""A second user against the first one's snippets: by typed ref, by forged button, by race.

Alice (chat 1) owns snippets #1–#3 and has read them all once (so every cache holds them);
Bob (chat 2) owns one snippet, his own #1. Whatever Bob sends, he sees, changes and is emailed
only his own; Alice's snippets stay exactly as they were, and she is emailed nothing because
of him. Runs on SQLite with the in-process cache, and on PostgreSQL with Redis.
"""

from __future__ import annotations

import asyncio
import io
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any

import pytest

from core.entities import Client
from tests.bot.conftest import BotHarness
from tests.resilience.conftest import HostileBots, apologies, query_rows
from tests.secrets_guard import SecretsGuard

ALICE, BOB = 9101, 9102
ALICE_EMAIL, BOB_EMAIL = "alice@example.com", "bob@example.com"
PASSWORD = "owner-Pass-9"
ALICE_SNIPPETS = {
    1: ("Alice one", "alpha_secret = 1\n"),
    2: ("Alice two", "beta_secret = 2\n"),
    3: ("Alice three", "gamma_secret = 3\n"),
}
BOB_SNIPPET = ("Bob's own", "bob_code = 1\n")
NOT_FOUND = "no snippet"


@pytest.fixture(params=["sqlite", pytest.param("postgres+redis", marks=pytest.mark.postgres)])
def owner_backends(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(database URL, Redis URL or None for the in-process cache)."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url"), None
    redis: str = request.getfixturevalue("redis_url")
    return request.getfixturevalue("fresh_postgres_url"), redis


@pytest.fixture
async def owner_bot(
    owner_backends: tuple[str, str | None], hostile_bots: HostileBots
) -> BotHarness:
    database, redis = owner_backends
    return await hostile_bots.start(database_url=database, redis_url=redis, migrate=False)


@dataclass
class Scene:
    bot: BotHarness

    async def bob(self, text: str) -> str:
        return await self.bot.say(BOB, text)

    async def bob_presses(self, data: str) -> list[str]:
        """Bob presses a button carrying `data` under his own latest message."""
        last = self.bot.tg.last_message(BOB)
        assert last is not None
        mark = self.bot.tg.mark()
        await self.bot.send(self.bot.tg.callback_query(BOB, last.message_id, data, enqueue=False))
        texts = [m.text for m in self.bot.tg.sent_messages(BOB) if m.seq > mark]
        texts += [
            str(call.params.get("text"))
            for call in self.bot.tg.calls("answerCallbackQuery")
            if call.seq > mark and call.params.get("text")
        ]
        return texts

    async def alice_ids(self) -> dict[int, str]:
        rows = await query_rows(
            self.bot,
            "SELECT s.ref, s.id FROM snippets s JOIN users u ON u.id = s.owner_id "
            "WHERE u.email = :email",
            email=ALICE_EMAIL,
        )
        return {ref: uuid.UUID(str(snippet_id)).hex for ref, snippet_id in rows}

    async def alice_rows(self) -> dict[int, tuple[str, str]]:
        rows = await query_rows(
            self.bot,
            "SELECT s.ref, s.title, s.code FROM snippets s JOIN users u ON u.id = s.owner_id "
            "WHERE u.email = :email",
            email=ALICE_EMAIL,
        )
        return {ref: (title, code) for ref, title, code in rows}

    def bob_saw(self) -> str:
        return "\n".join(m.text for m in self.bot.tg.sent_messages(BOB))

    def documents_to_bob(self) -> bytes:
        return b"".join(document.data for document in self.bot.tg.documents(BOB))


async def _account(bot: BotHarness, chat: int, email: str) -> None:
    await bot.sign_up(chat, email, PASSWORD)
    assert "is verified" in await bot.say(chat, f"/verify {bot.verification_code(email)}")
    assert "Logged in" in await bot.log_in(chat, email, PASSWORD)


@pytest.fixture
async def scene(owner_bot: BotHarness, secrets_guard: SecretsGuard) -> Scene:
    bot = owner_bot
    secrets_guard.remember(PASSWORD)
    await _account(bot, ALICE, ALICE_EMAIL)
    await _account(bot, BOB, BOB_EMAIL)
    for ref, (title, code) in ALICE_SNIPPETS.items():
        assert await bot.save(ALICE, title, code) == ref
    assert await bot.save(BOB, *BOB_SNIPPET) == 1
    for ref in ALICE_SNIPPETS:  # every cache now holds Alice's snippets
        assert ALICE_SNIPPETS[ref][1] in await bot.say(ALICE, f"/get {ref}")
    await bot.say(ALICE, "/list")
    await bot.deliver_emails()
    return Scene(bot)


async def _alice_untouched(scene: Scene, emails_before: int) -> None:
    assert await scene.alice_rows() == ALICE_SNIPPETS
    await scene.bot.deliver_emails()
    assert len(scene.bot.inbox.to(ALICE_EMAIL)) == emails_before
    assert apologies(scene.bot) == []
    seen = scene.bob_saw() + scene.documents_to_bob().decode()
    for title, code in ALICE_SNIPPETS.values():
        assert title not in seen
        assert code.strip() not in seen
    for message in scene.bot.inbox.to(BOB_EMAIL):
        raw = message.as_string()
        assert "alpha_secret" not in raw
        assert "beta_secret" not in raw
        assert "gamma_secret" not in raw


async def test_bob_cannot_reach_alices_snippets_by_any_command(scene: Scene) -> None:
    emails = len(scene.bot.inbox.to(ALICE_EMAIL))

    for ref in (2, 3):
        for command in (
            f"/get {ref}",
            f"/get #{ref}",
            f"/delete {ref}",
            f"/edit {ref}\nstolen = True",
            f"/rename {ref} Mine now",
        ):
            reply = await scene.bob(command)
            assert NOT_FOUND in reply, (command, reply)
        # Step by step: /edit asks for nothing when the snippet is not his.
        assert NOT_FOUND in await scene.bob(f"/edit {ref}")
        assert "nothing to cancel" in await scene.bob("/cancel")
    # His #1 is his own, never Alice's #1.
    shown = await scene.bob("/get 1")
    assert BOB_SNIPPET[1].strip() in shown
    assert "Alice" not in shown

    listing = await scene.bob("/list")
    assert "1 of 1" in listing
    assert BOB_SNIPPET[0] in listing
    for word in ("Alice", "alpha_secret", "beta", "gamma_secret", "secret"):
        assert "Nothing matches" in await scene.bob(f"/search {word}")

    await _alice_untouched(scene, emails)


async def test_bob_cannot_reach_alices_snippets_by_forged_buttons(scene: Scene) -> None:
    emails = len(scene.bot.inbox.to(ALICE_EMAIL))
    await scene.bob("/list")
    alice_ids = await scene.alice_ids()

    for ref in (1, 2, 3):
        # Her snippet's own id (as if Bob had learnt it), or one made up.
        for snippet_id in (alice_ids[ref], uuid.uuid4().hex):
            for action in ("open", "del", "delok"):
                data = f"{action}:{ref}:{snippet_id}"
                answers = await scene.bob_presses(data)
                assert any(NOT_FOUND in text for text in answers), (data, answers)
        for data in (f"open:{ref}", f"del:{ref}", f"delok:{ref}"):  # the id left out
            answers = await scene.bob_presses(data)
            assert any("no longer valid" in text for text in answers), (data, answers)
    # Paging can only ever show his own list.
    for data in ("list:0", "list:1", "list:2"):
        answers = await scene.bob_presses(data)
        assert not any("Alice" in text for text in answers), answers
    # Numbers past the column's range are not a way to crash the bot either.
    for data in ("open:9999999999", "delok:4294967297", "del:2147483648"):
        answers = await scene.bob_presses(data)
        assert answers, data

    await _alice_untouched(scene, emails)
    assert await scene.bob("/get 1") != ""


async def test_bob_spamming_deletes_during_alices_edits_changes_nothing_of_hers(
    scene: Scene,
) -> None:
    bot = scene.bot
    emails = len(bot.inbox.to(ALICE_EMAIL))
    edits: dict[int, str] = {}
    updates: list[dict[str, Any]] = []
    for round_ in range(4):
        for ref in ALICE_SNIPPETS:
            code = f"edited_{ref}_{round_} = True\n"
            edits[ref] = code
            edit = f"/edit {ref}\n{code}"
            updates.append(bot.tg.private_message(ALICE, ALICE, edit, enqueue=False))
            if ref != 1:  # Bob's #1 is his own snippet
                updates += [
                    bot.tg.private_message(BOB, BOB, f"/delete {ref}", enqueue=False)
                    for _ in range(3)
                ]
    # Bob's deletes race Alice's edits; each of Alice's own edits is ordered per snippet.
    bob_updates = [u for u in updates if u["message"]["chat"]["id"] == BOB]
    alice_by_ref = {
        ref: [u for u in updates if u["message"]["text"].startswith(f"/edit {ref}\n")]
        for ref in ALICE_SNIPPETS
    }

    async def alice_edits(ref: int) -> None:
        for update in alice_by_ref[ref]:
            await bot.send(update)

    await asyncio.gather(
        *(alice_edits(ref) for ref in ALICE_SNIPPETS),
        *(bot.send(update) for update in bob_updates),
    )

    rows = await scene.alice_rows()
    assert rows == {ref: (ALICE_SNIPPETS[ref][0], edits[ref]) for ref in ALICE_SNIPPETS}
    for ref, code in edits.items():  # and no cache serves anything older
        assert code.strip() in await bot.say(ALICE, f"/get {ref}")
    assert not [m.text for m in bot.tg.sent_messages(BOB) if "Deleted" in m.text]
    assert apologies(bot) == []
    assert BOB_SNIPPET[1].strip() in await scene.bob("/get 1")
    await bot.deliver_emails()
    subjects = [message["Subject"] for message in bot.inbox.to(ALICE_EMAIL)[emails:]]
    assert "Snippet Deleted" not in subjects


async def test_bob_cannot_reach_alices_snippets_by_the_organise_commands(scene: Scene) -> None:
    """Tags, versions, undo, share links, export and inline mode: only ever his own."""
    bot = scene.bot
    emails = len(bot.inbox.to(ALICE_EMAIL))
    assert "Updated" in await bot.say(ALICE, "/edit 2\nbeta_secret = 2\n")  # unchanged: no version
    assert "🔗" in await bot.say(ALICE, "/share 2")
    ids = {
        ref: str(snippet_id).replace("-", "")
        for ref, snippet_id in await query_rows(
            bot,
            "SELECT s.ref, s.id FROM snippets s JOIN users u ON u.id = s.owner_id "
            "WHERE u.email = :email",
            email=ALICE_EMAIL,
        )
    }
    [(link_id,)] = await query_rows(bot, "SELECT id FROM share_links")
    link = str(link_id).replace("-", "")

    for ref in (2, 3):
        for command in (
            f"/tag {ref} stolen",
            f"/untag {ref} stolen",
            f"/history {ref}",
            f"/share {ref}",
            f"/unshare {ref}",
        ):
            reply = await scene.bob(command)
            assert NOT_FOUND in reply, (command, reply)
        for data in (
            f"undo:{ids[ref]}",
            f"ver:{ids[ref]}:1",
            f"restore:{ids[ref]}:1",
            f"hist:{ids[ref]}:0",
        ):
            answers = await scene.bob_presses(data)
            assert answers and not any("Alice" in text for text in answers), (data, answers)
    answers = await scene.bob_presses(f"unshare:{link}")
    assert any("no such link" in text for text in answers), answers
    assert "no live share links" in await scene.bob("/shares")
    assert "You have no tags yet" in await scene.bob("/tags")
    assert "Nothing matches" in await scene.bob("/search secret")

    await bot.send(bot.tg.inline_query(BOB, "secret", enqueue=False))
    assert bot.tg.inline_answers()[-1]["results"] == []
    exported = await bot.services.archive.export(
        await bot.services.accounts.current_user(Client.chat(BOB))
    )
    with zipfile.ZipFile(io.BytesIO(exported)) as archive:
        everything = b"".join(archive.read(name) for name in archive.namelist()).decode()
    assert BOB_SNIPPET[1].strip() in everything
    assert "secret" not in everything and "Alice" not in everything

    await _alice_untouched(scene, emails)
    assert [
        (lid,)
        for (lid,) in await query_rows(bot, "SELECT id FROM share_links WHERE revoked_at IS NULL")
    ] == [(link_id,)]


async def test_forged_version_buttons_past_the_column_range_are_refused(scene: Scene) -> None:
    [(own,)] = await query_rows(
        scene.bot,
        "SELECT s.id FROM snippets s JOIN users u ON u.id = s.owner_id WHERE u.email = :email",
        email=BOB_EMAIL,
    )
    mine = str(own).replace("-", "")
    for data in (f"ver:{mine}:9999999999", f"restore:{mine}:4294967297", "undo:zz"):
        answers = await scene.bob_presses(data)
        assert answers and not any("Sorry" in text for text in answers), (data, answers)
    assert apologies(scene.bot) == []
