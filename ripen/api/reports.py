"""Read-only reports for the API's operators (behind an API key): the funnel report as JSON,
or as the same self-contained HTML page ``ripen report --html`` writes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from engine.bootstrap import Ripen
from engine.report import funnel_report, period
from ripen import html_report
from ripen.api.edge import behind_api_key, require_api_key


def router(ripen: Ripen) -> APIRouter:
    api = APIRouter(prefix="/reports", tags=["reports"])

    @api.get("/funnel", response_model=None, **behind_api_key(422))
    def funnel(request: Request,
               since: str | None = Query(None, max_length=10,
                                         description="first day, YYYY-MM-DD [90 days ago]"),
               until: str | None = Query(None, max_length=10,
                                         description="day after the period [tomorrow]"),
               format: Literal["json", "html"] = "json") -> JSONResponse | HTMLResponse:
        """The funnel report of `ripen report` for a period (JSON, or HTML with charts)."""
        require_api_key(request, ripen.settings.api_keys)
        start, end = period(since, until, ripen.clock())
        with ripen.uow() as uow:
            report = funnel_report(uow, start, end)
        headers = {"Cache-Control": "no-store"}
        if format == "html":
            return HTMLResponse(html_report.render(report, title="ripen funnel report",
                                                   generated=ripen.wall()), headers=headers)
        return JSONResponse(report.as_json(), headers=headers)

    return api
