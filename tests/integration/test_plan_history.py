"""Funnel history (the report's waterfall) and the open pipeline as `ripen plan` reads them
(SQLite and PostgreSQL)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from engine.bootstrap import Ripen
from engine.plan import History
from engine.report import funnel_report
from engine.store.tables import Handover
from tests.factories import NOW, lead


def test_history_counts_leads_mql_sal_won_by_source(ripen_app: Ripen) -> None:
    with ripen_app.uow() as uow:
        people = [lead(source="website") for _ in range(6)] + \
            [lead(source="trade_fair") for _ in range(4)] + \
            [lead(source="website", created_at=NOW - timedelta(days=400))]  # too old
        uow.add(*people)
        uow.flush()
        for person in people[:4] + people[6:7]:  # 5 MQLs
            person.mql_at = NOW
        outcomes = [("accepted", None), ("closed", "won"), ("rejected", None),
                    ("open", None), ("closed", "won")]
        for person, (status, outcome) in zip(people[:4] + people[6:7], outcomes, strict=True):
            uow.add(Handover(public_id=secrets.token_urlsafe(8), lead_id=person.id or 0,
                             reason="threshold", status=status, outcome=outcome,
                             created_at=NOW))
        people[3].sales_stage = "MQL"
        people[0].sales_stage = "BAN"
        uow.add(*people)
        uow.commit()
    with ripen_app.uow() as uow:
        history = History.of(funnel_report(uow, NOW - timedelta(days=365), NOW + timedelta(1)))
        pipeline = uow.open_pipeline()
    assert (history.leads, history.mql, history.sal, history.won) == (10, 5, 3, 2)
    assert history.by_source == {"website": (6, 1), "trade_fair": (4, 1)}
    assert history.rates() == (("lead", "mql", 0.5), ("mql", "sal", 0.6),
                               ("sal", "won", 2 / 3))
    assert pipeline == {"mql": 1, "sal": 1}
