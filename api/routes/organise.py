"""Organising over HTTP: tags, kept versions and restore, undo of a delete, export and import.
The same use cases as the chat's /tags, /history, the Undo button, /export and a sent zip."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from api.dependencies import CallerDep
from api.errors import documented
from api.routes.snippets import IdPath, snippet_key
from api.schemas import ImportOut, RevisionOut, SnippetOut, TagCount
from core.archive import MAX_ARCHIVE_BYTES
from core.organise import Version

router = APIRouter(tags=["organise"])

EXPORT_NAME = "snippetvault-export.zip"
NumberPath = Annotated[
    int, Path(alias="n", ge=1, le=2**31 - 1, description="The version's number.")
]


@router.get(
    "/tags",
    summary="Your tags",
    description="Each tag on your snippets with how many carry it, most used first.",
    responses=documented(401, 503),
)
async def list_tags(caller: CallerDep) -> list[TagCount]:
    tags = await caller.services.organise.tags(caller.user)
    return [TagCount(tag=tag, count=count) for tag, count in tags]


@router.get(
    "/snippets/{id}/revisions",
    summary="A snippet's versions",
    description="Oldest first, the current one last (at most 50). Every edit, rename and "
    "restore keeps the version before it.",
    responses=documented(401, 404, 422, 503),
)
async def list_revisions(snippet_id: IdPath, caller: CallerDep) -> list[RevisionOut]:
    _, versions = await caller.services.organise.history(caller.user, snippet_key(snippet_id))
    return [_revision(version) for version in versions]


@router.get(
    "/snippets/{id}/revisions/{n}",
    summary="One version, with its code",
    responses=documented(401, 404, 422, 503),
)
async def get_revision(snippet_id: IdPath, number: NumberPath, caller: CallerDep) -> RevisionOut:
    key = snippet_key(snippet_id)
    _, version = await caller.services.organise.version(caller.user, key, number)
    return _revision(version, with_code=True)


@router.post(
    "/snippets/{id}/revisions/{n}/restore",
    summary="Restore a version",
    description="Version `n` becomes the current one; the current one is kept as a version "
    "first, so a restore can be undone by another restore.",
    responses=documented(401, 404, 422, 503),
)
async def restore_revision(snippet_id: IdPath, number: NumberPath, caller: CallerDep) -> SnippetOut:
    user, services = caller.user, caller.services
    restored = await services.organise.restore(user, snippet_key(snippet_id), number)
    return SnippetOut.of(await services.snippets.view(user, restored.id))


@router.post(
    "/snippets/{id}/undelete",
    summary="Undo a delete",
    description="Within 10 minutes of `DELETE /snippets/{id}`: the snippet comes back with "
    "its ref, tags and versions. No email. Later (or never deleted): 404.",
    responses=documented(401, 404, 422, 503),
)
async def undelete_snippet(snippet_id: IdPath, caller: CallerDep) -> SnippetOut:
    user, services = caller.user, caller.services
    restored = await services.organise.undelete(user, snippet_key(snippet_id))
    return SnippetOut.of(await services.snippets.view(user, restored.id))


@router.get(
    "/export",
    summary="Export your snippets",
    description="A zip: one file per snippet, named from its title with its language's "
    "extension, and `snippets.json` with every field, tags and versions. `POST /import` "
    "takes it back.",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The zip."},
        **documented(401, 503),
    },
)
async def export_snippets(caller: CallerDep) -> Response:
    data = await caller.services.archive.export(caller.user)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{EXPORT_NAME}"'},
    )


@router.post(
    "/import",
    summary="Import a zip",
    description="The body is the zip's bytes (`Content-Type: application/octet-stream` or "
    "`application/zip`): an export of "
    "`GET /export`, or a GitHub Gist archive (each file a snippet). All or nothing: new refs; "
    "a snippet identical in title and code to one you have is skipped. At most "
    f"{MAX_ARCHIVE_BYTES // 2**20} MB, 500 files, 20 MB unpacked; unsafe archives (path "
    "traversal, links, zip bombs) are refused with a 422 saying why.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
    responses=documented(401, 413, 422, 503),
)
async def import_snippets(request: Request, caller: CallerDep) -> ImportOut:
    data = await request.body()  # capped by the body limit (MAX_ARCHIVE_BYTES on this path)
    result = await caller.services.archive.import_archive(caller.user, data)
    return ImportOut(added=result.added, skipped=result.skipped)


def _revision(version: Version, *, with_code: bool = False) -> RevisionOut:
    return RevisionOut(
        number=version.number,
        title=version.title,
        language=version.language,
        created_at=version.created_at,
        size=len(version.code.encode()),
        first_changed_line=version.first_changed_line,
        current=version.is_current,
        code=version.code if with_code else None,
    )
