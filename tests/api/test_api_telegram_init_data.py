"""The Mini App's initData check, against data the tests sign themselves as Telegram does."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import quote, urlencode

import pytest

from api.telegram_init_data import InvalidInitData, TelegramUser, validate

TOKEN = "7000000001:AAF-this-bots-test-token"
OTHER_TOKEN = "7000000002:AAF-another-bots-test-token"
NOW = 1_800_000_000
MAX_AGE = 3600
USER = {"id": 424242, "first_name": "Ada", "username": "ada", "language_code": "en"}


def telegram_sign(fields: dict[str, str], token: str) -> str:
    """Written from Telegram's docs, independently of the code under test."""
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    key = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    return hmac.new(key, check.encode(), hashlib.sha256).hexdigest()


def fields(**overrides: str) -> dict[str, str]:
    base = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps(USER, separators=(",", ":")),
        "auth_date": str(NOW - 60),
    }
    return {**base, **overrides}


def init_data(data: dict[str, str], token: str = TOKEN, order: list[str] | None = None) -> str:
    signed = {**data, "hash": telegram_sign(data, token)}
    keys = order or list(signed)
    return urlencode([(key, signed[key]) for key in keys], quote_via=quote)


def check(raw: str) -> TelegramUser:
    return validate(raw, TOKEN, max_age_seconds=MAX_AGE, now=NOW)


def test_signed_init_data_names_its_user() -> None:
    user = check(init_data(fields()))
    assert user == TelegramUser(id=424242, auth_date=NOW - 60, first_name="Ada", username="ada")


def test_field_order_does_not_matter() -> None:
    raw = init_data(fields(), order=["hash", "user", "auth_date", "query_id"])
    assert check(raw).id == 424242


def test_extra_signed_fields_such_as_signature_are_part_of_the_check() -> None:
    assert check(init_data(fields(signature="abc", chat_type="private"))).id == 424242


def _replace(raw: str, old: str, new: str) -> str:
    assert old in raw
    return raw.replace(old, new)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("tampered user id", _replace(init_data(fields()), "424242", "424243")),
        ("tampered auth_date", _replace(init_data(fields()), str(NOW - 60), str(NOW))),
        ("signed by another bot", init_data(fields(), token=OTHER_TOKEN)),
        ("expired", init_data(fields(auth_date=str(NOW - MAX_AGE - 1)))),
        ("from the future", init_data(fields(auth_date=str(NOW + 3600)))),
        ("no hash", urlencode(fields())),
        ("empty hash", urlencode({**fields(), "hash": ""})),
        ("duplicated user", init_data(fields()) + "&user=" + quote(json.dumps({"id": 1}))),
        ("duplicated hash", init_data(fields()) + "&hash=" + "0" * 64),
        ("no auth_date", init_data({"user": json.dumps(USER)})),
        ("auth_date not a number", init_data(fields(auth_date="soon"))),
        ("no user", init_data({"auth_date": str(NOW)})),
        ("user not json", init_data(fields(user="ada"))),
        ("user without id", init_data(fields(user=json.dumps({"first_name": "Ada"})))),
        ("user id a string", init_data(fields(user=json.dumps({"id": "424242"})))),
        ("user id negative", init_data(fields(user=json.dumps({"id": -5})))),
        ("empty", ""),
        ("not a query string", "just some text"),
        ("too long", init_data(fields(pad="x" * 9000))),
        ("invalid percent-encoding", init_data(fields()) + "&x=%ff"),
        (
            "login-widget style key (sha256 of the token)",
            urlencode(
                {
                    **fields(),
                    "hash": hmac.new(
                        hashlib.sha256(TOKEN.encode()).digest(),
                        "\n".join(f"{k}={v}" for k, v in sorted(fields().items())).encode(),
                        hashlib.sha256,
                    ).hexdigest(),
                }
            ),
        ),
    ],
)
def test_refused(name: str, raw: str) -> None:
    with pytest.raises(InvalidInitData):
        check(raw)


def test_the_age_limit_is_inclusive() -> None:
    assert check(init_data(fields(auth_date=str(NOW - MAX_AGE)))).id == 424242
