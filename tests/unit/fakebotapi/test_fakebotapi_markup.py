"""Parse modes and detected entities, checked against what Telegram does."""

import pytest

from tests.fakebotapi.markup import detect_entities, render
from tests.fakebotapi.records import BotApiError


def test_html_code_block_with_language() -> None:
    text, entities = render(
        '<b>hello.py</b>\n<pre><code class="language-python">print("&lt;hi&gt;")</code></pre>',
        "HTML",
    )
    assert text == 'hello.py\nprint("<hi>")'
    assert entities == [
        {"type": "bold", "offset": 0, "length": 8},
        {"type": "pre", "offset": 9, "length": 13, "language": "python"},
    ]


def test_html_links_spoilers_quotes_and_numeric_entities() -> None:
    text, entities = render(
        '<a href="https://t.me/x?start=a&amp;b">link</a> <tg-spoiler>s</tg-spoiler> '
        "<blockquote expandable>q</blockquote> &#128013;&#x41; &nbsp;",
        "html",
    )
    assert text == "link s q 🐍A &nbsp;"  # unknown named entities stay as they are
    assert entities == [
        {"type": "text_link", "offset": 0, "length": 4, "url": "https://t.me/x?start=a&b"},
        {"type": "spoiler", "offset": 5, "length": 1},
        {"type": "expandable_blockquote", "offset": 7, "length": 1},
    ]


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
        ("ü <b>x</i>", 'Unmatched end tag at byte offset 7, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b", "Unclosed start tag at byte offset 0"),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("if a<b: pass", 'Unsupported start tag "b:" at byte offset 4'),
    ],
)
def test_html_errors(html: str, reason: str) -> None:
    with pytest.raises(BotApiError) as error:
        render(html, "HTML")
    assert error.value.description == f"Bad Request: can't parse entities: {reason}"


def test_markdown_v2_entities() -> None:
    text, entities = render(
        "*Saved* _snippet_ __3__ ~old~ ||secret|| [docs](https://x\\.io) `a\\`b`\n"
        "```python\nprint(1)\n```\n>quoted\n>lines",
        "MarkdownV2",
    )
    assert text == "Saved snippet 3 old secret docs a`b\nprint(1)\n\nquoted\nlines"
    assert entities == [
        {"type": "bold", "offset": 0, "length": 5},
        {"type": "italic", "offset": 6, "length": 7},
        {"type": "underline", "offset": 14, "length": 1},
        {"type": "strikethrough", "offset": 16, "length": 3},
        {"type": "spoiler", "offset": 20, "length": 6},
        {"type": "text_link", "offset": 27, "length": 4, "url": "https://x.io"},
        {"type": "code", "offset": 32, "length": 3},
        {"type": "pre", "offset": 36, "length": 9, "language": "python"},
        {"type": "blockquote", "offset": 46, "length": 12},
    ]


@pytest.mark.parametrize(
    ("markdown", "reason"),
    [
        ("Use /get 3.", "Character '.' is reserved and must be escaped with the preceding '\\'"),
        ("a-b", "Character '-' is reserved and must be escaped with the preceding '\\'"),
        ("*bold", "Can't find end of Bold entity at byte offset 0"),
        ("ü `code", "Can't find end of Code entity at byte offset 3"),
        ("[x](http://a", "Can't find end of a URL at byte offset 4"),
    ],
)
def test_markdown_v2_errors(markdown: str, reason: str) -> None:
    with pytest.raises(BotApiError) as error:
        render(markdown, "MarkdownV2")
    assert error.value.description == f"Bad Request: can't parse entities: {reason}"


def test_markdown_v2_code_needs_only_backticks_escaped() -> None:
    text, _ = render("```\nx = a.b - c!\n```", "MarkdownV2")
    assert text == "x = a.b - c!\n"


def test_legacy_markdown() -> None:
    text, entities = render("*bold* _it_ `c` [l](https://x.io) a\\_b", "Markdown")
    assert text == "bold it c l a_b"
    assert [e["type"] for e in entities] == ["bold", "italic", "code", "text_link"]
    with pytest.raises(BotApiError, match="Can't find end of the entity starting at byte offset 0"):
        render("_open", "Markdown")


def test_explicit_entities_win_over_parse_mode() -> None:
    entities = [{"type": "bold", "offset": 0, "length": 1}]
    assert render("<x>", "HTML", entities) == ("<x>", entities)
    assert render("<x>", None) == ("<x>", [])


def test_detected_entities_use_utf16_offsets() -> None:
    assert detect_entities(
        "🐍 /start@SnippetVaultTestBot mail me@x.org or https://x.io/a. #py"
    ) == [
        {"type": "bot_command", "offset": 3, "length": 26},
        {"type": "email", "offset": 35, "length": 8},
        {"type": "url", "offset": 47, "length": 14},
        {"type": "hashtag", "offset": 63, "length": 3},
    ]
    assert detect_entities("path/to/file and @SnippetVaultTestBot") == [
        {"type": "mention", "offset": 17, "length": 20}
    ]
