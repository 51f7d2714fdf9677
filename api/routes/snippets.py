"""Snippets: `/snippets` and `/snippets/{id}`, the owner's UUID or short ref alike."""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response, status

from api.dependencies import CallerDep
from api.errors import documented
from api.schemas import NewSnippet, SnippetChanges, SnippetOut, SnippetPage
from core.errors import BadRef
from core.organise import clean_tags
from core.snippets import MAX_SEARCH_CHARS, SnippetKey, parse_ref

router = APIRouter(tags=["snippets"])

MAX_PAGE = 100
MAX_OFFSET = 1_000_000
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

IdPath = Annotated[
    str,
    Path(
        alias="id",
        max_length=36,
        description="The snippet's UUID, or its owner's short ref (`3`, as `/get 3` in chat).",
        examples=["3", "5d0c7a52-2d4e-4c2a-9a59-1b8e8f7e2a10"],
    ),
]


def snippet_key(raw: str) -> SnippetKey:
    """A UUID, or a ref; anything else is a 422 naming the path's `id`."""
    if _UUID.fullmatch(raw):
        return UUID(raw)
    return parse_ref(raw) if raw.isascii() and raw.isdigit() else _bad_ref(raw)


def _bad_ref(raw: str) -> SnippetKey:
    raise BadRef(raw)


_BY_ID = {"id": "$response.body#/id"}
CREATED_LINKS: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "The new snippet.",
        "links": {
            "GetSnippet": {"operationId": "get_snippet", "parameters": _BY_ID},
            "UpdateSnippet": {"operationId": "update_snippet", "parameters": _BY_ID},
            "DeleteSnippet": {"operationId": "delete_snippet", "parameters": _BY_ID},
        },
    }
}


@router.post(
    "/snippets",
    status_code=status.HTTP_201_CREATED,
    operation_id="create_snippet",
    summary="Save a snippet",
    description="The language is detected from the code unless given. Queues a `New Snippet "
    "Created` email. `Location` names the new snippet.",
    responses={**CREATED_LINKS, **documented(400, 401, 413, 422, 503)},
)
async def create_snippet(body: NewSnippet, caller: CallerDep, response: Response) -> SnippetOut:
    user, services = caller.user, caller.services
    if body.tags:
        clean_tags(body.tags)  # refused before anything is stored
    saved = await services.snippets.create(user, body.title, body.code, language_hint=body.language)
    snippet = saved.snippet
    if body.tags:
        snippet = await services.organise.tag(user, snippet.id, body.tags)
    response.headers["Location"] = f"/snippets/{snippet.id}"
    return SnippetOut.of(snippet)


@router.get(
    "/snippets",
    operation_id="list_snippets",
    summary="List or search your snippets",
    description="Newest first, without their code. With `q`, only those whose title or code "
    "holds it.",
    responses=documented(401, 422, 503),
)
async def list_snippets(
    caller: CallerDep,
    q: Annotated[
        str | None,
        Query(
            max_length=MAX_SEARCH_CHARS,
            pattern="^[^\x00]*$",
            description="Text to find in titles and code.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    tag: Annotated[
        str | None, Query(max_length=64, description="Only snippets with this tag.")
    ] = None,
) -> SnippetPage:
    user, services = caller.user, caller.services
    if tag is not None:
        page = await services.organise.filter(user, tag, q, offset, limit)
    elif q is not None and q.strip():
        page = await services.snippets.search(user, q, offset, limit)
    else:
        page = await services.snippets.list(user, offset, limit)
    return SnippetPage.of(page, limit=limit, offset=offset)


@router.get(
    "/snippets/{id}",
    operation_id="get_snippet",
    summary="Get a snippet",
    description="Read through the cache (`snippet:<id>`). Queues a `Your Requested Snippet` "
    "email with the code.",
    responses=documented(401, 404, 422, 503),
)
async def get_snippet(snippet_id: IdPath, caller: CallerDep) -> SnippetOut:
    saved = await caller.services.snippets.get(caller.user, snippet_key(snippet_id))
    return SnippetOut.of(saved.snippet)


@router.patch(
    "/snippets/{id}",
    operation_id="update_snippet",
    summary="Change a snippet",
    description="Any of title, code and language; the rest stays.",
    responses=documented(400, 401, 404, 413, 422, 503),
)
async def update_snippet(snippet_id: IdPath, body: SnippetChanges, caller: CallerDep) -> SnippetOut:
    user, services = caller.user, caller.services
    key = snippet_key(snippet_id)
    if body.tags is not None:
        clean_tags(body.tags)  # refused before anything changes
    snippet = None
    if body.title is not None or body.code is not None or body.language is not None:
        snippet = await services.snippets.update(
            user, key, title=body.title, code=body.code, language=body.language
        )
    if body.tags is not None:
        snippet = await services.organise.set_tags(user, key, body.tags)
    assert snippet is not None  # the schema asks for at least one field
    return SnippetOut.of(snippet)


@router.delete(
    "/snippets/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="delete_snippet",
    summary="Delete a snippet",
    description="Queues a `Snippet Deleted` email.",
    responses=documented(401, 404, 422, 503),
)
async def delete_snippet(snippet_id: IdPath, caller: CallerDep) -> Response:
    await caller.services.snippets.delete(caller.user, snippet_key(snippet_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
