"""Every bad URL- or path-typed setting, alone or with others, stops each command with one line
that names the setting, exit status 1, never a traceback.

The commands run as processes, as an operator runs them. They fail while loading settings,
before anything heavy is imported, so each takes a fraction of a second; they run a few at a
time in threads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.cli import main
from core.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("run", "migrate", "worker", "check")
TOKEN = "123456:" + "A" * 35
JWT = "j" * 40
SETTINGS = ("TELEGRAM_", "DATABASE", "BOT_", "JWT_", "REDIS", "SMTP_", "LOG_", "DATA_DIR")


@dataclass(frozen=True)
class Case:
    blamed: str
    """The setting the closing line must name first."""
    settings: dict[str, str]
    advice: str
    """Part of what the line tells the operator to do."""
    also: tuple[str, ...] = ()


def cases(tmp: Path) -> list[Case]:
    a_file = tmp / "a-file"
    a_file.write_text("not a directory")
    pg = "postgresql+asyncpg://u@db.example.com:5432/app"
    return [
        # Without JWT_SECRET: the URL is to blame, not the secret it would need.
        Case("DATABASE_URL", {"DATABASE_URL": "nonsense"}, "postgresql+asyncpg://"),
        Case("DATABASE_URL", {"DATABASE_URL": "mysql://u@h/db", "JWT_SECRET": JWT}, "PostgreSQL"),
        Case("DATABASE_URL", {"DATABASE_URL": "postgresql+psycopg2://u@h/db"}, "asyncpg"),
        Case("DATABASE_URL", {"DATABASE_URL": "postgresql+asyncpg:///db"}, "no host"),
        Case("DATABASE_URL", {"DATABASE_URL": "postgresql+asyncpg://db.example.com"}, "database"),
        Case("DATABASE_URL", {"DATABASE_URL": "postgresql+asyncpg://h:port/db"}, "port"),
        Case("DATABASE_URL", {"DATABASE_URL": "sqlite+aiosqlite://"}, "database file"),
        Case("DATABASE_URL", {"DATABASE_URL": "sqlite+pysqlite:///x.db"}, "sqlite+aiosqlite"),
        Case("REDIS_URL", {"REDIS_URL": "nonsense"}, "redis://"),
        Case("REDIS_URL", {"REDIS_URL": "http://localhost:6379"}, "redis://"),
        Case("REDIS_URL", {"REDIS_URL": "redis://"}, "no host"),
        Case("REDIS_URL", {"REDIS_URL": "redis://localhost:6379/zero"}, "database number"),
        Case("REDIS_URL", {"REDIS_URL": "unix://"}, "socket path"),
        Case("TELEGRAM_API_BASE_URL", {"TELEGRAM_API_BASE_URL": "api.telegram.org/bot"}, "https"),
        Case("TELEGRAM_FILE_BASE_URL", {"TELEGRAM_FILE_BASE_URL": "ftp://x/file/bot"}, "https"),
        Case(
            "BOT_WEBHOOK_URL",
            {"BOT_WEBHOOK_URL": "http://bot.example.com/tg", "BOT_WEBHOOK_SECRET": "s" * 20},
            "https://",
        ),
        Case("BOT_WEBHOOK_URL", {"BOT_WEBHOOK_URL": "https:///telegram"}, "no host"),
        Case("SMTP_HOST", {"SMTP_HOST": "smtp://mail.example.com"}, "host name only"),
        Case("SMTP_HOST", {"SMTP_HOST": "mail.example.com:25"}, "port"),
        Case("SMTP_PORT", {"SMTP_PORT": "abc"}, "whole number"),
        Case("SMTP_PORT", {"SMTP_PORT": "70000"}, "between 1 and 65535"),
        Case("SMTP_SECURITY", {"SMTP_SECURITY": "ssl"}, "starttls"),
        Case("DATA_DIR", {"DATA_DIR": str(a_file)}, "not a directory"),
        Case("DATA_DIR", {"DATA_DIR": str(a_file / "sub")}, "is a file"),
        Case("LOG_LEVEL", {"LOG_LEVEL": "loud"}, "INFO"),
        Case("LOG_FORMAT", {"LOG_FORMAT": "xml"}, "json"),
        Case("JWT_SECRET", {"JWT_SECRET": "changeme"}, "random value"),
        Case("JWT_SECRET", {"DATABASE_URL": pg}, "required with an external database"),
        Case(
            "DATABASE_URL",
            {"DATABASE_URL": "nonsense", "REDIS_URL": "nonsense", "SMTP_PORT": "x"},
            "PostgreSQL",
            also=("REDIS_URL", "SMTP_PORT"),
        ),
    ]


def clean_environment(tmp: Path, settings: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(SETTINGS)}
    env.update({"DATA_DIR": str(tmp / "var"), "TELEGRAM_BOT_TOKEN": TOKEN, **settings})
    return env


def run_command(command: str, settings: dict[str, str], cwd: Path) -> tuple[int, str]:
    env = clean_environment(cwd, settings)
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def mistakes(runs: list[tuple[Case, str]], results: list[tuple[int, str]]) -> list[str]:
    wrong = []
    for (case, command), (code, output) in zip(runs, results, strict=True):
        lines = output.strip().splitlines()
        prefix = f"snippetvault: configuration error: {case.blamed}: "
        fine = (
            code == 1
            and len(lines) == 1
            and lines[0].startswith(prefix)
            and case.advice in lines[0]
            and all(name in lines[0] for name in case.also)
        )
        if not fine:
            wrong.append(f"{command} {case.settings}: exit {code}, {output.strip()[-400:]!r}")
    return wrong


def test_each_bad_setting_stops_each_command_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every case against every command, in this process (`main` as the script calls it)."""
    table = cases(tmp_path)
    assert len(table) >= 20
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    runs = [(case, command) for case in table for command in COMMANDS]
    results = []
    for case, command in runs:
        with monkeypatch.context() as patch:
            for key in os.environ:
                if key.startswith(SETTINGS):
                    patch.delenv(key)
            for key, value in clean_environment(tmp_path, case.settings).items():
                patch.setenv(key, value)
            code = main([command])
        captured = capsys.readouterr()
        results.append((code, captured.out + captured.err))
    assert not mistakes(runs, results), "\n".join(mistakes(runs, results))
    assert not (tmp_path / "var").exists(), "nothing may be written before settings are good"


def test_each_bad_setting_stops_the_processes_in_one_line(tmp_path: Path) -> None:
    """The same as processes: each case once, the commands taking turns (a process costs a
    third of a second of CPU, and the in-process test above covers every pair)."""
    table = cases(tmp_path)
    runs = [(case, COMMANDS[index % len(COMMANDS)]) for index, case in enumerate(table)]
    assert {command for _, command in runs} == set(COMMANDS)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda run: run_command(run[1], run[0].settings, tmp_path), runs))
    assert not mistakes(runs, results), "\n".join(mistakes(runs, results))
    assert not (tmp_path / "var").exists(), "nothing may be written before settings are good"


@pytest.mark.parametrize("value", ["postgresql://u@db.example.com/app", "postgres://u@h/app"])
def test_a_plain_postgres_url_means_asyncpg(value: str) -> None:
    settings = load_settings(database_url=value, jwt_secret=JWT, _env_file=None)
    assert settings.effective_database_url.startswith("postgresql+asyncpg://")
