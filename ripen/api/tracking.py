"""Tracked links and events from other systems."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from engine.addresses import InvalidAddress, normalise_email
from engine.bootstrap import Ripen
from engine.tokens import TokenExpired, TokenInvalid
from engine.tracking import follow
from ripen.api.edge import client_ip, require_api_key
from ripen.api.pages import message


class EventIn(BaseModel):
    email: str
    type: Literal["visit", "webinar_registered", "webinar_attended", "form_submitted",
                  "download", "reply", "contact_request"]
    content_id: str | None = Field(default=None, max_length=80)
    page: str | None = Field(default=None, max_length=500)
    occurred_at: datetime | None = None
    idempotency_key: str | None = Field(default=None, max_length=120)


def router(ripen: Ripen) -> APIRouter:
    api = APIRouter()

    @api.get("/c/{token}", tags=["tracking"], response_model=None)
    def click(token: str, request: Request) -> Response:
        """Record the click and redirect to the stored destination (never one from the URL)."""
        try:
            result = follow(ripen.journeys, ripen.tokens, token,
                            user_agent=request.headers.get("user-agent"),
                            ip=client_ip(request, ripen.settings.trusted_proxies))
        except (TokenInvalid, TokenExpired):
            return message("Link ungültig", "Dieser Link ist nicht gültig.", status=404)
        return RedirectResponse(result.url, status_code=302,
                                headers={"Referrer-Policy": "no-referrer",
                                         "Cache-Control": "no-store"})

    @api.post("/api/events", status_code=202, tags=["tracking"])
    def event(body: EventIn, request: Request) -> JSONResponse:
        """Website visits, webinar attendance, form fills … from other systems (API key)."""
        require_api_key(request, ripen.settings.api_keys)
        try:
            email = normalise_email(body.email)
        except InvalidAddress as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        if body.content_id is not None and body.content_id not in ripen.config.content:
            return JSONResponse({"error": f'unknown content "{body.content_id}"'},
                                status_code=422)
        with ripen.uow() as uow:
            lead = uow.lead_by_email(email)
        if lead is None or lead.id is None:
            return JSONResponse({"status": "ignored", "reason": "unknown lead"}, status_code=202)
        occurred = body.occurred_at
        if occurred is not None and occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=UTC)  # no zone given: the API speaks UTC
        if occurred is not None and occurred > ripen.clock():
            occurred = ripen.clock()  # events from the future do not count early
        ripen.journeys.record_event(lead_id=lead.id, type=body.type, content_id=body.content_id,
                                    occurred_at=occurred, source="api",
                                    data={"page": body.page} if body.page else {},
                                    idempotency_key=body.idempotency_key)
        return JSONResponse({"status": "recorded"}, status_code=202)

    return api
