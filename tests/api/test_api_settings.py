"""The HTTP server's settings: one clear line for each mistake."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from core.settings import SettingsError, load_settings


def test_defaults(tmp_path: Path) -> None:
    loaded = load_settings(data_dir=tmp_path, _env_file=None)
    assert (loaded.http_host, loaded.http_port) == ("127.0.0.1", 8000)
    assert loaded.public_url is None
    assert loaded.cors_origins == ()
    assert loaded.trusted_proxies == ()
    assert loaded.telegram_init_data_max_age_seconds == 3600


def test_lists_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://app.example.org, http://localhost:5173/")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")
    monkeypatch.setenv("PUBLIC_URL", "https://snippets.example.org/")
    loaded = load_settings(data_dir=tmp_path, _env_file=None)
    assert loaded.cors_origins == ("https://app.example.org", "http://localhost:5173")
    assert loaded.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert loaded.public_url == "https://snippets.example.org"


@pytest.mark.parametrize(
    ("name", "value", "start"),
    [
        ("public_url", "http://snippets.example.org", "PUBLIC_URL: must be an https:// URL"),
        ("public_url", "https://", "PUBLIC_URL: must be an https:// URL"),
        ("cors_origins", "app.example.org", "CORS_ORIGINS: 'app.example.org' is not an origin"),
        ("cors_origins", "https://a.org/path", "CORS_ORIGINS: 'https://a.org/path' is not an"),
        ("trusted_proxies", "10.0.0.0/33", "TRUSTED_PROXIES: "),
        ("http_port", "70000", "HTTP_PORT: "),
        ("telegram_init_data_max_age_seconds", "0", "TELEGRAM_INIT_DATA_MAX_AGE_SECONDS: "),
    ],
)
def test_mistakes(tmp_path: Path, name: str, value: str, start: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(data_dir=tmp_path, _env_file=None, **{name: value})
    assert str(raised.value).startswith(start)
    assert "\n" not in str(raised.value)
