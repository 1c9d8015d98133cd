"""Report mails as real MTAs and mailbox providers write them (Postfix DSN, ARF)."""

from __future__ import annotations

import secrets


def postfix_dsn(recipient: str, message_id: str, *, status: str = "5.1.1",
                action: str = "failed", report_id: str | None = None) -> bytes:
    """A Postfix bounce (RFC 3464), with the original message's headers attached."""
    report_id = report_id or f"<{secrets.token_hex(8)}@mx.example.net>"
    diagnostic = "smtp; 550 5.1.1 <{0}>: Recipient address rejected: User unknown" \
        if status.startswith("5") else "smtp; 452 4.2.2 Mailbox full"
    return f"""Return-Path: <>
Received: by mx.example.net (Postfix) id 4F1; Mon, 23 Nov 2026 09:05:12 +0100 (CET)
Date: Mon, 23 Nov 2026 09:05:12 +0100 (CET)
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: info@example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4F1.1763885112/mx.example.net"
Message-Id: {report_id}

This is a MIME-encapsulated message.

--4F1.1763885112/mx.example.net
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--4F1.1763885112/mx.example.net
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
X-Postfix-Queue-ID: 4F1
X-Postfix-Sender: rfc822; info@example.com
Arrival-Date: Mon, 23 Nov 2026 09:05:10 +0100 (CET)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mail.{recipient.split("@")[1]}
Diagnostic-Code: {diagnostic.format(recipient)}

--4F1.1763885112/mx.example.net
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Musterfirma Digital GmbH <info@example.com>
To: {recipient}
Subject: Leadmanagement in 10 Minuten
Message-ID: {message_id}

--4F1.1763885112/mx.example.net--
""".replace("\n", "\r\n").encode()


def arf_complaint(message_id: str, *, recipient: str | None = None,
                  feedback_type: str = "abuse") -> bytes:
    """A mailbox provider's spam complaint (RFC 5965); providers often redact the recipient."""
    rcpt = f"Original-Rcpt-To: {recipient}\n" if recipient else ""
    return f"""From: <staff@fbl.mailbox.example>
Date: Tue, 24 Nov 2026 11:00:00 +0000
Subject: FW: Leadmanagement in 10 Minuten
To: <abuse@example.com>
MIME-Version: 1.0
Message-ID: <{secrets.token_hex(8)}@fbl.mailbox.example>
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Tue, 24 Nov 2026 10:58:12 +0000.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <bounces@example.com>
{rcpt}Arrival-Date: Tue, 24 Nov 2026 10:58:12 +0000
Source-IP: 192.0.2.1

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: <info@example.com>
To: <redacted@mailbox.example>
Subject: Leadmanagement in 10 Minuten
Message-ID: {message_id}
Date: Mon, 23 Nov 2026 09:00:00 +0100

Guten Tag ...

--part1_13d.2e68ed54_boundary--
""".replace("\n", "\r\n").encode()


AUTO_REPLY = b"""From: monika@example.com\r
To: info@example.com\r
Subject: Abwesenheitsnotiz\r
Auto-Submitted: auto-replied\r
Content-Type: text/plain; charset=utf-8\r
\r
Ich bin bis zum 30.11. nicht im Buero.\r
"""
