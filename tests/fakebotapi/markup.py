"""Message text the way Telegram's server treats it.

Outgoing text with a ``parse_mode`` is parsed into plain text plus entities, failing with the
same ``can't parse entities`` errors Telegram gives (so a badly escaped reply fails in tests as it
would in production). Incoming text gets the entities Telegram detects (bot commands first, so
PTB's ``CommandHandler`` matches). Offsets and lengths are in UTF-16 code units, as in the API.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from tests.fakebotapi.records import BotApiError, JSONDict, bad_request

PARSE_ERROR = "can't parse entities: "


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


def _parse_error(reason: str) -> BotApiError:
    return bad_request(PARSE_ERROR + reason)


def _sorted(entities: list[JSONDict]) -> list[JSONDict]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def render(
    text: str, parse_mode: str | None, entities: list[JSONDict] | None = None
) -> tuple[str, list[JSONDict]]:
    """The visible text and its entities; explicit ``entities`` win over ``parse_mode``."""
    if entities:
        return text, _sorted([dict(e) for e in entities])
    if not parse_mode:
        return text, []
    mode = parse_mode.lower()
    if mode == "html":
        return _HtmlParser(text).parse()
    if mode == "markdownv2":
        return _MarkdownV2Parser(text).parse()
    if mode == "markdown":
        return _parse_markdown_legacy(text)
    raise bad_request("unsupported parse_mode")


@dataclass
class _Output:
    parts: list[str] = field(default_factory=list)
    utf16: int = 0
    entities: list[JSONDict] = field(default_factory=list)

    def emit(self, chunk: str) -> None:
        self.parts.append(chunk)
        self.utf16 += utf16_len(chunk)

    def add(self, type_: str, start: int, **extra: Any) -> None:
        if self.utf16 > start:
            length = self.utf16 - start
            self.entities.append({"type": type_, "offset": start, "length": length, **extra})

    def result(self) -> tuple[str, list[JSONDict]]:
        return "".join(self.parts), _sorted(self.entities)


# --- HTML ---------------------------------------------------------------------------------------

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]+));")
_HTML_ATTR = re.compile(r"""\s*([a-zA-Z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?""")


@dataclass
class _OpenTag:
    name: str
    start: int
    attrs: dict[str, str]
    language: str | None = None


class _HtmlParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.out = _Output()
        self.stack: list[_OpenTag] = []

    def parse(self) -> tuple[str, list[JSONDict]]:
        text, i = self.text, 0
        while i < len(text):
            char = text[i]
            if char == "&":
                i = self._entity(i)
            elif char == "<":
                i = self._end_tag(i) if text.startswith("</", i) else self._start_tag(i)
            else:
                self.out.emit(char)
                i += 1
        if self.stack:
            raise _parse_error(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"'
            )
        return self.out.result()

    def _entity(self, i: int) -> int:
        match = _HTML_ENTITY.match(self.text, i)
        decoded: str | None = None
        if match and match.group(1):
            decoded = chr(int(match.group(1)))
        elif match and match.group(2):
            decoded = chr(int(match.group(2), 16))
        elif match:
            decoded = _HTML_NAMED.get(match.group(3))
        if match and decoded is not None:
            self.out.emit(decoded)
            return match.end()
        self.out.emit("&")  # Telegram keeps an unknown entity as it is
        return i + 1

    def _start_tag(self, begin: int) -> int:
        text = self.text
        end_of_name = begin + 1
        while (
            end_of_name < len(text)
            and not text[end_of_name].isspace()
            and text[end_of_name] not in ">"
        ):
            end_of_name += 1
        name = text[begin + 1 : end_of_name].lower()
        if name not in _HTML_TAGS:
            raise _parse_error(
                f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, begin)}'
            )
        close = text.find(">", end_of_name)
        if close < 0:
            raise _parse_error(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        attrs = {
            m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
            for m in _HTML_ATTR.finditer(text[end_of_name:close])
        }
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise _parse_error(
                f'Tag "span" must have class "tg-spoiler" at byte offset '
                f"{_byte_offset(text, begin)}"
            )
        self.stack.append(_OpenTag(name, self.out.utf16, attrs))
        return close + 1

    def _end_tag(self, begin: int) -> int:
        text = self.text
        close = text.find(">", begin)
        if close < 0:
            raise _parse_error(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
        name = text[begin + 2 : close].strip().lower()
        if not self.stack:
            raise _parse_error(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
        tag = self.stack.pop()
        if name and name != tag.name:
            raise _parse_error(
                f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                f'expected "</{tag.name}>", found "</{name}>"'
            )
        self._close(tag)
        return close + 1

    def _close(self, tag: _OpenTag) -> None:
        type_ = _HTML_TAGS[tag.name]
        parent = self.stack[-1] if self.stack else None
        if type_ == "code" and parent and parent.name == "pre" and parent.start == tag.start:
            # <pre><code class="language-x"> is one pre entity with a language
            language = tag.attrs.get("class", "")
            if language.startswith("language-"):
                parent.language = language.removeprefix("language-")
            return
        extra: dict[str, Any] = {}
        if type_ == "text_link":
            extra["url"] = tag.attrs.get("href", "")
            if not extra["url"]:
                return
        elif type_ == "pre" and tag.language:
            extra["language"] = tag.language
        elif type_ == "blockquote" and "expandable" in tag.attrs:
            type_ = "expandable_blockquote"
        elif type_ == "custom_emoji":
            extra["custom_emoji_id"] = tag.attrs.get("emoji-id", "")
        self.out.add(type_, tag.start, **extra)


# --- MarkdownV2 ---------------------------------------------------------------------------------

_V2_RESERVED = "_*[]()~`>#+-=|{}.!"
_V2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


@dataclass
class _OpenEntity:
    type: str
    start: int
    byte_offset: int
    first_part: int
    language: str | None = None


class _MarkdownV2Parser:
    """Follows tdlib's ``parse_markdown_v2``, including its error messages."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.out = _Output()
        self.stack: list[_OpenEntity] = []
        self.quote_start: int | None = None

    def _at(self, i: int) -> str:
        return self.text[i] if i < len(self.text) else ""

    def parse(self) -> tuple[str, list[JSONDict]]:
        text, i = self.text, 0
        while i < len(text):
            char = text[i]
            if (i == 0 or text[i - 1] == "\n") and not self.stack:
                i = self._line_start(i)
                if i >= len(text):
                    break
                char = text[i]
            if char == "\\" and 0 < ord(self._at(i + 1) or "\0") <= 126:
                self.out.emit(text[i + 1])
                i += 2
                continue
            in_code = bool(self.stack) and self.stack[-1].type in ("code", "pre")
            if char not in ("`" if in_code else _V2_RESERVED):
                self.out.emit(char)
                i += 1
                continue
            i = self._close(i) if self._closes(i) else self._open(i)
        if self.stack:
            entity = self.stack[-1]
            raise _parse_error(
                f"Can't find end of {_V2_NAMES[entity.type]} entity at byte offset "
                f"{entity.byte_offset}"
            )
        self._end_quote()
        return self.out.result()

    def _line_start(self, i: int) -> int:
        if self.text.startswith(">", i):
            if self.quote_start is None:
                self.quote_start = self.out.utf16
            return i + 1
        self._end_quote()
        return i

    def _end_quote(self) -> None:
        if self.quote_start is not None:
            # the quote ends before the newline that ends its last line
            text = "".join(self.out.parts)
            end = self.out.utf16 - (1 if text.endswith("\n") else 0)
            if end > self.quote_start:
                length = end - self.quote_start
                self.out.entities.append(
                    {"type": "blockquote", "offset": self.quote_start, "length": length}
                )
            self.quote_start = None

    def _closes(self, i: int) -> bool:
        if not self.stack:
            return False
        char, after = self.text[i], self._at(i + 1)
        return {
            "bold": char == "*",
            "italic": char == "_" and after != "_",
            "underline": char == "_" and after == "_",
            "strikethrough": char == "~",
            "spoiler": char == "|" and after == "|",
            "code": char == "`",
            "pre": self.text.startswith("```", i),
            "text_link": char == "]",
            "custom_emoji": char == "]",
        }[self.stack[-1].type]

    def _reserved(self, i: int) -> BotApiError:
        return _parse_error(
            f"Character '{self.text[i]}' is reserved and must be escaped with the preceding '\\'"
        )

    def _open(self, i: int) -> int:
        text, char, begin = self.text, self.text[i], i
        language: str | None = None
        if char == "_" and self._at(i + 1) == "_":
            type_, i = "underline", i + 2
        elif char in "_*~[":
            type_, i = (
                {"_": "italic", "*": "bold", "~": "strikethrough", "[": "text_link"}[char],
                i + 1,
            )
        elif char == "|" and self._at(i + 1) == "|":
            type_, i = "spoiler", i + 2
        elif char == "!" and self._at(i + 1) == "[":
            type_, i = "custom_emoji", i + 2
        elif text.startswith("```", i):
            type_, i = "pre", i + 3
            end = i
            while end < len(text) and not text[end].isspace() and text[end] != "`":
                end += 1
            if end != i and end < len(text) and text[end] != "`":
                language, i = text[i:end], end
            if self._at(i) in ("\n", "\r"):
                i += 2 if self._at(i + 1) in ("\n", "\r") and self._at(i + 1) != text[i] else 1
        elif char == "`":
            type_, i = "code", i + 1
        else:
            raise self._reserved(i)
        self.stack.append(
            _OpenEntity(
                type_, self.out.utf16, _byte_offset(text, begin), len(self.out.parts), language
            )
        )
        return i

    def _close(self, i: int) -> int:
        entity = self.stack.pop()
        extra: dict[str, Any] = {}
        width = {"underline": 2, "spoiler": 2, "pre": 3}.get(entity.type, 1)
        if entity.type == "pre" and entity.language:
            extra["language"] = entity.language
        if entity.type in ("text_link", "custom_emoji"):
            url, i = self._link_target(i, entity)
            if entity.type == "custom_emoji":
                extra["custom_emoji_id"] = url.partition("id=")[2]
            else:
                extra["url"] = url
            width = 0
        self.out.add(entity.type, entity.start, **extra)
        return i + width

    def _link_target(self, i: int, entity: _OpenEntity) -> tuple[str, int]:
        text = self.text
        if self._at(i + 1) != "(":
            return "".join(self.out.parts[entity.first_part :]), i + 1
        i += 2
        begin, url = i, []
        while i < len(text) and text[i] != ")":
            if text[i] == "\\" and 0 < ord(self._at(i + 1) or "\0") <= 126:
                url.append(text[i + 1])
                i += 2
                continue
            url.append(text[i])
            i += 1
        if i >= len(text):
            offset = _byte_offset(text, begin)
            raise _parse_error(f"Can't find end of a URL at byte offset {offset}")
        return "".join(url), i + 1


# --- Markdown (legacy) --------------------------------------------------------------------------


def _parse_markdown_legacy(text: str) -> tuple[str, list[JSONDict]]:
    out, i = _Output(), 0
    types = {"*": "bold", "_": "italic", "`": "code"}
    while i < len(text):
        char = text[i]
        if char == "\\" and text[i + 1 : i + 2] in ("_", "*", "`", "["):
            out.emit(text[i + 1])
            i += 2
            continue
        if char not in "_*`[":
            out.emit(char)
            i += 1
            continue
        start, begin = out.utf16, i
        missing = _parse_error(
            f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}"
        )
        if text.startswith("```", i):
            end = text.find("```", i + 3)
            if end < 0:
                raise missing
            body, language = text[i + 3 : end], None
            first_line, newline, rest = body.partition("\n")
            if newline and first_line and " " not in first_line:
                body, language = rest, first_line
            out.emit(body)
            out.add("pre", start, **({"language": language} if language else {}))
            i = end + 3
        elif char == "[":
            close = text.find("]", i + 1)
            if close < 0:
                raise missing
            out.emit(text[i + 1 : close])
            if text.startswith("(", close + 1) and (url_end := text.find(")", close)) > 0:
                out.add("text_link", start, url=text[close + 2 : url_end])
                i = url_end + 1
            else:
                i = close + 1
        else:
            end = text.find(char, i + 1)
            if end < 0:
                raise missing
            out.emit(text[i + 1 : end])
            out.add(types[char], start)
            i = end + 1
    return out.result()


# --- entities Telegram detects in incoming text ---------------------------------------------------

_DETECTED = (
    ("bot_command", re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")),
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")),
    ("url", re.compile(r"(?<!\w)(?:https?://|www\.)[^\s<>\"]+[^\s<>\".,;:!?)\]]")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{4,32}\b")),
    ("hashtag", re.compile(r"(?<![\w#])#\w+")),
)


def detect_entities(text: str) -> list[JSONDict]:
    """Entities Telegram adds to a text message a user sends: commands, emails, links…"""
    taken: list[tuple[int, int]] = []
    entities: list[JSONDict] = []
    for type_, pattern in _DETECTED:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            entities.append(
                {
                    "type": type_,
                    "offset": utf16_len(text[:start]),
                    "length": utf16_len(match.group()),
                }
            )
    return _sorted(entities)
