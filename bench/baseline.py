"""What ripen is measured against in the same run: naive implementations of the same work.

* ``naive_tick`` — a per-lead loop: one unit of work and commit per lead, a new SMTP
  connection per mail (how a cron script or a task-per-lead design does it).
* ``raw_pipeline`` — the renders and SMTP submissions alone, no database, no decisions:
  the limit a tick cannot beat. It submits through ripen's own transport (the same
  pipelined rounds over the same number of connections), so the limit moves with it.
* ``email_message_send`` — ``email.message.EmailMessage`` and a connection per mail.
"""

from __future__ import annotations

import secrets
import smtplib
import time
from collections.abc import Sequence
from email.message import EmailMessage

from engine.adapters.mailers import Outcome, SmtpMailer, Submission
from engine.bootstrap import Ripen
from engine.mail.context import marketing_context
from engine.mail.message import OutgoingMail, new_message_id
from engine.store.tables import Enrollment, Lead, MailOutbox, SentContent
from engine.tokens import Purpose


def _context(ripen: Ripen, lead: Lead, content_id: str, subject: str) -> dict[str, object]:
    content = ripen.config.content[content_id]
    base = ripen.settings.public_base_url
    now = ripen.clock()
    return marketing_context(
        subject=subject,
        lead={"first_name": lead.first_name, "last_name": lead.last_name,
              "job_title": lead.job_title, "company": None, "language": lead.language},
        persona=ripen.config.personas.get(lead.persona_id or ""),
        content=content.model_copy(update={
            "url": f"{base}/c/{ripen.tokens.dumps(Purpose.CLICK, 'x' * 16, now=now)}"}),
        fast_lane_offer=None,
        fast_lane_url=f"{base}/fast-lane/"
                      f"{ripen.tokens.dumps(Purpose.FAST_LANE, lead.public_id, now=now)}",
        unsubscribe_url=f"{base}/u/"
                        f"{ripen.tokens.dumps(Purpose.UNSUBSCRIBE, lead.public_id, now=now)}",
        identity=ripen.config.mail, open_pixel_url=None)


def naive_tick(ripen: Ripen, enrollment_ids: Sequence[int], smtp_port: int) -> float:
    """Seconds for the per-lead loop over ``enrollment_ids`` (due at their first send)."""
    started = time.perf_counter()
    for enrollment_id in enrollment_ids:
        now = ripen.clock()
        with ripen.uow() as uow:
            enrollment = uow.session.get(Enrollment, enrollment_id)
            assert enrollment is not None
            lead = uow.session.get(Lead, enrollment.lead_id)
            assert lead is not None
            assert lead.email is not None
            journey = ripen.config.journeys[enrollment.journey_id]
            step = journey.steps[enrollment.step_id]
            content_id = step.send.content  # type: ignore[union-attr]
            subject = ripen.config.content[content_id].title
            html, text = ripen.renderer.render(step.send.template,  # type: ignore[union-attr]
                                               _context(ripen, lead, content_id, subject))
            row = MailOutbox(idempotency_key=f"naive:{enrollment_id}", lead_id=lead.id,
                             kind="marketing", to_address=lead.email, subject=subject,
                             message_id=new_message_id(ripen.config.mail.message_id_domain),
                             created_at=now)
            uow.add_mail(row, body_html=html, body_text=text)
            uow.add(SentContent(lead_id=lead.id or 0, content_id=content_id,
                                     journey_id=journey.id, step_id=step.id, sent_at=now))
            ripen.journeys._next(enrollment, journey, now)  # the same next step as the engine
            uow.add(enrollment)
            uow.commit()
            message = OutgoingMail(to=lead.email, subject=subject, html=html, text=text,
                                   message_id=row.message_id, sender_name="Bench",
                                   sender_address="bench@example.com", date=now).to_bytes()
            with smtplib.SMTP("127.0.0.1", smtp_port) as smtp:
                smtp.sendmail("bench@example.com", [lead.email], message)
            row.status, row.sent_at = "sent", now
            uow.add(row)
            uow.commit()
    return time.perf_counter() - started


def raw_pipeline(ripen: Ripen, leads: Sequence[Lead], smtp_port: int,
                 content_id: str, template: str) -> float:
    """Seconds to render and submit one mail per lead through ripen's SMTP transport
    (rounds over ``RIPEN_SMTP_CONNECTIONS``), nothing else: no database, no decisions."""
    subject = ripen.config.content[content_id].title
    now = ripen.clock()
    mailer = SmtpMailer(f"smtp://127.0.0.1:{smtp_port}?starttls=no",
                        connections=ripen.settings.smtp_connections)
    started = time.perf_counter()
    try:
        for start in range(0, len(leads), mailer.lanes):
            mails = []
            for lead in leads[start:start + mailer.lanes]:
                html, text = ripen.renderer.render(template,
                                                   _context(ripen, lead, content_id, subject))
                message = OutgoingMail(to=lead.email or "", subject=subject, html=html,
                                       text=text,
                                       message_id=f"<{secrets.token_hex(8)}@bench.example>",
                                       sender_name="Bench", sender_address="bench@example.com",
                                       date=now).to_bytes()
                mails.append(Submission("bench@example.com", lead.email or "", message))
            results = mailer.send_round(mails, lambda ready: ready)
            assert all(r is not None and r.outcome is Outcome.SENT for r in results), results
    finally:
        mailer.close()
    return time.perf_counter() - started


def email_message_send(ripen: Ripen, leads: Sequence[Lead], smtp_port: int,
                       content_id: str, template: str) -> float:
    """Seconds for the textbook way: EmailMessage, and a new connection per mail."""
    subject = ripen.config.content[content_id].title
    started = time.perf_counter()
    for lead in leads:
        html, text = ripen.renderer.render(template, _context(ripen, lead, content_id, subject))
        message = EmailMessage()
        message["From"] = "Bench <bench@example.com>"
        message["To"] = lead.email or ""
        message["Subject"] = subject
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        with smtplib.SMTP("127.0.0.1", smtp_port) as smtp:
            smtp.send_message(message)
    return time.perf_counter() - started
