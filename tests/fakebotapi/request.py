"""``FakeRequest``: a PTB request backend that answers from a ``FakeTelegram`` in-process.

PTB builds every URL itself (``base_url + token + "/" + method``; downloads are
``base_file_url + token + "/" + file_path`` through ``retrieve``), so this routes by URL exactly
as the HTTP server does, and feeds the state the same form fields and files ``HTTPXRequest``
would put on the wire. Any base URLs work, the defaults included: nothing leaves the process.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from tests.fakebotapi.records import BotApiError, UploadedFile
from tests.fakebotapi.state import FakeTelegram
from tests.fakebotapi.wire import ApiTarget, FileTarget, decode_fields, query_params, route


class FakeRequest(BaseRequest):
    """Pass one instance to ``ApplicationBuilder.request`` and another to
    ``get_updates_request``, as with real request objects."""

    def __init__(self, telegram: FakeTelegram, *, read_timeout: float | None = 5.0) -> None:
        self.telegram = telegram
        self._read_timeout = read_timeout
        self._shut_down = False

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        self._shut_down = False

    async def shutdown(self) -> None:
        self._shut_down = True

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
        if self._shut_down:  # as HTTPXRequest does once its client is closed
            raise RuntimeError("This FakeRequest is not initialized!")
        if self.telegram.offline:
            raise NetworkError("httpx.ConnectError: All connection attempts failed")
        if isinstance(read_timeout, DefaultValue):
            read_timeout = self._read_timeout
        try:
            async with asyncio.timeout(read_timeout):
                return await self._answer(url, request_data)
        except TimeoutError as exc:
            raise TimedOut from exc

    async def _answer(self, url: str, request_data: RequestData | None) -> tuple[int, bytes]:
        parts = urlsplit(url)
        target = route(parts.path)
        if isinstance(target, FileTarget):
            return self.telegram.download(target.token, target.file_path)
        if not isinstance(target, ApiTarget):
            return 404, json.dumps(BotApiError(404, "Not Found").to_json()).encode()
        params = query_params(parts.query)
        files: dict[str, UploadedFile] = {}
        if request_data is not None:
            params.update(decode_fields(request_data.json_parameters))
            for field, (filename, content, mime_type) in request_data.multipart_data.items():
                if not isinstance(content, bytes):
                    content.seek(0)
                    content = content.read()
                files[field] = UploadedFile(field, filename, content, mime_type)
        status, body = await self.telegram.call(target.token, target.method, params, files)
        return status, json.dumps(body).encode()
