"""The composition root: the clock, hasher and mail transport a caller passes are the ones
every use case runs on, and the verification email carries the links the edges give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message
from pathlib import Path

import sqlalchemy as sa

from bootstrap import VerificationLinkBuilder, bootstrap
from core.entities import Client
from core.security import PasswordHasher
from core.settings import load_settings
from mail.transport import FileTransport
from storage.models import outbox

NOW = datetime(2031, 5, 4, 12, 0, tzinfo=UTC)


class Recording(FileTransport):
    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.sent: list[Message] = []

    async def send(self, message: Message) -> None:
        self.sent.append(message)


def test_the_links_builder_gives_the_chat_link_and_a_web_link_with_a_public_url() -> None:
    links = VerificationLinkBuilder()
    links.bot_username = "vault_bot"
    assert links("p4y").chat == "https://t.me/vault_bot?start=p4y"
    assert links("p4y").web is None
    web = VerificationLinkBuilder("vault_bot", public_url="https://vault.example.com/")("p4y")
    assert web.web == "https://vault.example.com/app/#verify=p4y"


def test_the_links_builder_gives_no_chat_link_before_it_knows_the_bot_name() -> None:
    assert VerificationLinkBuilder()("p4y").chat is None
    links = VerificationLinkBuilder(public_url="https://vault.example.com")("p4y")
    assert (links.chat, links.web) == (None, "https://vault.example.com/app/#verify=p4y")


async def test_without_a_bot_name_the_verification_email_leaves_the_chat_link_out(
    tmp_path: Path, sqlite_url: str
) -> None:
    """`snippetvault api` without TELEGRAM_BOT_TOKEN never learns the bot's name."""
    settings = load_settings(
        data_dir=tmp_path,
        database_url=sqlite_url,
        public_url="https://vault.example.com",
        _env_file=None,
    )
    transport = Recording(tmp_path / "unused")
    services = await bootstrap(
        settings, clock=lambda: NOW, hasher=PasswordHasher(rounds=4), mail_transport=transport
    )
    try:
        await services.accounts.signup("ada@example.com", "correct-horse-9", Client.chat(1))
        assert await services.worker.drain_once() == 1
    finally:
        await services.close()

    [message] = transport.sent
    assert isinstance(message, EmailMessage)
    for kind in ("plain", "html"):
        body = message.get_body((kind,))
        assert body is not None
        text = str(body.get_content())
        assert "t.me" not in text
        assert "https://vault.example.com/app/#verify=" in text
        assert "/verify " in text


async def test_bootstrap_runs_everything_on_what_it_is_given(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = load_settings(data_dir=tmp_path, database_url=sqlite_url, _env_file=None)
    transport = Recording(tmp_path / "unused")
    clock = [NOW]
    services = await bootstrap(
        settings,
        clock=lambda: clock[0],
        hasher=PasswordHasher(rounds=4),
        mail_transport=transport,
        verify_links=VerificationLinkBuilder(public_url="https://vault.example.com"),
    )
    try:
        services.set_bot_username("vault_bot")
        await services.accounts.signup("ada@example.com", "correct-horse-9", Client.chat(1))
        clock[0] += timedelta(minutes=1)
        assert await services.worker.drain_once() == 1
        async with services.database.engine.connect() as connection:
            rows = (
                await connection.execute(sa.select(outbox.c.created_at, outbox.c.sent_at))
            ).all()
        assert [tuple(row) for row in rows] == [(NOW, NOW + timedelta(minutes=1))]
    finally:
        await services.close()

    [message] = transport.sent
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "Verify your email"
    body = message.get_body(("plain",))
    assert body is not None
    text = str(body.get_content())
    assert "https://t.me/vault_bot?start=" in text
    assert "https://vault.example.com/app/#verify=" in text
