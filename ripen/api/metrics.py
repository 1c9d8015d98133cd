"""``/metrics``: the operator's snapshot (``engine.metrics``) in Prometheus' text format,
rendered with prometheus-client. Behind the API key like ``/api/``: scrapers send it as
``Authorization: Bearer``."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engine import metrics
from engine.bootstrap import Ripen
from ripen.api.edge import behind_api_key


class _Snapshot:
    """A prometheus-client collector reading one snapshot per scrape."""

    def __init__(self, ripen: Ripen) -> None:
        self.ripen = ripen

    def collect(self) -> Iterator[Metric]:
        now = self.ripen.clock()
        found = metrics.snapshot(self.ripen.uow, now)
        leads = GaugeMetricFamily("ripen_leads", "Leads by consent status and funnel stage",
                                  labels=["status", "stage"])
        for (status, stage), count in sorted(found.leads.items()):
            leads.add_metric([status, stage], count)
        yield leads
        enrollments = GaugeMetricFamily("ripen_enrollments", "Enrollments by status",
                                        labels=["status"])
        for status, count in sorted(found.enrollments.items()):
            enrollments.add_metric([status], count)
        yield enrollments
        yield GaugeMetricFamily("ripen_enrollments_due",
                                "Active enrollments due now (work for the next tick)",
                                value=found.due)
        outbox = GaugeMetricFamily("ripen_outbox_mails", "Outbox mails by status",
                                   labels=["status"])
        for status, count in sorted(found.outbox.items()):
            outbox.add_metric([status], count)
        yield outbox
        oldest = found.oldest_waiting_mail
        yield GaugeMetricFamily("ripen_outbox_oldest_waiting_seconds",
                                "Age of the oldest mail still waiting to go out (0: none)",
                                value=(now - oldest).total_seconds() if oldest else 0.0)
        hooks = GaugeMetricFamily("ripen_webhook_deliveries", "Webhook deliveries by status",
                                  labels=["status"])
        for status, count in sorted(found.webhooks.items()):
            hooks.add_metric([status], count)
        yield hooks
        held = GaugeMetricFamily("ripen_quarantined_leads",
                                 "Leads quarantined at a step, per journey", labels=["journey"])
        for journey, count in sorted(found.quarantined.items()):
            held.add_metric([journey], count)
        yield held
        for kind, run in sorted(found.runs.items()):
            yield GaugeMetricFamily(f"ripen_last_{kind}_age_seconds",
                                    f"Seconds since the last {kind} run started",
                                    value=(now - run.started_at).total_seconds())
            if run.finished_at is not None:
                yield GaugeMetricFamily(f"ripen_last_{kind}_duration_seconds",
                                        f"How long the last finished {kind} run took",
                                        value=(run.finished_at - run.started_at)
                                        .total_seconds())
            yield GaugeMetricFamily(f"ripen_last_{kind}_failed",
                                    f"1 when the last {kind} run had failed parts",
                                    value=1.0 if run.status == "failed" else 0.0)


def router(ripen: Ripen) -> APIRouter:
    api = APIRouter()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(ripen))

    @api.get("/metrics", tags=["operations"], response_class=Response,
             **behind_api_key())
    def scrape() -> Response:
        """Prometheus metrics (API key): leads, enrollments due, outbox and webhook
        deliveries by status, the oldest waiting mail, quarantined leads, last runs."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return api
