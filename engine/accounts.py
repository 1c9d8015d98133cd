"""The lead's company: found or made by name, with the facts explicit scoring uses."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime
from typing import ClassVar

from engine import lead_fields
from engine.errors import RipenError
from engine.store.tables import Account, Lead
from engine.store.uow import UnitOfWork

REGION = re.compile(r"[A-Za-z]{2}")
MAX_COMPANY_SIZE = 10_000_000


class ProfileError(RipenError):
    pass


@dataclass(frozen=True)
class AccountFacts:
    """The company's facts explicit scoring uses; ``None`` means "not told"."""

    NAMES: ClassVar[tuple[str, ...]] = ("industry", "company_size", "region")

    industry: str | None = None
    company_size: int | None = None
    region: str | None = None

    @classmethod
    def checked(cls, *, industry: str | None = None, company_size: int | str | None = None,
                region: str | None = None) -> AccountFacts:
        """Validated and normalised (region upper-case); ProfileError names the field."""
        try:
            industry = lead_fields.text("industry", industry)
        except lead_fields.InvalidField as exc:
            raise ProfileError(str(exc)) from None
        size: int | None = None
        if isinstance(company_size, str):
            company_size = company_size.strip() or None
        if company_size is not None:
            try:
                size = int(company_size)
            except ValueError:
                raise ProfileError(f'company_size "{str(company_size)[:20]}" is not a whole '
                                   "number of employees") from None
            if not 1 <= size <= MAX_COMPANY_SIZE:
                raise ProfileError(f"company_size {size} is not between 1 and "
                                   f"{MAX_COMPANY_SIZE:,} employees")
        if region is not None:
            region = region.strip() or None
        if region is not None:
            if not REGION.fullmatch(region):
                raise ProfileError(f'region "{region[:10]}" is not a two-letter ISO 3166 '
                                   "country code such as DE, AT or CH")
            region = region.upper()
        return cls(industry=industry, company_size=size, region=region)

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


def attach_account(uow: UnitOfWork, lead: Lead, company: str | None, facts: AccountFacts,
                   now: datetime, *, overwrite: bool) -> Account | None:
    """The lead's account (found or made from ``company``), with ``facts`` applied.

    A form or an import only fills in what the account lacks (one person's form must not
    rewrite a company's data); sales and the CRM (``overwrite``) correct it.
    """
    account = uow.session.get(Account, lead.account_id) if lead.account_id else None
    if account is None and company:
        account = uow.account_by_name(company)
        if account is None:
            account = Account(name=company, created_at=now)
            uow.add(account)
            uow.flush()
        lead.account_id = account.id
    if account is None:
        if facts:
            raise ProfileError("industry, company size and region belong to the lead's "
                               "company: give the company name too")
        return None
    for name in AccountFacts.NAMES:
        value = getattr(facts, name)
        if value is not None and (overwrite or getattr(account, name) is None):
            setattr(account, name, value)
    uow.add(account)
    return account
