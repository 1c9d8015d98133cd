"""Sign-up, confirmation, unsubscribe and the lead API: thin translations to the engine."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.datastructures import FormData

from engine.accounts import AccountFacts, ProfileError
from engine.addresses import InvalidAddress
from engine.bootstrap import Ripen
from engine.consent import (
    Answer,
    Confirmation,
    ConsentError,
    LeadState,
    SignUp,
    SignUpResult,
)
from engine.lead_fields import LIMITS
from engine.mail.message import HeaderInjection
from engine.tokens import Purpose, TokenExpired, TokenInvalid
from ripen.api.edge import behind_api_key, client_ip, require_api_key
from ripen.api.pages import message, page
from ripen.api.pages.german import in_german

#: One answer for every address state (new, pending, confirmed, suppressed): no enumeration.
ACCEPTED_JSON = {"status": "accepted",
                 "message": "If the address can receive mail, a confirmation link is on its way."}
#: What a visitor of the public form may name as the source (a landing page of an ad);
#: trade fairs, imports, partners … come through the API or an import.
PUBLIC_SOURCES = ("website", "ad")
TEXT_FIELDS = ("email", "first_name", "last_name", "company", "job_title", "phone",
               "campaign", "persona", "consent_version", "language", "source", "content",
               "industry", "company_size", "region")


def router(ripen: Ripen) -> APIRouter:
    api = APIRouter()
    consent = ripen.consent

    def send_now(result: SignUpResult, tasks: BackgroundTasks) -> None:
        if result.send_now:  # the confirmation mail goes out at once, after the answer
            tasks.add_task(ripen.send_mail, result.send_now)

    def form_page(status: int = 200, error: str | None = None,
                  values: dict[str, str] | None = None, campaign: str | None = None,
                  content: str | None = None) -> HTMLResponse:
        text = ripen.config.consent.text(ripen.config.consent.current)
        return page("subscribe.html", status, title="Anmeldung", consent=text, error=error,
                    limits=LIMITS,
                    values=values or {}, campaign=campaign,
                    content=content if content in ripen.config.content else None,
                    personas=list(ripen.config.personas.values()))

    @api.get("/subscribe", response_class=HTMLResponse, tags=["sign-up"])
    def subscribe_form(campaign: str | None = None, content: str | None = None
                       ) -> HTMLResponse:
        """The sign-up form: plain HTML, labelled fields, the consent text as shown.

        ``content`` names the item the form offers (a gated download); it decides the stage
        the lead's journey starts at.
        """
        return form_page(campaign=campaign, content=content)

    @api.post("/subscribe", tags=["sign-up"], response_model=None)
    async def subscribe(request: Request, tasks: BackgroundTasks) -> Response:
        """Form post or JSON. The answer never tells whether the address is known."""
        as_json = request.headers.get("content-type", "").startswith("application/json")
        # A form post that asks for JSON (Accept) gets JSON answers, in English like the API.
        answer_json = as_json or "application/json" in request.headers.get("accept", "")
        values: dict[str, Any] = {}
        try:
            values = await _read(request, as_json)
            source = values.get("source") or "website"
            if source not in PUBLIC_SOURCES:
                raise ValueError(f'source "{str(source)[:20]}": the public form records '
                                 f"{' or '.join(PUBLIC_SOURCES)}; other sources come through "
                                 "the API (POST /api/leads) or an import")
            sign_up = _sign_up(values, source=source, form="web-form", request=request,
                               ripen=ripen, by_the_person=True)
            result = consent.sign_up(sign_up)
        except (InvalidAddress, ConsentError, HeaderInjection, ValueError) as exc:
            if answer_json:
                return JSONResponse({"error": str(exc)}, status_code=422)
            return form_page(422, in_german(str(exc)), _form_values(values))  # the form's
        if result.answer is Answer.RATE_LIMITED:
            return _rate_limited(result, answer_json)
        send_now(result, tasks)
        if answer_json:
            return JSONResponse(ACCEPTED_JSON, status_code=202)
        return message("Fast geschafft!",
                       "Wir haben Ihnen eine E-Mail geschickt. Bitte bestätigen Sie Ihre "
                       "Anmeldung über den Link darin.",
                       "Keine E-Mail erhalten? Prüfen Sie Ihren Spam-Ordner.")

    @api.post("/api/leads", status_code=202, tags=["leads"], response_model=None,
              **behind_api_key(409, 422, 429))
    async def create_lead(request: Request, tasks: BackgroundTasks) -> Response:
        """Push a lead from another system (API key). It still has to confirm by DOI."""
        require_api_key(request, ripen.settings.api_keys)
        try:
            values = await _read(request, True)
            result = consent.sign_up(_sign_up(values, source=values.get("source") or "api",
                                              form=values.get("form") or "api",
                                              request=request, ripen=ripen,
                                              by_the_person=False))
        except (InvalidAddress, ConsentError, HeaderInjection, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        if result.answer is Answer.RATE_LIMITED:
            return _rate_limited(result, True)
        if result.state is LeadState.SUPPRESSED:  # a system with a key learns why
            return JSONResponse({"error": "the address is suppressed (unsubscribed, erased, "
                                          "bounced or complained); only the person can sign "
                                          "up again", "state": result.state}, status_code=409)
        send_now(result, tasks)
        return JSONResponse({**ACCEPTED_JSON, "state": result.state}, status_code=202)

    @api.get("/confirm/{token}", response_class=HTMLResponse, tags=["sign-up"])
    def confirm_page(token: str) -> HTMLResponse:
        """Shows a button; never confirms (mail scanners pre-fetch links)."""
        try:
            ripen.tokens.loads(Purpose.DOI, token, now=ripen.clock(),
                               max_age=ripen.config.consent.doi.link_valid_for)
        except TokenExpired:
            return _expired(token)
        except TokenInvalid:
            return _invalid()
        return message("Anmeldung bestätigen",
                       "Bitte bestätigen Sie mit einem Klick, dass Sie unsere E-Mails "
                       "erhalten möchten.",
                       action=f"/confirm/{token}",
                       buttons=[("confirm", "yes", "Ja, Anmeldung bestätigen", False)])

    @api.post("/confirm/{token}", response_class=HTMLResponse, tags=["sign-up"])
    def confirm(token: str, request: Request) -> HTMLResponse:
        """The confirmation: the person pressed the button."""
        try:
            outcome = consent.confirm(token, ip=client_ip(request, ripen.settings.trusted_proxies),
                                      user_agent=request.headers.get("user-agent"))
        except TokenExpired:
            return _expired(token)
        except TokenInvalid:
            return _invalid()
        if outcome is Confirmation.ALREADY:
            return message("Bereits bestätigt", "Ihre Anmeldung war schon bestätigt. "
                           "Es ist nichts weiter zu tun.")
        if outcome is Confirmation.CLOSED:
            return message("Link nicht mehr gültig",
                           "Dieser Bestätigungslink gilt nicht mehr: Sie haben sich nach "
                           "seinem Versand abgemeldet, oder wir haben Ihnen inzwischen einen "
                           "neueren Link geschickt. Es wurde nichts geändert.",
                           "Möchten Sie wieder E-Mails von uns erhalten? Dann melden Sie "
                           "sich bitte neu an: /subscribe", status=410)
        if outcome is Confirmation.UPDATED:
            return message("Vielen Dank!", "Ihre Angaben sind bestätigt und übernommen.")
        return message("Vielen Dank!", "Ihre Anmeldung ist bestätigt.")

    @api.post("/confirm/{token}/renew", response_class=HTMLResponse, tags=["sign-up"],
              response_model=None)
    def renew(token: str, tasks: BackgroundTasks) -> Response:
        """A new link for an expired one."""
        try:
            result = consent.renew(token)
        except TokenInvalid:
            return _invalid()
        if result.answer is Answer.RATE_LIMITED:
            return _rate_limited(result, False)
        send_now(result, tasks)
        return message("Neuer Link unterwegs", "Wir haben Ihnen einen neuen "
                       "Bestätigungslink geschickt.")

    @api.get("/u/{token}", response_class=HTMLResponse, tags=["unsubscribe"])
    def unsubscribe_page(token: str) -> HTMLResponse:
        """Choices: pause for 90 days, or no more mail at all. A GET changes nothing."""
        try:
            ripen.tokens.loads(Purpose.UNSUBSCRIBE, token, now=ripen.clock())
        except (TokenInvalid, TokenExpired):
            return _invalid()
        return message("E-Mails abbestellen", "Wie möchten Sie weitermachen?",
                       action=f"/u/{token}",
                       buttons=[("choice", "pause", "90 Tage pausieren", True),
                                ("choice", "all", "Keine E-Mails mehr", False)])

    @api.post("/u/{token}", tags=["unsubscribe"], response_model=None)
    async def unsubscribe(token: str, request: Request) -> Response:
        """RFC 8058 one-click (no cookie, no login, 200, no redirect) or the page's choice."""
        values = await _read(request, False)
        one_click = values.get("List-Unsubscribe") == "One-Click"
        choice: Literal["all", "pause"] = \
            "pause" if values.get("choice") == "pause" and not one_click else "all"
        try:
            consent.unsubscribe(token, choice=choice,
                                method="one-click" if one_click else f"page:{choice}",
                                ip=client_ip(request, ripen.settings.trusted_proxies),
                                user_agent=request.headers.get("user-agent"))
        except (TokenInvalid, TokenExpired):
            if one_click:
                return PlainTextResponse("invalid link", status_code=404)
            return _invalid()
        if one_click:
            return PlainTextResponse("unsubscribed", status_code=200)
        if choice == "pause":
            return message("Pausiert", "Sie erhalten 90 Tage lang keine E-Mails von uns.")
        return message("Abgemeldet", "Sie erhalten keine E-Mails mehr von uns.")

    return api


async def _read(request: Request, as_json: bool) -> dict[str, Any]:
    body = await request.body()  # at most ripen.api.guard's limit for the route
    if as_json:
        try:
            data = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError("the body is not valid JSON") from None
        except RecursionError:
            raise ValueError("the body's JSON is nested too deeply") from None
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data
    form: FormData = await request.form()
    values: dict[str, Any] = {key: value for key, value in form.items() if isinstance(value, str)}
    values["purposes"] = [p for p in form.getlist("purposes") if isinstance(p, str)]
    return values


def _sign_up(values: dict[str, Any], *, source: str, form: str, request: Request, ripen: Ripen,
             by_the_person: bool) -> SignUp:
    texts = {}
    for name in TEXT_FIELDS:
        value = values.get(name)
        if name == "company_size" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # JSON may send the number as a number
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be text")
        texts[name] = value.strip() if isinstance(value, str) and value.strip() else None
    purposes = values.get("purposes") or []
    if not isinstance(purposes, list) or not all(isinstance(p, str) for p in purposes):
        raise ValueError("purposes must be a list of texts")
    persona = texts["persona"]
    if persona is not None and persona not in ripen.config.personas:
        persona = None
    content = texts["content"]  # the item the form offered (a gated download, a checklist)
    if content is not None and content not in ripen.config.content:
        raise ValueError(f'unknown content "{content[:80]}"')
    try:
        facts = AccountFacts.checked(industry=texts["industry"],
                                     company_size=texts["company_size"], region=texts["region"])
    except ProfileError as exc:
        raise ValueError(str(exc)) from None
    return SignUp(
        account=facts, email=texts["email"] or "", source=source,
        consent_version=texts["consent_version"] or ripen.config.consent.current,
        purposes=frozenset(purposes), first_name=texts["first_name"],
        last_name=texts["last_name"], company=texts["company"], job_title=texts["job_title"],
        phone=texts["phone"], language=texts["language"] or "de", campaign=texts["campaign"],
        persona=persona, content=content, form=form, by_the_person=by_the_person,
        ip=client_ip(request, ripen.settings.trusted_proxies),
        user_agent=request.headers.get("user-agent"))


def _form_values(values: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in values.items() if isinstance(v, str) and k in TEXT_FIELDS}


def _rate_limited(result: SignUpResult, as_json: bool) -> Response:
    headers = {"Retry-After": str(result.retry_after or 60)}
    if as_json:
        return JSONResponse({"error": "too many sign-ups; try again later"}, status_code=429,
                            headers=headers)
    return message("Bitte später noch einmal", "Zu viele Anmeldungen in kurzer Zeit. "
                   "Bitte versuchen Sie es später noch einmal.", status=429, headers=headers)


def _invalid() -> HTMLResponse:
    return message("Link ungültig", "Dieser Link ist nicht gültig. Bitte prüfen Sie, ob er "
                   "vollständig kopiert wurde.", status=404)


def _expired(token: str) -> HTMLResponse:
    return message("Link abgelaufen", "Dieser Bestätigungslink ist abgelaufen.",
                   status=410, action=f"/confirm/{token}/renew",
                   buttons=[("renew", "yes", "Neuen Link senden", False)])
