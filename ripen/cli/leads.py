"""Leads and consent: import, bounces and complaints, quarantined leads, consent proof,
GDPR export and erasure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from engine.consent import LEAD_SOURCES
from engine.errors import RipenError
from ripen import errorlog
from ripen.cli._common import (
    app,
    bounces_app,
    consent_app,
    gdpr_app,
    leads_app,
    open_ripen,
    out,
)
from ripen.cli.output import JsonOption, print_json, table


@app.command("import")
def import_leads(
    file: Annotated[Path, typer.Argument(help="CSV with an `email` column; optional: "
                                         "first_name, last_name, company, job_title, phone, "
                                         "language, campaign, persona, consent_purposes, "
                                         "industry, company_size, region, customer_stage")],
    source: Annotated[str, typer.Option(help="Where the leads came from: " +
                                        ", ".join(LEAD_SOURCES))],
    campaign: Annotated[str | None, typer.Option(help="Campaign for rows without one")] = None,
    consent_version: Annotated[str | None, typer.Option(
        help="Consent text version the leads agreed to [default: current]",
        show_default=False)] = None,
    customers: Annotated[str | None, typer.Option(
        help="The rows are existing customers: once confirmed they enter this after-sales "
             "journey (e.g. after-sales) instead of nurturing", show_default=False)] = None,
    stage: Annotated[str | None, typer.Option(
        help="With --customers: the stage they start at (AFS, WIK or CUS) for rows without "
             "a customer_stage [default: the journey's first]", show_default=False)] = None,
    encoding: Annotated[str | None, typer.Option(
        help="The file's encoding, e.g. cp1252 [default: UTF-8, else detected]",
        show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Import leads (or, with --customers, existing customers) from CSV — UTF-8 or detected
    (Excel's Windows-1252), comma or semicolon separated; each gets a confirmation mail
    (double opt-in) unless already confirmed."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    from engine.importer import import_csv, read_rows

    if source not in LEAD_SOURCES:
        raise RipenError(f'--source "{source}" is not one of: {", ".join(LEAD_SOURCES)}')
    if stage is not None and customers is None:
        raise RipenError("--stage needs --customers JOURNEY (the stage of that journey)")
    total = sum(1 for _ in read_rows(file, encoding))
    with open_ripen() as ripen_app, Progress(TextColumn("{task.description}"), BarColumn(),
                                         TextColumn("{task.completed}/{task.total} rows"),
                                         console=Console(stderr=True) if as_json else out
                                         ) as progress:
        if customers is not None:
            ripen_app.consent.check_customer(customers, stage.upper() if stage else None)
        task = progress.add_task(f"importing {file.name}", total=total)
        summary = import_csv(file, ripen_app.consent, source=source, campaign=campaign,
                             customers=customers, stage=stage.upper() if stage else None,
                             consent_version=consent_version or ripen_app.config.consent.current,
                             encoding=encoding, progress=lambda _line: progress.advance(task))
        sent = ripen_app.send_mail(summary.confirmation_mails) if summary.confirmation_mails \
            else {}
    for line, trace in summary.failed:
        errorlog.record(f"import of {file} line {line}:\n{trace}")
    waiting = sent.get("retry", 0) + sent.get("deferred", 0)
    if as_json:
        print_json({"file": str(file), "encoding": summary.encoding,
                    "imported": summary.imported, "merged": summary.merged,
                    "refused": [{"line": line, "reason": reason}
                                for line, reason in summary.refused],
                    "confirmation_mails": {"sent": sent.get("sent", 0), "waiting": waiting},
                    "failed_lines": [line for line, _ in summary.failed]})
        return
    out.print(f"read {file.name} as {summary.encoding}: "
              f"imported {summary.imported}, merged {summary.merged}, "
              f"refused {len(summary.refused)}, confirmation mails sent "
              f"{sent.get('sent', 0)}" + (f", {waiting} waiting for the outbox's next run "
                                          "(relay busy or refusing)" if waiting else ""),
              soft_wrap=True)
    for line, reason in summary.refused[:50]:
        out.print(f"  line {line}: {reason}", markup=False, soft_wrap=True)
    if len(summary.refused) > 50:
        out.print(f"  … and {len(summary.refused) - 50} more", soft_wrap=True)


@bounces_app.command("ingest")
def bounces_ingest(
    path: Annotated[Path, typer.Argument(
        help="A report mail, a Maildir (new/ is moved to cur/), or a folder of .eml files")],
    as_json: JsonOption = False,
) -> None:
    """Read RFC 3464 delivery reports and RFC 5965 (ARF) complaints; suppress as configured.

    Hard bounces and complaints suppress the address at once, soft bounces after
    mail.bounces.soft_limit within mail.bounces.window. Reading the same mail twice counts
    it once. Mail that is not a report (auto-replies) is listed and left alone.
    """
    from engine.bounces import ingest

    with open_ripen() as ripen_app:
        summary = ingest(path, ripen_app.uow, rules=ripen_app.config.mail.bounces,
                         clock=ripen_app.clock, webhooks=ripen_app.config.sla.webhooks)
    counts = summary.counts
    if as_json:
        print_json({"files": summary.files, "counts": dict(counts),
                    "not_a_report": [{"file": name, "reason": reason}
                                     for name, reason in summary.skipped]})
        return
    out.print(f"{summary.files} files: hard {counts['hard']}, soft {counts['soft']}, "
              f"complaints {counts['complaint']}, suppressed {counts['suppressed']}, "
              f"already recorded {counts['duplicate']}, unknown recipient "
              f"{counts['unknown']}, not a report {len(summary.skipped)}", markup=False,
              soft_wrap=True)
    for name, reason in summary.skipped[:50]:
        out.print(f"  {name}: {reason}", markup=False, soft_wrap=True)


@leads_app.command("show")
def leads_show(
    email: Annotated[str, typer.Argument(help="The lead's e-mail address")],
    as_json: JsonOption = False,
) -> None:
    """One lead's timeline: persona, grade and consent; every journey it is or was in
    (stage, step, status, quarantine); then everything that happened, oldest first —
    consent, stages, mails (opened, clicked), events, score lines, deferrals, handovers and
    sales' answers. `ripen lead show` works too."""
    from engine.timeline import timeline

    with open_ripen() as ripen_app:
        story = timeline(ripen_app.uow, email, ripen_app.handovers.explain)
    if as_json:
        print_json(story)
        return
    who = ", ".join(filter(None, (story.name, story.job_title, story.company)))
    out.print(f"{story.email}{f' ({who})' if who else ''}", markup=False, soft_wrap=True)
    out.print(f"persona {story.persona or '-'}, stage {story.stage}, sales stage "
              f"{story.sales_stage or '-'}, grade {story.grade} ({story.explicit_points:.0f} "
              f"explicit, {story.implicit_points:.1f} implicit points), "
              f"{'an MQL' if story.is_mql else 'not an MQL'}", markup=False, soft_wrap=True)
    out.print(f"consent: {story.status}, text {story.consent_version or '-'}, tracking "
              f"{'yes' if story.tracking_consent else 'no'}, phone "
              f"{'yes' if story.phone_consent else 'no'}", markup=False, soft_wrap=True)
    journeys = table("journey", "version", "stage", "step", "status", "since", "ended",
                     title="Journeys", ids=("journey", "version", "step"))
    for part in story.journeys:
        journeys.add_row(part.journey, part.version, part.stage, part.step,
                         part.status + (f": {part.quarantine_reason}"
                                        if part.quarantine_reason else
                                        f": {part.exit_reason}" if part.exit_reason else ""),
                         f"{part.started_at:%Y-%m-%d}",
                         f"{part.ended_at:%Y-%m-%d}" if part.ended_at else "")
    out.print(journeys)
    out.print("Timeline (UTC), oldest first:", markup=False)
    for moment in story.moments:  # one line each: wraps as a line, never cut into columns
        out.print(f"  {moment.at:%Y-%m-%d %H:%M}  {moment.kind:<8}  {moment.what}"
                  + (f" — {moment.detail}" if moment.detail else ""),
                  markup=False, soft_wrap=True)


@leads_app.command("quarantined")
def leads_quarantined(
    journey: Annotated[str | None, typer.Option(help="Only this journey's")] = None,
    as_json: JsonOption = False,
) -> None:
    """Leads whose step could not be done (their mail did not render, a filter failed on
    their values): where they stopped and why. Fix the template or the data, then
    `ripen leads retry`."""
    from engine import quarantine

    with open_ripen() as ripen_app:
        held = quarantine.listed(ripen_app.uow, journey=journey)
    if as_json:
        print_json([q.as_json() for q in held])
        return
    for q in held:
        out.print(f"{q.email} {q.journey}@{q.version} {q.stage}:{q.step} since "
                  f"{q.since:%Y-%m-%d %H:%M} — {q.reason}" if q.since else
                  f"{q.email} {q.journey}@{q.version} {q.stage}:{q.step} — {q.reason}",
                  markup=False, soft_wrap=True)
    out.print(f"{len(held)} quarantined", markup=False)


@leads_app.command("retry")
def leads_retry(
    emails: Annotated[list[str] | None, typer.Argument(
        help="Addresses to retry [default: every quarantined lead, or --journey's]",
        show_default=False)] = None,
    journey: Annotated[str | None, typer.Option(help="Only this journey's")] = None,
) -> None:
    """Make quarantined leads due again at their step: the next tick does it, once (the
    outbox key of lead, journey version and step keeps a mail from going out twice)."""
    from engine import quarantine

    with open_ripen() as ripen_app:
        released = quarantine.retry(ripen_app.uow, now=ripen_app.clock(), journey=journey,
                                    emails=emails or [])
    for q in released:
        out.print(f"{q.email} {q.journey} {q.stage}:{q.step}: due again", markup=False,
                  soft_wrap=True)
    out.print(f"{len(released)} leads due again at the next tick", markup=False)


@consent_app.command("proof")
def consent_proof(
    email: Annotated[str, typer.Argument(help="The lead's e-mail address")],
    html: Annotated[Path | None, typer.Option(help="Also write a printable HTML file")] = None,
    as_json: JsonOption = False,
) -> None:
    """Print the complete consent record of one lead (BGH I ZR 164/09)."""
    with open_ripen() as ripen_app:
        proof = ripen_app.consent.proof(email)
        printed = ripen_app.clock().isoformat()
    if html is not None:
        from ripen.api.pages import render

        html.write_text(render("proof.html", title=f"Consent proof {proof.email}", proof=proof,
                               printed_at=printed), encoding="utf-8")
    if as_json:
        print_json({"email": proof.email, "status": proof.status,
                    "created_at": proof.created_at, "source": proof.source,
                    "campaign": proof.campaign,
                    "ledger": [{"at": entry.occurred_at, "action": entry.action,
                                "purpose": entry.purpose, "detail": entry.detail}
                               for entry in proof.entries],
                    "texts": proof.texts, "html": html})
        return
    out.print(f"{proof.email}: {proof.status}, created {proof.created_at.isoformat()}, "
              f"source {proof.source or '-'}, campaign {proof.campaign or '-'}",
              markup=False, soft_wrap=True)
    ledger = table("time (UTC)", "action", "purpose", "details", title="Consent ledger")
    for entry in proof.entries:
        details = "\n".join(f"{k}: {v}" for k, v in entry.detail.items() if v)
        ledger.add_row(entry.occurred_at.isoformat(), entry.action, entry.purpose, details)
    out.print(ledger)
    for digest, text in proof.texts.items():
        out.print(f"text {digest}: {text}", markup=False, soft_wrap=True)
    if html is not None:
        out.print(f"wrote {html}", markup=False, soft_wrap=True)


@gdpr_app.command("export")
def gdpr_export(
    email: Annotated[str, typer.Argument(help="The person's e-mail address")],
    output: Annotated[Path | None, typer.Option("--out", help="Write to this file "
                                                "[default: print]", show_default=False)] = None,
) -> None:
    """Everything ripen holds about one person, as JSON (Art. 15/20 GDPR)."""

    from engine import gdpr

    with open_ripen() as ripen_app:
        data = gdpr.export(ripen_app.uow, email)
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if output is None:
        print(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        out.print(f"wrote {output}")


@gdpr_app.command("erase")
def gdpr_erase(
    email: Annotated[str, typer.Argument(help="The person's e-mail address")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Erase one person (Art. 17 GDPR): only a hashed suppression entry remains."""
    from engine import gdpr

    if not yes and not typer.confirm(f"Erase all personal data of {email}?"):
        raise typer.Abort()
    with open_ripen() as ripen_app:
        kept = gdpr.erase(ripen_app.uow, email, clock=ripen_app.clock,
                          webhooks=ripen_app.config.sla.webhooks)
    out.print(f"erased {email}; kept anonymously: {kept['consents']} consent records, "
              f"{kept['events']} events, {kept['handovers']} handovers", markup=False,
              soft_wrap=True)
