"""The benchmark suite keeps working: `python -m bench --quick` end to end, no timings judged.

It creates and drops its own Postgres database and claims a Redis database index of its own,
like the test fixtures do (so it needs both servers; it skips without them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_ROWS = [
    "framework floor",
    "I/O floor: /get (cached)",
    "/get (cached)",
    "I/O floor: /get (cold cache)",
    "/get (cold cache)",
    "I/O floor: /save",
    "/save",
    "I/O floor: /list (first page)",
    "/list (first page)",
    "I/O floor: /search",
    "/search",
    "/search, one chat at a time",
    "/get (cached): 1 bot process",
    "/get (cached): 2 bot processes",
]
EXPECTED_PREFIXES = [
    "/get, 2 chats, no logins",
    "/get, 2 chats, during",
    "/login ×",
    "email render ×",
    "outbox: ",
    "memory: bot process after",
]


def _services_reachable() -> bool:
    import socket

    for port in (5432, 6379):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
    return True


def test_quick_run_produces_every_row_and_the_json(tmp_path: Path) -> None:
    if not _services_reachable():
        if os.environ.get("SNIPPETVAULT_REQUIRE_SERVICES") == "1":
            pytest.fail("PostgreSQL or Redis is not reachable on 127.0.0.1")
        pytest.skip("PostgreSQL or Redis is not reachable on 127.0.0.1")
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    data = json.loads((tmp_path / "results.json").read_text())
    names = [row["name"] for row in data["rows"]]
    for name in EXPECTED_ROWS:
        assert name in names, names
    for prefix in EXPECTED_PREFIXES:
        assert any(name.startswith(prefix) for name in names), (prefix, names)
    assert sum(name.startswith("outbox: ") for name in names) == 2
    for row in data["rows"]:
        assert row["failures"] == 0, row
        assert row["per_second"], row
    e2e = {(row["mode"], row["name"]): row for row in data["e2e_rows"]}
    assert set(e2e) == {
        (mode, name)
        for mode in ("paced", "saturation")
        for name in ("/get (cached)", "/list")  # --quick: two of the four commands
    }
    for row in e2e.values():
        for side in (row["echo"], row["product"]):
            assert side["failures"] == 0 and side["replies"] > 0, row
            assert side["p50_ms"] and side["cpu_ms"] is not None, row
        assert row["product"]["lag_max_ms"] is not None
    assert all(target for target in e2e[("paced", "/get (cached)")]["targets"])
    compared = [row for row in data["rows"] if row["floor"]]
    assert {row["name"] for row in compared} >= {"/get (cached)", "/save", "/search"}
    assert all(row["ratio"] and row["cpu_ratio"] for row in compared)
    for row in data["rows"]:
        if row["name"].startswith("outbox: "):
            assert row["extra"]["duplicates"] == 0
            assert row["extra"]["distinct_message_ids"] == data["sizes"]["emails"]
    assert data["extra"]["search_uses_trigram_indexes"] in (True, False)
    assert "EXPLAIN" not in data["search_plan"] and "Execution Time" in data["search_plan"]
    assert data["machine"]["nproc"] and data["versions"]["postgres"]

    http = {row["name"]: row for row in data["http_rows"]}
    for name in (
        "framework floor (GET constant)",
        "GET /snippets/{id} (cached)",
        "GET /snippets/{id} (cold cache)",
        "POST /snippets",
        "GET /snippets (first page)",
    ):
        assert name in http, list(http)
    assert any(name.startswith("GET /snippets?q=") for name in http), list(http)
    assert any(name.startswith("POST /auth/login ×") for name in http), list(http)
    for row in data["http_rows"]:
        assert row["failures"] == 0 and row["updates"] > 0, row
    assert http["GET /snippets/{id} (cached)"]["floor"] == "I/O floor: GET /snippets/{id} (cached)"
    assert http["GET /snippets/{id} (cached)"]["ratio"] and http["POST /snippets"]["ratio"]
    during = [row for name, row in http.items() if "during" in name]
    assert len(during) == 1 and during[0]["target"]

    markdown = (tmp_path / "RESULTS.md").read_text()
    for name in ("End to end", "framework floor", "/get (cached)", "/search plan", "memory: bot"):
        assert name in markdown
    assert markdown.index("End to end") < markdown.index("HTTP:") < markdown.index("In process")
