"""Two ticks racing on the same due steps never send a mail twice."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func
from sqlmodel import select

from engine.bootstrap import Ripen
from engine.store.tables import Enrollment, Lead, MailOutbox
from tests.factories import NOW, lead

COUNT = {"postgresql": 10_000, "sqlite": 2_000}


def test_two_ticks_racing_send_each_mail_once(ripen_app: Ripen) -> None:
    """Both claim from the same due step at once: every lead gets exactly one mail."""
    count = COUNT[ripen_app.db.dialect.name]
    journey = ripen_app.config.journeys["monika-marketing"]
    with ripen_app.uow() as uow:
        people = [lead(email=f"race{n}@example.com", persona_id="monika-marketing")
                  for n in range(count)]
        uow.add(*people)
        uow.flush()
        uow.add(*[Enrollment(lead_id=p.id or 0, journey_id=journey.id,
                             journey_version=journey.version, stage="INF",
                             step_id="inf-intro", due_at=NOW, stage_entered_at=NOW,
                             started_at=NOW) for p in people])
        uow.commit()

    # the race is about deciding: the mails stay in the outbox for the (rate-limited) sender
    ripen_app.journeys.dispatch = None
    reports: list[Counter[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def tick() -> None:
        try:
            start.wait()
            reports.append(ripen_app.journeys.run_step(journey, "inf-intro", limit=500).counts)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with ripen_app.uow() as uow:
        per_lead = uow.session.exec(
            select(MailOutbox.lead_id, func.count()).group_by(MailOutbox.lead_id)).all()
        leads = uow.session.exec(select(func.count()).select_from(Lead)).one()
    duplicates = sum(1 for _, n in per_lead if n > 1)
    print(f"\n{count} due: tick A sent {reports[0]['sent']}, tick B sent {reports[1]['sent']}, "
          f"duplicates {duplicates}")
    assert leads == count
    assert duplicates == 0
    assert len(per_lead) == count
    assert reports[0]["sent"] + reports[1]["sent"] == count


@pytest.mark.postgresql_only  # SQLite's BEGIN IMMEDIATE lets one writer decide at a time
def test_a_lead_due_in_two_journeys_of_two_workers_gets_one_mail_within_its_cap(
        ripen_app: Ripen, monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker A is deciding the lead's nurture mail (not yet committed) when worker B claims
    the same lead's recycle step: B leaves it due instead of sending past A's mail, and after
    A's commit B defers it for the frequency cap (one marketing mail a day)."""
    from engine import journeys

    nurture = ripen_app.config.journeys["monika-marketing"]
    recycle = ripen_app.config.journeys["wiedervorlage"]
    with ripen_app.uow() as uow:
        person = lead(email="twice@example.com", persona_id="monika-marketing")
        uow.add(person)
        uow.flush()
        assert person.id is not None
        uow.add(Enrollment(lead_id=person.id, journey_id=nurture.id,
                           journey_version=nurture.version, stage="INF", step_id="inf-intro",
                           due_at=NOW, stage_entered_at=NOW, started_at=NOW),
                Enrollment(lead_id=person.id, journey_id=recycle.id,
                           journey_version=recycle.version, stage="EVA",
                           step_id="recycle-proof", due_at=NOW, stage_entered_at=NOW,
                           started_at=NOW))
        uow.commit()
    ripen_app.journeys.dispatch = None  # the decision is the race; the outbox keeps the mails

    deciding, go_on = threading.Event(), threading.Event()
    write = journeys._SendBatch.write

    def held_write(batch: object, moves: list[dict[str, object]]) -> None:
        if threading.current_thread().name == "worker-a":
            deciding.set()       # A has decided its mail and holds the lead …
            go_on.wait(timeout=60)  # … until B has had its go
        write(batch, moves)  # type: ignore[arg-type]

    monkeypatch.setattr(journeys._SendBatch, "write", held_write)
    reports: dict[str, journeys.StepReport] = {}
    worker_a = threading.Thread(name="worker-a", target=lambda: reports.setdefault(
        "a", ripen_app.journeys.run_step(nurture, "inf-intro")))
    worker_a.start()
    try:
        assert deciding.wait(timeout=60)
        while_held = ripen_app.journeys.run_step(recycle, "recycle-proof")
    finally:
        go_on.set()
        worker_a.join(timeout=60)
    after = ripen_app.journeys.run_step(recycle, "recycle-proof")

    assert reports["a"].counts["sent"] == 1
    assert while_held.counts["sent"] == 0
    assert while_held.why == Counter(
        {"left for a later batch: the lead was busy in another transaction": 1})
    assert after.counts == Counter(deferred=1)
    assert after.why == Counter({"deferred: frequency_cap": 1})
    with ripen_app.uow() as uow:
        mails = uow.session.exec(select(MailOutbox).where(
            MailOutbox.lead_id == person.id)).all()  # type: ignore[arg-type]
        places = {e.journey_id: e for e in uow.session.exec(select(Enrollment).where(
            Enrollment.lead_id == person.id)).all()}  # type: ignore[arg-type]
    assert [m.kind for m in mails] == ["marketing"]
    assert places[recycle.id].step_id == "recycle-proof"  # still to send, a day later
    assert places[recycle.id].due_at > NOW
