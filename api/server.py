"""The one HTTP server of a process (uvicorn, on the process's only event loop).

`serve` binds `HTTP_HOST:HTTP_PORT` first (a taken port is one clear line, before Telegram is
asked anything), then runs uvicorn, whose lifespan starts the bot, the services and the worker
(`api.runtime`). SIGINT/SIGTERM stop it gracefully: no new connections, the requests and
updates in flight are finished, then the lifespan stops what it started and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.app import create_app
from api.runtime import Runtime
from core.settings import Settings, SettingsError

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACEFUL_SHUTDOWN_SECONDS = 20


async def serve(settings: Settings, *, with_bot: bool, with_worker: bool) -> None:
    """Runs until SIGINT/SIGTERM; raises what made start-up fail (for the CLI to word)."""
    listener = bind(settings)
    runtime = Runtime(settings, with_bot=with_bot, with_worker=with_worker)
    config = uvicorn.Config(
        _QuietStartupFailure(create_app(settings, runtime=runtime)),
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=False,  # api.client_address believes only TRUSTED_PROXIES
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = _Server(config)
    log.info("HTTP on http://%s:%s (API docs at /docs)", settings.http_host, settings.http_port)
    try:
        await server.serve(sockets=[listener])
    except SystemExit:
        # uvicorn exits this way when the lifespan failed; the CLI words the cause.
        if runtime.startup_error is not None:
            raise runtime.startup_error from None
        raise
    finally:
        listener.close()


def bind(settings: Settings) -> socket.socket:
    host, port = settings.http_host, settings.http_port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(address)
        except OSError:
            listener.close()
            raise
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            reason = "is already in use (another snippetvault, or another server)"
        else:
            reason = f"cannot be listened on ({error.strerror or error})"
        raise SettingsError(
            f"HTTP_PORT: {host}:{port} {reason}; set HTTP_HOST/HTTP_PORT to a free address"
        ) from None
    listener.listen(2048)
    listener.setblocking(False)
    return listener


class _Server(uvicorn.Server):
    """uvicorn re-raises a caught SIGTERM once it stopped, which would end the process by the
    signal (exit status -15) instead of returning: stop on the loop's handlers instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self.handle_exit, signum, None)
        try:
            yield
        finally:
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)


class _QuietStartupFailure:
    """Starlette reports a failed lifespan with its traceback, which uvicorn logs; the CLI says
    the same in one line that names the setting."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def quiet_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                message = {"type": message["type"], "message": ""}
            await send(message)

        await self.app(scope, receive, quiet_send)
