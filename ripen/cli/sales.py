"""The outbox and the handovers: why a lead is (not) an MQL, webhook deliveries, the mail
outbox, routing."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from engine.errors import RipenError
from ripen.cli._common import (
    app,
    handovers_app,
    open_ripen,
    out,
    outbox_app,
    routing_app,
)
from ripen.cli.output import JsonOption, print_json, table


@app.command()
def explain(
    email: Annotated[str, typer.Argument(help="The lead's e-mail address")],
    as_json: JsonOption = False,
) -> None:
    """Why a lead has its score and grade, and why it is (not yet) an MQL."""
    from engine.addresses import normalise_email

    with open_ripen() as ripen_app:
        found = ripen_app.handovers.explain(normalise_email(email))
    if found is None:
        raise RipenError(f"no lead with the address {email}")
    lead, score = found.lead, found.score
    if as_json:
        print_json({
            "email": lead.email, "persona": lead.persona_id, "stage": lead.funnel_stage,
            "sales_stage": lead.sales_stage, "recycled_at": lead.recycled_at,
            "grade": score.grade, "fit": score.fit, "explicit_points": score.explicit,
            "engagement": score.engagement, "implicit_points": score.implicit,
            "lines": [{"kind": line.kind, "rule": line.rule_id, "at": line.at,
                       "points_then": line.delta, "points_now": line.points}
                      for line in score.lines],
            "mql_rules": [{"rule": check.rule, "holds": check.holds,
                           "conditions": [{"condition": text, "holds": ok}
                                          for text, ok in check.conditions]}
                          for check in found.checks],
            "is_mql": found.is_mql,
            "handovers": [_handover(h) for h in found.handovers],
        })
        return
    out.print(f"{lead.email}: grade {score.grade} (fit {score.fit}: explicit "
              f"{score.explicit:.0f} points; engagement {score.engagement}: implicit "
              f"{score.implicit:.1f} points now), persona {lead.persona_id or '-'}, stage "
              f"{lead.funnel_stage}, sales stage {lead.sales_stage or '-'}",
              markup=False, soft_wrap=True)
    lines = table("kind", "rule", "when", "points then", "points now",
                  right=("points then", "points now"))
    for line in score.lines:
        lines.add_row(line.kind, line.rule_id, f"{line.at:%Y-%m-%d %H:%M}",
                      f"{line.delta:+.1f}", f"{line.points:+.1f}")
    out.print(lines)
    for check in found.checks:
        conditions = "; ".join(f"{text} {'✓' if ok else '✗'}" for text, ok in check.conditions)
        out.print(f"MQL rule {check.rule}: {'holds' if check.holds else 'does not hold'} — "
                  f"{conditions}", markup=False, soft_wrap=True)
    if lead.recycled_at is not None:
        out.print(f"recycled {lead.recycled_at:%Y-%m-%d}: only engagement since then counts "
                  "for the MQL rule", markup=False, soft_wrap=True)
    for handover in found.handovers:
        out.print(f"handover {handover.public_id} {handover.created_at:%Y-%m-%d %H:%M} "
                  f"{handover.reason} → {handover.rep_id or '-'}: {handover.status}"
                  + (f" ({handover.rejection_code})" if handover.rejection_code else "")
                  + (f", {handover.outcome}" if handover.outcome else ""),
                  markup=False, soft_wrap=True)
    if not found.is_mql and lead.sales_stage is None:
        out.print("not an MQL yet: no MQL rule holds", markup=False)


def _handover(handover: Any) -> dict[str, Any]:
    return {"id": handover.public_id, "created_at": handover.created_at,
            "reason": handover.reason, "rep": handover.rep_id, "status": handover.status,
            "rejection_code": handover.rejection_code, "outcome": handover.outcome}


@handovers_app.command("list")
def handovers_list(
    status: Annotated[str | None, typer.Option(
        help="Only deliveries in this state: pending, retry, delivered, dead, disabled …")]
    = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Webhook deliveries of handovers, newest first, with their state and last error."""
    with open_ripen() as ripen_app, ripen_app.uow() as uow:
        rows = uow.webhooks(status=status, limit=limit)
        if as_json:
            print_json([{"id": row.id, "webhook_id": row.webhook_id,
                         "endpoint": row.endpoint_id, "event": row.event_type,
                         "status": row.status, "attempts": row.attempts,
                         "next_attempt_at": row.next_attempt_at,
                         "last_status_code": row.last_status_code,
                         "last_error": row.last_error, "created_at": row.created_at,
                         "delivered_at": row.delivered_at}
                        for row in rows])
            return
        for row in rows:  # one line each: operators grep for a webhook-id
            nxt = f" next {row.next_attempt_at:%Y-%m-%d %H:%M}" if row.next_attempt_at else ""
            last = row.last_error or (str(row.last_status_code) if row.last_status_code
                                      else "")
            out.print(f"{row.id} {row.webhook_id} {row.endpoint_id} {row.event_type} "
                      f"{row.status} attempts {row.attempts}{nxt}"
                      + (f" — {last}" if last else ""), markup=False, soft_wrap=True)
    out.print(f"{len(rows)} deliveries", markup=False)


@handovers_app.command("replay")
def handovers_replay(
    delivery: Annotated[int, typer.Argument(help="Delivery id from `ripen handovers list`")],
) -> None:
    """Send a delivery again (e.g. from the dead letter), keeping its webhook-id."""
    from engine.webhooks import replay

    with open_ripen() as ripen_app:
        row = replay(ripen_app.uow, delivery, ripen_app.clock())
        counts = ripen_app.send_webhooks(ids=[delivery])
    out.print(f"delivery {delivery} ({row.webhook_id}) to {row.endpoint_id}: "
              + ", ".join(f"{k} {v}" for k, v in counts.items()), markup=False, soft_wrap=True)


@outbox_app.command("list")
def outbox_list(
    status: Annotated[str | None, typer.Option(
        help="Only mails in this state: pending, retry, sending, sent, unknown, failed, "
        "suppressed …")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Outbox mails, newest first. `unknown`: a sender died after SMTP DATA began — the relay
    may have the mail; look its Message-ID up in the relay log, then `ripen outbox settle`."""
    with open_ripen() as ripen_app, ripen_app.uow() as uow:
        rows = uow.outbox_rows(status=status, limit=limit)
        if as_json:  # no addresses or bodies: `ripen gdpr export` shows one person's mail
            print_json([{"id": row.id, "status": row.status, "category": row.category,
                         "kind": row.kind, "lead_id": row.lead_id,
                         "message_id": row.message_id, "attempts": row.attempts,
                         "idempotency_key": row.idempotency_key,
                         "created_at": row.created_at, "sent_at": row.sent_at,
                         "last_error": row.last_error}
                        for row in rows])
            return
        for row in rows:
            out.print(f"{row.id} {row.status} {row.category} {row.message_id} "
                      f"attempts {row.attempts} {row.idempotency_key}"
                      + (f" — {row.last_error}" if row.last_error else ""),
                      markup=False, soft_wrap=True)
    out.print(f"{len(rows)} mails", markup=False)


@outbox_app.command("settle")
def outbox_settle(
    row: Annotated[int, typer.Argument(help="Outbox id from `ripen outbox list`")],
    sent: Annotated[bool, typer.Option("--sent/--resend", help="The relay log shows it "
                                       "(--sent), or it does not: send it again (--resend)")],
) -> None:
    """Settle a mail left `unknown` after a crash, once the relay log has answered."""
    from engine.outbox import settle_unknown

    with open_ripen() as ripen_app:
        settled = settle_unknown(ripen_app.uow, row, sent=sent, now=ripen_app.clock())
        counts = ripen_app.send_mail(ids=[row]) if not sent else None
    out.print(f"outbox {row} {settled.message_id}: "
              + ("marked sent" if sent else "sent again: " + ", ".join(
                  f"{k} {v}" for k, v in (counts or {}).items())), markup=False,
              soft_wrap=True)


@routing_app.command("report")
def routing_report(as_json: JsonOption = False) -> None:
    """Handovers per rep and channel this period: count and mean grade, against tolerance."""
    import statistics

    from engine.routing import period_start

    with open_ripen() as ripen_app, ripen_app.uow() as uow:
        sla = ripen_app.config.sla
        since = period_start(ripen_app.clock(), sla.routing.period)
        balance = ripen_app.handovers.balance(uow, ripen_app.clock())
    counts = [t.count for t in balance.tallies.values()]
    means = [t.mean for t in balance.tallies.values()]
    spread = grade = None
    if len(counts) >= 2 and statistics.mean(counts) > 0:
        spread = (max(counts) - min(counts)) / statistics.mean(counts)
        grade = (max(means) - min(means)) / statistics.mean(means)
    within = None if spread is None or grade is None else \
        max(spread, grade) <= sla.routing.tolerance
    if as_json:
        print_json({"since": since, "period": sla.routing.period,
                    "tolerance": sla.routing.tolerance,
                    "reps": [{"rep": rep.id, "channel": rep.channel,
                              "handovers": tally.count if tally else 0,
                              "mean_grade": tally.mean if tally else None}
                             for rep in sla.reps
                             for tally in [balance.tallies.get(rep.id)]],
                    "spread": {"count": spread, "mean_grade": grade, "within_tolerance": within}})
        return
    reps = table("rep", "channel", "handovers", "mean grade (A=4 … D=1)",
                 right=("handovers", "mean grade (A=4 … D=1)"))
    for rep in sla.reps:
        tally = balance.tallies.get(rep.id)
        reps.add_row(rep.id, rep.channel, str(tally.count if tally else 0),
                     f"{tally.mean:.2f}" if tally else "-")
    out.print(f"since {since:%Y-%m-%d} ({sla.routing.period})", markup=False)
    out.print(reps)
    if spread is not None and grade is not None:
        verdict = "within" if within else "outside"
        out.print(f"spread: count {spread:.0%}, mean grade {grade:.0%} — {verdict} the "
                  f"tolerance of {sla.routing.tolerance:.0%}", markup=False)
