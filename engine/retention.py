"""Retention: what ripen no longer needs is purged after the periods of
``config/retention.yaml`` (``engine.config.retention``), by the maintenance run.

Each class is purged in bounded batches (``LIMIT`` rows a run), so a first run over years of
history does not hold one enormous transaction; the next run goes on.
"""

from __future__ import annotations

from datetime import datetime

from engine.config.retention import Retention
from engine.store.uow import UowFactory
from engine.workbench import SIGN_IN_LOCKOUT

#: Rows of one class one maintenance run purges at most (the next run goes on).
LIMIT = 50_000


def purge(uow_factory: UowFactory, retention: Retention, now: datetime,
          *, limit: int = LIMIT) -> dict[str, int]:
    """Purge every class older than its period; rows purged per class."""
    counts: dict[str, int] = {}
    with uow_factory() as uow:
        counts["mail_bodies"] = uow.purge_mail_bodies(before=now - retention.mail_bodies,
                                                      limit=limit)
        counts["click_links"] = uow.purge_links(before=now - retention.click_links,
                                                limit=limit)
        counts["events"] = uow.purge_events(before=now - retention.events, limit=limit)
        counts["delivered_webhooks"] = uow.purge_webhooks(
            statuses=("delivered",), before=now - retention.delivered_webhooks, limit=limit)
        counts["dead_webhooks"] = uow.purge_webhooks(
            statuses=("dead", "disabled"), before=now - retention.dead_webhooks, limit=limit)
        counts["erased_consent_proof"] = uow.purge_erased_consents(
            before=now - retention.erased_consent_proof, limit=limit)
        counts["run_records"] = uow.forget_runs(before=now - retention.run_records)
        # not configurable: the workbench's lockout needs its window, and nothing longer
        counts["sign_in_failures"] = uow.forget_sign_in_failures(before=now - SIGN_IN_LOCKOUT)
        uow.commit()
    return counts


__all__ = ["LIMIT", "purge"]
