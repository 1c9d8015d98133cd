"""The implicit score kept running on the lead agrees with the ledger, whatever the order
of batches, the passing of time, a change of the scoring model or a recycle."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlmodel import select

from engine.bootstrap import Ripen
from engine.events import NewEvent
from engine.store.tables import Lead, ScoreEntry
from tests.factories import saved_leads

KINDS = ("click", "download", "visit", "open", "webinar_attended")


def _leads(app: Ripen, count: int) -> list[int]:
    """Confirmed leads that never qualify (no persona fit, so no handover takes them)."""
    return saved_leads(app.db, count, prefix="run", job_title="Hausmeister")


def _ledger_implicit(app: Ripen, lead_id: int) -> float:
    now = app.clock()
    with app.uow() as uow:
        person = uow.session.get(Lead, lead_id)
        assert person is not None
        return app.handovers.scorer.score(uow, person, now, since=person.recycled_at).implicit


def _running(app: Ripen, lead_id: int) -> tuple[float | None, str | None]:
    with app.uow() as uow:
        person = uow.session.get(Lead, lead_id)
        assert person is not None
        return app.handovers.scorer.implicit_now(person, app.clock()), \
            person.implicit_points_model


def test_batches_over_months_keep_the_ledgers_value(ripen_app: Ripen) -> None:
    """Events in batches of mixed size over ninety days (some dated in the past): at every
    step each lead's running points are the ledger's decayed sum."""
    app = ripen_app
    ids = _leads(app, 12)
    content = [c.id for c in app.config.content.values() if not c.fast_lane]
    rng = random.Random(7)
    clock = app.clock
    serial = 0
    for _ in range(15):
        batch = []
        for _ in range(rng.randint(1, 60)):
            serial += 1
            batch.append(NewEvent(
                lead_id=rng.choice(ids), type=rng.choice(KINDS),
                content_id=rng.choice([*content, None]),
                occurred_at=clock() - timedelta(hours=rng.randint(0, 72)),
                idempotency_key=f"run:{serial}"))
        app.journeys.record_events(batch)
        clock.advance(timedelta(days=rng.randint(0, 12), hours=rng.randint(0, 23)))  # type: ignore[attr-defined]
        for lead_id in ids:
            running, _ = _running(app, lead_id)
            ledger = _ledger_implicit(app, lead_id)
            if running is None:  # no points yet: the ledger has none either
                assert ledger == 0
            else:
                assert running == pytest.approx(ledger, rel=1e-9, abs=1e-9)
    assert max(_ledger_implicit(app, i) for i in ids) > 10  # the test scored something


def test_a_new_scoring_model_or_a_recycle_recomputes_from_the_ledger(ripen_app: Ripen
                                                                     ) -> None:
    """Points kept under another model are not trusted: the next event recomputes them from
    the ledger; after a recycle only the points earned since count."""
    app = ripen_app
    [lead_id] = _leads(app, 1)
    app.journeys.record_events([NewEvent(lead_id=lead_id, type="download",
                                         idempotency_key="model:1")])
    with app.uow() as uow:
        person = uow.session.get(Lead, lead_id)
        assert person is not None
        person.implicit_points, person.implicit_points_model = 999.0, "older-model"
        uow.add(person)
        uow.commit()
    assert _running(app, lead_id)[0] is None  # not current: another model
    app.journeys.record_events([NewEvent(lead_id=lead_id, type="click",
                                         idempotency_key="model:2")])
    running, model = _running(app, lead_id)
    assert model == app.handovers.scorer.version
    assert running == pytest.approx(_ledger_implicit(app, lead_id))
    assert running == pytest.approx(15.0)  # download 10 + click 5, not 999

    app.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    with app.uow() as uow:
        person = uow.session.get(Lead, lead_id)
        assert person is not None
        person.recycled_at = app.clock()
        uow.add(person)
        uow.commit()
    app.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    app.journeys.record_events([NewEvent(lead_id=lead_id, type="visit",
                                         idempotency_key="model:3")])
    running, _ = _running(app, lead_id)
    assert running == pytest.approx(_ledger_implicit(app, lead_id))
    assert running == pytest.approx(2.0)  # only the visit after the recycle
    with app.uow() as uow:
        rows = uow.session.exec(select(ScoreEntry).where(ScoreEntry.lead_id == lead_id,
                                                         ScoreEntry.kind == "implicit")).all()
    assert len(rows) == 3  # the ledger keeps everything


def test_a_stage_exit_rule_counts_on_through_a_batch_in_order(ripen_app: Ripen) -> None:
    """EVA moves on after two engagements with EVA content: one from before the batch plus
    one in it, or two in the same batch, move a lead to BEW once; a single click keeps it
    in EVA."""
    from engine.store.tables import Enrollment, StageEntry
    from tests.factories import enrollment

    app = ripen_app
    app.journeys.go_live()
    journey = app.config.journeys["monika-marketing"]
    ids = _leads(app, 3)
    with app.uow() as uow:
        uow.add(*(enrollment(i, journey_version=journey.version, stage="EVA",
                             step_id="eva-pause", due_at=app.clock() + timedelta(days=7),
                             stage_entered_at=app.clock() - timedelta(days=1))
                  for i in ids))
        uow.commit()
    earlier, double, single = ids
    app.journeys.record_events([NewEvent(lead_id=earlier, type="click",
                                         content_id="mm-scoring-whitepaper",
                                         idempotency_key="eva:0")])
    app.clock.advance(timedelta(hours=2))  # type: ignore[attr-defined]
    app.journeys.record_events([
        NewEvent(lead_id=earlier, type="download", content_id="mm-scoring-whitepaper",
                 idempotency_key="eva:1"),
        NewEvent(lead_id=double, type="click", content_id="mm-scoring-whitepaper",
                 idempotency_key="eva:2"),
        NewEvent(lead_id=single, type="click", content_id="mm-scoring-whitepaper",
                 idempotency_key="eva:3"),
        NewEvent(lead_id=double, type="download", content_id="mm-scoring-whitepaper",
                 idempotency_key="eva:4")])
    with app.uow() as uow:
        stages = {e.lead_id: e.stage for e in uow.session.exec(select(Enrollment)).all()}
        entries = sorted((s.lead_id, s.stage) for s in uow.session.exec(select(StageEntry)))
    assert stages == {earlier: "BEW", double: "BEW", single: "EVA"}
    assert entries == [(earlier, "BEW"), (double, "BEW")]
