"""Operator endpoints behind an API key: GDPR export and erasure."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from engine import gdpr
from engine.addresses import InvalidAddress
from engine.bootstrap import Ripen
from ripen.api.edge import behind_api_key, require_api_key


class EraseRequest(BaseModel):
    email: str


def router(ripen: Ripen) -> APIRouter:
    api = APIRouter(prefix="/api/gdpr", tags=["gdpr"])

    @api.get("/export", **behind_api_key(404, 422))
    def export(email: str, request: Request) -> JSONResponse:
        """Everything held about one person (Art. 15/20 GDPR)."""
        require_api_key(request, ripen.settings.api_keys)
        return _answer(lambda: gdpr.export(ripen.uow, email))

    @api.post("/erase", **behind_api_key(404, 422))
    def erase(body: EraseRequest, request: Request) -> JSONResponse:
        """Erase one person (Art. 17 GDPR); only a hashed suppression entry remains."""
        require_api_key(request, ripen.settings.api_keys)
        return _answer(lambda: {"erased": True,
                                "kept_anonymous": gdpr.erase(
                                    ripen.uow, body.email, clock=ripen.clock,
                                    webhooks=ripen.config.sla.webhooks)})

    return api


def _answer(action: Any) -> JSONResponse:
    try:
        return JSONResponse(action())
    except InvalidAddress as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    except gdpr.UnknownLead as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
