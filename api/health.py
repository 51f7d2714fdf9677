"""`/healthz`: whether this process can serve now (for load balancers and orchestrators)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from core.errors import StorageUnavailable

router = APIRouter()
RETRY_AFTER = {"Retry-After": "5"}


@router.get("/healthz", include_in_schema=False)
async def healthz(request: Request) -> JSONResponse:
    services = getattr(request.app.state, "services", None)
    bot = getattr(request.app.state, "bot", None)
    if services is None or (bot is not None and not bot.running):
        return JSONResponse({"status": "starting"}, status_code=503, headers=RETRY_AFTER)
    try:
        await services.database.ping()
    except StorageUnavailable:
        return JSONResponse(
            {"status": "database unavailable"}, status_code=503, headers=RETRY_AFTER
        )
    return JSONResponse({"status": "ok"})
