"""A user's first snippet in a language nobody used yet must not hold the event loop.

Looking a language up through Pygments (`find_lexer_class`, `find_lexer_class_by_name`,
`get_lexer_for_filename`) imports the lexer's module on first use, 3–10 ms each, and for a name
no lexer has (`Text`, the plain-text name) scans every installed package's entry points for
plugins: 70 ms on the event loop, while every other user's replies waited. Each /get made two
such lookups (the code block's language class, the email attachment's extension), each /save
one (a fence's alias, a file's name). They now read Pygments' table of names instead.

Checked in a fresh interpreter, where nothing has imported a lexer yet: every lookup a reply
makes, for every language and alias Pygments knows and for common file names, imports no lexer
module and never looks for plugins. Counting imports, not timing them, so that a busy machine
cannot fail it and a fast one cannot hide a stall.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LOOKUPS = textwrap.dedent(
    """
    import sys

    import pygments.plugin

    def no_plugin_scan(*args, **kwargs):
        raise AssertionError("Pygments scanned the installed packages for plugin lexers")

    pygments.plugin.iter_entry_points = no_plugin_scan

    from pygments.lexers import get_all_lexers

    from bot.render import code_block
    from core.text import detect_language_quickly, file_name

    lexers = list(get_all_lexers(plugins=False))
    for name in [name for name, *_ in lexers] + ["Text", "No such language"]:
        code_block("x = 1", name)  # a /get's reply
        file_name("Quick sort", name)  # a /get's email attachment, a document's name
    for alias in {alias for _, aliases, _, _ in lexers for alias in aliases} | {"nope"}:
        detect_language_quickly("x = 1", hint=alias)  # a fenced /save
    for filename in ("tool.py", "Dockerfile", "notes.txt", "shape.h", "x.unknownext", "Makefile"):
        detect_language_quickly("x = 1", filename=filename)  # a document
    imported = sorted(
        module
        for module in sys.modules
        if module.startswith("pygments.lexers.") and module != "pygments.lexers._mapping"
    )
    print(" ".join(imported))
    """
)


def test_language_lookups_of_a_reply_import_no_lexer_and_scan_no_plugins() -> None:
    run = subprocess.run(
        [sys.executable, "-c", LOOKUPS],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == [], f"lexer modules imported: {run.stdout.strip()}"
