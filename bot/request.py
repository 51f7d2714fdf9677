"""How the bot talks to the Bot API: python-telegram-bot's `BaseRequest` on aiohttp.

Every reply, and every `getUpdates` poll, is one HTTP request. PTB's own `HTTPXRequest` spends
about 0.6–1 ms of CPU on each (httpx, httpcore and anyio's stream layers, measured on this
machine against a local server); aiohttp spends about 0.15 ms, so a command's reply costs a
quarter of what it did in the transport. Behaviour follows `HTTPXRequest`: the same default
timeouts (a longer write timeout for uploads), `TimedOut` for every timeout and `NetworkError`
for every other failure, proxies from `HTTPS_PROXY`/`ALL_PROXY` (read once per host),
certificates checked against certifi's bundle, HTTP/1.1 with keep-alive connections.

The bot token is part of every URL. aiohttp logs no URLs, and no message of ours carries one:
an error is described by its type and its text with the URL cut out.
"""

from __future__ import annotations

import functools
import ssl
import urllib.request

import aiohttp
import certifi
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput, UploadFileDict
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

DEFAULT_TIMEOUT = 5.0
DEFAULT_POOL_TIMEOUT = 1.0
DEFAULT_MEDIA_WRITE_TIMEOUT = 20.0


class AiohttpRequest(BaseRequest):
    """Bot API requests over one `aiohttp.ClientSession`, opened by `initialize`."""

    __slots__ = (
        "_connect_timeout",
        "_connection_pool_size",
        "_media_write_timeout",
        "_pool_timeout",
        "_read_timeout",
        "_session",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = 256,
        *,
        read_timeout: float | None = DEFAULT_TIMEOUT,
        write_timeout: float | None = DEFAULT_TIMEOUT,
        connect_timeout: float | None = DEFAULT_TIMEOUT,
        pool_timeout: float | None = DEFAULT_POOL_TIMEOUT,
        media_write_timeout: float | None = DEFAULT_MEDIA_WRITE_TIMEOUT,
    ) -> None:
        self._connection_pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is not None and not self._session.closed:
            return
        connector = aiohttp.TCPConnector(
            limit=self._connection_pool_size,
            ssl=ssl.create_default_context(cafile=certifi.where()),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self.USER_AGENT},
            # Not `trust_env`: it reads ~/.netrc and the proxy variables in a thread on every
            # request. The proxy is looked up once per host instead (`_proxy_for`).
            trust_env=False,
        )

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data is not None else None
        fields = request_data.json_parameters if request_data is not None else None
        timeout = self._timeout(
            read=_given(read_timeout, self._read_timeout),
            write=_given(
                write_timeout, self._media_write_timeout if files else self._write_timeout
            ),
            connect=_given(connect_timeout, self._connect_timeout),
            pool=_given(pool_timeout, self._pool_timeout),
        )
        data: aiohttp.FormData | dict[str, str] | None = fields
        if files:
            data = _multipart(fields or {}, files)
        try:
            target = URL(url)
            proxy = _proxy_for(target.scheme, target.host)
            async with session.request(
                method, url, data=data, timeout=timeout, proxy=proxy
            ) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as error:
            raise TimedOut(_describe(error, url)) from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{_describe(error, url)}") from error

    @staticmethod
    def _timeout(
        *, read: float | None, write: float | None, connect: float | None, pool: float | None
    ) -> aiohttp.ClientTimeout:
        """aiohttp knows no write timeout: the whole request is bounded by the sum of the four
        instead (sending the body, then waiting for the answer), as long as each is finite."""
        parts = (read, write, connect, pool)
        total = None if any(part is None for part in parts) else sum(p or 0.0 for p in parts)
        acquire = None if connect is None or pool is None else connect + pool
        return aiohttp.ClientTimeout(
            total=total, connect=acquire, sock_connect=connect, sock_read=read
        )


@functools.cache
def _proxy_for(scheme: str, host: str | None) -> str | None:
    """The proxy for a host from `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` (any case), none when
    `NO_PROXY` names it: what httpx, PTB's default, does. Read once per host."""
    if host is None or urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(scheme) or proxies.get("all")


def _given(value: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


def _multipart(fields: dict[str, str], files: UploadFileDict) -> aiohttp.FormData:
    form = aiohttp.FormData(quote_fields=False)
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (file_name, content, mime_type) in files.items():
        form.add_field(name, content, filename=file_name, content_type=mime_type)
    return form


def _describe(error: BaseException, url: str) -> str:
    """`TypeName: text`, with the request's URL (and so the bot token) cut out of the text."""
    text = " ".join(str(error).replace(url, "<url>").split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
