"""What the CRM or a tele-qualification call learned about a lead: profile and BANT."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from engine.accounts import AccountFacts, ProfileError
from engine.bootstrap import Ripen
from engine.lead_fields import LIMITS, InvalidField
from engine.mail.message import HeaderInjection
from engine.profile import ProfileChange
from ripen.api.edge import behind_api_key, require_api_key
from ripen.api.handover import push_handover


class ProfileIn(BaseModel):
    """Fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    job_title: str | None = Field(default=None, max_length=LIMITS["job_title"])
    company: str | None = Field(default=None, max_length=LIMITS["company"])
    industry: str | None = Field(default=None, max_length=LIMITS["industry"],
                                 description="as the personas' fit lists it, e.g. automotive")
    company_size: int | None = Field(default=None, ge=1, le=10_000_000,
                                     description="employees")
    region: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$",
                               description="ISO 3166 country code, e.g. DE")
    bant_authority: bool | None = None
    bant_need: bool | None = None
    bant_budget: bool | None = None
    bant_timeline_months: int | None = Field(default=None, ge=0, le=120,
                                             description="months until the purchase")


def router(ripen: Ripen) -> APIRouter:
    api = APIRouter()

    @api.post("/api/leads/{lead_id}/profile", tags=["sales feedback"],
              **behind_api_key(404, 422))
    def update_profile(lead_id: str, body: ProfileIn, request: Request,
                       tasks: BackgroundTasks) -> JSONResponse:
        """Profile and BANT from the CRM or a qualification call: scored at once; a lead
        that is now an MQL is handed over (its webhook goes out right after the answer)."""
        require_api_key(request, ripen.settings.api_keys)
        try:
            change = ProfileChange(
                job_title=body.job_title, company=body.company,
                account=AccountFacts.checked(industry=body.industry,
                                             company_size=body.company_size,
                                             region=body.region),
                bant_authority=body.bant_authority, bant_need=body.bant_need,
                bant_budget=body.bant_budget, bant_timeline_months=body.bant_timeline_months)
            result = ripen.profiles.update(lead_id, change, source="crm")
        except (ProfileError, HeaderInjection, InvalidField) as exc:
            status = 404 if str(exc) == "no such lead" else 422
            return JSONResponse({"error": str(exc)}, status_code=status)
        handover = result.handover
        push_handover(ripen, handover.id if handover else None, tasks)
        return JSONResponse({"lead": result.lead.public_id, "grade": result.score.grade,
                             "explicit": result.score.explicit,
                             "handover": handover.public_id if handover else None})

    return api
