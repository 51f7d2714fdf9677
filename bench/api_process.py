"""`python -m bench.api_process`: `snippetvault api` as deployed, plus the HTTP floors' routes.

The same entry point as the console script (`bot.cli.main(["api"])`: uvicorn with httptools,
the services and the outbox worker in its lifespan), with bench routes added to the app it
builds, so that floors and product share one server, one process and one event loop:

- `GET /__bench/constant`: returns a constant (the framework floor: uvicorn, Starlette's
  routing, FastAPI's JSON response and the app's middleware, nothing of ours);
- `/__bench/io/...`: each route's unavoidable round trips made with the bare drivers (an
  asyncpg pool, redis-py) and nothing else (the I/O floors):
  - session: one SELECT of the token's session (by `jti`, given as a query parameter: the
    floor does not verify the JWT) joined to its user;
  - `get/{id}` (cached): session + one Redis GET of `snippet:<id>` + one INSERT of the outbox
    row (autocommit);
  - `cold/{id}`: session + one Redis GET (a miss) + one SELECT by id + one Redis SET + the
    outbox INSERT;
  - `save` (POST): session + one transaction {UPDATE the ref counter RETURNING, INSERT the
    snippet, INSERT the outbox row} + one Redis DEL of the cached list;
  - `list`: session + one Redis GET of the cached first page;
  - `search?q=`: session + one SELECT of the page with its total.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException, Request, Response

import api.app
import api.server
from bench.floors import INSERT_SNIPPET_SQL, NEXT_REF_SQL, OUTBOX_SQL, UNSYNCED

SESSION_BY_JTI_SQL = """
SELECT u.id, u.email, s.expires_at
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.jti = $1 AND s.revoked_at IS NULL
"""
SNIPPET_BY_ID_SQL = "SELECT * FROM snippets WHERE id = $1 AND owner_id = $2"
SEARCH_20_SQL = """
SELECT id, ref, title, language, created_at, count(*) OVER () AS total
FROM snippets
WHERE owner_id = $1 AND (lower(title) LIKE $2 OR lower(code) LIKE $2)
ORDER BY created_at DESC, ref DESC LIMIT 20
"""
JSON = "application/json"


class _Drivers:
    def __init__(self, dsn: str, redis_url: str) -> None:
        self.dsn, self.redis_url = dsn, redis_url
        self.pools: dict[bool, asyncpg.Pool] = {}
        self.redis = aioredis.Redis.from_url(redis_url)

    async def connection(self, *, wait_for_disk: bool = True) -> Any:
        """A pooled connection; the GET floors' (`wait_for_disk=False`) commit the email
        without waiting for the disk, as the product's do."""
        if wait_for_disk not in self.pools:
            # Small: the server's own pools and the bench's other connections share the
            # database's connection limit.
            self.pools[wait_for_disk] = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=4,
                server_settings={} if wait_for_disk else UNSYNCED,
            )
        return self.pools[wait_for_disk].acquire()


def email_context(snippet: dict[str, Any]) -> str:
    """The outbox row's context, as the product's: the worker in this process sends the
    floor's emails as it sends the product's."""
    title = str(snippet["title"])
    return json.dumps(
        {
            "title": title,
            "language": snippet["language"],
            "ref": snippet["ref"],
            "code": snippet["code"],
            "filename": title.replace(" ", "_") + ".py",
        }
    )


def add_floor_routes(app: FastAPI, drivers: _Drivers) -> None:
    async def session(connection: asyncpg.Connection, jti: str) -> asyncpg.Record:
        row = await connection.fetchrow(SESSION_BY_JTI_SQL, jti)
        if row is None:
            raise HTTPException(401)
        return row

    async def outbox(
        connection: asyncpg.Connection, to: str, context: str, kind: str = "snippet_retrieved"
    ) -> None:
        email_id = uuid.uuid4()
        await connection.execute(
            OUTBOX_SQL,
            email_id,
            f"<{email_id.hex}@floor>",
            to,
            kind,
            context,
            datetime.now(UTC),
        )

    @app.get("/__bench/constant", include_in_schema=False)
    async def constant() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/__bench/io/get/{snippet_id}", include_in_schema=False)
    async def cached_get(snippet_id: str, jti: str) -> Response:
        async with await drivers.connection(wait_for_disk=False) as connection:
            user = await session(connection, jti)
            value = await drivers.redis.get(f"snippet:{snippet_id}")
            if value is None:
                raise HTTPException(404, "the floor of a cached GET needs the snippet cached")
            text = value.decode() if isinstance(value, bytes) else value
            await outbox(connection, user["email"], email_context(json.loads(text)))
        return Response(text, media_type=JSON)

    @app.get("/__bench/io/cold/{snippet_id}", include_in_schema=False)
    async def cold_get(snippet_id: str, jti: str) -> Response:
        async with await drivers.connection(wait_for_disk=False) as connection:
            user = await session(connection, jti)
            key = f"floor:cold:{snippet_id}:{uuid.uuid4().hex}"
            await drivers.redis.get(key)
            row = await connection.fetchrow(SNIPPET_BY_ID_SQL, uuid.UUID(snippet_id), user["id"])
            if row is None:
                raise HTTPException(404)
            snippet = {
                "id": snippet_id,
                "title": row["title"],
                "code": row["code"],
                "language": row["language"],
                "ref": row["ref"],
            }
            value = json.dumps(snippet)
            await drivers.redis.set(key, value, ex=60)
            await outbox(connection, user["email"], email_context(snippet))
        return Response(value, media_type=JSON)

    @app.post("/__bench/io/save", include_in_schema=False)
    async def save(request: Request, jti: str) -> Response:
        body = await request.json()
        now = datetime.now(UTC)
        async with await drivers.connection() as connection:
            user = await session(connection, jti)
            async with connection.transaction():
                ref = await connection.fetchval(NEXT_REF_SQL, user["id"])
                snippet_id = uuid.uuid4()
                await connection.execute(
                    INSERT_SNIPPET_SQL,
                    snippet_id,
                    user["id"],
                    ref,
                    body["title"],
                    body["code"],
                    "python",
                    now,
                )
                created = {
                    "title": body["title"],
                    "language": "python",
                    "ref": ref,
                    "created_at": now.isoformat(),
                }
                await outbox(connection, user["email"], json.dumps(created), "snippet_created")
        await drivers.redis.delete(f"user:{user['id']}:snippets")
        return Response(json.dumps({"id": str(snippet_id), "ref": ref}), 201, media_type=JSON)

    @app.get("/__bench/io/list", include_in_schema=False)
    async def list_first_page(jti: str) -> Response:
        async with await drivers.connection() as connection:
            user = await session(connection, jti)
        value = await drivers.redis.get(f"user:{user['id']}:snippets")
        if value is None:
            raise HTTPException(404, "the floor of the first page needs the list cached")
        return Response(value, media_type=JSON)

    @app.get("/__bench/io/search", include_in_schema=False)
    async def search(jti: str, q: str) -> Response:
        async with await drivers.connection() as connection:
            user = await session(connection, jti)
            rows = await connection.fetch(SEARCH_20_SQL, user["id"], f"%{q.lower()}%")
        return Response(json.dumps({"items": len(rows)}), media_type=JSON)


def main() -> int:
    drivers = _Drivers(os.environ["BENCH_DSN"], os.environ["REDIS_URL"])
    create_app = api.app.create_app

    def with_floors(*args: Any, **kwargs: Any) -> FastAPI:
        app = create_app(*args, **kwargs)
        add_floor_routes(app, drivers)
        return app

    # The server builds its app by this name: the deployed server, with the floors added.
    setattr(api.server, "create_app", with_floors)  # noqa: B010
    from bot.cli import main as cli_main

    profile = os.environ.get("BENCH_PROFILE")
    if not profile:
        return cli_main(["api", *sys.argv[1:]])
    # A profile of the event loop's thread for the process's whole life (a tool for NOTES.md).
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        return cli_main(["api", *sys.argv[1:]])
    finally:
        profiler.stop()
        Path(profile).write_text(profiler.output_text(unicode=False, show_all=False))


if __name__ == "__main__":
    raise SystemExit(main())
