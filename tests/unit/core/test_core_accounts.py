"""Signup, verification, login, sessions and password reset, on fakes of the ports."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from core.accounts import AccountService, normalise_email
from core.entities import Client, ClientKind, EmailKind, User
from core.errors import (
    AlreadyVerified,
    AuthenticationError,
    EmailNotVerified,
    InvalidToken,
    NoSession,
    NotLoggedIn,
    SessionExpired,
    Throttled,
    ValidationError,
    WrongCredentials,
)
from core.security import MAX_PASSWORD_BYTES, PasswordHasher, check_password_rules

from .fakes import JWT_TTL, LINK_BASE, FakeClock, FakeDatabase, add_user

PASSWORD = "correct horse battery"
CHAT = Client.chat(999)
chat = Client.chat
WINDOW = timedelta(minutes=15)


def verification_secrets(db: FakeDatabase, email: str) -> tuple[str, str]:
    """The code and the link payload of the latest verification email to `email`."""
    mail = db.emails(to=email, kind=EmailKind.VERIFY_EMAIL)[-1]
    link: str = mail.context["link"]
    prefix = f"{LINK_BASE}?start="
    assert link.startswith(prefix)
    return mail.context["code"], link.removeprefix(prefix)


def reset_code(db: FakeDatabase, email: str) -> str:
    code: str = db.emails(to=email, kind=EmailKind.PASSWORD_RESET)[-1].context["code"]
    return code


async def sign_up(
    accounts: AccountService,
    db: FakeDatabase,
    email: str = "ada@example.com",
    password: str = PASSWORD,
    *,
    verified: bool = True,
) -> User:
    await accounts.signup(email, password, CHAT)
    if verified:
        code, _ = verification_secrets(db, email)
        return await accounts.verify(code, chat(999))
    user = db.user_by_email(email)
    assert user is not None
    return user


async def fail_logins(accounts: AccountService, times: int, email: str, client: Client) -> None:
    for _ in range(times):
        with pytest.raises(AuthenticationError):
            await accounts.login(email, "wrong password!", client)


# -- signup -------------------------------------------------------------------------------


async def test_signup_stores_a_normalised_unverified_user_and_queues_verification(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await accounts.signup("  Ada.Lovelace@Example.COM ", PASSWORD, CHAT)

    user = db.user_by_email("ada.lovelace@example.com")
    assert user is not None
    assert user.email == "ada.lovelace@example.com"
    assert not user.is_verified
    assert user.created_at == clock()
    assert user.hashed_password.startswith("$2")
    assert PASSWORD not in user.hashed_password
    [mail] = db.outbox
    assert (mail.to, mail.kind) == ("ada.lovelace@example.com", EmailKind.VERIFY_EMAIL)
    code, payload = verification_secrets(db, user.email)
    assert len(code) == 8
    assert code.isalnum()
    assert code.isupper() or code.isdigit()
    assert len(payload) >= 16
    assert datetime.fromisoformat(mail.context["expires_at"]) == clock() + timedelta(hours=24)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@example.c",
        "ada@@example.com",
        "ada@bob@example.com",
        "a da@example.com",
        "ada@exa..mple.com",
        "ada..x@example.com",
        "a" * 65 + "@example.com",
        "ada@" + "x" * 250 + ".com",
        "ada@example.com\r\nBcc: eve@example.com",
        "ada\x00@example.com",
        "ada\x7f@example.com",
        "ada\u200b@example.com",
        "eve,ada@example.com",
        "eve;ada@example.com",
        "<ada@example.com>",
        'Ada "x"@example.com',
    ],
)
async def test_signup_refuses_malformed_emails(
    accounts: AccountService, db: FakeDatabase, raw: str
) -> None:
    with pytest.raises(ValidationError, match="email address"):
        await accounts.signup(raw, PASSWORD, CHAT)
    assert db.committed.users == {}
    assert db.outbox == []


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("ada@example.com", "ada@example.com"),
        ("ADA@EXAMPLE.COM", "ada@example.com"),
        ("\tfirst.last+tag@mail.example.co.uk\n", "first.last+tag@mail.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("zoë@exämple.de", "zoë@exämple.de"),
    ],
)
def test_normalise_email_accepts_everyday_addresses(raw: str, normalised: str) -> None:
    assert normalise_email(raw) == normalised


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("a" * 7, "at least 8 characters"),
        ("", "at least 8 characters"),
        ("a" * 73, "at most 72 bytes"),
        ("é" * 37, "at most 72 bytes"),  # 74 bytes in UTF-8
        ("😀" * 200, "at most 72 bytes"),
    ],
)
async def test_signup_refuses_passwords_outside_the_rules(
    accounts: AccountService, db: FakeDatabase, password: str, problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        await accounts.signup("ada@example.com", password, CHAT)
    assert db.committed.users == {}
    assert db.outbox == []


@pytest.mark.parametrize(
    "password",
    ["a" * 8, "a" * MAX_PASSWORD_BYTES, "é" * 36, "😀" * 18, "🔑" * 8, "pass word"],
)
async def test_signup_accepts_passwords_within_the_rules_and_they_log_in(
    accounts: AccountService, db: FakeDatabase, password: str
) -> None:
    assert len(password.encode()) <= MAX_PASSWORD_BYTES
    await sign_up(accounts, db, password=password)
    result = await accounts.login("ada@example.com", password, chat(1))
    assert result.user.email == "ada@example.com"


def test_password_rules_message_explains_bytes() -> None:
    with pytest.raises(ValidationError) as caught:
        check_password_rules("a" * 73)
    message = str(caught.value)
    assert "72 bytes" in message
    assert "emoji" in message


async def test_signup_of_a_verified_email_sends_nothing_and_says_nothing(
    accounts: AccountService, db: FakeDatabase
) -> None:
    user = await sign_up(accounts, db)
    before = db.outbox

    await accounts.signup("ADA@example.com", "another password", CHAT)  # no error either

    assert db.outbox == before
    assert db.user_by_email("ada@example.com") == user  # password unchanged
    assert (await accounts.login("ada@example.com", PASSWORD, chat(1))).user.id == user.id


async def test_signup_of_an_unverified_email_resends_at_most_three_an_hour(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await accounts.signup("ada@example.com", PASSWORD, CHAT)
    for _ in range(4):
        clock.advance(minutes=5)
        await accounts.signup("ada@example.com", PASSWORD, CHAT)
    verifications = db.emails(to="ada@example.com", kind=EmailKind.VERIFY_EMAIL)
    assert len(verifications) == 3
    assert len({mail.context["code"] for mail in verifications}) == 3
    assert len(db.committed.users) == 1

    clock.advance(hours=1)
    await accounts.signup("ada@example.com", PASSWORD, CHAT)
    assert len(db.emails(to="ada@example.com", kind=EmailKind.VERIFY_EMAIL)) == 4


async def test_signup_losing_a_race_for_the_same_email_is_silent(
    accounts: AccountService, db: FakeDatabase, hasher: PasswordHasher
) -> None:
    async def other_signup_commits() -> None:
        await add_user(db, "ada@example.com", verified=False)

    hash_password = hasher.hash

    async def hash_then_race(password: str) -> str:
        # While this signup hashes, the other one commits once this one has read the email.
        db.after_enter.append(other_signup_commits)
        return await hash_password(password)

    hasher.hash = hash_then_race  # type: ignore[method-assign]
    await accounts.signup("ada@example.com", PASSWORD, CHAT)  # no EmailTaken
    assert len(db.committed.users) == 1
    assert db.outbox == []


# -- verification -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        lambda code: code,
        lambda code: code.lower(),
        lambda code: f"  {code[:4]} {code[4:].lower()}  ",
        lambda code: f"{code[:4]}-{code[4:]}",
    ],
    ids=["exact", "lower", "spaced", "dashed"],
)
async def test_verify_by_code_ignores_case_and_spaces(
    accounts: AccountService, db: FakeDatabase, typed: object
) -> None:
    await accounts.signup("ada@example.com", PASSWORD, CHAT)
    code, _ = verification_secrets(db, "ada@example.com")
    assert callable(typed)

    user = await accounts.verify(typed(code), chat(1))

    assert user.is_verified
    stored = db.user_by_email("ada@example.com")
    assert stored is not None
    assert stored.is_verified


async def test_verify_by_link_payload(accounts: AccountService, db: FakeDatabase) -> None:
    await accounts.signup("ada@example.com", PASSWORD, CHAT)
    _, payload = verification_secrets(db, "ada@example.com")
    user = await accounts.verify(payload, chat(1))
    assert user.is_verified


@pytest.mark.parametrize("first", ["code", "payload"])
async def test_verification_secrets_are_single_use(
    accounts: AccountService, db: FakeDatabase, first: str
) -> None:
    await accounts.signup("ada@example.com", PASSWORD, CHAT)
    code, payload = verification_secrets(db, "ada@example.com")
    used, other = (code, payload) if first == "code" else (payload, code)
    await accounts.verify(used, chat(1))
    for secret in (used, other):
        with pytest.raises(AlreadyVerified) as caught:
            await accounts.verify(secret, chat(1))
        assert caught.value.email == "ada@example.com"


async def test_verification_expires_after_a_day(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await accounts.signup("ada@example.com", PASSWORD, CHAT)
    code, payload = verification_secrets(db, "ada@example.com")
    clock.advance(hours=24)
    for secret in (code, payload):
        with pytest.raises(InvalidToken):
            await accounts.verify(secret, chat(1))
    user = db.user_by_email("ada@example.com")
    assert user is not None
    assert not user.is_verified


async def test_an_earlier_verification_code_still_works_after_a_resend(
    accounts: AccountService, db: FakeDatabase
) -> None:
    await accounts.signup("ada@example.com", PASSWORD, CHAT)
    first, _ = verification_secrets(db, "ada@example.com")
    await accounts.signup("ada@example.com", PASSWORD, CHAT)
    assert (await accounts.verify(first, chat(1))).is_verified


@pytest.mark.parametrize("wrong", ["", "   ", "AAAAAAAA", "x" * 500, "../../etc"])
async def test_verify_refuses_wrong_codes(accounts: AccountService, wrong: str) -> None:
    with pytest.raises(InvalidToken):
        await accounts.verify(wrong, chat(1))


async def test_wrong_verification_codes_are_throttled_per_chat(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await accounts.signup("ada@example.com", PASSWORD, CHAT)
    code, _ = verification_secrets(db, "ada@example.com")
    for _ in range(10):
        with pytest.raises(InvalidToken):
            await accounts.verify("WRONG234", chat(1))

    with pytest.raises(Throttled) as caught:
        await accounts.verify(code, chat(1))  # even the right code waits
    assert caught.value.retry_after == WINDOW.total_seconds() + 1
    assert "15 minute" in str(caught.value)

    # Another chat is not affected; the throttled chat may try again after the window.
    await accounts.signup("bob@example.com", PASSWORD, CHAT)
    bob_code, _ = verification_secrets(db, "bob@example.com")
    assert (await accounts.verify(bob_code, chat(2))).is_verified
    clock.advance(WINDOW + timedelta(seconds=1))
    assert (await accounts.verify(code, chat(1))).is_verified


async def test_a_reset_code_does_not_verify_an_email(
    accounts: AccountService, db: FakeDatabase
) -> None:
    await sign_up(accounts, db)
    await accounts.request_reset("ada@example.com", CHAT)
    with pytest.raises(InvalidToken):
        await accounts.verify(reset_code(db, "ada@example.com"), chat(1))


# -- login --------------------------------------------------------------------------------


async def test_login_with_the_right_password_starts_a_session(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    user = await sign_up(accounts, db)

    result = await accounts.login(" ADA@example.com", PASSWORD, chat(42))

    assert result.user == user
    assert result.session.client_key == "42"
    assert result.session.user_id == user.id
    assert result.session.issued_at == clock()
    assert result.session.expires_at == clock() + JWT_TTL
    assert db.committed.sessions[result.session.jti] == result.session
    assert await accounts.current_user(chat(42)) == user


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ada@example.com", "wrong password"),
        ("ada@example.com", PASSWORD.upper()),
        ("ada@example.com", PASSWORD + " "),
        ("ada@example.com", ""),
        ("ada@example.com", "a" * 73),
        ("ada@example.com", PASSWORD + "x" * 60),  # same first 72 bytes would be a trap
        ("nobody@example.com", PASSWORD),
        ("nobody@example.com", "a" * 73),
    ],
)
async def test_login_failures_are_one_and_the_same_error(
    accounts: AccountService, db: FakeDatabase, email: str, password: str
) -> None:
    await sign_up(accounts, db)
    with pytest.raises(AuthenticationError) as caught:
        await accounts.login(email, password, chat(1))
    assert type(caught.value) is WrongCredentials
    assert str(caught.value) == "Wrong email or password."
    assert db.committed.sessions == {}


async def test_login_with_a_malformed_email_is_a_validation_error(
    accounts: AccountService,
) -> None:
    with pytest.raises(ValidationError):
        await accounts.login("not-an-email", PASSWORD, chat(1))


async def test_an_accounts_failures_make_unknown_clients_wait_longer_each_time(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await sign_up(accounts, db)
    for chat_id in range(5):  # five failures are free, wherever they come from
        await fail_logins(accounts, 1, "ada@example.com", chat(100 + chat_id))
    for wait in (2, 4, 8, 16, 32):
        with pytest.raises(Throttled) as caught:  # even with the right password
            await accounts.login("ada@example.com", PASSWORD, chat(200))
        assert caught.value.retry_after == wait
        clock.advance(seconds=wait)
        await fail_logins(accounts, 1, "ada@example.com", chat(300 + wait))
    # Refusals do not prolong the wait, and it never grows past five minutes.
    for _ in range(3):
        with pytest.raises(Throttled):
            await accounts.login("ada@example.com", PASSWORD, chat(200))
    for _ in range(3):
        clock.advance(minutes=5)
        await fail_logins(accounts, 1, "ada@example.com", chat(400))
    clock.advance(minutes=5)
    assert (await accounts.login("ada@example.com", PASSWORD, chat(200))).user


async def test_the_owners_chat_is_never_made_to_wait_by_someone_elses_failures(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await sign_up(accounts, db)
    await accounts.login("ada@example.com", PASSWORD, chat(1))  # the owner's own chat
    await accounts.logout(chat(1))
    for n in range(30):
        with pytest.raises((WrongCredentials, Throttled)):
            await accounts.login("ada@example.com", f"guess {n:04d}", chat(500 + n))
        clock.advance(seconds=1)
    with pytest.raises(Throttled):
        await accounts.login("ada@example.com", PASSWORD, chat(2))
    assert (await accounts.login("ada@example.com", PASSWORD, chat(1))).user


async def test_one_client_gets_ten_tries_at_one_account_even_from_a_known_chat(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await sign_up(accounts, db)
    await accounts.login("ada@example.com", PASSWORD, chat(1))
    await fail_logins(accounts, 10, "ada@example.com", chat(1))
    with pytest.raises(Throttled) as caught:
        await accounts.login("ada@example.com", PASSWORD, chat(1))
    assert caught.value.retry_after == WINDOW.total_seconds() + 1
    clock.advance(WINDOW + timedelta(seconds=1))
    assert (await accounts.login("ada@example.com", PASSWORD, chat(1))).user


async def test_failures_older_than_the_window_do_not_count(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await sign_up(accounts, db)
    await accounts.login("ada@example.com", PASSWORD, chat(1))
    await fail_logins(accounts, 9, "ada@example.com", chat(1))
    clock.advance(WINDOW + timedelta(seconds=1))
    await fail_logins(accounts, 9, "ada@example.com", chat(1))
    assert (await accounts.login("ada@example.com", PASSWORD, chat(1))).user


async def test_a_successful_login_clears_the_accounts_failures(
    accounts: AccountService, db: FakeDatabase
) -> None:
    await sign_up(accounts, db)
    await accounts.login("ada@example.com", PASSWORD, chat(1))
    await fail_logins(accounts, 9, "ada@example.com", chat(1))
    await accounts.login("ada@example.com", PASSWORD, chat(1))
    # Nine failures would make the next unknown client wait; cleared, four more do not.
    await fail_logins(accounts, 4, "ada@example.com", chat(3))
    assert (await accounts.login("ada@example.com", PASSWORD, chat(4))).user


async def test_logging_in_to_ones_own_account_does_not_reset_the_chats_failures(
    accounts: AccountService, db: FakeDatabase
) -> None:
    await sign_up(accounts, db, "eve@example.com")
    for n in range(9):
        await fail_logins(accounts, 1, f"victim{n}@example.com", chat(5))
    await accounts.login("eve@example.com", PASSWORD, chat(5))
    await fail_logins(accounts, 1, "other@example.com", chat(5))
    with pytest.raises(Throttled):
        await accounts.login("victim2@example.com", "guess", chat(5))


async def test_a_burst_of_tries_runs_no_more_password_checks_than_the_limit(
    accounts: AccountService, db: FakeDatabase, hasher: PasswordHasher
) -> None:
    await sign_up(accounts, db)
    checks = 0
    verify = hasher.verify

    async def counted(password: str, hashed: str | None) -> bool:
        nonlocal checks
        checks += 1
        return await verify(password, hashed)

    hasher.verify = counted  # type: ignore[method-assign]
    results = await asyncio.gather(
        *(accounts.login("ada@example.com", f"guess {n}", chat(9)) for n in range(40)),
        return_exceptions=True,
    )
    assert checks <= 10
    assert sum(isinstance(r, Throttled) for r in results) >= 30
    assert all(isinstance(r, (Throttled, WrongCredentials)) for r in results)


async def test_an_unverified_account_does_not_log_in(
    accounts: AccountService, db: FakeDatabase
) -> None:
    user = await sign_up(accounts, db, verified=False)
    with pytest.raises(EmailNotVerified) as caught:
        await accounts.login("ada@example.com", PASSWORD, chat(1))
    assert (caught.value.email, caught.value.user_id) == ("ada@example.com", user.id)
    with pytest.raises(WrongCredentials):
        await accounts.login("ada@example.com", "wrong password", chat(1))
    assert db.committed.sessions == {}
    assert db.emails(kind=EmailKind.LOGIN_ALERT) == []
    for _ in range(12):  # the right password is no failure: it never throttles
        with pytest.raises(EmailNotVerified):
            await accounts.login("ada@example.com", PASSWORD, chat(1))


async def test_resend_verification_sends_to_unverified_accounts_only(
    accounts: AccountService, db: FakeDatabase
) -> None:
    user = await sign_up(accounts, db, verified=False)
    assert await accounts.resend_verification(user.id)
    assert len(db.emails(kind=EmailKind.VERIFY_EMAIL)) == 2
    assert await accounts.resend_verification(user.id)
    assert not await accounts.resend_verification(user.id)  # three an hour
    code, _ = verification_secrets(db, "ada@example.com")
    await accounts.verify(code, CHAT)
    assert not await accounts.resend_verification(user.id)


async def test_a_new_signup_of_an_unverified_address_replaces_its_password(
    accounts: AccountService, db: FakeDatabase
) -> None:
    await accounts.signup("ada@example.com", "attacker's password", chat(66))
    await accounts.signup("ada@example.com", PASSWORD, chat(1))
    code, _ = verification_secrets(db, "ada@example.com")
    await accounts.verify(code, chat(1))
    with pytest.raises(WrongCredentials):
        await accounts.login("ada@example.com", "attacker's password", chat(66))
    assert (await accounts.login("ada@example.com", PASSWORD, chat(1))).user


async def test_passwords_are_compared_in_one_unicode_form(
    accounts: AccountService, db: FakeDatabase
) -> None:
    composed, decomposed = "caf\u00e9 cr\u00e8me", "cafe\u0301 cre\u0300me"
    assert composed != decomposed
    await sign_up(accounts, db, password=decomposed)
    assert (await accounts.login("ada@example.com", composed, chat(1))).user
    await accounts.request_reset("ada@example.com", CHAT)
    handle = await accounts.check_reset_code(reset_code(db, "ada@example.com"), CHAT)
    await accounts.reset_password(handle, "\u212bngstr\u00f6m pass")  # Å as the Ångström sign
    assert (await accounts.login("ada@example.com", "\u00c5ngstro\u0308m pass", chat(1))).user


async def test_signups_and_reset_requests_are_limited_per_client_and_per_address(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    for n in range(10):
        await accounts.signup(f"user{n}@example.com", PASSWORD, chat(1))
    with pytest.raises(Throttled):
        await accounts.signup("one-more@example.com", PASSWORD, chat(1))
    assert len(db.emails(kind=EmailKind.VERIFY_EMAIL)) == 10
    for n in range(10):
        await accounts.request_reset("ada@example.com", chat(100 + n))
    with pytest.raises(Throttled):
        await accounts.request_reset("ada@example.com", chat(200))
    await accounts.request_reset("bob@example.com", chat(200))
    clock.advance(hours=1, seconds=1)
    await accounts.signup("one-more@example.com", PASSWORD, chat(1))
    await accounts.request_reset("ada@example.com", chat(200))


async def test_a_login_that_checked_the_old_password_gets_no_session(
    accounts: AccountService, db: FakeDatabase, hasher: PasswordHasher
) -> None:
    await sign_up(accounts, db)
    await accounts.request_reset("ada@example.com", CHAT)
    handle = await accounts.check_reset_code(reset_code(db, "ada@example.com"), CHAT)
    verify = hasher.verify

    async def reset_while_checking(password: str, hashed: str | None) -> bool:
        matched = await verify(password, hashed)
        hasher.verify = verify  # type: ignore[method-assign]
        await accounts.reset_password(handle, "brand new password")
        return matched

    hasher.verify = reset_while_checking  # type: ignore[method-assign]
    with pytest.raises(WrongCredentials):
        await accounts.login("ada@example.com", PASSWORD, chat(1))
    assert db.committed.sessions == {}


async def test_a_session_made_under_an_older_password_is_refused(
    accounts: AccountService, db: FakeDatabase
) -> None:
    user = await sign_up(accounts, db)
    result = await accounts.login("ada@example.com", PASSWORD, API)
    async with db.unit_of_work() as uow:  # a password change that revoked nothing
        await uow.users.set_password(user.id, "$2b$04$someotherhash")
        await uow.commit()
    with pytest.raises(SessionExpired):
        await accounts.authenticate(result.token, API)


async def test_eleventh_login_in_a_chat_within_fifteen_minutes_is_throttled(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await sign_up(accounts, db)
    for n in range(10):  # ten different addresses, one chat: password spraying
        await fail_logins(accounts, 1, f"user{n}@example.com", chat(5))

    with pytest.raises(Throttled):
        await accounts.login("ada@example.com", PASSWORD, chat(5))
    # The account itself is not locked: another chat logs in.
    assert (await accounts.login("ada@example.com", PASSWORD, chat(6))).session.client_key == "6"

    clock.advance(WINDOW + timedelta(seconds=1))
    assert (await accounts.login("ada@example.com", PASSWORD, chat(5))).session.client_key == "5"


async def test_login_alert_goes_to_verified_users_with_the_time_and_zone(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await sign_up(accounts, db)
    clock.advance(minutes=3)

    result = await accounts.login("ada@example.com", PASSWORD, chat(1))

    assert result.alert_emailed
    [alert] = db.emails(kind=EmailKind.LOGIN_ALERT)
    assert alert.to == "ada@example.com"
    at = datetime.fromisoformat(alert.context["at"])
    assert at.tzinfo is not None
    assert at == clock()
    assert alert.created_at == clock()


async def test_current_user_without_a_login_is_refused(accounts: AccountService) -> None:
    with pytest.raises(AuthenticationError):
        await accounts.current_user(chat(1))


async def test_a_session_belongs_to_its_chat(accounts: AccountService, db: FakeDatabase) -> None:
    await sign_up(accounts, db)
    await accounts.login("ada@example.com", PASSWORD, chat(1))
    with pytest.raises(AuthenticationError):
        await accounts.current_user(chat(2))


async def test_a_session_expires_after_the_jwt_ttl(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    user = await sign_up(accounts, db)
    await accounts.login("ada@example.com", PASSWORD, chat(1))
    clock.advance(JWT_TTL - timedelta(seconds=1))
    assert await accounts.current_user(chat(1)) == user
    clock.advance(seconds=1)
    with pytest.raises(SessionExpired):
        await accounts.current_user(chat(1))


async def test_logout_revokes_the_session(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await sign_up(accounts, db)
    result = await accounts.login("ada@example.com", PASSWORD, chat(1))

    assert await accounts.logout(chat(1))

    assert db.committed.sessions[result.session.jti].revoked_at == clock()
    with pytest.raises(AuthenticationError):
        await accounts.current_user(chat(1))
    assert not await accounts.logout(chat(1))


async def test_a_new_login_in_the_same_chat_replaces_the_old_session(
    accounts: AccountService, db: FakeDatabase
) -> None:
    await sign_up(accounts, db)
    bob = await sign_up(accounts, db, "bob@example.com")
    first = await accounts.login("ada@example.com", PASSWORD, chat(1))

    second = await accounts.login("bob@example.com", PASSWORD, chat(1))

    assert db.committed.sessions[first.session.jti].revoked_at is not None
    assert db.committed.sessions[second.session.jti].revoked_at is None
    assert await accounts.current_user(chat(1)) == bob


async def test_a_session_row_holding_another_sessions_token_is_refused(
    accounts: AccountService, db: FakeDatabase
) -> None:
    await sign_up(accounts, db)
    one = await accounts.login("ada@example.com", PASSWORD, chat(1))
    await accounts.logout(chat(1))
    two = await accounts.login("ada@example.com", PASSWORD, chat(1))
    sessions = db.committed.sessions
    sessions[two.session.jti] = replace(two.session, token=one.session.token)
    with pytest.raises(AuthenticationError, match="not valid"):
        await accounts.current_user(chat(1))


# -- password reset -----------------------------------------------------------------------


@pytest.mark.parametrize("who", ["unknown", "unverified", "verified"])
async def test_reset_requests_answer_alike_and_mail_only_verified(
    accounts: AccountService, db: FakeDatabase, who: str
) -> None:
    if who != "unknown":
        await sign_up(accounts, db, verified=who == "verified")
    before = len(db.outbox)

    await accounts.request_reset("Ada@Example.com", CHAT)  # no error, whoever asks

    resets = db.emails(kind=EmailKind.PASSWORD_RESET)
    assert len(db.outbox) == before + len(resets)
    assert len(resets) == (1 if who == "verified" else 0)


async def test_reset_request_with_a_malformed_email_is_a_validation_error(
    accounts: AccountService,
) -> None:
    with pytest.raises(ValidationError):
        await accounts.request_reset("nope", CHAT)


async def test_reset_emails_are_limited_to_three_an_hour(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await sign_up(accounts, db)
    for _ in range(5):
        await accounts.request_reset("ada@example.com", CHAT)
    assert len(db.emails(kind=EmailKind.PASSWORD_RESET)) == 3
    clock.advance(hours=1, seconds=1)
    await accounts.request_reset("ada@example.com", CHAT)
    assert len(db.emails(kind=EmailKind.PASSWORD_RESET)) == 4


async def test_password_reset_changes_the_password_and_ends_every_session(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    user = await sign_up(accounts, db)
    await accounts.login("ada@example.com", PASSWORD, chat(1))
    await accounts.login("ada@example.com", PASSWORD, chat(2))
    await accounts.request_reset("ada@example.com", CHAT)
    mail = db.emails(kind=EmailKind.PASSWORD_RESET)[-1]
    assert datetime.fromisoformat(mail.context["expires_at"]) == clock() + timedelta(minutes=30)
    code = reset_code(db, "ada@example.com")

    handle = await accounts.check_reset_code(f" {code.lower()} ", chat(1))
    await accounts.reset_password(handle, "brand new password")

    for chat_id in (1, 2):
        with pytest.raises(AuthenticationError):
            await accounts.current_user(chat(chat_id))
    assert all(s.revoked_at is not None for s in db.sessions_of(user.id))
    with pytest.raises(AuthenticationError):
        await accounts.login("ada@example.com", PASSWORD, chat(3))
    assert (await accounts.login("ada@example.com", "brand new password", chat(3))).user


async def test_reset_codes_are_single_use(accounts: AccountService, db: FakeDatabase) -> None:
    await sign_up(accounts, db)
    await accounts.request_reset("ada@example.com", CHAT)
    code = reset_code(db, "ada@example.com")
    handle = await accounts.check_reset_code(code, chat(1))
    await accounts.reset_password(handle, "brand new password")

    with pytest.raises(InvalidToken):
        await accounts.check_reset_code(code, chat(1))
    with pytest.raises(InvalidToken):
        await accounts.reset_password(handle, "third password!")
    assert (await accounts.login("ada@example.com", "brand new password", chat(3))).user


@pytest.mark.parametrize("password", ["short", "a" * 73, "😀" * 200])
async def test_reset_applies_the_password_rules_and_keeps_the_code(
    accounts: AccountService, db: FakeDatabase, password: str
) -> None:
    await sign_up(accounts, db)
    await accounts.request_reset("ada@example.com", CHAT)
    handle = await accounts.check_reset_code(reset_code(db, "ada@example.com"), chat(1))
    with pytest.raises(ValidationError):
        await accounts.reset_password(handle, password)
    await accounts.reset_password(handle, "a good password")  # the code was not spent
    assert (await accounts.login("ada@example.com", "a good password", chat(1))).user


async def test_reset_codes_expire(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await sign_up(accounts, db)
    await accounts.request_reset("ada@example.com", CHAT)
    code = reset_code(db, "ada@example.com")
    handle = await accounts.check_reset_code(code, chat(1))
    clock.advance(minutes=30)
    with pytest.raises(InvalidToken):
        await accounts.check_reset_code(code, chat(1))
    with pytest.raises(InvalidToken):
        await accounts.reset_password(handle, "brand new password")


async def test_wrong_reset_codes_are_throttled_per_chat(
    accounts: AccountService, db: FakeDatabase
) -> None:
    await sign_up(accounts, db)
    await accounts.request_reset("ada@example.com", CHAT)
    code = reset_code(db, "ada@example.com")
    for _ in range(10):
        with pytest.raises(InvalidToken):
            await accounts.check_reset_code("WRONG234", chat(1))
    with pytest.raises(Throttled):
        await accounts.check_reset_code(code, chat(1))
    assert await accounts.check_reset_code(code, chat(2))


async def test_a_verification_code_is_not_a_reset_code(
    accounts: AccountService, db: FakeDatabase
) -> None:
    await accounts.signup("ada@example.com", PASSWORD, CHAT)
    code, _ = verification_secrets(db, "ada@example.com")
    with pytest.raises(InvalidToken):
        await accounts.check_reset_code(code, chat(1))


# -- the API's sessions -------------------------------------------------------------------

API = Client.api("203.0.113.7")


async def test_an_api_login_gives_a_bearer_token_for_the_api_only(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    user = await sign_up(accounts, db)
    in_chat = await accounts.login("ada@example.com", PASSWORD, chat(1))

    result = await accounts.login("ada@example.com", PASSWORD, API)

    assert result.token == result.session.token
    assert result.expires_at == clock() + JWT_TTL
    assert (result.session.client_kind, result.session.client_key) == (ClientKind.API, None)
    assert result.alert_emailed
    # Any address may present it (addresses change; the session is the token's).
    assert await accounts.authenticate(result.token, Client.api("198.51.100.1")) == user
    # The chat's session is untouched, and each token works only where it was issued.
    assert await accounts.current_user(chat(1)) == user
    with pytest.raises(NotLoggedIn):
        await accounts.authenticate(in_chat.token, API)
    with pytest.raises(NotLoggedIn):
        await accounts.authenticate(result.token, chat(1))
    with pytest.raises(NotLoggedIn):
        await accounts.current_user(API)
    second = await accounts.login("ada@example.com", PASSWORD, API)
    assert await accounts.authenticate(result.token, API) == user  # logins side by side
    assert await accounts.authenticate(second.token, API) == user


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
async def test_authenticate_refuses_what_is_not_a_token(
    accounts: AccountService, token: str
) -> None:
    with pytest.raises(NotLoggedIn):
        await accounts.authenticate(token, API)


async def test_an_api_token_expires_and_ends_with_a_logout(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await sign_up(accounts, db)
    one = await accounts.login("ada@example.com", PASSWORD, API)
    two = await accounts.login("ada@example.com", PASSWORD, API)

    assert await accounts.logout(API, one.token)

    with pytest.raises(SessionExpired):
        await accounts.authenticate(one.token, API)
    with pytest.raises(SessionExpired):
        await accounts.logout(API, one.token)
    assert (await accounts.authenticate(two.token, API)).email == "ada@example.com"
    with pytest.raises(NotLoggedIn):
        await accounts.logout(API)
    clock.advance(JWT_TTL)
    with pytest.raises(SessionExpired):
        await accounts.authenticate(two.token, API)


async def test_a_session_row_of_another_kind_is_refused(
    accounts: AccountService, db: FakeDatabase
) -> None:
    await sign_up(accounts, db)
    result = await accounts.login("ada@example.com", PASSWORD, API)
    db.committed.sessions[result.session.jti] = replace(
        result.session, client_kind=ClientKind.CHAT, client_key="1"
    )
    with pytest.raises(NotLoggedIn):
        await accounts.authenticate(result.token, API)


async def test_a_linked_session_works_while_its_chat_session_does(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    user = await sign_up(accounts, db)
    with pytest.raises(NoSession):
        await accounts.open_linked_session(5)
    chat_login = await accounts.login("ada@example.com", PASSWORD, chat(5))
    clock.advance(hours=1)

    linked = await accounts.open_linked_session(5)

    assert linked.user == user
    assert not linked.alert_emailed
    assert linked.session.parent_jti == chat_login.session.jti
    assert linked.expires_at == chat_login.expires_at  # never outlives its chat's session
    assert await accounts.authenticate(linked.token, API) == user
    with pytest.raises(NotLoggedIn):
        await accounts.current_user(chat(6))

    await accounts.logout(chat(5))
    with pytest.raises(SessionExpired):
        await accounts.authenticate(linked.token, API)
    with pytest.raises(NoSession):
        await accounts.open_linked_session(5)


async def test_a_linked_session_ends_with_a_new_login_in_its_chat_or_a_reset(
    accounts: AccountService, db: FakeDatabase
) -> None:
    await sign_up(accounts, db)
    await accounts.login("ada@example.com", PASSWORD, chat(5))
    before_login = await accounts.open_linked_session(5)
    await accounts.login("ada@example.com", PASSWORD, chat(5))
    with pytest.raises(SessionExpired):
        await accounts.authenticate(before_login.token, API)

    before_reset = await accounts.open_linked_session(5)
    await accounts.request_reset("ada@example.com", CHAT)
    await accounts.confirm_reset(
        "ada@example.com", reset_code(db, "ada@example.com"), "brand new password", API
    )
    with pytest.raises(SessionExpired):
        await accounts.authenticate(before_reset.token, API)


async def test_a_linked_session_is_refused_once_its_chat_session_expires(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await sign_up(accounts, db)
    await accounts.login("ada@example.com", PASSWORD, chat(5))
    clock.advance(JWT_TTL - timedelta(seconds=2))
    linked = await accounts.open_linked_session(5)
    clock.advance(seconds=2)
    with pytest.raises(SessionExpired):
        await accounts.authenticate(linked.token, API)
    with pytest.raises(NoSession):
        await accounts.open_linked_session(5)


async def test_confirm_reset_needs_the_code_sent_to_that_address(
    accounts: AccountService, db: FakeDatabase
) -> None:
    await sign_up(accounts, db)
    await sign_up(accounts, db, "eve@example.com")
    await accounts.request_reset("ada@example.com", CHAT)
    code = reset_code(db, "ada@example.com")

    for email in ("eve@example.com", "nobody@example.com"):
        with pytest.raises(InvalidToken):
            await accounts.confirm_reset(email, code, "brand new password", API)
    with pytest.raises(ValidationError):
        await accounts.confirm_reset("ada@example.com", code, "short", API)
    await accounts.confirm_reset("ada@example.com", code, "brand new password", API)

    assert (await accounts.login("ada@example.com", "brand new password", API)).user
    with pytest.raises(InvalidToken):
        await accounts.confirm_reset("ada@example.com", code, "third password!", API)


# -- retention of attempts ----------------------------------------------------------------


def attempt_keys(db: FakeDatabase) -> list[str]:
    return sorted(key for key, _ in db.committed.attempts.values())


async def test_the_purge_forgets_attempts_once_no_limit_reads_them(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    """Every failure, signup and reset request leaves a row: without a retention, a crowd of
    clients grows the table for ever."""
    await sign_up(accounts, db)  # a signup request, counted for an hour
    await accounts.login("ada@example.com", PASSWORD, chat(1))  # chat 1 becomes known
    await fail_logins(accounts, 3, "ada@example.com", chat(2))
    await accounts.request_reset("nobody@example.com", chat(3))
    rows = len(db.committed.attempts)

    clock.advance(minutes=59)  # the signup and reset requests still count
    assert await accounts.purge_attempts() == 0
    assert len(db.committed.attempts) == rows

    clock.advance(minutes=2)
    assert await accounts.purge_attempts() == rows - 1
    [known] = attempt_keys(db)
    assert known.startswith("login:known:")

    # A known client stays known for its whole period: it is spared the account's waits.
    clock.advance(days=89)
    await accounts.purge_attempts()
    for n in range(5):
        await fail_logins(accounts, 1, "ada@example.com", chat(10 + n))
    with pytest.raises(Throttled):
        await accounts.login("ada@example.com", PASSWORD, chat(99))
    assert (await accounts.login("ada@example.com", PASSWORD, chat(1))).user
    clock.advance(days=91)
    rows = len(db.committed.attempts)
    assert await accounts.purge_attempts() == rows > 0
    assert db.committed.attempts == {}


async def test_a_client_that_logs_in_again_and_again_keeps_one_known_row(
    accounts: AccountService, db: FakeDatabase, clock: FakeClock
) -> None:
    await sign_up(accounts, db)
    for _ in range(20):
        await accounts.login("ada@example.com", PASSWORD, chat(1))
        clock.advance(minutes=1)
    assert len([key for key in attempt_keys(db) if key.startswith("login:known:")]) == 1
