"""A journey changes while leads are in flight: pin, migrate and drain behave as declared."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from engine.bootstrap import Ripen
from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.store.tables import Enrollment
from engine.versions import PlannedMove, plan
from tests.conftest import SmtpSink
from tests.factories import example_tree
from tests.integration.test_journeys import (
    click_first_link,
    confirmed_lead,
    marketing,
    next_mail,
    tick,
)

Smtp = tuple[SmtpSink, int]
OLD_SECOND = "Der Grüne-Bananen-Effekt: warum Vertrieb Ihre Leads ablehnt"
NEW_SECOND = "Praxisbrief: ein Fall aus der Praxis, einmal im Monat"


def changed(app: Ripen, tmp_path: Path, policy: str) -> Ripen:
    """The same database and clock, with monika-marketing's second INF offer replaced."""
    root = tmp_path / f"config-{policy}"
    example_tree(root)
    path = root / "config" / "journeys" / "monika-marketing.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("      - id: inf-second\n        send: {content: mm-gruene-banane,",
                        "      - id: inf-second\n        send: {content: newsletter-praxis,")
    text = text.replace("in_flight:\n  policy: pin", f"in_flight:\n  policy: {policy}")
    path.write_text(text, encoding="utf-8")
    return Ripen(settings=app.settings, config=load_and_compile(ConfigPaths.under(root)),
                 db=app.db, clock=app.clock)


def version_of(app: Ripen) -> str:
    with app.uow() as uow:
        [enrollment] = uow.session.exec(select(Enrollment)).all()
    return enrollment.journey_version


def in_flight(app: Ripen, sink: SmtpSink) -> str:
    """A Monika lead who got her first INF mail and waits in the branch (version A)."""
    confirmed_lead(app, sink, "flight@example.com", persona="monika-marketing")
    tick(app)
    assert [m["Subject"] for m in marketing(sink)] == [
        "Leadmanagement in 10 Minuten: vom Kontakt zum Kunden"]
    return version_of(app)


@pytest.mark.parametrize(("policy", "second", "moved_to"), [
    ("pin", OLD_SECOND, None),
    ("migrate", NEW_SECOND, "inf-engaged"),
    ("drain", OLD_SECOND, None),
])
def test_leads_in_flight_follow_the_declared_policy(ripen_app: Ripen, smtp: Smtp,
                                                   tmp_path: Path, policy: str, second: str,
                                                   moved_to: str | None) -> None:
    """plan-change shows the move; then pin keeps the old step, migrate takes the new one."""
    sink, _ = smtp
    old = in_flight(ripen_app, sink)
    new_app = changed(ripen_app, tmp_path, policy)
    new = new_app.config.journeys["monika-marketing"].version
    assert new != old
    with new_app.uow() as uow:
        planned = plan(uow, new_app.config)
    assert planned == [PlannedMove("monika-marketing", policy, old, "inf-engaged", moved_to, 1)]

    mail = next_mail(new_app, sink)  # the branch times out after 5 days: the second offer
    assert mail["Subject"] == second
    assert version_of(new_app) == (new if policy == "migrate" else old)


def test_draining_leads_enter_the_new_version_at_the_next_stage(ripen_app: Ripen, smtp: Smtp,
                                                                tmp_path: Path) -> None:
    """Drain: the current stage ends on the old version, the next stage is the new one's."""
    sink, _ = smtp
    old = in_flight(ripen_app, sink)
    new_app = changed(ripen_app, tmp_path, "drain")
    tick(new_app)
    assert version_of(new_app) == old
    click_first_link(new_app, marketing(sink)[0])  # engagement: on to BEF
    with new_app.uow() as uow:
        [enrollment] = uow.session.exec(select(Enrollment)).all()
    assert (enrollment.stage, enrollment.journey_version) == (
        "BEF", new_app.config.journeys["monika-marketing"].version)
