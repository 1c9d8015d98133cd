"""Two ticks racing on the same due steps never send a mail twice."""

from __future__ import annotations

import threading
from collections import Counter

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
