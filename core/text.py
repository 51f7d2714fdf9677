"""Turning what people send into a snippet: titles, code, fences, files and languages."""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePath

from charset_normalizer import from_bytes
from pygments.lexers import get_all_lexers, get_lexer_for_filename, guess_lexer
from pygments.util import ClassNotFound

from core.errors import BadTitle, NoCode, NotText, SnippetTooLarge, ValidationError
from core.sandbox import Sandbox, SandboxError

MAX_TITLE_CHARS = 200
PLAIN_TEXT = "Text"
SIGNS_SAMPLE_CHARS = 8192
"""Content is matched against telling lines of common languages in this much of the start."""
GUESS_SAMPLE_CHARS = 2048
"""Pygments' guess reads only this much: some of its guessers take quadratic time (8 KB of
newlines took 3.7 s), and more text gains little."""
FILENAME_SAMPLE_CHARS = 1024
"""When several lexers claim a file name (`.h`), Pygments weighs their guessers on this much."""
MAX_FILENAME_CHARS = 255
"""File names are matched against Pygments' patterns on at most this much of their end."""
GUESS_DEADLINE_SECONDS = 0.5
"""Longest a save waits for Pygments' guess (run in a child process) before settling on Text."""
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

    Binary files and bytes no charset explains are refused with `NotText`. A file that is not
    UTF-8 takes a while (the charset detector: 100 ms for 512 KB): a server calls this in a
    thread.
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


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
"""Unicode's control characters (category Cc) but tab, line feed, form feed and carriage return."""


def _looks_binary(text: str) -> bool:
    return len(_CONTROL.findall(text)) > max(1, len(text) // 100)


def detect_language(code: str, *, hint: str | None = None, filename: str | None = None) -> str:
    """The canonical Pygments name (`Python`, `JavaScript`, …), or `Text`.

    Runs Pygments' guess in this thread: call it where a stall does not matter (tests, a
    child process); a server uses `detect_language_quickly` and a `LanguageGuesser`.
    """
    quick = detect_language_quickly(code, hint=hint, filename=filename)
    return quick if quick is not None else guess_with_pygments(guess_sample(code), filename)


def detect_language_quickly(
    code: str, *, hint: str | None = None, filename: str | None = None
) -> str | None:
    """The language from the hint, the file name or telling lines, in time linear in a capped
    sample and without importing any lexer; None when only Pygments can tell (its guess, or
    its weighing of the several lexers that claim the file name): `guess_with_pygments`."""
    named = _by_hint(hint.strip().lower()) if hint else None
    if named is not None:
        return named
    claims = file_claims(filename)
    if len(claims) == 1:
        return claims[0]
    if claims:
        return None  # `.h`: C or Objective-C, which Pygments weighs on the code
    return _by_signs(code[:SIGNS_SAMPLE_CHARS])


def guess_sample(code: str) -> str:
    """What Pygments' guess may read of `code`."""
    return code[:GUESS_SAMPLE_CHARS]


class LanguageGuesser:
    """Pygments' guess in a child process with a deadline: `Text` when it overruns.

    The process starts on the first guess; `close()` stops it.
    """

    def __init__(self, deadline: float = GUESS_DEADLINE_SECONDS) -> None:
        self._sandbox = Sandbox(deadline=deadline, name="language guess", warm_up=_warm_up_guessing)

    async def __call__(self, sample: str, filename: str | None = None) -> str:
        try:
            return await self._sandbox.run(
                guess_with_pygments, sample[:GUESS_SAMPLE_CHARS], filename
            )
        except SandboxError:
            return PLAIN_TEXT

    async def close(self) -> None:
        await self._sandbox.close()


# Pygments' own guessing picks exotic lexers for everyday code (Python as "Tera Term macro"),
# so content is matched against telling lines of common languages first. Each pattern takes time
# linear in its input: it is anchored to line starts (or to the start of the text) and, from a
# line start, never runs past the line's end (`[ \t]`, not `\s`; one unbounded `.*` at most), so
# no line is scanned again from every line before it.
_SIGNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.MULTILINE))
    for name, pattern in (
        (
            "Python",
            r"^[ \t]*(def \w+\(.*:|class \w+(\(.*\))?:|from [\w.]+ import |"
            r"import \w+$|if __name__ == |elif .*:$|print\()",
        ),
        ("Go", r"^(package \w+$|func (\(\w+ \*?\w+\) )?\w+\(|import \($)"),
        ("Rust", r"^[ \t]*(fn \w+|pub (fn|struct|enum)|use \w+::|let mut |impl\b|#\[derive)"),
        (
            "TypeScript",
            # Typed members (`name: string;`) also outvote CSS's `property: value;` lines.
            r"^[ \t]*(interface \w+ \{|type \w+ = |\w+\(.*: (string|number)\b|"
            r"(readonly )?\w+\??: (string|number|boolean)(\[\])?;)",
        ),
        (
            "JavaScript",
            r"^[ \t]*(const \w+ = |let \w+ = |function \w*\(|console\.log\(|"
            r"module\.exports|export (default|const|function))",
        ),
        (
            "Java",
            r"^[ \t]*(public (static |final )*(class|void|interface)|System\.out\.|"
            r"import java\.)",
        ),
        ("C#", r"^[ \t]*(using System|namespace \w+|public (partial )?class \w+ *:?)"),
        ("C++", r"^[ \t]*(#include <(iostream|vector|string)>|std::|template ?<|using namespace)"),
        ("C", r"^[ \t]*(#include <\w+\.h>|int main\(|printf\()"),
        ("Ruby", r"^[ \t]*(def \w+[?!]?$|end$|puts |require ['\"])"),
        ("PHP", r"<\?php"),
        ("Bash", r"^(#!/.*\b(ba|z)?sh\b|[ \t]*(echo|export|fi|done)\b|.*\$\{?\w+\}?)"),
        (
            "SQL",
            r"(?i)^[ \t]*(select[ \t]+[\w*]|insert into |create table |update \w+ set |"
            r"delete from |alter table )",
        ),
        ("HTML", r"(?i)^[ \t]*(<!doctype html|<html|<div\b|<body\b)"),
        ("CSS", r"^[ \t]*[.#]?[\w-]+[ \t]*\{[ \t]*$|^[ \t]*[\w-]+:[ \t]*[^;\n \t][^;\n]*;[ \t]*$"),
        ("YAML", r"^---$|^\w[\w-]*:[ \t]*$|^[ \t]*- \w+:"),
        ("JSON", r"\A\s*[\[{]\s*\""),
    )
)


_PHP_OPEN_TAG = re.compile(r"<\?php\b")


def _by_signs(code: str) -> str | None:
    if _PHP_OPEN_TAG.search(code):
        return "PHP"  # decisive, though its `$variables` score as shell lines below
    scores = {name: len(sign.findall(code)) for name, sign in _SIGNS}
    best = max(scores, key=lambda name: scores[name])
    return best if scores[best] else None


def guess_with_pygments(sample: str, filename: str | None = None) -> str:
    """Pygments' choice among the lexers that claim `filename`, else its guess from the
    content. Slow on some inputs, and imports lexers as it goes (milliseconds each, on first
    use): a server runs it through `LanguageGuesser`."""
    weighed = lexer_for_file(filename, sample)
    if weighed is not None:
        return weighed
    try:
        lexer = guess_lexer(sample)
    except ClassNotFound:
        return PLAIN_TEXT
    return _canonical(lexer.name) if lexer.analyse_text(sample) >= 0.5 else PLAIN_TEXT


def lexer_for_file(filename: str | None, code: str) -> str | None:
    """Pygments' choice among the lexers that claim `filename` (their guessers weighed on the
    start of `code`), or None when none does. Imports those lexers: for a thread or a child
    process, not the event loop."""
    if not file_claims(filename):
        return None
    assert filename is not None
    try:
        lexer = get_lexer_for_filename(_base_name(filename), code[:FILENAME_SAMPLE_CHARS])
    except ClassNotFound:
        return None
    return _canonical(lexer.name)


def _warm_up_guessing() -> None:
    guess_lexer("x")  # imports every lexer module once, before the first deadline runs


# What Pygments knows of each lexer (name, aliases, file patterns), read from its table of names
# (`get_all_lexers(plugins=False)`) rather than from the lexers: looking a name up through
# Pygments imports the lexer's module (3–10 ms on first use) and, for a name no lexer has
# (`Text`), scans every installed package's entry points for plugins (70 ms). These lookups run
# on the event loop, on every /get and /save, so one user's first snippet in a new language
# would hold every other user's replies that long. Lookups here follow Pygments' order: the
# first lexer in its table with that name or alias wins.
@dataclass(frozen=True)
class _LexerTable:
    name_by_alias: dict[str, str]
    first_alias: dict[str, str]
    extension: dict[str, str]
    by_suffix: dict[str, list[tuple[int, str]]]
    """`*.py` patterns by their suffix (`.py`): nearly all of them, matched by lookups."""
    by_file_name: dict[str, list[tuple[int, str]]]
    """Patterns without wildcards (`Dockerfile`)."""
    other_patterns: tuple[tuple[int, re.Pattern[str], str], ...]
    """The dozen left (`Makefile.*`, `*.[1-9]`), matched as Pygments does."""


def _read_lexer_table() -> _LexerTable:
    """Each file pattern keeps its place in Pygments' order, so that claims come in it."""
    name_by_alias: dict[str, str] = {}
    first_alias: dict[str, str] = {}
    extension: dict[str, str] = {}
    by_suffix: dict[str, list[tuple[int, str]]] = {}
    by_file_name: dict[str, list[tuple[int, str]]] = {}
    other_patterns: list[tuple[int, re.Pattern[str], str]] = []
    order = 0
    for name, aliases, patterns, _ in get_all_lexers(plugins=False):
        for alias in aliases:
            name_by_alias.setdefault(alias, name)
        first_alias.setdefault(name, aliases[0] if aliases else "plaintext")
        extensions = [pattern[1:] for pattern in patterns if _EXTENSION.fullmatch(pattern)]
        extension.setdefault(name, extensions[0] if extensions else ".txt")
        for pattern in patterns:
            order += 1
            if _SUFFIX.fullmatch(pattern):
                by_suffix.setdefault(pattern[1:], []).append((order, name))
            elif not _WILDCARD.search(pattern):
                by_file_name.setdefault(pattern, []).append((order, name))
            else:
                other_patterns.append((order, re.compile(fnmatch.translate(pattern)), name))
    return _LexerTable(
        name_by_alias, first_alias, extension, by_suffix, by_file_name, tuple(other_patterns)
    )


_EXTENSION = re.compile(r"\*(\.[\w+-]+)")
_WILDCARD = re.compile(r"[*?\[\]]")
_SUFFIX = re.compile(r"\*\.[^*?\[\]]+")
_LEXERS = _read_lexer_table()


def _by_hint(alias: str) -> str | None:
    """The language a fence's alias (`py`) names."""
    name = _LEXERS.name_by_alias.get(alias)
    return _canonical(name) if name is not None else None


def file_claims(filename: str | None) -> tuple[str, ...]:
    """The languages whose lexers claim `filename` by its name (`*.py`, `Dockerfile`), in
    Pygments' order, each once: a lookup per dot in the name, not a pattern per lexer."""
    if not filename:
        return ()
    name = _base_name(filename)
    table = _LEXERS
    found = list(table.by_file_name.get(name, ()))
    dot = name.find(".")
    while dot != -1:
        found += table.by_suffix.get(name[dot:], ())
        dot = name.find(".", dot + 1)
    found += [
        (order, language)
        for order, pattern, language in table.other_patterns
        if pattern.match(name)
    ]
    return tuple(dict.fromkeys(_canonical(language) for _, language in sorted(found)))


def _base_name(filename: str) -> str:
    return PurePath(filename[-MAX_FILENAME_CHARS:]).name


def _canonical(name: str) -> str:
    return PLAIN_TEXT if name in {"Text only", "Text output"} else name


def language_alias(language: str) -> str:
    """`python` for `Python`: the first alias of the language's lexer, else `plaintext`."""
    return _LEXERS.first_alias.get(language, "plaintext")


def file_extension(language: str) -> str:
    """`.py` for `Python`: the first file pattern of the language's lexer, else `.txt`."""
    return _LEXERS.extension.get(language, ".txt")


def file_name(title: str, language: str) -> str:
    """A safe attachment/document name built from the title: `quick_sort.py`."""
    stem = re.sub(r"[^\w.-]+", "_", title, flags=re.UNICODE).strip("._")[:60] or "snippet"
    extension = file_extension(language)
    return stem if stem.lower().endswith(extension) else stem + extension


def _size(size: int) -> str:
    return f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} bytes"
