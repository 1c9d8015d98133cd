"""One bad lead or journey never stops the rest (issue 18): the real tick flow on a Prefect
server, SQLite and PostgreSQL, mail into a Maildir, the CRM a real HTTP receiver."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from datetime import timedelta
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from engine import quarantine
from engine.bootstrap import Ripen
from engine.clock import ManualClock
from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.settings import load_settings
from engine.store.tables import Enrollment, MailOutbox, WebhookDelivery
from engine.webhooks import new_secret
from flows import runtime
from flows.tick import TickFailed, run_tick
from tests.factories import NOW, enrollment, example_tree, saved_leads
from tests.receiver import Receiver, running

SECRET = new_secret()
TEMPLATE = Path("templates/email/content_offer.html.j2")
GREETING = "Guten Tag{% if lead.first_name %} {{ lead.first_name }}{% endif %},"
#: Fine for every lead with a last name; a filter failing on the one without (TypeError).
BROKEN = GREETING + " ({{ lead.last_name | first }}.)"


@pytest.fixture
def crm() -> Iterator[Receiver]:
    with running(SECRET) as receiver:
        yield receiver


@pytest.fixture
def tree(tmp_path: Path, crm: Receiver) -> Path:
    """The example configuration; the content offer greets with the last name's initial;
    the CRM endpoint is the loopback receiver."""
    root = tmp_path / "ripen"
    example_tree(root)
    template = root / TEMPLATE
    text = template.read_text(encoding="utf-8")
    assert GREETING in text
    template.write_text(text.replace(GREETING, BROKEN), encoding="utf-8")
    sla = root / "config" / "sla.yaml"
    sla.write_text(sla.read_text(encoding="utf-8").replace(
        "url: https://crm.example.com/hooks/ripen",
        f"url: {crm.url}\n    allow_private: true\n    timeout_seconds: 2"), encoding="utf-8")
    return root


def _app(root: Path, db: Engine, tmp_path: Path, clock: ManualClock) -> Ripen:
    app = Ripen(settings=load_settings(mail_url=f"maildir:{tmp_path / 'outbox'}",
                                       secret_keys=["k" * 40]),
                config=load_and_compile(ConfigPaths.under(root)), db=db, clock=clock,
                environ={"RIPEN_WEBHOOK_SECRET_CRM": SECRET})
    runtime.use(app)
    return app


def _due(app: Ripen, journey_id: str, lead_ids: list[int]) -> None:
    journey = app.config.journeys[journey_id]
    with app.uow() as uow:
        uow.add(*[enrollment(lead_id, journey_id=journey_id, journey_version=journey.version,
                             step_id=journey.order[0]) for lead_id in lead_ids])
        uow.commit()


def _delivered(tmp_path: Path) -> list[str]:
    return [str(m["To"]) for m in mailbox.Maildir(str(tmp_path / "outbox"))]


@pytest.mark.slow
def test_one_lead_whose_mail_cannot_render_is_quarantined_and_the_rest_goes_out(
        migrated: Engine, prefect_harness: None, tree: Path, crm: Receiver,
        tmp_path: Path) -> None:
    """1,000 due leads in one send step, one without a last name: 999 mails go out in the
    tick, the one is quarantined with its reason; the other journey, the webhooks and the
    outbox ran in the same tick. After the template is fixed, `retry` sends that one mail,
    once."""
    clock = ManualClock(NOW)
    app = _app(tree, migrated, tmp_path, clock)
    monika = saved_leads(migrated, 999, prefix="m", last_name="Muster")
    [nameless] = saved_leads(migrated, 1, prefix="nameless")
    peter = saved_leads(migrated, 3, prefix="p", last_name="Prinz")
    _due(app, "monika-marketing", [*monika, nameless])
    _due(app, "peter-produktionsleiter", peter)
    with app.uow() as uow:
        uow.add(WebhookDelivery(webhook_id="msg_waiting", endpoint_id="crm",
                                event_type="handover.created", payload='{"waiting": true}',
                                created_at=NOW))
        uow.add_mail(MailOutbox(idempotency_key="waiting-notice", kind="transactional",
                                category="notification", to_address="rep@example.com",
                                subject="Wartet", message_id="<waiting@ripen>", created_at=NOW),
                     body_html="<p>x</p>", body_text="x")
        uow.commit()

    summary = run_tick()

    monika_run = summary["journeys"][
        f"monika-marketing@{app.config.journeys['monika-marketing'].version}"]
    assert (monika_run["counts"]["sent"], monika_run["counts"]["quarantined"]) == (999, 1)
    peter_run = summary["journeys"][
        f"peter-produktionsleiter@{app.config.journeys['peter-produktionsleiter'].version}"]
    assert peter_run["counts"]["sent"] == 3
    delivered = _delivered(tmp_path)
    assert len(delivered) == 999 + 3 + 1  # the waiting notice went out in the same tick
    assert "nameless0@example.com" not in delivered
    assert crm.verified() == [{"waiting": True}]
    [held] = quarantine.listed(app.uow)
    assert (held.email, held.journey, held.step) == ("nameless0@example.com",
                                                      "monika-marketing", "inf-intro")
    assert held.reason.startswith("step inf-intro: TypeError")
    assert "'NoneType' object is not iterable" in held.reason
    assert summary["quarantined"] == {"monika-marketing": 1}

    clock.advance(timedelta(hours=1))
    run_tick()  # the quarantined lead waits: nothing is sent to it meanwhile
    assert len(_delivered(tmp_path)) == 1003

    template = tree / TEMPLATE
    template.write_text(template.read_text(encoding="utf-8").replace(BROKEN, GREETING),
                        encoding="utf-8")
    app = _app(tree, migrated, tmp_path, clock)  # restarted with the fixed template
    [released] = quarantine.retry(app.uow, now=clock())
    assert released.email == "nameless0@example.com"
    run_tick()
    clock.advance(timedelta(hours=1))
    run_tick()
    delivered = _delivered(tmp_path)
    assert delivered.count("nameless0@example.com") == 1
    assert len(delivered) == 1004
    assert quarantine.listed(app.uow) == []
    runtime.use(None)


@pytest.mark.slow
def test_a_journey_that_cannot_run_fails_the_tick_but_not_the_others(
        migrated: Engine, prefect_harness: None, tree: Path, crm: Receiver,
        tmp_path: Path) -> None:
    """Leads pinned to a version of a journey that is not stored (a database restored in
    part): that journey cannot run, and the tick ends failed naming it — after the other
    journeys, the webhooks and the outbox ran."""
    app = _app(tree, migrated, tmp_path, ManualClock(NOW))
    [pinned] = saved_leads(migrated, 1, prefix="pinned", last_name="Alt")
    peter = saved_leads(migrated, 2, prefix="p", last_name="Prinz")
    with app.uow() as uow:
        uow.add(enrollment(pinned, journey_version="0ld0ld0ld0ld"),
                WebhookDelivery(webhook_id="msg_other", endpoint_id="crm",
                                event_type="handover.created", payload='{"other": 1}',
                                created_at=NOW))
        uow.commit()
    _due(app, "peter-produktionsleiter", peter)

    with pytest.raises(TickFailed) as failed:
        run_tick()

    assert str(failed.value) == ("journey monika-marketing@0ld0ld0ld0ld: has due leads but "
                                 "cannot run (this version is not stored)")
    assert failed.value.summary["journeys"][
        f"peter-produktionsleiter@{app.config.journeys['peter-produktionsleiter'].version}"][
        "counts"]["sent"] == 2
    assert sorted(_delivered(tmp_path)) == ["p0@example.com", "p1@example.com"]
    assert crm.verified() == [{"other": 1}]
    with app.uow() as uow:  # nothing lost: the pinned lead still waits at its step
        [kept] = uow.session.exec(select(Enrollment).where(
            Enrollment.lead_id == pinned)).all()
    assert (kept.status, kept.step_id) == ("active", "inf-intro")
    runtime.use(None)


def test_a_subject_is_a_template_rendered_for_each_lead(
        migrated: Engine, tree: Path, tmp_path: Path) -> None:
    """`subject: '{{ content.title }} für {{ lead.company }}'` greets each lead's company;
    a lead whose subject would not fit the outbox (300 characters) is quarantined, not the
    batch."""
    journey = tree / "config" / "journeys" / "peter-produktionsleiter.yaml"
    send = ("send: {content: pp-oee-grundlagen, template: content_offer, "
            "fast_lane_offer: pp-checkliste-mes-auswahl}")
    text = journey.read_text(encoding="utf-8")
    assert send in text
    journey.write_text(text.replace(send, send[:-1] + ", subject: '{{ content.title }}"
                                    "{% if lead.job_title %} – für {{ lead.job_title }}"
                                    " ({{ lead.job_title | upper }}){% endif %}'}"),
                       encoding="utf-8")
    app = _app(tree, migrated, tmp_path, ManualClock(NOW))
    [short] = saved_leads(migrated, 1, prefix="kurz", last_name="K", job_title="Werksleiter")
    [long] = saved_leads(migrated, 1, prefix="lang", last_name="L", job_title="x" * 200)
    [none] = saved_leads(migrated, 1, prefix="ohne", last_name="O")
    _due(app, "peter-produktionsleiter", [short, long, none])
    app.journeys.tick()
    app.send_mail()
    title = app.config.content["pp-oee-grundlagen"].title
    subjects = {str(m["To"]): str(make_header(decode_header(m["Subject"])))
                for m in mailbox.Maildir(str(tmp_path / "outbox"))}
    assert subjects == {"kurz0@example.com": f"{title} – für Werksleiter (WERKSLEITER)",
                        "ohne0@example.com": title}
    [held] = quarantine.listed(app.uow)
    assert held.email == "lang0@example.com"
    assert "the subject has" in held.reason
    runtime.use(None)
