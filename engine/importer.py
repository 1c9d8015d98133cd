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

import charset_normalizer

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
    encoding: str = "utf-8"  # what the file was read as

    @property
    def reasons(self) -> Counter[str]:
        return Counter(reason for _, reason in self.refused)


def decode(raw: bytes, path: Path, encoding: str | None = None) -> tuple[str, str]:
    """The file's text and the encoding it was read with: ``encoding`` if given, else UTF-8
    (with or without BOM), else the one charset-normalizer finds (Excel's "CSV" is
    Windows-1252); a file that is no readable text is refused with the fix."""
    if encoding is not None:
        try:
            return raw.decode(encoding), encoding
        except LookupError:
            raise ImportFileError(f'"{encoding}" is not an encoding Python knows (e.g. '
                                  "utf-8, cp1252, latin-1)") from None
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{path} is not {encoding} (byte {exc.start + 1} cannot be "
                                  "decoded); leave --encoding out to detect it") from None
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    found = list(charset_normalizer.from_bytes(raw[:1 << 20]))
    if not found:
        raise ImportFileError(f"{path} is not text in an encoding ripen can recognise; save it "
                              "as CSV UTF-8, or name the encoding with --encoding")
    # Short files are ambiguous (cp775, cp1250 and cp1252 all read "Jürgen" without chaos):
    # among the least chaotic readings, the one with the fewest characters West European
    # text does not use, then charset-normalizer's order.
    least = min(match.chaos for match in found)
    best = min((m for m in found if m.chaos == least), key=lambda m: _foreign(str(m)))
    assert best.encoding is not None
    try:
        text = raw.decode(best.encoding)
    except UnicodeDecodeError:  # detected on the first megabyte; the rest disagrees
        raise ImportFileError(f"{path} looks like {best.encoding} but is not throughout; "
                              "save it as CSV UTF-8, or name the encoding with "
                              "--encoding") from None
    try:  # German text reads the same in several code pages: name Excel's when it fits
        if raw.decode("cp1252") == text:
            return text, "cp1252"
    except UnicodeDecodeError:
        pass
    return text, best.encoding


#: Punctuation of West European text beyond ASCII and the Latin-1 letters.
_WESTERN = set("€„“”‚‘’–—…«»°§´·")


def _foreign(text: str) -> int:
    """How many characters a West European text would not have."""
    return sum(1 for c in text if not (c.isascii() or c in _WESTERN or
                                       ("\u00c0" <= c <= "\u00ff" and c.isalpha())))


def read_rows(path: Path, encoding: str | None = None,
              found: list[str] | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row; clear errors for unreadable files. The encoding
    used is appended to ``found``. A first line ``sep=;`` (Excel) names the separator;
    otherwise it is sniffed among comma, semicolon (German Excel) and tab."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror}") from None
    text, used = decode(raw, path, encoding)
    if found is not None:
        found.append(used)
    first, _, rest = text.partition("\n")
    offset = 0
    separator: str | None = None
    if first.strip().lower().startswith("sep=") and len(first.strip()) == 5:
        separator, text, offset = first.strip()[4], rest, 1
    sample = text[:4096]
    dialect: type[csv.Dialect] | csv.Dialect | None = None
    if separator is None:
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() \
                else None
        except csv.Error:
            dialect = None
    csv.field_size_limit(MAX_FIELD_READ)
    if separator is not None:
        reader = csv.DictReader(io.StringIO(text), delimiter=separator)
    else:
        reader = csv.DictReader(io.StringIO(text), dialect=dialect or csv.excel)
    if not reader.fieldnames or "email" not in [f.strip().lower() for f in reader.fieldnames]:
        raise ImportFileError(f"{path} has no `email` column (first line: "
                              f"{', '.join(reader.fieldnames or []) or 'empty'})")
    unknown = {f.strip().lower() for f in reader.fieldnames} - COLUMNS
    if unknown:
        raise ImportFileError(f"{path}: unknown column(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(COLUMNS))}")
    try:
        for number, row in enumerate(reader, start=2 + offset):
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
               stage: str | None = None, encoding: str | None = None,
               progress: Callable[[int], None] | None = None) -> ImportSummary:
    """Each row signs up as from a form (double opt-in). With ``customers`` (an after-sales
    journey) the rows are existing customers: once confirmed they enter that journey at
    ``stage`` or the row's ``customer_stage`` (AFS, WIK, CUS) instead of nurturing."""
    found: list[str] = []
    summary = ImportSummary()
    for number, row in read_rows(path, encoding, found):
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
    summary.encoding = found[0] if found else encoding or "utf-8"
    return summary
