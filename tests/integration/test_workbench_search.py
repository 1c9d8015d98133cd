"""The workbench's lead search on both databases: address, first or last name, the full name,
the company; any case; the newest first; nothing for no match."""

from __future__ import annotations

from engine import workbench
from engine.bootstrap import Ripen
from engine.store.tables import Account
from tests.factories import lead


def test_the_search_finds_a_lead_by_address_name_full_name_or_company(
        ripen_app: Ripen) -> None:
    with ripen_app.uow() as uow:
        werk = Account(name="Schmiede Werk GmbH", created_at=lead().created_at)
        uow.add(werk)
        uow.flush()
        uow.add(lead(email="anna.berg@example.com", first_name="Anna", last_name="Berg"),
                lead(email="x1@kunde.de", first_name="Bert", last_name="Annaberger"),
                lead(email="x2@kunde.de", first_name="Cara", last_name="Sommer",
                     account_id=werk.id),
                lead(email="x3@kunde.de"))
        uow.commit()

    def found(text: str) -> list[str]:
        with ripen_app.uow() as uow:
            return [row.email or "" for row in workbench.search(uow, text)]

    assert found("ANNA") == ["x1@kunde.de", "anna.berg@example.com"]  # newest first
    assert found("berg@EXAMPLE") == ["anna.berg@example.com"]
    assert found("cara sommer") == ["x2@kunde.de"]       # the full name, across the space
    assert found("bert annaberger") == ["x1@kunde.de"]
    assert found("schmiede") == ["x2@kunde.de"]          # the company
    assert found("Werk") == ["x2@kunde.de"]
    assert found("nobody") == []
    assert found("   ") == []
