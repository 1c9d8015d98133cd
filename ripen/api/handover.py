"""The sales fast lane, and sales' answers: accept, reject with a reason, sales stages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from engine import tracking
from engine.bootstrap import Ripen
from engine.handover import FEEDBACK_LINKS_VALID, HandoverError
from engine.store.tables import Handover
from engine.timeline import UnknownLead, timeline
from engine.tokens import Purpose, TokenExpired, TokenInvalid
from ripen.api.edge import behind_api_key, client_ip, require_api_key
from ripen.api.pages import message, page


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=60, description="a code from config/sla.yaml")
    note: str | None = Field(default=None, max_length=500)


class StageIn(BaseModel):
    stage: Literal["SFC", "BAN", "BCI", "LPN", "ANG", "ABS", "lost", "no_time",
                   "buying_center", "budget_frozen"]
    note: str | None = Field(default=None, max_length=500)


def push_handover(ripen: Ripen, handover_id: int | None, tasks: BackgroundTasks) -> None:
    """A handover made by a request (fast lane) goes out right after the answer, not at the
    next tick: its webhook, then the rep's mail."""
    if handover_id is not None:
        tasks.add_task(ripen.push_handovers, [handover_id])


def router(ripen: Ripen) -> APIRouter:
    api = APIRouter()
    service = ripen.handovers

    # --- the fast lane ------------------------------------------------------------------

    @api.get("/fast-lane/{token}", response_class=HTMLResponse, tags=["fast lane"])
    def fast_lane_page(token: str) -> HTMLResponse:
        """"Talk to an expert": a page with a button (mail scanners only ever GET)."""
        try:
            ripen.tokens.loads(Purpose.FAST_LANE, token, now=ripen.clock())
        except (TokenInvalid, TokenExpired):
            return message("Link ungültig", "Dieser Link ist nicht gültig.", status=404)
        return message("Mit einem Experten sprechen",
                       "Ein Experte aus unserem Team meldet sich innerhalb eines Werktags "
                       "bei Ihnen — per E-Mail, oder telefonisch, wenn Sie dem zugestimmt "
                       "haben.", action=f"/fast-lane/{token}",
                       buttons=[("contact", "yes", "Ja, bitte kontaktieren Sie mich", False)])

    @api.post("/fast-lane/{token}", response_class=HTMLResponse, tags=["fast lane"])
    def fast_lane(token: str, request: Request, tasks: BackgroundTasks) -> HTMLResponse:
        """The contact request: the lead goes to sales at once, whatever its score."""
        try:
            handover_id = tracking.contact_request(
                ripen.journeys, ripen.tokens, token,
                ip=client_ip(request, ripen.settings.trusted_proxies))
        except (TokenInvalid, TokenExpired):
            return message("Link ungültig", "Dieser Link ist nicht gültig.", status=404)
        push_handover(ripen, handover_id, tasks)
        return message("Vielen Dank!", "Ein Experte meldet sich in Kürze bei Ihnen.")

    # --- sales answers through signed links (from the rep's notification) ----------------

    def _handover_from(token: str) -> str | None:
        try:
            return ripen.tokens.loads(Purpose.SALES_FEEDBACK, token, now=ripen.clock(),
                                      max_age=FEEDBACK_LINKS_VALID)
        except (TokenInvalid, TokenExpired):
            return None

    @api.get("/h/{token}", response_class=HTMLResponse, tags=["sales feedback"])
    def answer_page(token: str) -> HTMLResponse:
        """Names the lead; accept, or reject with one of the agreed reasons, with a note."""
        handover_id = _handover_from(token)
        lead = service.for_answer(handover_id) if handover_id else None
        if lead is None:
            return message("Link ungültig", "Dieser Link ist ungültig oder abgelaufen.",
                           status=404)
        buttons = [("decision", "accept", "Lead annehmen", False)] + [
            ("decision", f"reject:{r.code}", f"Ablehnen: {r.label}", True)
            for r in ripen.config.sla.rejection_reasons]
        view = ripen.tokens.dumps(Purpose.LEAD_VIEW, lead["lead_id"], now=ripen.clock())
        return page("answer.html", title="Lead annehmen oder ablehnen", lead=lead,
                    action=f"/h/{token}", buttons=buttons, timeline_url=f"/l/{view}")

    @api.get("/l/{token}", response_class=HTMLResponse, tags=["sales feedback"])
    def lead_view(token: str) -> HTMLResponse:
        """The rep's read-only view of a lead's timeline (the link in the notification,
        valid as long as the answer link)."""
        try:
            public_id = ripen.tokens.loads(Purpose.LEAD_VIEW, token, now=ripen.clock(),
                                           max_age=FEEDBACK_LINKS_VALID)
        except (TokenInvalid, TokenExpired):
            public_id = None
        story = None
        if public_id is not None:
            with ripen.uow() as uow:
                person = uow.lead_by_public_id(public_id)
                email = person.email if person is not None else None
            if email:
                try:
                    story = timeline(ripen.uow, email, service.explain)
                except UnknownLead:
                    story = None
        if story is None:
            return message("Link ungültig", "Dieser Link ist ungültig oder abgelaufen.",
                           status=404)
        return page("workbench/lead_view.html", story=story)

    @api.post("/h/{token}", response_class=HTMLResponse, tags=["sales feedback"])
    async def answer_by_link(token: str, request: Request) -> HTMLResponse:
        handover_id = _handover_from(token)
        if handover_id is None:
            return message("Link ungültig", "Dieser Link ist ungültig oder abgelaufen.",
                           status=404)
        form = await request.form()
        decision = str(form.get("decision") or "")
        note = str(form.get("note") or "")[:2000] or None
        try:
            if decision == "accept":
                service.answer(handover_id, "accept", note=note)
                return message("Angenommen", "Der Lead gehört jetzt Ihnen (SAL).")
            if decision.startswith("reject:"):
                service.answer(handover_id, "reject", reason=decision.removeprefix("reject:"),
                               note=note)
                return message("Abgelehnt", "Der Lead geht zurück in die Pflege.")
        except HandoverError as exc:
            return message("Nicht möglich", str(exc), status=409)
        return message("Bitte wählen", "Bitte annehmen oder einen Grund wählen.", status=422)

    # --- sales answers through the API (API key) ---------------------------------------

    @api.post("/api/handovers/{handover_id}/accept", tags=["sales feedback"],
              **behind_api_key(404, 409))
    def accept(handover_id: str, request: Request) -> JSONResponse:
        require_api_key(request, ripen.settings.api_keys)
        return _answer(lambda: service.answer(handover_id, "accept"))

    @api.post("/api/handovers/{handover_id}/reject", tags=["sales feedback"],
              **behind_api_key(404, 409, 422))
    def reject(handover_id: str, body: RejectIn, request: Request) -> JSONResponse:
        require_api_key(request, ripen.settings.api_keys)
        return _answer(lambda: service.answer(handover_id, "reject", reason=body.reason,
                                              note=body.note))

    @api.post("/api/leads/{lead_id}/stage", tags=["sales feedback"],
              **behind_api_key(404, 409, 422))
    def stage(lead_id: str, body: StageIn, request: Request) -> Response:
        """Sales progress SFC → BAN → BCI → LPN → ANG → ABS (won), or a lost outcome."""
        require_api_key(request, ripen.settings.api_keys)
        try:
            lead = service.progress(lead_id, body.stage, note=body.note)
        except HandoverError as exc:
            status = 404 if str(exc) == "no such lead" else 409
            return JSONResponse({"error": str(exc)}, status_code=status)
        return JSONResponse({"lead": lead.public_id, "sales_stage": lead.sales_stage,
                             "funnel_stage": lead.funnel_stage})

    def _answer(call: Callable[[], Handover]) -> JSONResponse:
        try:
            handover = call()
        except HandoverError as exc:
            status = 404 if str(exc) == "no such handover" else \
                422 if str(exc).startswith("a rejection needs") else 409
            return JSONResponse({"error": str(exc)}, status_code=status)
        return JSONResponse({"handover": handover.public_id, "status": handover.status,
                             "rejection_code": handover.rejection_code})

    return api
