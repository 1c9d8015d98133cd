"""The marketer's workbench: read-only pages behind the API key (``/workbench``).

Every journey as a diagram with live counts per step, the leads at a step, a lead search
and each lead's timeline, the content matrix and the funnel report. Server-side rendered
(Jinja2), no JavaScript, no build step; nothing here changes data.

Signing in: the login form takes one of ``RIPEN_API_KEYS`` and sets a session cookie
(signed, HttpOnly, SameSite=Strict, 12 hours, bound to that key: removing the key from
RIPEN_API_KEYS ends its sessions). A script may send ``Authorization: Bearer KEY`` instead.
An anonymous visitor is sent to the login page; the pages are never public.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engine import abtest, kept, workbench
from engine.audit import audit_content
from engine.bootstrap import Ripen
from engine.config.journey import SendStep
from engine.diagram import boxes, mermaid, slowest_case
from engine.store.uow import UnitOfWork
from engine.timeline import UnknownLead, timeline
from engine.tokens import Purpose, TokenExpired, TokenInvalid
from ripen import html_report
from ripen.api.edge import client_ip, valid_api_key
from ripen.api.pages import page

COOKIE = "ripen_workbench"
SESSION = timedelta(hours=12)
PREFIX = "/workbench"


def _fingerprint(key: str) -> str:
    return hashlib.sha256(b"ripen.workbench:" + key.encode()).hexdigest()[:32]


def router(ripen: Ripen) -> APIRouter:
    api = APIRouter(include_in_schema=False)
    keys = ripen.settings.api_keys
    secure = ripen.settings.public_base_url.startswith("https://")

    def signed_in(request: Request) -> bool:
        if valid_api_key(request.headers.get("authorization", ""), keys):
            return True
        token = request.cookies.get(COOKIE, "")
        if not token:
            return False
        try:
            held = ripen.tokens.loads(Purpose.WORKBENCH, token, now=ripen.clock(),
                                      max_age=SESSION)
        except (TokenInvalid, TokenExpired):
            return False
        return any(hmac.compare_digest(held, _fingerprint(key)) for key in keys)

    def signed(request: Request) -> None:
        """Every page but the login's: an anonymous visitor is sent to the login (303)."""
        if not signed_in(request):
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(303, "sign in first", headers={
                "Location": f"{PREFIX}/login?next={quote(wanted, safe='')}"})

    pages = APIRouter(prefix=PREFIX, dependencies=[Depends(signed)])

    def show(_: Request, name: str, **context: Any) -> Response:
        return page(f"workbench/{name}", nav=PREFIX, **context)

    @api.get(f"{PREFIX}/login", response_class=HTMLResponse)
    def login_form(next: str = PREFIX) -> HTMLResponse:
        return page("workbench/login.html", next=_local(next), error=None,
                    no_keys=not keys)

    def locked_out(uow: UnitOfWork, address: str, now: datetime) -> timedelta | None:
        """How long an address that failed too often must still wait (None: it may try)."""
        recent = uow.sign_in_failures(address, since=now - workbench.SIGN_IN_LOCKOUT)
        if len(recent) >= workbench.FAILED_SIGN_INS:
            return recent[-workbench.FAILED_SIGN_INS] + workbench.SIGN_IN_LOCKOUT - now
        return None

    @api.post(f"{PREFIX}/login", response_model=None)
    async def login(request: Request) -> Response:
        form = await request.form()
        given, wanted = str(form.get("key", "")), _local(str(form.get("next", PREFIX)))
        address, now = client_ip(request, ripen.settings.trusted_proxies) or "?", ripen.clock()
        match = None
        with ripen.uow() as uow:  # the count and the attempt in one transaction
            wait = locked_out(uow, address, now)
            if wait is None:
                match = next((key for key in keys if hmac.compare_digest(given.encode(),
                                                                         key.encode())), None)
                if match is None:  # kept for the lockout only: older ones go with each new one
                    uow.record_sign_in_failure(address, now,
                                               forget_before=now - workbench.SIGN_IN_LOCKOUT)
                else:
                    uow.forget_sign_in_failures(address)
                uow.commit()
        if wait is not None:
            minutes = max(1, math.ceil(wait.total_seconds() / 60))
            return page("workbench/login.html", 429, next=wanted, no_keys=not keys,
                        headers={"Retry-After": str(math.ceil(wait.total_seconds()))},
                        error=f"Too many failed sign-ins from your address: try again in "
                              f"{minutes} min.")
        if match is None:
            return page("workbench/login.html", 401, next=wanted, no_keys=not keys,
                        error="That is not one of the API keys (RIPEN_API_KEYS).")
        answer = RedirectResponse(wanted, status_code=303)
        answer.set_cookie(COOKIE, ripen.tokens.dumps(Purpose.WORKBENCH, _fingerprint(match),
                                                     now=ripen.clock()),
                          max_age=int(SESSION.total_seconds()), path=PREFIX, httponly=True,
                          samesite="strict", secure=secure)
        return answer

    @api.post(f"{PREFIX}/logout", response_model=None)
    def logout() -> Response:
        answer = RedirectResponse(f"{PREFIX}/login", status_code=303)
        answer.delete_cookie(COOKIE, path=PREFIX)
        return answer

    @pages.get("", response_model=None)
    def journeys(request: Request) -> Response:
        now = ripen.clock()
        rows = []
        with ripen.uow() as uow:
            counts = workbench.counts_by_journey(uow, now)
        for journey in sorted(ripen.config.journeys.values(), key=lambda j: j.id):
            rows.append((journey, workbench.per_journey(counts.get(journey.id, {}))))
        return show(request, "journeys.html", title="Journeys", rows=rows,
                    paused=ripen.journeys.paused())

    @pages.get("/journeys/{journey_id}", response_model=None)
    def journey(request: Request, journey_id: str) -> Response:
        found = ripen.config.journeys.get(journey_id)
        if found is None:
            return page("workbench/missing.html", 404, nav=PREFIX, title="Not found",
                        what=f'no journey "{journey_id[:80]}"')
        with ripen.uow() as uow:
            counts = workbench.step_counts(uow, found.id, ripen.clock())
            tests = [abtest.step_result(uow, found, step_id) for step_id in found.order
                     if isinstance(step := found.steps[step_id], SendStep)
                     and step.send.variants]
        return show(request, "journey.html", title=found.model.name, journey=found,
                    tests=tests,
                    stages=boxes(found), counts=counts, slowest=slowest_case(found),
                    total=workbench.per_journey(counts), source=mermaid(found),
                    paused=found.id in ripen.journeys.paused())

    @pages.get("/journeys/{journey_id}/steps/{step_id}", response_model=None)
    def step(request: Request, journey_id: str, step_id: str) -> Response:
        found = ripen.config.journeys.get(journey_id)
        if found is None or step_id not in found.steps:
            return page("workbench/missing.html", 404, nav=PREFIX, title="Not found",
                        what=f'no step "{step_id[:80]}" in journey "{journey_id[:80]}"')
        with ripen.uow() as uow:
            leads = workbench.leads_at_step(uow, found.id, step_id)
        return show(request, "step.html", title=f"{found.id} · {step_id}", journey=found,
                    step_id=step_id, leads=leads)

    @pages.get("/leads", response_model=None)
    def leads(request: Request, q: str = "") -> Response:
        with ripen.uow() as uow:
            found = workbench.search(uow, q) if q.strip() else []
        return show(request, "leads.html", title="Leads", q=q[:100], leads=found)

    @pages.get("/leads/{public_id}", response_model=None)
    def lead(request: Request, public_id: str) -> Response:
        with ripen.uow() as uow:
            person = uow.lead_by_public_id(public_id[:32])
        if person is None or not person.email:
            return page("workbench/missing.html", 404, nav=PREFIX, title="Not found",
                        what="no such lead (or it was erased)")
        try:
            story = timeline(ripen.uow, person.email, ripen.handovers.explain)
        except UnknownLead:
            return page("workbench/missing.html", 404, nav=PREFIX, title="Not found",
                        what="no such lead (or it was erased)")
        return show(request, "lead.html", title=story.email or "lead", story=story)

    @pages.get("/content", response_model=None)
    def content(request: Request) -> Response:
        report = audit_content(ripen.config, today=ripen.clock().date())
        personas = sorted({c.persona for c in report.cells})
        cells = {(c.persona, c.stage.value): c for c in report.cells}
        return show(request, "content.html", title="Content", report=report,
                    personas=personas, cells=cells)

    @pages.get("/funnel", response_model=None)
    def funnel(request: Request) -> Response:
        now = ripen.clock()
        # Kept by the maintenance run; live (and kept) when missing or two runs overdue.
        max_age = timedelta(seconds=2 * ripen.settings.maintenance_seconds)
        with ripen.uow() as uow:
            report = kept.kept_funnel(uow, now, max_age)
            if report is None:
                report = kept.keep_funnel(uow, now, ripen.monotonic)
        every = ripen.settings.maintenance_seconds
        note = (f"Counted in {report.seconds:.1f} s and kept by the maintenance run (every "
                + (f"{every // 60} min" if every >= 120 else f"{every} s")
                + "); ripen report counts live, for any period.")
        return HTMLResponse(html_report.render(report.report, title="ripen funnel report",
                                               generated=report.computed_at, note=note),
                            headers={"Cache-Control": "no-store"})

    api.include_router(pages)
    return api


def _local(target: str) -> str:
    """Only a path inside the workbench is a place to go after signing in (no open
    redirect)."""
    if target == PREFIX or (target.startswith(PREFIX + "/") and not target.startswith("//")
                            and "\\" not in target and "://" not in target):
        return target
    return PREFIX
