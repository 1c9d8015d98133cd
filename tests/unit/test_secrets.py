"""Secrets stay secret (issue 20, finding 5): what ripen prints and logs hides passwords,
link tokens and query values; without RIPEN_SECRET_KEYS the links are signed with a key made
for the installation, never one written in the source."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from engine import redact
from engine.bootstrap import generated_key
from engine.errors import RipenError
from ripen.api.accesslog import RedactTokens, log_config


@pytest.mark.parametrize(("url", "shown"), [
    ("smtp://mailer:hunter2@relay.example:587", "smtp://mailer:***@relay.example:587"),
    ("postgresql://ripen:s3cr%40t@db:5432/ripen", "postgresql://ripen:***@db:5432/ripen"),
    ("smtps://u:p@[2001:db8::1]:465", "smtps://u:***@[2001:db8::1]:465"),
    ("maildir:var/outbox", "maildir:var/outbox"),
    ("sqlite:///var/ripen.db", "sqlite:///var/ripen.db"),
])
def test_urls_are_printed_without_their_password(url: str, shown: str) -> None:
    assert redact.url(url) == shown


@pytest.mark.parametrize(("path", "shown"), [
    ("/confirm/eyJhIjoxfQ.aBc.dEf", "/confirm/***"),
    ("/confirm/eyJhIjoxfQ.aBc.dEf/renew", "/confirm/***/renew"),
    ("/u/tok.en", "/u/***"), ("/c/tok.en", "/c/***"), ("/o/tok.en.gif", "/o/***"),
    ("/fast-lane/tok.en", "/fast-lane/***"), ("/h/tok.en", "/h/***"), ("/l/tok.en", "/l/***"),
    ("/api/gdpr/export?email=ingrid%40example.com", "/api/gdpr/export?email=***"),
    ("/subscribe?campaign=fair&content=x", "/subscribe?campaign=***&content=***"),
    ("/health", "/health"), ("/unsubscribe-info", "/unsubscribe-info"),
])
def test_access_log_paths_hide_tokens_and_query_values(path: str, shown: str) -> None:
    assert redact.path(path) == shown


def test_the_access_log_filter_rewrites_uvicorns_record() -> None:
    """uvicorn's access record (client, method, path, version, status) leaves the filter
    with its path redacted; the filter sits on uvicorn's access handler."""
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("10.0.0.1:5", "POST", "/confirm/secret.token", "1.1", 200),
                               None)
    assert RedactTokens().filter(record)
    assert record.getMessage() == '10.0.0.1:5 - "POST /confirm/*** HTTP/1.1" 200'
    assert log_config()["handlers"]["access"]["filters"] == ["redact"]


def test_the_generated_key_is_the_installations_own(tmp_path: Path) -> None:
    """Made once (64 hex characters, readable by its owner only), the same on every later
    start, another for another installation."""
    first = generated_key(tmp_path / "a")
    assert len(first) == 64
    assert generated_key(tmp_path / "a") == first
    assert generated_key(tmp_path / "b") != first
    mode = stat.S_IMODE((tmp_path / "a" / "secret-key").stat().st_mode)
    assert mode == 0o600
    assert list((tmp_path / "a").iterdir()) == [tmp_path / "a" / "secret-key"]


def test_a_damaged_generated_key_is_a_plain_error(tmp_path: Path) -> None:
    (tmp_path / "secret-key").write_text("short")
    with pytest.raises(RipenError, match="holds no usable key"):
        generated_key(tmp_path)
