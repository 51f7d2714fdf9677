"""Titles, fences, code checks, file decoding, language detection and file names."""

from __future__ import annotations

import pytest

from core.errors import NotText, SnippetTooLarge, ValidationError
from core.text import (
    MAX_TITLE_CHARS,
    PLAIN_TEXT,
    Fenced,
    check_code,
    clean_title,
    decode_file,
    detect_language,
    detect_language_quickly,
    file_claims,
    file_extension,
    file_name,
    unwrap_fence,
)

MAX = 1024
PNG_HEADER = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"
)


# -- titles and fences --------------------------------------------------------------------


def test_clean_title_limits() -> None:
    assert clean_title("x" * MAX_TITLE_CHARS) == "x" * MAX_TITLE_CHARS
    with pytest.raises(ValidationError, match="too long"):
        clean_title("x" * (MAX_TITLE_CHARS + 1))
    with pytest.raises(ValidationError, match="too long"):
        clean_title("y" * 10_000)
    with pytest.raises(ValidationError, match="needs a title"):
        clean_title("\r\n\u2028\x00")


@pytest.mark.parametrize(
    ("text", "code", "hint"),
    [
        ("```python\nprint(1)\n```", "print(1)", "python"),
        ("```\nprint(1)\n```", "print(1)", None),
        ("```c++\nint x;\n```", "int x;", "c++"),
        ("```c#\nvar x = 1;\n```", "var x = 1;", "c#"),
        ("``` js \r\nlet a;\r\nlet b;\r\n```", "let a;\r\nlet b;", "js"),
        ("\n\n```py\nx = 1\n```  \n", "x = 1", "py"),
        ("```md\n```py\ninner\n```\n```", "```py\ninner\n```", "md"),
        ("```py\n\n    indented\n\n```", "\n    indented\n", "py"),
    ],
)
def test_unwrap_fence(text: str, code: str, hint: str | None) -> None:
    fenced = unwrap_fence(text)
    assert (fenced.code, fenced.language_hint) == (code, hint)


@pytest.mark.parametrize(
    "text",
    ["print(1)", "```py\nunclosed", "before\n```py\nx\n```", "```py\nx\n```\nafter", "`x`"],
)
def test_text_without_a_whole_fence_is_kept_as_it_is(text: str) -> None:
    assert unwrap_fence(text) == Fenced(text, None)


# -- code checks --------------------------------------------------------------------------


def test_check_code_counts_utf8_bytes() -> None:
    assert check_code("€" * (MAX // 3), MAX)
    with pytest.raises(SnippetTooLarge, match=r"1 KB"):
        check_code("€" * (MAX // 3 + 1), MAX)


@pytest.mark.parametrize(
    ("code", "error"),
    [("", ValidationError), (" \n", ValidationError), ("a\x00b", NotText), ("\udcff", NotText)],
)
def test_check_code_refuses(code: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_code(code, MAX)


# -- decoding files -----------------------------------------------------------------------


SOURCE = "# Größe: naïve café\nprint('ok')\n"
FRENCH = (
    "# Fonction qui calcule la moyenne des élèves\n"
    "def moyenne(notes):\n"
    "    return sum(notes) / len(notes)  # résultat\n"
)


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (SOURCE.encode(), SOURCE),
        (b"\xef\xbb\xbf" + SOURCE.encode(), SOURCE),
        (SOURCE.encode("utf-16"), SOURCE),
        (b"\xff\xfe" + SOURCE.encode("utf-16-le"), SOURCE),
        (b"\xfe\xff" + SOURCE.encode("utf-16-be"), SOURCE),
        (b"\xff\xfe\x00\x00" + SOURCE.encode("utf-32-le"), SOURCE),
        (FRENCH.encode("latin-1"), FRENCH),
        (b"x = 1\r\n", "x = 1\r\n"),
        (b"a" * MAX, "a" * MAX),
    ],
    ids=[
        "utf-8",
        "utf-8 bom",
        "utf-16 native bom",
        "utf-16 le bom",
        "utf-16 be bom",
        "utf-32 le bom",
        "latin-1",
        "crlf",
        "at the limit",
    ],
)
def test_decode_file_reads_text(data: bytes, text: str) -> None:
    assert decode_file(data, MAX) == text


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", ValidationError),
        (PNG_HEADER, NotText),
        (b"\x89PNG\r\n\x1a\n", NotText),  # the signature alone, no NUL to give it away
        (b"\xff\xd8\xff\xe0\x10JFIF\x01\x01\x01", NotText),
        (bytes(range(128, 256)), NotText),
        (b"print(1)\x00\n", NotText),
        (b"\xff\xfe" + "a\x00b".encode("utf-16-le"), NotText),  # NUL inside UTF-16
        (b"\xff\xfe" + b"a\x00b", NotText),  # odd length: not UTF-16 at all
        ("hello".encode("utf-16-le"), NotText),  # UTF-16 without a BOM is NULs
        (b"a" * (MAX + 1), SnippetTooLarge),
        (b"\xef\xbb\xbf" + b"a" * MAX, SnippetTooLarge),
    ],
    ids=[
        "zero bytes",
        "png header",
        "png signature",
        "jpeg header",
        "high bytes",
        "nul in utf-8",
        "nul in utf-16",
        "broken utf-16",
        "utf-16 without bom",
        "over the limit",
        "over the limit with a bom",
    ],
)
def test_decode_file_refuses(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_file(data, MAX)


# -- languages ----------------------------------------------------------------------------


SAMPLES = {
    "Python": (
        "import os\n\n\ndef main() -> None:\n    print(os.getcwd())\n\n\n"
        'if __name__ == "__main__":\n    main()\n'
    ),
    "JavaScript": (
        "const express = require('express');\nconst app = express();\n"
        "app.get('/', (req, res) => res.send('hi'));\nconsole.log(`listening on ${port}`);\n"
    ),
    "TypeScript": (
        "interface User {\n  name: string;\n  age: number;\n}\n\n"
        "export const greet = (u: User): string => `hi ${u.name}`;\n"
    ),
    "Go": 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hello")\n}\n',
    "Rust": (
        "use std::collections::HashMap;\n\nfn main() {\n    let mut counts = HashMap::new();\n"
        '    counts.insert("a", 1);\n}\n'
    ),
    "Java": (
        "public class Main {\n    public static void main(String[] args) {\n"
        '        System.out.println("hi");\n    }\n}\n'
    ),
    "C#": (
        "using System;\n\nnamespace Demo\n{\n    public class Program\n    {\n"
        '        static void Main() => Console.WriteLine("hi");\n    }\n}\n'
    ),
    "C++": (
        "#include <iostream>\n#include <vector>\n\nint main() {\n"
        "    std::vector<int> v{1, 2};\n    std::cout << v.size() << std::endl;\n}\n"
    ),
    "C": '#include <stdio.h>\n\nint main(void) {\n    printf("hi\\n");\n    return 0;\n}\n',
    "Ruby": "require 'json'\n\ndef greet(name)\n  puts \"Hello #{name}\"\nend\n",
    "PHP": "<?php\n$name = $_GET['name'];\necho \"Hello $name\";\n$items = [1, 2];\n",
    "Bash": '#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.log; do\n  echo "$f"\ndone\n',
    "SQL": (
        "SELECT u.id, u.email\nFROM users u\nWHERE u.is_verified = true\n"
        "ORDER BY u.created_at DESC;\n"
    ),
    "HTML": '<!DOCTYPE html>\n<html>\n<body>\n<div class="x">hi</div>\n</body>\n</html>\n',
    "CSS": ".button {\n  color: white;\n  background: #333;\n}\n",
    "YAML": (
        "name: CI\non:\n  push:\n    branches: [main]\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
    ),
    "JSON": '{\n  "name": "snippetvault",\n  "version": 1\n}\n',
    PLAIN_TEXT: "Remember to buy milk and eggs.\n",
}


@pytest.mark.parametrize(("language", "code"), SAMPLES.items(), ids=SAMPLES.keys())
def test_detect_language_from_content(language: str, code: str) -> None:
    assert detect_language(code) == language


@pytest.mark.parametrize(
    ("hint", "language"),
    [
        ("py", "Python"),
        ("python3", "Python"),
        (" PYTHON ", "Python"),
        ("js", "JavaScript"),
        ("ts", "TypeScript"),
        ("golang", "Go"),
        ("rs", "Rust"),
        ("cpp", "C++"),
        ("c++", "C++"),
        ("csharp", "C#"),
        ("sh", "Bash"),
        ("shell", "Bash"),
        ("yml", "YAML"),
        ("json", "JSON"),
        ("text", PLAIN_TEXT),
    ],
)
def test_detect_language_from_a_hint_wins_over_content(hint: str, language: str) -> None:
    assert detect_language(SAMPLES["Python"] if language != "Python" else "x", hint=hint) == (
        language
    )


@pytest.mark.parametrize(
    ("filename", "language"),
    [
        ("a.py", "Python"),
        ("dir/sub/tool.py", "Python"),
        ("app.js", "JavaScript"),
        ("app.ts", "TypeScript"),
        ("main.go", "Go"),
        ("lib.rs", "Rust"),
        ("Main.java", "Java"),
        ("Program.cs", "C#"),
        ("main.cpp", "C++"),
        ("main.c", "C"),
        ("x.rb", "Ruby"),
        ("index.php", "PHP"),
        ("run.sh", "Bash"),
        ("index.html", "HTML"),
        ("site.css", "CSS"),
        ("ci.yml", "YAML"),
        ("package.json", "JSON"),
        ("Dockerfile", "Docker"),
        ("notes.txt", PLAIN_TEXT),
    ],
)
def test_detect_language_from_a_file_name(filename: str, language: str) -> None:
    assert detect_language("", filename=filename) == language


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("#include <stdio.h>\nint add(int a, int b);\n", "C"),
        ("#import <Foundation/Foundation.h>\n@interface Shape : NSObject\n@end\n", "Objective-C"),
    ],
)
def test_a_file_name_several_languages_claim_is_left_to_pygments_weighing(
    code: str, language: str
) -> None:
    assert file_claims("shape.h") == ("C", "Objective-C")
    assert detect_language_quickly(code, filename="shape.h") is None  # the guess weighs them
    assert detect_language(code, filename="shape.h") == language


def test_an_unknown_hint_or_file_name_falls_back_to_content() -> None:
    code = SAMPLES["Go"]
    assert detect_language(code, hint="no-such-language") == "Go"
    assert detect_language(code, filename="main.unknownext") == "Go"
    assert detect_language(code, hint="", filename="") == "Go"


def test_language_guessing_reads_only_the_start_of_big_inputs() -> None:
    code = SAMPLES["Python"] + "x = 1\n" * 200_000
    assert detect_language(code) == "Python"


# -- file names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "extension"),
    [
        ("Python", ".py"),
        ("JavaScript", ".js"),
        ("TypeScript", ".ts"),
        ("Go", ".go"),
        ("Rust", ".rs"),
        ("Java", ".java"),
        ("C#", ".cs"),
        ("C++", ".cpp"),
        ("C", ".c"),
        ("Ruby", ".rb"),
        ("PHP", ".php"),
        ("Bash", ".sh"),
        ("SQL", ".sql"),
        ("HTML", ".html"),
        ("CSS", ".css"),
        ("YAML", ".yaml"),
        ("JSON", ".json"),
        (PLAIN_TEXT, ".txt"),
        ("No Such Language", ".txt"),
    ],
)
def test_file_extension(language: str, extension: str) -> None:
    assert file_extension(language) == extension


@pytest.mark.parametrize(
    ("title", "language", "name"),
    [
        ("Quick sort", "Python", "Quick_sort.py"),
        ("main.py", "Python", "main.py"),
        ("MAIN.PY", "Python", "MAIN.PY"),
        ("main.py", "Text", "main.py.txt"),
        ("../../etc/passwd", "Text", "etc_passwd.txt"),
        ("a/b\\c:d*e?f", "C", "a_b_c_d_e_f.c"),
        ("..", "Go", "snippet.go"),
        ("😀😀", "Rust", "snippet.rs"),
        ("Größe berechnen", "Java", "Größe_berechnen.java"),
        ("x" * 100, "Python", "x" * 60 + ".py"),
        ("line\r\nbreak", "Bash", "line_break.sh"),
    ],
)
def test_file_name_is_safe(title: str, language: str, name: str) -> None:
    assert file_name(title, language) == name
    assert "/" not in name
    assert "\\" not in name
