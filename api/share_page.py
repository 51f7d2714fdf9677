"""`/s/<token>`: a share link's plain read-only web page (title, language, highlighted code,
a download link), for whoever has the link and nothing of its owner.

A single-use link shows a button first and is used up only by pressing it: link previews
(Telegram's, mail scanners) fetch a URL without anyone reading it.
"""

from __future__ import annotations

import asyncio
from html import escape
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from bootstrap import Services
from core.entities import SharedSnippet
from core.errors import ShareGone
from core.text import file_name

router = APIRouter()

"""Larger code is shown plain: highlighting is CPU work, and it runs per view."""
HEADERS = {
    # Only inline styles (Pygments' and ours); no script, no other origin, nothing to frame.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem; }}
pre {{ overflow: auto; padding: 1rem; border: 1px solid #ddd; border-radius: 6px; }}
.meta {{ color: #666; }} button {{ font-size: 1rem; padding: .5rem 1rem; }}
</style></head>
<body>{body}
<p class="meta">Shared through SnippetVault, read-only.</p>
</body></html>
"""


@router.get("/s/{token}", include_in_schema=False)
async def shared_page(token: str, request: Request) -> HTMLResponse:
    services = _services(request)
    try:
        if await services.organise.is_single_use_share(token):
            return _page(
                "A shared snippet",
                "<h1>A shared snippet</h1><p>This link works for one view.</p>"
                '<form method="post"><button type="submit">Show it</button></form>',
            )
        shared = await services.organise.open_share(token)
    except ShareGone as gone:
        return _gone(gone)
    return await _shared(services, shared)


@router.post("/s/{token}", include_in_schema=False)
async def shared_page_once(token: str, request: Request) -> HTMLResponse:
    services = _services(request)
    try:
        shared = await services.organise.open_share(token)
    except ShareGone as gone:
        return _gone(gone)
    return await _shared(services, shared)


async def _shared(services: Services, shared: SharedSnippet) -> HTMLResponse:
    # Pygments can be super-linear on hostile code: it runs where a deadline can stop it,
    # the emails' highlighter; the rest costs time in proportion to the code, off the loop.
    code = await services.highlighter(shared.code, shared.language)
    return _page(shared.title, await asyncio.to_thread(_snippet_body, shared, code))


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _gone(error: ShareGone) -> HTMLResponse:
    return _page("Link ended", f"<h1>{escape(str(error))}</h1>", status_code=404)


def _page(title: str, body: str, *, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=escape(title), body=body), status_code=status_code, headers=HEADERS
    )


def _snippet_body(shared: SharedSnippet, code: str) -> str:
    """The page's body around the highlighted `code`; run off the event loop: quoting and
    escaping the download link cost time in proportion to the code."""
    name = file_name(shared.title, shared.language)
    download = f"data:text/plain;charset=utf-8,{quote(shared.code)}"
    return (
        f'<h1>{escape(shared.title)}</h1><p class="meta">{escape(shared.language)} · '
        f'<a download="{escape(name)}" href="{escape(download)}">Download {escape(name)}</a>'
        f"</p>{code}"
    )
