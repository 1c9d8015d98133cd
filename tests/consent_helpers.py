"""Helpers for the consent tests: a client, links out of mails, table scans."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import String, Text, inspect, select
from sqlalchemy.engine import Engine

from engine.bootstrap import Ripen
from engine.store.tables import TABLES
from ripen.api.app import create_app

CONFIRM = re.compile(r"https://ripen\.example(/confirm/[A-Za-z0-9_.\-]+)")


def client(app: Ripen) -> TestClient:
    return TestClient(create_app(app), base_url="https://ripen.example")


def form(email: str, **extra: Any) -> dict[str, Any]:
    return {"email": email, "purposes": ["email_marketing"], "consent_version": "2026-11",
            **extra}


def confirm_path(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    match = CONFIRM.search(body.get_content())
    assert match, body.get_content()
    return match.group(1)


def unsubscribe_path(message: EmailMessage) -> str:
    header = str(message["List-Unsubscribe"])
    assert header.startswith("<https://ripen.example/u/"), header
    assert header.endswith(">"), header
    return header[len("<https://ripen.example"):-1]


def text_everywhere(db: Engine) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text value in every table."""
    found = []
    with db.connect() as connection:
        for table in TABLES:
            sa_table = table.__table__  # type: ignore[attr-defined]
            columns = [c for c in sa_table.columns
                       if isinstance(c.type, String | Text) or c.type.__class__.__name__ == "JSON"]
            if not columns:
                continue
            for row in connection.execute(select(*columns)).all():
                for column, value in zip(columns, row, strict=True):
                    if value is not None:
                        found.append((sa_table.name, column.name, str(value)))
    assert {t.__tablename__ for t in TABLES} <= set(inspect(db).get_table_names())
    return found
