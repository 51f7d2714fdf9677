"""The Mini App's built files (`make web` writes them to api/webapp/), served at `/app/`.

Everything is read and gzipped once at start-up: the files are small and never change while the
process runs. `index.html` is revalidated on every visit (it names the current build); the
assets carry a content hash in their names, so browsers may keep them for a year.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

WEBAPP_DIR = Path(__file__).with_name("webapp")
INDEX = "index.html"
TELEGRAM_ORIGIN = "https://telegram.org"
TELEGRAM_WEB_CLIENTS = (
    # Telegram Web (its /k/ and /a/ clients) and the older hosts of those same clients; the
    # phone and desktop apps open Mini Apps in their own web views, which frame-ancestors
    # does not concern.
    "https://web.telegram.org",
    "https://webk.telegram.org",
    "https://webz.telegram.org",
)
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        f"script-src 'self' {TELEGRAM_ORIGIN}",
        # CodeMirror sets inline styles on the editor's elements; scripts stay strict.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        # The API is served by the same server, under the same origin.
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "object-src 'none'",
        f"frame-ancestors {' '.join(TELEGRAM_WEB_CLIENTS)}",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=31536000, immutable"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str
    cache_control: str

    @classmethod
    def load(cls, path: Path, cache_control: str) -> StaticFile:
        body = path.read_bytes()
        media_type = _TYPES.get(path.suffix) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        packed = gzip.compress(body, compresslevel=9, mtime=0)
        return cls(
            body=body,
            gzipped=packed if len(packed) < len(body) else None,
            media_type=media_type,
            etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"',
            cache_control=cache_control,
        )

    def response(self, request: Request) -> Response:
        headers = {**SECURITY_HEADERS, "Cache-Control": self.cache_control, "ETag": self.etag}
        headers["Vary"] = "Accept-Encoding"
        if self.etag in _etags(request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        if self.gzipped is not None and _accepts_gzip(request.headers.get("accept-encoding", "")):
            headers["Content-Encoding"] = "gzip"
            return Response(self.gzipped, media_type=self.media_type, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


def load_webapp(directory: Path = WEBAPP_DIR) -> dict[str, StaticFile]:
    """The built files by their path under /app/; index.html under ''."""
    index = directory / INDEX
    if not index.is_file():
        raise FileNotFoundError(f"the Mini App is not built ({index} is missing): run `make web`")
    files = {"": StaticFile.load(index, PAGE_CACHE)}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path != index:
            name = path.relative_to(directory).as_posix()
            hashed = name.startswith("assets/")
            files[name] = StaticFile.load(path, ASSET_CACHE if hashed else PAGE_CACHE)
    return files


def mount_miniapp(app: FastAPI) -> None:
    """Serves the Mini App at `/app/` (and redirects `/app` there: its links are relative);
    the files and headers are the same under every configuration."""
    files = load_webapp()

    @app.get("/app", include_in_schema=False)
    async def app_without_slash(request: Request) -> Response:
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"app/{query}", status_code=308)

    @app.api_route("/app/{name:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def app_file(name: str, request: Request) -> Response:
        found = files.get(name)
        if found is None:
            return Response(
                b"Not Found", status_code=404, media_type="text/plain", headers=SECURITY_HEADERS
            )
        return found.response(request)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in {"gzip", "*"}:
            return params.replace(" ", "").lower() not in {"q=0", "q=0.0", "q=0.00", "q=0.000"}
    return False
