"""A lead's consent status and the only requests that may change it.

Every change of ``lead.status`` goes through ``move``: a request the table does not allow
from the current status changes nothing (``None``), and the caller answers as the table says.
What matters most: an unsubscribe, a complaint or a bounce closes the open confirmation
request, so an old double opt-in link can never undo it; only the person, signing up again
and confirming the *new* link, can. Imports and API pushes never lift a suppression.

The README's consent table is rendered from ``TRANSITIONS`` (``markdown_table``) and a test
keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """``lead.status``; ``new`` is an address ripen holds no lead for."""

    NEW = "new"
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    SUPPRESSED = "suppressed"
    ERASED = "erased"


class Request(StrEnum):
    SIGN_UP = "sign-up by the person (form)"
    PUSH = "import or API push"
    CONFIRM = "confirm (POST of the open request's link)"
    UNSUBSCRIBE = "unsubscribe (one-click or page)"
    PAUSE = "pause (page)"
    COMPLAINT = "spam complaint"
    BOUNCE = "hard bounce, soft-bounce limit"
    ERASE = "erase (GDPR)"


@dataclass(frozen=True)
class Transition:
    to: Status | None  # None: refused, nothing changes
    records: str       # what the consent ledger (and the lead) records


def _t(to: Status | None, records: str) -> Transition:
    return Transition(to, records)


S, R = Status, Request
_REFUSED_PUSH = _t(None, "nothing (the address is suppressed): only the person can sign "
                         "up again")
_NO_REQUEST = _t(None, "nothing: no request is open (a withdrawal, a newer link or its use "
                       "closed the link's); the page says so (410)")
_ERASE = _t(S.ERASED, "personal data removed; suppression `erased`; the ledger kept without "
                      "IP, user agent and text")

TRANSITIONS: dict[tuple[Status, Request], Transition] = {
    (S.NEW, R.SIGN_UP): _t(S.PENDING, "`requested` per purpose (text as shown, IP, user "
                                      "agent) with a new request id; DOI mail"),
    (S.NEW, R.PUSH): _t(S.PENDING, "the same; the form is the import file or API client"),
    (S.PENDING, R.SIGN_UP): _t(S.PENDING, "`requested` under the open request (a new one if "
                                          "its link expired); DOI mail"),
    (S.PENDING, R.PUSH): _t(S.PENDING, "the same"),
    (S.PENDING, R.CONFIRM): _t(S.CONFIRMED, "`confirmed` per purpose of that request; the "
                                            "request is used up; enrolment"),
    (S.PENDING, R.UNSUBSCRIBE): _t(S.UNSUBSCRIBED, "`withdrawn`; suppression; the open "
                                                   "request is closed"),
    (S.PENDING, R.PAUSE): _t(S.PENDING, "nothing (there is no mail to pause)"),
    (S.PENDING, R.COMPLAINT): _t(S.SUPPRESSED, "suppression; the open request is closed"),
    (S.PENDING, R.BOUNCE): _t(S.SUPPRESSED, "suppression; the open request is closed"),
    (S.PENDING, R.ERASE): _ERASE,
    (S.CONFIRMED, R.SIGN_UP): _t(S.CONFIRMED, "`requested` with a new request id; the new "
                                              "details wait in the lead until the address "
                                              "confirms them (a DOI mail asks)"),
    (S.CONFIRMED, R.PUSH): _t(S.CONFIRMED, "profile merged (the system holds an API key or "
                                           "the operator imports)"),
    (S.CONFIRMED, R.CONFIRM): _t(S.CONFIRMED, "`confirmed` per purpose; the waiting details "
                                              "are applied"),
    (S.CONFIRMED, R.UNSUBSCRIBE): _t(S.UNSUBSCRIBED, "`withdrawn` (e-mail, tracking); "
                                                     "suppression; journeys end; queued "
                                                     "marketing mail cancelled"),
    (S.CONFIRMED, R.PAUSE): _t(S.CONFIRMED, "`paused`; no mail for 90 days"),
    (S.CONFIRMED, R.COMPLAINT): _t(S.SUPPRESSED, "`withdrawn` (method complaint); "
                                                 "suppression; journeys end"),
    (S.CONFIRMED, R.BOUNCE): _t(S.SUPPRESSED, "suppression; journeys end"),
    (S.CONFIRMED, R.ERASE): _ERASE,
    (S.UNSUBSCRIBED, R.SIGN_UP): _t(S.PENDING, "`requested` with a new request id; DOI mail; "
                                               "the suppression stays until that link is "
                                               "confirmed"),
    (S.UNSUBSCRIBED, R.PUSH): _REFUSED_PUSH,
    (S.UNSUBSCRIBED, R.CONFIRM): _NO_REQUEST,
    (S.UNSUBSCRIBED, R.UNSUBSCRIBE): _t(S.UNSUBSCRIBED, "nothing new"),
    (S.UNSUBSCRIBED, R.PAUSE): _t(S.UNSUBSCRIBED, "nothing (stays unsubscribed)"),
    (S.UNSUBSCRIBED, R.COMPLAINT): _t(S.SUPPRESSED, "the stronger suppression reason"),
    (S.UNSUBSCRIBED, R.BOUNCE): _t(S.SUPPRESSED, "the stronger suppression reason"),
    (S.UNSUBSCRIBED, R.ERASE): _ERASE,
    (S.SUPPRESSED, R.SIGN_UP): _t(None, "nothing (bounce or complaint): the same answer as "
                                        "always, no mail"),
    (S.SUPPRESSED, R.PUSH): _REFUSED_PUSH,
    (S.SUPPRESSED, R.CONFIRM): _NO_REQUEST,
    (S.SUPPRESSED, R.UNSUBSCRIBE): _t(S.SUPPRESSED, "`withdrawn`; stays suppressed"),
    (S.SUPPRESSED, R.PAUSE): _t(S.SUPPRESSED, "nothing"),
    (S.SUPPRESSED, R.COMPLAINT): _t(S.SUPPRESSED, "nothing new"),
    (S.SUPPRESSED, R.BOUNCE): _t(S.SUPPRESSED, "nothing new"),
    (S.SUPPRESSED, R.ERASE): _ERASE,
    # An erased lead keeps no address: a later sign-up of it is a new lead (status new),
    # which the person alone can confirm (the suppression `erased` refuses imports).
    **{(S.ERASED, request): _t(None, "nothing: the address is no longer this lead's; a "
                                     "sign-up of it starts a new lead (`new`)")
       for request in Request},
}


def move(status: str, request: Request) -> Status | None:
    """The status ``request`` leads to from ``status``, or None when it is refused."""
    transition = TRANSITIONS.get((Status(status), request))
    return transition.to if transition is not None else None


def markdown_table() -> str:
    """The README's consent table: every status × request, where it leads and what it
    records."""
    lines = ["| status | request | becomes | what is recorded |", "| --- | --- | --- | --- |"]
    for (status, request), transition in TRANSITIONS.items():
        if status is S.ERASED and request is not R.SIGN_UP:
            continue
        to = f"**{transition.to}**" if transition.to is not None else "refused, unchanged"
        lines.append(f"| {status} | {request} | {to} | {transition.records} |")
    return "\n".join(lines)


__all__ = ["TRANSITIONS", "Request", "Status", "Transition", "markdown_table", "move"]
