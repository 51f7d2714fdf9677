"""The Mini App's files as the server sends them: caching, headers, compression, and the
first-load budget, computed from the committed build."""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.miniapp import ASSET_CACHE, WEBAPP_DIR, load_webapp, mount_miniapp

FIRST_LOAD_BUDGET = 250 * 1024
"""Bytes, gzipped: index.html, its stylesheet, its script and every chunk that imports."""
_STATIC_IMPORT = re.compile(rb'(?:^|[;}\s])import\s*(?:[\w${},\s*]+from\s*)?"(\./[\w.-]+\.js)"')


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    mount_miniapp(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield http


def _index() -> str:
    return (WEBAPP_DIR / "index.html").read_text()


def _first_load() -> list[Path]:
    """index.html and everything the browser must fetch before the page runs."""
    page = _index()
    found = [WEBAPP_DIR / "index.html"]
    pending = [WEBAPP_DIR / ref for ref in re.findall(r'(?:src|href)="(assets/[^"]+)"', page)]
    while pending:
        path = pending.pop()
        if path in found:
            continue
        found.append(path)
        if path.suffix == ".js":
            pending += [
                path.parent / ref.decode() for ref in _STATIC_IMPORT.findall(path.read_bytes())
            ]
    return found


def test_first_load_fits_the_budget() -> None:
    files = _first_load()
    assert any(path.suffix == ".js" for path in files)
    assert any(path.suffix == ".css" for path in files)
    size = sum(len(gzip.compress(path.read_bytes(), 9)) for path in files)
    assert size <= FIRST_LOAD_BUDGET, f"first load is {size} bytes gzipped: {files}"


def test_language_modes_are_not_in_the_first_load() -> None:
    first = b"".join(path.read_bytes() for path in _first_load())
    assert b"@codemirror/lang-python" not in first
    assert b"pythonLanguage" not in first and b"EditorView" not in first


def test_every_asset_name_carries_a_content_hash() -> None:
    for path in (WEBAPP_DIR / "assets").iterdir():
        assert re.fullmatch(r"[\w-]+-[A-Z0-9]{8}\.(js|css)", path.name), path.name


def test_a_missing_build_names_the_command_that_makes_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make web"):
        load_webapp(tmp_path)


async def test_the_page_is_revalidated_and_locked_down(client: httpx.AsyncClient) -> None:
    response = await client.get("/app/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self' https://telegram.org"
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    ancestors = policy["frame-ancestors"].split()
    assert ancestors and all(origin.endswith("telegram.org") for origin in ancestors)
    assert "https://web.telegram.org" in ancestors
    assert "'unsafe-inline'" not in policy["script-src"] and "*" not in policy["frame-ancestors"]
    assert response.text == _index()


async def test_assets_are_cached_for_a_year_and_sent_gzipped(client: httpx.AsyncClient) -> None:
    script = re.search(r'src="(assets/[^"]+\.js)"', _index())
    assert script is not None
    response = await client.get(f"/app/{script.group(1)}", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == ASSET_CACHE
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == (WEBAPP_DIR / script.group(1)).read_bytes()  # httpx decodes
    plain = await client.get(f"/app/{script.group(1)}", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers


async def test_an_unchanged_page_is_answered_304(client: httpx.AsyncClient) -> None:
    first = await client.get("/app/")
    again = await client.get("/app/", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


async def test_app_without_slash_redirects_keeping_the_query(client: httpx.AsyncClient) -> None:
    response = await client.get("/app?snippet=3")
    assert response.status_code == 308
    assert response.headers["location"] == "app/?snippet=3"


@pytest.mark.parametrize(
    "path",
    ["/app/nope.js", "/app/..%2fminiapp.py", "/app/assets/", "/app/assets/%2e%2e/index.html"],
)
async def test_only_built_files_are_served(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_sources_never_parse_text_as_html() -> None:
    """Snippet text reaches the page as text nodes or CodeMirror documents, never as markup."""
    sources = Path(__file__).parents[2] / "web" / "src"
    for path in sources.glob("*.ts"):
        text = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{path.name} uses {sink}"
