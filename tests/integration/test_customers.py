"""Existing customers enter after-sales, repurchase and cross/up-sell journeys (AFS, WIK,
CUS): imported from CSV (double opt-in first) or, already confirmed, moved from nurturing."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bootstrap import Ripen
from engine.consent import ConsentError
from engine.importer import import_csv
from tests.consent_helpers import client, confirm_path
from tests.integration.test_journeys import (
    Smtp,
    confirmed_lead,
    enrollments,
    marketing,
    next_mail,
)


def _import(app: Ripen, tmp_path: Path, text: str, **options: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "customers.csv"
    path.write_text(text, encoding="utf-8")
    summary = import_csv(path, app.consent, source="import", consent_version="2026-11",
                         **options)
    app.send_mail(summary.confirmation_mails)
    return summary


def _lead(app: Ripen, email: str):  # type: ignore[no-untyped-def]
    with app.uow() as uow:
        return uow.lead_by_email(email)


def test_imported_customers_confirm_then_enter_after_sales_at_their_stage(
        ripen_app: Ripen, smtp: Smtp, tmp_path: Path) -> None:
    sink, _ = smtp
    summary = _import(ripen_app, tmp_path,
                      "email,company,industry,company_size,region,customer_stage\n"
                      "kunde@werk.example,Werk AG,automotive,800,de,\n"
                      "cross@werk.example,Werk AG,,,,cus\n",
                      customers="after-sales", stage="WIK")
    assert (summary.imported, summary.refused) == (2, [])
    assert enrollments(ripen_app) == []  # no mail without a confirmed opt-in
    web = client(ripen_app)
    for message in sink.parsed():
        web.post(confirm_path(message))
    assert sorted(enrollments(ripen_app)) == [("after-sales", "CUS", "active", None),
                                              ("after-sales", "WIK", "active", None)]
    assert _lead(ripen_app, "kunde@werk.example").funnel_stage == "WIK"
    with ripen_app.uow() as uow:
        account = uow.account_by_name("Werk AG")
    assert account is not None
    assert (account.industry, account.company_size, account.region) == ("automotive", 800,
                                                                        "DE")
    next_mail(ripen_app, sink)
    content = ripen_app.config.content
    assert {m["To"]: str(m["Subject"]) for m in marketing(sink)} == {
        "kunde@werk.example": content["lizenz-erweiterung"].title,   # WIK: repurchase
        "cross@werk.example": content["kundentag-webinar"].title}    # CUS: cross/up-sell


def test_a_confirmed_lead_imported_as_customer_leaves_nurturing(
        ripen_app: Ripen, smtp: Smtp, tmp_path: Path) -> None:
    sink, _ = smtp
    confirmed_lead(ripen_app, sink, "monika@example.com", persona="monika-marketing")
    assert enrollments(ripen_app) == [("monika-marketing", "INF", "active", None)]
    mails = len(sink.messages)
    summary = _import(ripen_app, tmp_path, "email\nmonika@example.com\n",
                      customers="after-sales")
    assert (summary.merged, summary.confirmation_mails) == (1, [])
    assert len(sink.messages) == mails  # already confirmed: no new confirmation mail
    assert enrollments(ripen_app) == [
        ("monika-marketing", "INF", "exited", "became_customer"),
        ("after-sales", "AFS", "active", None)]
    again = _import(ripen_app, tmp_path, "email\nmonika@example.com\n",
                    customers="after-sales")
    assert again.merged == 1
    assert len(enrollments(ripen_app)) == 2  # importing twice enrols once


def test_customer_imports_are_checked(ripen_app: Ripen, smtp: Smtp, tmp_path: Path) -> None:
    sink, _ = smtp
    with pytest.raises(ConsentError, match='"monika-marketing" is not an after-sales journey; '
                                           "use one of: after-sales"):
        ripen_app.consent.check_customer("monika-marketing", None)
    with pytest.raises(ConsentError, match='journey after-sales has no stage "BEW"; use one '
                                           "of: AFS, WIK, CUS"):
        ripen_app.consent.check_customer("after-sales", "BEW")
    summary = _import(ripen_app, tmp_path,
                      "email,company,region,customer_stage\n"
                      "a@example.com,,,WIK\n"
                      "b@example.com,B GmbH,Bayern,\n"
                      "c@example.com,,DE,\n")
    assert summary.refused == [
        (2, "customer_stage is set but the import is not of customers (--customers JOURNEY)"),
        (3, 'region "Bayern" is not a two-letter ISO 3166 country code such as DE, AT or CH'),
        (4, "industry, company size and region need the company name")]
    assert sink.messages == []


def test_a_lead_with_sales_is_not_moved_to_after_sales(ripen_app: Ripen, smtp: Smtp,
                                                       tmp_path: Path) -> None:
    sink, _ = smtp
    confirmed_lead(ripen_app, sink, "open@example.com", persona="monika-marketing")
    with ripen_app.uow() as uow:
        lead = uow.lead_by_email("open@example.com")
        assert lead is not None
        lead.sales_stage = "SAL"
        uow.add(lead)
        uow.commit()
    summary = _import(ripen_app, tmp_path, "email\nopen@example.com\n",
                      customers="after-sales")
    assert summary.refused == [(2, "this lead is with sales (stage SAL); when sales closes it "
                                   "as won it enters after-sales")]
    assert enrollments(ripen_app) == [("monika-marketing", "INF", "active", None)]
    assert _lead(ripen_app, "open@example.com").customer_journey is None
