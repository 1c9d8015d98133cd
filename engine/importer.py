"""CSV import of leads (trade fairs, events, telemarketing lists …).

Each row goes through the same sign-up as the form: validation, dedupe, suppression,
double opt-in. Broken files and rows get clear reasons; formula injection is refused.
"""

from __future__ import annotations

import csv
import io
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.accounts import AccountFacts, ProfileError
from engine.addresses import InvalidAddress
from engine.consent import Answer, ConsentError, ConsentService, LeadState, SignUp
from engine.errors import RipenError
from engine.lead_fields import FORMULA_START, LIMITS, InvalidField
from engine.mail.message import HeaderInjection

COLUMNS = {"email", "first_name", "last_name", "company", "job_title", "phone", "language",
           "campaign", "persona", "consent_purposes", "industry", "company_size", "region",
           "customer_stage"}
MAX_FIELD = 1000          # longer values are refused per row, with the reason
MAX_FIELD_READ = 1 << 20  # longer than this and the file itself is refused
MAX_ROWS = 1_000_000


class ImportFileError(RipenError):
    pass


@dataclass
class ImportSummary:
    imported: int = 0
    merged: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)
    confirmation_mails: list[int] = field(default_factory=list)
    #: Rows that failed on an error of ripen's (line, traceback) for the error log.
    failed: list[tuple[int, str]] = field(default_factory=list)

    @property
    def reasons(self) -> Counter[str]:
        return Counter(reason for _, reason in self.refused)


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row; clear errors for unreadable files."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"{path} is not UTF-8 (byte {exc.start + 1} cannot be decoded); "
            "save it as CSV UTF-8") from None
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() else None
    except csv.Error:
        dialect = None
    csv.field_size_limit(MAX_FIELD_READ)
    reader = csv.DictReader(io.StringIO(text), dialect=dialect or csv.excel)
    if not reader.fieldnames or "email" not in [f.strip().lower() for f in reader.fieldnames]:
        raise ImportFileError(f"{path} has no `email` column (first line: "
                              f"{', '.join(reader.fieldnames or []) or 'empty'})")
    unknown = {f.strip().lower() for f in reader.fieldnames} - COLUMNS
    if unknown:
        raise ImportFileError(f"{path}: unknown column(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(COLUMNS))}")
    try:
        for number, row in enumerate(reader, start=2):
            if number > MAX_ROWS + 1:
                raise ImportFileError(f"{path} has more than {MAX_ROWS} rows; split it")
            yield number, {(k or "").strip().lower(): (v or "").strip()
                           for k, v in row.items() if k is not None}
    except csv.Error as exc:
        raise ImportFileError(f"{path}: line {reader.line_num}: {exc}") from None


def _row_problem(row: dict[str, str]) -> str | None:
    """What no column may hold; each field's own limit and form are checked by the sign-up
    (``engine.lead_fields``: a phone number may start with +)."""
    for name, value in row.items():
        if len(value) > MAX_FIELD:
            return f"{name} is longer than {MAX_FIELD} characters"
        if name != "phone" and value.startswith(FORMULA_START):
            return f"{name} starts with {value[0]!r} (a spreadsheet formula?)"
    return None


def import_csv(path: Path, service: ConsentService, *, source: str, consent_version: str,
               campaign: str | None = None, customers: str | None = None,
               stage: str | None = None,
               progress: Callable[[int], None] | None = None) -> ImportSummary:
    """Each row signs up as from a form (double opt-in). With ``customers`` (an after-sales
    journey) the rows are existing customers: once confirmed they enter that journey at
    ``stage`` or the row's ``customer_stage`` (AFS, WIK, CUS) instead of nurturing."""
    summary = ImportSummary()
    for number, row in read_rows(path):
        if progress:
            progress(number)
        problem = _row_problem(row)
        if problem:
            summary.refused.append((number, problem))
            continue
        purposes = {p.strip() for p in (row.get("consent_purposes") or "email_marketing")
                    .replace(";", " ").replace(",", " ").split() if p.strip()}
        if row.get("customer_stage") and customers is None:
            summary.refused.append((number, "customer_stage is set but the import is not of "
                                            "customers (--customers JOURNEY)"))
            continue
        try:
            facts = AccountFacts.checked(industry=row.get("industry") or None,
                                         company_size=row.get("company_size") or None,
                                         region=row.get("region") or None)
            result = service.sign_up(SignUp(
                email=row.get("email", ""), source=source, consent_version=consent_version,
                purposes=frozenset(purposes), first_name=row.get("first_name") or None,
                last_name=row.get("last_name") or None, company=row.get("company") or None,
                job_title=row.get("job_title") or None, phone=row.get("phone") or None,
                language=row.get("language") or "de",
                campaign=row.get("campaign") or campaign, persona=row.get("persona") or None,
                form=f"import:{path.name}"[:LIMITS["form"]], by_the_person=False,
                account=facts,
                customer_journey=customers,
                customer_stage=(row.get("customer_stage") or stage or "").upper() or None
                if customers else None))
        except (InvalidAddress, ConsentError, HeaderInjection, ProfileError,
                InvalidField) as exc:
            summary.refused.append((number, str(exc)))
            continue
        except Exception:  # a bug must not cost the rows after it: they are imported
            summary.failed.append((number, traceback.format_exc()))
            summary.refused.append((number, "could not be stored: an error in ripen (see the "
                                            "error log); import the row again once fixed"))
            continue
        if result.answer is Answer.RATE_LIMITED:
            summary.refused.append((number, "too many confirmation mails to this address "
                                            "today; import it again tomorrow"))
        elif result.state is LeadState.SUPPRESSED:
            summary.refused.append((number, "address is suppressed (unsubscribed, erased, "
                                            "bounced or complained); only the person can "
                                            "sign up again"))
        elif result.state is LeadState.NEW:
            summary.imported += 1
        else:
            summary.merged += 1
        summary.confirmation_mails.extend(result.send_now)
    return summary
