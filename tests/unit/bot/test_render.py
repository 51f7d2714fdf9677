"""Reply rendering that is kept between updates must still follow what it renders."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from bot.render import page_keyboard
from core.entities import Page, SnippetSummary

CREATED = datetime(2030, 1, 1, tzinfo=UTC)


def _page(*titles: str, total: int = 20, offset: int = 0) -> Page[SnippetSummary]:
    items = tuple(
        SnippetSummary(uuid.UUID(int=ref), ref, title, "Python", CREATED)
        for ref, title in enumerate(titles, start=1)
    )
    return Page(items, total, offset, 8)


def _labels(page: Page[SnippetSummary], nav: str | None, app: str | None = None) -> list[str]:
    keyboard = page_keyboard(page, nav, app)
    return [button.text for row in keyboard.inline_keyboard for button in row]


def test_a_list_keyboard_follows_its_page_however_often_it_is_shown() -> None:
    first = _page("Sort", "Search")
    assert _labels(first, "list") == _labels(_page("Sort", "Search"), "list")
    assert _labels(first, "list") == ["#1 Sort", "#2 Search", "Older ▶"]
    # Made once for a page's content (the markup is immutable), not on every update.
    assert page_keyboard(first, "list") is page_keyboard(_page("Sort", "Search"), "list")

    renamed = replace(first, items=(replace(first.items[0], title="Quick sort"), first.items[1]))
    assert _labels(renamed, "list")[0] == "#1 Quick sort"
    assert _labels(replace(first, offset=8), "list")[-2:] == ["◀ Newer", "Older ▶"]
    assert _labels(replace(first, total=2), "list") == ["#1 Sort", "#2 Search"]
    assert _labels(first, None) == ["#1 Sort", "#2 Search"]
    assert _labels(first, "list", "https://example.com/app/")[-1] == "📱 Open in app"
    data = [b.callback_data for row in page_keyboard(first, "list").inline_keyboard for b in row]
    assert data[0] == f"open:1:{uuid.UUID(int=1).hex}"
