"""Export and import archives: a zip with one file per snippet and `snippets.json`, or a
GitHub Gist archive (a zip of files). Pure functions, meant to run in a worker thread.

Reading a zip trusts nothing it declares: the number of entries, every path, each entry's
type, and the unpacked bytes are checked as they are read, in chunks, stopping at the caps
(zip bombs, path traversal, symlinks, archives in archives). Any refusal refuses the whole
archive, before anything is stored.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import stat
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from core.entities import Revision, Snippet, User
from core.errors import ValidationError
from core.organise import MAX_VERSIONS, clean_tags
from core.ports import Clock, SnippetCache, UnitOfWorkFactory
from core.text import (
    PLAIN_TEXT,
    check_code,
    clean_title,
    decode_file,
    detect_language_quickly,
    file_name,
    lexer_for_file,
)

MANIFEST = "snippets.json"
FORMAT = "snippetvault"
FORMAT_VERSION = 1
MAX_ARCHIVE_BYTES = 10 * 1024 * 1024
"""The zip as sent; Telegram lets bots download 20 MB."""
MAX_ENTRIES = 500
MAX_UNPACKED_BYTES = 20 * 1024 * 1024
MAX_DEPTH = 4
"""Path components of an entry: `gist-abc/dir/sub/file.py` is 4."""
MAX_RATIO = 100
"""Unpacked bytes per compressed byte of an entry; source code compresses 3 to 10 times."""
RATIO_ALLOWANCE = 64 * 1024
"""Tiny entries compress absurdly well (a run of spaces); below this, the ratio is not judged."""
CHUNK_BYTES = 64 * 1024
_ARCHIVE_SUFFIXES = (".zip", ".jar", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")
_SKIPPED = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|\._)")


class ArchiveRefused(ValidationError):
    """The archive breaks a rule; nothing of it was imported."""


@dataclass(frozen=True, slots=True)
class ImportItem:
    title: str
    code: str
    language: str
    tags: tuple[str, ...] = ()
    revisions: tuple[Revision, ...] = field(default=())
    """Kept versions with a placeholder snippet id; numbered as in the export."""


@dataclass(frozen=True, slots=True)
class Imported:
    added: int
    skipped: int
    """Identical in title and code to a snippet already there (or earlier in the archive)."""


class ArchiveService:
    """`export` and `import_archive`: the zip work runs in a thread, bounded by the caps
    above, so other users' commands go on meanwhile."""

    def __init__(
        self, uow: UnitOfWorkFactory, cache: SnippetCache, clock: Clock, max_snippet_bytes: int
    ) -> None:
        self._uow = uow
        self._cache = cache
        self._now = clock
        self._max_snippet_bytes = max_snippet_bytes

    async def export(self, owner: User) -> bytes:
        async with self._uow() as uow:
            await uow.autocommit()
            snippets = list(await uow.snippets.all_of(owner.id))
            # One query for every snippet's versions, not one per snippet.
            revisions = await uow.revisions.of_owner(owner.id)
        kept = [(snippet, revisions.get(snippet.id, [])) for snippet in snippets]
        return await asyncio.to_thread(build_export, kept, self._now())

    async def import_archive(self, owner: User, data: bytes) -> Imported:
        """All or nothing: one transaction, a few statements whatever the archive holds; no
        email per snippet (an import is one act)."""
        items = await asyncio.to_thread(read_import, data, self._max_snippet_bytes)
        now = self._now()
        async with self._uow() as uow:
            present = {(s.title, s.code) for s in await uow.snippets.all_of(owner.id)}
            fresh: dict[tuple[str, str], ImportItem] = {}
            for item in items:
                if (item.title, item.code) not in present:
                    fresh.setdefault((item.title, item.code), item)
            added = list(fresh.values())
            if added:
                first_ref = await uow.users.reserve_snippet_refs(owner.id, len(added))
                created = [
                    Snippet(
                        id=uuid.uuid4(),
                        owner_id=owner.id,
                        ref=first_ref + number,
                        title=item.title,
                        code=item.code,
                        language=item.language,
                        created_at=now,
                        updated_at=now,
                    )
                    for number, item in enumerate(added)
                ]
                await uow.snippets.add_all(created)
                pairs = list(zip(created, added, strict=True))
                await uow.tags.add_all(
                    owner.id, {snippet.id: item.tags for snippet, item in pairs if item.tags}
                )
                await uow.revisions.add_all(
                    [
                        replace(revision, snippet_id=snippet.id)
                        for snippet, item in pairs
                        for revision in item.revisions
                    ]
                )
            await uow.commit()
        if added:
            await self._cache.forget_list(owner.id)
        return Imported(len(added), len(items) - len(added))


# -- export -------------------------------------------------------------------------------


def build_export(snippets: list[tuple[Snippet, list[Revision]]], now: datetime) -> bytes:
    """One file per snippet (named from its title, with its language's extension) and
    `snippets.json` with every field, tags and kept versions."""
    buffer = io.BytesIO()
    used: set[str] = {MANIFEST}
    records = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for snippet, revisions in snippets:
            name = _unique(file_name(snippet.title, snippet.language), used)
            archive.writestr(name, snippet.code)
            records.append(
                {
                    "file": name,
                    "ref": snippet.ref,
                    "title": snippet.title,
                    "language": snippet.language,
                    "code": snippet.code,
                    "tags": list(snippet.tags),
                    "created_at": snippet.created_at.isoformat(),
                    "updated_at": snippet.updated_at.isoformat(),
                    "revisions": [
                        {
                            "number": revision.number,
                            "title": revision.title,
                            "language": revision.language,
                            "code": revision.code,
                            "created_at": revision.created_at.isoformat(),
                        }
                        for revision in revisions
                    ],
                }
            )
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "exported_at": now.isoformat(),
            "snippets": records,
        }
        archive.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
    return buffer.getvalue()


def _unique(name: str, used: set[str]) -> str:
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    candidate, number = name, 2
    while candidate.lower() in used:
        candidate = f"{stem}-{number}{dot}{extension}"
        number += 1
    used.add(candidate.lower())
    return candidate


# -- import -------------------------------------------------------------------------------


def read_import(data: bytes, max_snippet_bytes: int) -> list[ImportItem]:
    """The snippets an archive holds; `ArchiveRefused` (or another `ValidationError` naming
    the file) when any rule is broken."""
    files = unpack(data, max_snippet_bytes)
    manifest = next((content for name, content in files if _is_manifest(name)), None)
    if manifest is not None:
        return _from_manifest(manifest, max_snippet_bytes)
    if not files:
        raise ArchiveRefused("The archive holds no files.")
    items = []
    for name, content in files:
        base = name.rsplit("/", 1)[-1]
        try:
            code = decode_file(content, max_snippet_bytes)
            items.append(ImportItem(clean_title(base), code, _language(code, filename=base)))
        except ValidationError as error:
            raise ArchiveRefused(f"{base[:80]}: {error} Nothing was imported.") from None
    return items


def unpack(data: bytes, max_snippet_bytes: int) -> list[tuple[str, bytes]]:
    """The regular files of a zip as (path, bytes), every rule checked while reading."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise ArchiveRefused(f"The archive is too large (at most {MAX_ARCHIVE_BYTES // 2**20} MB).")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise ArchiveRefused("That is not a zip archive I can read.") from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            raise ArchiveRefused(f"The archive holds too many files (at most {MAX_ENTRIES}).")
        seen: set[str] = set()
        files: list[tuple[str, bytes]] = []
        budget = MAX_UNPACKED_BYTES
        for entry in entries:
            name = _checked_name(entry)
            if entry.is_dir() or _SKIPPED.search(name):
                continue
            if name.lower() in seen:
                raise ArchiveRefused(f"The archive holds {name[:80]} twice.")
            seen.add(name.lower())
            limit = budget if _is_manifest(name) else min(budget, max_snippet_bytes)
            content = _read_entry(archive, entry, limit, name)
            budget -= len(content)
            files.append((name, content))
        return files


def _checked_name(entry: zipfile.ZipInfo) -> str:
    name = entry.filename
    shown = name[:80].encode("ascii", "replace").decode()
    parts = name.rstrip("/").split("/")
    if (
        not name
        or "\x00" in name
        or "\\" in name
        or name.startswith("/")
        or re.match(r"[A-Za-z]:", name)
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ArchiveRefused(f"The archive holds an unsafe path ({shown}); nothing was imported.")
    if len(parts) > MAX_DEPTH:
        raise ArchiveRefused(
            f"The archive nests folders too deep ({shown}; at most {MAX_DEPTH} levels)."
        )
    mode = entry.external_attr >> 16
    kind = stat.S_IFMT(mode)  # 0 when the archiver recorded permissions only
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        raise ArchiveRefused(f"The archive holds a link or special file ({shown}).")
    if entry.flag_bits & 0x1:
        raise ArchiveRefused(f"The archive holds an encrypted file ({shown}).")
    if not entry.is_dir() and name.lower().endswith(_ARCHIVE_SUFFIXES):
        raise ArchiveRefused(f"The archive holds another archive ({shown}); unpack it first.")
    return name


def _read_entry(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, limit: int, name: str) -> bytes:
    """Reads in chunks and stops at `limit` or the ratio cap, whatever the header says."""
    shown = name[:80]
    allowed_by_ratio = max(entry.compress_size, 1) * MAX_RATIO + RATIO_ALLOWANCE
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(entry) as stream:
            while chunk := stream.read(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise ArchiveRefused(
                        f"{shown} unpacks to more than allowed "
                        f"({limit // 1024} KB left of the limits); nothing was imported."
                    )
                if size > allowed_by_ratio:
                    raise ArchiveRefused(
                        f"{shown} unpacks suspiciously large for its size (a zip bomb?)."
                    )
                chunks.append(chunk)
    except ArchiveRefused:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        NotImplementedError,
        RuntimeError,
        OSError,
        ValueError,
    ):
        raise ArchiveRefused(f"{shown} is damaged or packed in a way I cannot read.") from None
    return b"".join(chunks)


def _is_manifest(name: str) -> bool:
    return name == MANIFEST


def _from_manifest(raw: bytes, max_snippet_bytes: int) -> list[ImportItem]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ArchiveRefused(f"{MANIFEST} is not valid JSON; nothing was imported.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ArchiveRefused(f"{MANIFEST} is not a SnippetVault export.")
    records = data.get("snippets")
    if not isinstance(records, list) or len(records) > MAX_ENTRIES:
        raise ArchiveRefused(f"{MANIFEST} must list at most {MAX_ENTRIES} snippets.")
    return [_item(record, index, max_snippet_bytes) for index, record in enumerate(records, 1)]


def _item(record: Any, index: int, max_snippet_bytes: int) -> ImportItem:
    try:
        if not isinstance(record, dict):
            raise ValidationError("not an object.")
        title = clean_title(_text(record, "title"))
        code = check_code(_text(record, "code"), max_snippet_bytes)
        language = _language(code, hint=_text(record, "language", ""))
        tags_raw = record.get("tags", [])
        if not isinstance(tags_raw, list) or not all(isinstance(t, str) for t in tags_raw):
            raise ValidationError("tags must be a list of words.")
        revisions_raw = record.get("revisions", [])
        if not isinstance(revisions_raw, list):
            raise ValidationError("revisions must be a list.")
        revisions = tuple(
            _revision(raw, max_snippet_bytes) for raw in revisions_raw[-(MAX_VERSIONS - 1) :]
        )
        if len({revision.number for revision in revisions}) != len(revisions):
            raise ValidationError("two revisions have the same number.")
        return ImportItem(title, code, language, clean_tags(tags_raw), revisions)
    except ValidationError as error:
        raise ArchiveRefused(
            f"Snippet {index} in {MANIFEST}: {error} Nothing was imported."
        ) from None


def _revision(raw: Any, max_snippet_bytes: int) -> Revision:
    if not isinstance(raw, dict) or not isinstance(raw.get("number"), int):
        raise ValidationError("a revision needs a number.")
    number = raw["number"]
    if not 0 < number < 2**31:
        raise ValidationError("a revision number is out of range.")
    code = check_code(_text(raw, "code"), max_snippet_bytes)
    try:
        created = datetime.fromisoformat(_text(raw, "created_at"))
    except ValueError:
        raise ValidationError("a revision has a bad date.") from None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return Revision(
        snippet_id=UUID(int=0),  # set when the snippet is stored
        number=number,
        title=clean_title(_text(raw, "title")),
        code=code,
        language=_language(code, hint=_text(raw, "language", "")),
        created_at=created.astimezone(UTC),
    )


def _text(record: dict[str, Any], key: str, default: str | None = None) -> str:
    value = record.get(key, default)
    if not isinstance(value, str):
        raise ValidationError(f"{key} must be text.")
    return value


def _language(code: str, *, hint: str | None = None, filename: str | None = None) -> str:
    """The hint, the file name or telling lines; never Pygments' guess, which is slow on some
    inputs and an archive may hold hundreds of files (`Text` when nothing tells). Reading an
    archive runs in a thread, so Pygments may weigh the lexers that claim a file name."""
    quick = detect_language_quickly(code, hint=hint, filename=filename)
    return quick or lexer_for_file(filename, code) or PLAIN_TEXT
