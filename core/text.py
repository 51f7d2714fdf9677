"""Turning what people send into a snippet: titles, code, fences, files and languages."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePath

from charset_normalizer import from_bytes
from pygments.lexer import Lexer
from pygments.lexers import (
    find_lexer_class,
    get_lexer_by_name,
    get_lexer_for_filename,
    guess_lexer,
)
from pygments.util import ClassNotFound

from core.errors import BadTitle, NoCode, NotText, SnippetTooLarge, ValidationError

MAX_TITLE_CHARS = 200
PLAIN_TEXT = "Text"
GUESS_SAMPLE_CHARS = 8192
"""Language guessing reads only the start: it is slow on big inputs and gains little."""
_FENCE = re.compile(r"\A```[ \t]*([\w+#.-]*)[ \t]*\r?\n(.*?)\r?\n?```[ \t]*\Z", re.DOTALL)
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


@dataclass(frozen=True, slots=True)
class Fenced:
    code: str
    language_hint: str | None


def clean_title(title: str) -> str:
    """One line, no control characters (a title ends up in email subjects and headers)."""
    flat = " ".join("".join(" " if _is_control(ch) else ch for ch in title).split())
    if not flat:
        raise BadTitle("The snippet needs a title.")
    if len(flat) > MAX_TITLE_CHARS:
        raise BadTitle(
            f"The title is too long ({len(flat)} characters; at most {MAX_TITLE_CHARS})."
        )
    return flat


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} and ch not in "\u200d"


def unwrap_fence(text: str) -> Fenced:
    """```` ```python\\ncode\\n``` ```` → the code and `python`; anything else as it is."""
    match = _FENCE.match(text.strip())
    if match is None:
        return Fenced(text, None)
    return Fenced(match.group(2), match.group(1) or None)


def check_code(code: str, max_bytes: int) -> str:
    if not code.strip():
        raise NoCode("There is no code to save.")
    if "\x00" in code:
        raise NotText("The code contains NUL bytes; that looks like a binary file, not text.")
    size = len(code.encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        raise SnippetTooLarge(
            f"The snippet is too large ({_size(size)}; the limit is {_size(max_bytes)})."
        )
    try:
        code.encode("utf-8")
    except UnicodeEncodeError:
        raise NotText("The text is not valid Unicode.") from None
    return code


def decode_file(data: bytes, max_bytes: int) -> str:
    """A file's bytes as text: UTF-8, or a BOM's encoding, or what a charset detector finds.

    Binary files and bytes no charset explains are refused with `NotText`.
    """
    if not data:
        raise ValidationError("The file is empty.")
    if len(data) > max_bytes:
        raise SnippetTooLarge(
            f"The file is too large ({_size(len(data))}; the limit is {_size(max_bytes)})."
        )
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return check_code(data.decode(encoding), max_bytes * 4)
            except UnicodeDecodeError:
                raise NotText("The file says it is Unicode text but does not decode.") from None
    if b"\x00" in data:
        raise NotText("That looks like a binary file, not source code.")
    try:
        return check_code(data.decode("utf-8"), max_bytes)
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    # Without a BOM, UTF-16/32 text is full of NULs (refused above): guessing it means noise.
    if best is None or best.encoding.startswith(("utf_16", "utf_32")) or _looks_binary(str(best)):
        raise NotText("The file is not text in any encoding I know; is it a binary file?")
    return check_code(str(best), max_bytes * 4)


def _looks_binary(text: str) -> bool:
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f")
    return controls > max(1, len(text) // 100)


def detect_language(code: str, *, hint: str | None = None, filename: str | None = None) -> str:
    """The canonical Pygments name (`Python`, `JavaScript`, …), or `Text`."""
    for find in (_by_hint, _by_filename):
        lexer = find(hint if find is _by_hint else filename, code)
        if lexer is not None:
            return _canonical(lexer.name)
    return _guess(code[:GUESS_SAMPLE_CHARS])


# Pygments' own guessing picks exotic lexers for everyday code (Python as "Tera Term macro"),
# so content is matched against telling lines of common languages first.
_SIGNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.MULTILINE))
    for name, pattern in (
        (
            "Python",
            r"^\s*(def \w+\(.*\)\s*(->.*)?:|class \w+(\(.*\))?:|from [\w.]+ import |"
            r"import \w+$|if __name__ == |elif .*:$|print\()",
        ),
        ("Go", r"^(package \w+$|func (\(\w+ \*?\w+\) )?\w+\(|import \($)"),
        ("Rust", r"^\s*(fn \w+|pub (fn|struct|enum)|use \w+::|let mut |impl\b|#\[derive)"),
        (
            "TypeScript",
            # Typed members (`name: string;`) also outvote CSS's `property: value;` lines.
            r"^\s*(interface \w+ \{|type \w+ = |\w+\(.*: (string|number)\b|"
            r"(readonly )?\w+\??: (string|number|boolean)(\[\])?;)",
        ),
        (
            "JavaScript",
            r"^\s*(const \w+ = |let \w+ = |function \w*\(|console\.log\(|"
            r"module\.exports|export (default|const|function))",
        ),
        (
            "Java",
            r"^\s*(public (static |final )*(class|void|interface)|System\.out\.|"
            r"import java\.)",
        ),
        ("C#", r"^\s*(using System|namespace \w+|public (partial )?class \w+ *:?)"),
        ("C++", r"^\s*(#include <(iostream|vector|string)>|std::|template ?<|using namespace)"),
        ("C", r"^\s*(#include <\w+\.h>|int main\(|printf\()"),
        ("Ruby", r"^\s*(def \w+[?!]?$|end$|puts |require ['\"])"),
        ("PHP", r"<\?php"),
        ("Bash", r"^(#!/.*\b(ba|z)?sh\b|\s*(echo|export|fi|done)\b|.*\$\{?\w+\}?)"),
        (
            "SQL",
            r"(?i)^\s*(select\s+[\w*]|insert into |create table |update \w+ set |delete from |"
            r"alter table )",
        ),
        ("HTML", r"(?i)^\s*(<!doctype html|<html|<div\b|<body\b)"),
        ("CSS", r"^\s*[.#]?[\w-]+\s*\{\s*$|^\s*[\w-]+:\s*[^;]+;\s*$"),
        ("YAML", r"^---$|^\w[\w-]*:\s*$|^\s*- \w+:"),
        ("JSON", r"\A\s*[\[{]\s*\""),
    )
)


_PHP_OPEN_TAG = re.compile(r"<\?php\b")


def _guess(code: str) -> str:
    if _PHP_OPEN_TAG.search(code):
        return "PHP"  # decisive, though its `$variables` score as shell lines below
    scores = {name: len(sign.findall(code)) for name, sign in _SIGNS}
    best = max(scores, key=lambda name: scores[name])
    if scores[best]:
        return best
    try:
        lexer = guess_lexer(code)
    except ClassNotFound:
        return PLAIN_TEXT
    return _canonical(lexer.name) if lexer.analyse_text(code) >= 0.5 else PLAIN_TEXT


def _by_hint(hint: str | None, code: str) -> Lexer | None:
    if not hint:
        return None
    try:
        return get_lexer_by_name(hint.strip().lower())
    except ClassNotFound:
        return None


def _by_filename(filename: str | None, code: str) -> Lexer | None:
    if not filename:
        return None
    try:
        return get_lexer_for_filename(PurePath(filename).name, code[:GUESS_SAMPLE_CHARS])
    except ClassNotFound:
        return None


def _canonical(name: str) -> str:
    return PLAIN_TEXT if name in {"Text only", "Text output"} else name


@lru_cache(maxsize=512)
def file_extension(language: str) -> str:
    """`.py` for `Python`: the first file pattern of the language's lexer, else `.txt`.

    Cached: a name that is no lexer's (`Text`, the plain-text name) makes Pygments scan every
    lexer and the plugin entry points, and this runs on every /get.
    """
    lexer_class = find_lexer_class(language)
    for pattern in getattr(lexer_class, "filenames", ()) or ():
        match = re.fullmatch(r"\*(\.[\w+-]+)", pattern)
        if match:
            return match.group(1)
    return ".txt"


def file_name(title: str, language: str) -> str:
    """A safe attachment/document name built from the title: `quick_sort.py`."""
    stem = re.sub(r"[^\w.-]+", "_", title, flags=re.UNICODE).strip("._")[:60] or "snippet"
    extension = file_extension(language)
    return stem if stem.lower().endswith(extension) else stem + extension


def _size(size: int) -> str:
    return f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} bytes"
