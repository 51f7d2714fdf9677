"""Every request body is capped before anything reads it.

A pure ASGI middleware, outermost: a `Content-Length` over the cap is answered 413 before the
application runs; a body without one (chunked) is counted as it streams in, and the moment it
passes the cap the application is told the client left and the answer becomes 413. So no
route, parser or framework layer ever holds more than the cap in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self._limit_for = limit_for
        """The cap in bytes for a request path."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is None:
            await _refuse(send, 400, "The Content-Length header is not a number.")
            return
        if declared > limit:
            await _refuse(send, 413, _too_large(limit))
            return
        received = 0
        over = False
        answered = False

        async def limited_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # The application stops reading as if the client had gone; what it
                    # answers then is replaced by the 413 below.
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if over:
                return
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not answered:
            await _refuse(send, 413, _too_large(limit))


def _content_length(scope: Scope) -> int | float | None:
    """The declared length; 0 when there is none (chunked or empty); None when malformed."""
    values = [value for name, value in scope["headers"] if name == b"content-length"]
    if not values:
        return 0
    if len(set(values)) > 1 or not values[0].isdigit():
        return None
    # Compared, never allocated: a 40-digit length is simply over any cap.
    return int(values[0]) if len(values[0]) < 19 else float("inf")


def _too_large(limit: int) -> str:
    return f"The request body is too large: at most {limit} bytes."


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The rest of the body stays unread: the connection cannot carry another request.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
