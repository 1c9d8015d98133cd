"""Tracked links and events from other systems."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from engine.addresses import InvalidAddress, normalise_email
from engine.bootstrap import Ripen
from engine.bounces import Bounce, BounceKind, apply_bounces
from engine.events import NewEvent
from engine.tokens import TokenExpired, TokenInvalid
from engine.tracking import LinkGone, follow, opened
from ripen.api.edge import Moment, behind_api_key, client_ip, require_api_key
from ripen.api.guard import HEAD
from ripen.api.handover import push_handover
from ripen.api.pages import message


class EventIn(BaseModel):
    email: str
    type: Literal["visit", "webinar_registered", "webinar_attended", "form_submitted",
                  "download", "reply", "contact_request"]
    content_id: str | None = Field(default=None, max_length=80)
    page: str | None = Field(default=None, max_length=500)
    occurred_at: Moment | None = None
    idempotency_key: str | None = Field(default=None, max_length=120)


class EventsIn(BaseModel):
    events: list[EventIn] = Field(min_length=1, max_length=1000)


#: A transparent 1×1 GIF, the smallest image every mail client loads.
PIXEL = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c"
                      "00000000010001000002024401003b")


class BounceIn(BaseModel):
    """One bounce or complaint as a relay or ESP reports it."""

    id: str = Field(min_length=1, max_length=100,
                    description="the reporter's id for this event: the same id counts once")
    type: Literal["hard", "soft", "complaint"]
    email: str | None = Field(default=None, max_length=320)
    message_id: str | None = Field(default=None, max_length=255,
                                   description="Message-ID of ripen's mail, with <>")
    status: str | None = Field(default=None, max_length=20, pattern=r"^[245]\.\d{1,3}\.\d{1,3}$",
                               description="enhanced status code, e.g. 5.1.1")
    detail: str = Field(default="", max_length=500)
    occurred_at: Moment | None = None


class BouncesIn(BaseModel):
    bounces: list[BounceIn] = Field(min_length=1, max_length=1000)


def _new_event(item: EventIn, lead_id: int, now: datetime) -> NewEvent:
    occurred = item.occurred_at
    if occurred is not None and occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)  # no zone given: the API speaks UTC
    if occurred is not None and occurred > now:
        occurred = now  # events from the future do not count early
    return NewEvent(lead_id=lead_id, type=item.type, content_id=item.content_id,
                    occurred_at=occurred, source="api",
                    data={"page": item.page} if item.page else {},
                    idempotency_key=item.idempotency_key)


def router(ripen: Ripen) -> APIRouter:
    api = APIRouter()

    @api.get("/c/{token}", tags=["tracking"], response_model=None)
    def click(token: str, request: Request, tasks: BackgroundTasks) -> Response:
        """Record the click and redirect to the stored destination (never one from the URL)."""
        try:
            result = follow(ripen.journeys, ripen.tokens, token,
                            user_agent=request.headers.get("user-agent"),
                            ip=client_ip(request, ripen.settings.trusted_proxies),
                            record=not request.scope.get(HEAD))
        except LinkGone:
            return message("Link nicht mehr verfügbar", "Dieser Link aus einer älteren E-Mail "
                           "ist nicht mehr verfügbar.", status=410)
        except (TokenInvalid, TokenExpired):
            return message("Link ungültig", "Dieser Link ist nicht gültig.", status=404)
        push_handover(ripen, result.handover_id, tasks)  # fast-lane content
        return RedirectResponse(result.url, status_code=302,
                                headers={"Referrer-Policy": "no-referrer",
                                         "Cache-Control": "no-store"})

    @api.get("/o/{token}.gif", tags=["tracking"], response_model=None)
    def open_pixel(token: str, request: Request) -> Response:
        """The open pixel: recorded only with tracking consent; always the same image."""
        # A broken pixel token shows the same image and records nothing.
        with contextlib.suppress(TokenInvalid, TokenExpired):
            if not request.scope.get(HEAD):  # a link checker's HEAD is no open
                opened(ripen.journeys, ripen.tokens, token,
                       user_agent=request.headers.get("user-agent"))
        return Response(PIXEL, media_type="image/gif",
                        headers={"Cache-Control": "no-store, private",
                                 "Referrer-Policy": "no-referrer"})

    @api.post("/api/events", status_code=202, tags=["tracking"], **behind_api_key(422))
    def event(body: EventIn, request: Request, tasks: BackgroundTasks) -> JSONResponse:
        """Website visits, webinar attendance, form fills … from other systems (API key)."""
        require_api_key(request, ripen.settings.api_keys)
        email, problem = _checked(body)
        if problem is not None:
            return JSONResponse({"error": problem}, status_code=422)
        with ripen.uow() as uow:
            lead = uow.lead_by_email(email or "")
        if lead is None or lead.id is None:
            return JSONResponse({"status": "ignored", "reason": "unknown lead"}, status_code=202)
        [recorded] = ripen.journeys.record_events([_new_event(body, lead.id, ripen.clock())])
        handover = recorded.handover_id if recorded is not None else None
        push_handover(ripen, handover, tasks)
        return JSONResponse({"status": "recorded", "handover": handover is not None},
                            status_code=202)

    @api.post("/api/events/batch", status_code=202, tags=["tracking"],
              **behind_api_key(422))
    def events(body: EventsIn, request: Request, tasks: BackgroundTasks) -> JSONResponse:
        """Up to 1,000 events in one transaction (web analytics, webinar platforms): each
        has the effect it would have alone; each lead is scored and qualified once."""
        require_api_key(request, ripen.settings.api_keys)
        checked = [_checked(item) for item in body.events]
        problems = [{"index": number, "error": problem}
                    for number, (_, problem) in enumerate(checked) if problem is not None]
        emails = [email for email, _ in checked]
        if problems:  # all or nothing: a batch with a bad event changes nothing
            return JSONResponse({"error": "invalid events", "events": problems[:100]},
                                status_code=422)
        with ripen.uow() as uow:
            leads = uow.leads_by_email(e for e in emails if e is not None)
        now = ripen.clock()
        batch, unknown = [], 0
        for item, email in zip(body.events, emails, strict=True):
            lead = leads.get(email or "")
            if lead is None or lead.id is None:
                unknown += 1
                continue
            batch.append(_new_event(item, lead.id, now))
        recorded = ripen.journeys.record_events(batch) if batch else []
        handovers = {r.handover_id for r in recorded if r is not None and r.handover_id}
        if handovers:  # their webhooks and the reps' notices, right after the answer
            tasks.add_task(ripen.push_handovers, sorted(handovers))
        return JSONResponse({"recorded": sum(1 for r in recorded if r is not None),
                             "duplicates": sum(1 for r in recorded if r is None),
                             "unknown_leads": unknown, "handovers": len(handovers)},
                            status_code=202)

    def _checked(item: EventIn) -> tuple[str | None, str | None]:
        """(normalised address, the reason the event is refused or None)."""
        try:
            email = normalise_email(item.email)
        except InvalidAddress as exc:
            return None, str(exc)
        if item.content_id is not None and item.content_id not in ripen.config.content:
            return email, f'unknown content "{item.content_id}"'
        return email, None

    @api.post("/api/bounces", tags=["tracking"], **behind_api_key(422))
    def bounces(body: BouncesIn, request: Request) -> JSONResponse:
        """Asynchronous bounces and complaints (API key): hard and complaint suppress at once."""
        require_api_key(request, ripen.settings.api_keys)
        found = []
        for number, item in enumerate(body.bounces):
            address = None
            if item.email is not None:
                try:
                    address = normalise_email(item.email)
                except InvalidAddress as exc:
                    return JSONResponse({"error": f"bounces[{number}].email: {exc}"},
                                        status_code=422)
            if address is None and item.message_id is None:
                return JSONResponse({"error": f"bounces[{number}]: give email or message_id"},
                                    status_code=422)
            occurred = item.occurred_at
            if occurred is not None and occurred.tzinfo is None:
                occurred = occurred.replace(tzinfo=UTC)
            if occurred is not None and occurred > ripen.clock():
                occurred = ripen.clock()
            found.append(Bounce(kind=BounceKind(item.type), email=address,
                                message_id=item.message_id, status=item.status,
                                detail=item.detail, key=f"api:{item.id}", occurred_at=occurred))
        counts = apply_bounces(ripen.uow, found, rules=ripen.config.mail.bounces,
                               clock=ripen.clock, webhooks=ripen.config.sla.webhooks)
        return JSONResponse({"recorded": sum(counts[k.value] for k in BounceKind),
                             "suppressed": counts["suppressed"],
                             "duplicates": counts["duplicate"],
                             "unknown": counts["unknown"]})

    return api
