"""The consent transition table: complete, and the README shows exactly it."""

from __future__ import annotations

from engine.consent_states import TRANSITIONS, Request, Status, markdown_table, move
from tests.factories import REPO


def test_every_status_answers_every_request() -> None:
    """Each status but `new` has a row for every request; `new` only for the two that
    create a lead."""
    missing = [(status, request) for status in Status for request in Request
               if (status, request) not in TRANSITIONS
               and not (status is Status.NEW and request not in (Request.SIGN_UP,
                                                                 Request.PUSH))]
    assert missing == []


def test_nothing_but_the_person_leaves_a_withdrawal() -> None:
    """From unsubscribed or suppressed only the person's own sign-up opens a way back (to
    pending, never straight to confirmed); imports, pushes and old links are refused."""
    leaving = {(status, request): TRANSITIONS[(status, request)].to
               for status in (Status.UNSUBSCRIBED, Status.SUPPRESSED) for request in Request
               if TRANSITIONS[(status, request)].to not in (None, status, Status.SUPPRESSED,
                                                              Status.ERASED)}
    assert leaving == {(Status.UNSUBSCRIBED, Request.SIGN_UP): Status.PENDING}
    assert move("unsubscribed", Request.CONFIRM) is None
    assert move("suppressed", Request.PUSH) is None


def test_the_readme_shows_the_table_of_the_code() -> None:
    """The README's consent table is the one rendered from TRANSITIONS."""
    assert markdown_table() in (REPO / "README.md").read_text(encoding="utf-8")
