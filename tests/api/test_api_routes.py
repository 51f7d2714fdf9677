"""Every route of the HTTP API and the errors it names, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import uuid
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from api.telegram_init_data import sign
from core.entities import Client
from tests.api.conftest import PASSWORD, ApiHarness, Clock, api_settings, open_api
from tests.bot.conftest import Inbox

SNIPPET_SUBJECTS = ("New Snippet Created", "Your Requested Snippet", "Snippet Deleted")


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


async def test_signup_verify_login_and_me(api: ApiHarness) -> None:
    ada = unique("ada")
    first = await api.http.post("/auth/signup", json={"email": ada, "password": PASSWORD})
    assert first.status_code == 202
    # The same answer for an address that already has an account: no enumeration.
    again = await api.http.post("/auth/signup", json={"email": ada, "password": PASSWORD})
    assert (again.status_code, again.json()) == (202, first.json())
    await api.deliver_emails()
    text = api.inbox.last_text(ada, "Verify your email")
    assert "https://t.me/SnippetVaultTestBot?start=" in text

    verified = await api.http.post("/auth/verify", json={"code": api.verification_code(ada)})
    assert verified.status_code == 200
    assert verified.json()["email"] == ada
    assert verified.json()["is_verified"] is True

    login = await api.http.post("/auth/login", json={"email": ada, "password": PASSWORD})
    assert login.status_code == 200
    body = login.json()
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= api.settings.jwt_ttl_seconds
    await api.deliver_emails()
    alert = api.inbox.last_text(ada, "Login Alert")
    assert "reset your password" in alert

    me = await api.http.get("/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert set(me.json()) == {"id", "email", "is_verified", "created_at"}
    assert me.json()["email"] == ada


async def test_verify_with_a_wrong_code_is_400(api: ApiHarness) -> None:
    response = await api.http.post("/auth/verify", json={"code": "WRONG123"})
    assert response.status_code == 400
    assert "code" in response.json()["detail"]


async def test_bad_credentials_are_one_401(api: ApiHarness) -> None:
    ada = unique("ada")
    await api.account(ada)
    for email, password in [(ada, "wrong-password-1"), (unique("nobody"), PASSWORD)]:
        response = await api.http.post("/auth/login", json={"email": email, "password": password})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"detail": "Wrong email or password."}


async def test_login_with_the_oauth2_password_form(api: ApiHarness) -> None:
    ada = unique("ada")
    await api.account(ada)
    response = await api.http.post(
        "/auth/login",
        data={"grant_type": "password", "username": ada, "password": PASSWORD, "scope": ""},
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert (await api.http.get("/me", headers={"Authorization": f"Bearer {token}"})).is_success


async def test_login_is_throttled_with_retry_after(api: ApiHarness) -> None:
    ada = unique("ada")
    await api.account(ada)
    statuses = []
    for attempt in range(12):
        response = await api.http.post(
            "/auth/login", json={"email": ada, "password": f"wrong-{attempt}-xx"}
        )
        statuses.append(response.status_code)
    assert statuses[0] == 401
    assert statuses[-1] == 429
    assert int(response.headers["retry-after"]) > 0


async def test_logout_ends_the_token_at_once(api: ApiHarness) -> None:
    headers = await api.user(unique("ada"))
    assert (await api.http.get("/me", headers=headers)).status_code == 200
    out = await api.http.post("/auth/logout", headers=headers)
    assert out.status_code == 204
    refused = await api.http.get("/me", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert (await api.http.post("/auth/logout", headers=headers)).status_code == 401


async def test_password_reset_ends_every_session(api: ApiHarness) -> None:
    ada = unique("ada")
    headers = await api.user(ada)
    unknown = await api.http.post("/auth/reset", json={"email": unique("nobody")})
    asked = await api.http.post("/auth/reset", json={"email": ada})
    assert (unknown.status_code, asked.status_code) == (202, 202)
    assert unknown.json() == asked.json()
    await api.deliver_emails()
    code = re.search(r"\b([A-Z0-9]{8})\b", api.inbox.last_text(ada, "Reset your password"))
    assert code is not None

    wrong = await api.http.post(
        "/auth/reset/confirm",
        json={"email": ada, "code": "ZZZZZZZZ", "new_password": "a-new-long-pass"},
    )
    assert wrong.status_code == 400
    done = await api.http.post(
        "/auth/reset/confirm",
        json={"email": ada, "code": code.group(1), "new_password": "a-new-long-pass"},
    )
    assert done.status_code == 200, done.text
    assert (await api.http.get("/me", headers=headers)).status_code == 401
    assert await api.token(ada, "a-new-long-pass")


async def test_snippets_from_create_to_delete(api: ApiHarness) -> None:
    ada = unique("ada")
    headers = await api.user(ada)
    created = await api.http.post(
        "/snippets",
        json={"title": "Greeting <b>", "code": "print('hi')\n", "language": "python"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    snippet = created.json()
    assert created.headers["location"] == f"/snippets/{snippet['id']}"
    assert snippet["ref"] == 1
    assert snippet["language"] == "Python"
    assert snippet["code"] == "print('hi')\n"
    other = await api.create(headers, "Sort", "def quicksort(xs):\n    return sorted(xs)\n")

    listed = await api.http.get("/snippets", headers=headers)
    assert listed.status_code == 200
    page = listed.json()
    assert (page["total"], page["limit"], page["offset"]) == (2, 20, 0)
    assert [item["id"] for item in page["items"]] == [other["id"], snippet["id"]]
    assert "code" not in page["items"][0]

    found = await api.http.get("/snippets", params={"q": "quicksort"}, headers=headers)
    assert [item["id"] for item in found.json()["items"]] == [other["id"]]
    paged = await api.http.get("/snippets", params={"limit": 1, "offset": 1}, headers=headers)
    assert [item["id"] for item in paged.json()["items"]] == [snippet["id"]]

    by_id = await api.http.get(f"/snippets/{snippet['id']}", headers=headers)
    by_ref = await api.http.get("/snippets/1", headers=headers)
    assert by_id.status_code == by_ref.status_code == 200
    assert by_id.json() == by_ref.json() == snippet

    patched = await api.http.patch(
        f"/snippets/{snippet['id']}", json={"title": "Hello"}, headers=headers
    )
    assert patched.status_code == 200
    assert (patched.json()["title"], patched.json()["code"]) == ("Hello", "print('hi')\n")
    recoded = await api.http.patch(
        "/snippets/1", json={"code": "console.log('hi')", "language": "javascript"}, headers=headers
    )
    assert recoded.status_code == 200
    assert (recoded.json()["title"], recoded.json()["language"]) == ("Hello", "JavaScript")
    again = await api.http.get("/snippets/1", headers=headers)
    assert again.json()["code"] == "console.log('hi')"

    deleted = await api.http.delete("/snippets/1", headers=headers)
    assert deleted.status_code == 204
    assert (await api.http.get(f"/snippets/{snippet['id']}", headers=headers)).status_code == 404
    assert (await api.http.delete("/snippets/1", headers=headers)).status_code == 404

    await api.deliver_emails()
    subjects = [subject for to, subject in api.inbox.subjects() if to == ada]
    assert subjects.count("New Snippet Created") == 2
    assert subjects.count("Your Requested Snippet") == 3
    assert subjects.count("Snippet Deleted") == 1
    # The email carries the code, as the chat's /get does.
    attached = [_attachment(message) for message in api.inbox.to(ada, "Your Requested Snippet")]
    assert sorted(attached) == ["console.log('hi')", "print('hi')\n", "print('hi')\n"]


def _attachment(message: EmailMessage) -> str:
    [part] = list(message.iter_attachments())
    return str(
        part.get_content() if isinstance(part.get_content(), str) else part.get_content().decode()
    )


async def test_another_users_snippet_is_missing_either_way(api: ApiHarness) -> None:
    ada = await api.user(unique("ada"))
    bob = await api.user(unique("bob"))
    mine = await api.create(ada, "Mine", "x = 1")
    for path in (f"/snippets/{mine['id']}", "/snippets/1"):
        for method in ("GET", "DELETE"):
            response = await api.http.request(method, path, headers=bob)
            assert response.status_code == 404, (method, path)
        patched = await api.http.patch(path, json={"title": "pwned"}, headers=bob)
        assert patched.status_code == 404
    assert (await api.http.get("/snippets/1", headers=ada)).json()["title"] == "Mine"


async def test_code_over_the_limit_is_413(api: ApiHarness) -> None:
    headers = await api.user(unique("ada"))
    big = "x" * (api.settings.max_snippet_bytes + 1)
    response = await api.http.post("/snippets", json={"title": "big", "code": big}, headers=headers)
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


async def test_a_chat_sessions_token_is_refused(api: ApiHarness) -> None:
    ada = unique("ada")
    await api.account(ada)
    chat_token = await api.chat_token(ada, 4242)
    response = await api.http.get("/me", headers={"Authorization": f"Bearer {chat_token}"})
    assert response.status_code == 401
    # ... and an API token is no chat session: the chat stays logged out.
    await api.token(ada)
    with pytest.raises(Exception, match="not logged in"):
        await api.services.accounts.current_user(Client.chat(4343))


def init_data(chat_id: int, token: str, auth_date: int) -> str:
    fields = {"user": json.dumps({"id": chat_id, "first_name": "Ada"}), "auth_date": str(auth_date)}
    return urlencode({**fields, "hash": sign(fields, token)}, quote_via=quote)


async def test_telegram_sign_in(api: ApiHarness) -> None:
    ada, chat = unique("ada"), 777_000_001
    await api.account(ada)
    token = api.settings.telegram_bot_token
    assert token is not None
    now = int(api.clock().timestamp())

    nobody = await api.http.post(
        "/auth/telegram", json={"init_data": init_data(chat, token.get_secret_value(), now)}
    )
    assert nobody.status_code == 403

    await api.chat_token(ada, chat)
    signed = await api.http.post(
        "/auth/telegram", json={"init_data": init_data(chat, token.get_secret_value(), now)}
    )
    assert signed.status_code == 200, signed.text
    headers = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    assert (await api.http.get("/me", headers=headers)).json()["email"] == ada

    forged = await api.http.post(
        "/auth/telegram", json={"init_data": init_data(chat, "1:other-bot-token-xxxxxxxx", now)}
    )
    stale = await api.http.post(
        "/auth/telegram",
        json={"init_data": init_data(chat, token.get_secret_value(), now - 2 * 3600)},
    )
    assert (forged.status_code, stale.status_code) == (401, 401)
    assert forged.headers["www-authenticate"] == "Bearer"

    # The Mini App's session ends with the chat's.
    await api.services.accounts.logout(Client.chat(chat))
    assert (await api.http.get("/me", headers=headers)).status_code == 401


async def test_database_unreachable_is_503_with_retry_after(tmp_path: Path) -> None:
    settings = api_settings("postgresql+asyncpg://postgres@127.0.0.1:9/snippetvault", tmp_path)
    services, http = await open_api(settings, Clock())
    async with http:
        response = await http.post(
            "/auth/login", json={"email": "a@example.com", "password": "x" * 10}
        )
        health = await http.get("/healthz")
    await services.close()
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "Traceback" not in response.text
    assert health.status_code == 503


async def test_cors_only_for_the_configured_origins(sqlite_url: str, tmp_path: Path) -> None:
    settings = api_settings(sqlite_url, tmp_path, cors_origins="https://app.example.org")
    services, http = await open_api(settings, Clock())
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    async with http:
        allowed = await http.options(
            "/snippets", headers={"Origin": "https://app.example.org", **preflight}
        )
        other = await http.options(
            "/snippets", headers={"Origin": "https://evil.example", **preflight}
        )
    await services.close()
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.org"
    assert "access-control-allow-origin" not in other.headers


async def test_no_cors_by_default(api: ApiHarness) -> None:
    response = await api.http.get("/healthz", headers={"Origin": "https://app.example.org"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_the_docs_and_the_schema(api: ApiHarness) -> None:
    docs = await api.http.get("/docs")
    assert docs.status_code == 200
    schema = (await api.http.get("/openapi.json")).json()
    paths = schema["paths"]
    assert set(paths) >= {
        "/auth/signup",
        "/auth/verify",
        "/auth/login",
        "/auth/logout",
        "/auth/reset",
        "/auth/reset/confirm",
        "/auth/telegram",
        "/me",
        "/snippets",
        "/snippets/{id}",
    }
    login = paths["/auth/login"]["post"]
    assert set(login["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    assert {"401", "422", "429", "503"} <= set(login["responses"])
    assert {"401", "404", "422", "503"} <= set(paths["/snippets/{id}"]["get"]["responses"])
    assert "413" in paths["/snippets"]["post"]["responses"]
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"]["flows"]["password"]["tokenUrl"] == "/auth/login"


async def test_client_address_through_a_trusted_proxy(sqlite_url: str, tmp_path: Path) -> None:
    """Failed logins count per client address: behind a trusted proxy, per forwarded address."""
    settings = api_settings(sqlite_url, tmp_path, trusted_proxies="198.51.100.0/24")
    services, http = await open_api(settings, Clock())
    async with http:
        for attempt in range(10):
            # Each guess against another account: only the client's count grows.
            await http.post(
                "/auth/login",
                json={"email": unique(f"v{attempt}"), "password": "wrong-password"},
                headers={"X-Forwarded-For": "203.0.113.50"},
            )
        blocked = await http.post(
            "/auth/login",
            json={"email": unique("x"), "password": "wrong-password"},
            headers={"X-Forwarded-For": "203.0.113.50"},
        )
        other = await http.post(
            "/auth/login",
            json={"email": unique("x"), "password": "wrong-password"},
            headers={"X-Forwarded-For": "203.0.113.51"},
        )
    await services.close()
    assert blocked.status_code == 429
    assert other.status_code == 401


async def test_a_search_for_nul_finds_nothing_on_every_backend(api: ApiHarness) -> None:
    """The chat's /search reaches core without the API's validation: Postgres cannot even be
    asked for NUL, and no title or code holds one."""
    ada = unique("ada")
    await api.account(ada)
    user = await api.services.accounts.authenticate(await api.token(ada), Client.api("x"))
    page = await api.services.snippets.search(user, "a\x00b", 0, 10)
    assert (page.items, page.total) == ((), 0)


async def test_with_public_url_the_verification_email_links_the_web_too(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = api_settings(sqlite_url, tmp_path, public_url="https://snippets.example.org")
    services, http = await open_api(settings, Clock())
    ada = unique("ada")
    async with http:
        response = await http.post("/auth/signup", json={"email": ada, "password": PASSWORD})
    assert response.status_code == 202
    await services.worker.drain_once()
    await services.close()
    text = Inbox(settings.mail_dir).last_text(ada, "Verify your email")
    assert "https://snippets.example.org/app/#verify=" in text
    assert "https://t.me/SnippetVaultTestBot?start=" in text
