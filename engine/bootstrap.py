"""The composition root: settings, database, configuration, services and clock, built once."""

from __future__ import annotations

import os
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine

from engine.adapters.mailers import Mailer, mailer_from_url
from engine.adapters.ratelimit import RateLimitedMailer, TokenBucket
from engine.clock import Clock, system_clock
from engine.config.compiler import CompiledConfig, load_and_compile
from engine.config.loader import ConfigPaths
from engine.consent import ConsentService
from engine.errors import RipenError
from engine.handover import HandoverService
from engine.journeys import JourneyRuntime
from engine.mail.render import Renderer
from engine.outbox import Sender, deliver, send_claimed
from engine.profile import Profiles
from engine.settings import Settings, load_settings
from engine.store import database
from engine.store.mailqueue import Claimed
from engine.store.tables import Handover
from engine.store.uow import UnitOfWork
from engine.tokens import Tokens
from engine.webhooks import WebhookSender


@dataclass
class Ripen:
    """Everything a flow, the API or the CLI needs, wired together."""

    settings: Settings
    config: CompiledConfig
    db: Engine
    clock: Clock = field(default=system_clock)
    #: Real elapsed time and waiting, for the relay's rate limit only (the domain uses clock).
    monotonic: Callable[[], float] = field(default=time.monotonic)
    sleep: Callable[[float], None] = field(default=time.sleep)
    #: The real time for `webhook-timestamp`: receivers check it against their own clock.
    wall: Clock = field(default=system_clock)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def __post_init__(self) -> None:
        limit = self.config.mail.rate_limit
        self.relay_bucket = TokenBucket(limit.per_second, limit.burst, self.monotonic,
                                        self.sleep) if limit is not None else None
        #: Where the keys that sign links come from: RIPEN_SECRET_KEYS, or (development
        #: only) a key generated for this installation — shown on /health and at start.
        self.signing_keys = "RIPEN_SECRET_KEYS" if self.settings.secret_keys else "generated"
        self.tokens = Tokens(self.settings.secret_keys
                             or [generated_key(self.settings.var_dir)])
        self.renderer = Renderer(self.config.templates.folder)
        identity = self.config.mail.sender
        self.sender = Sender(identity.name, str(identity.address),
                             str(identity.reply_to) if identity.reply_to else None)
        self.journeys = JourneyRuntime(
            uow=self.uow, config=self.config, tokens=self.tokens, renderer=self.renderer,
            clock=self.clock, base_url=self.settings.public_base_url)
        self.handovers = HandoverService(
            uow=self.uow, config=self.config, tokens=self.tokens, renderer=self.renderer,
            clock=self.clock, base_url=self.settings.public_base_url)
        self.journeys.qualifier = self.handovers.on_events
        self.journeys.dispatch = self.dispatch
        self.journeys.lease = self.lease
        self.consent = ConsentService(
            uow=self.uow, config=self.config, tokens=self.tokens, renderer=self.renderer,
            clock=self.clock, base_url=self.settings.public_base_url,
            check_deliverability=self.settings.check_deliverability,
            on_confirmed=self.journeys.enroll_confirmed,
            on_customer=self.journeys.enroll_customer)
        self.profiles = Profiles(uow=self.uow, handovers=self.handovers, clock=self.clock)

    @property
    def lease(self) -> timedelta:
        """How long a sender holds what it claimed (``RIPEN_LEASE_SECONDS``)."""
        return timedelta(seconds=self.settings.lease_seconds)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db)

    def mailer(self) -> Mailer:
        """A fresh transport (SMTP connections are not shared between threads).

        An SMTP relay is paced by ``mail.rate_limit`` (one bucket per process, shared by
        every transport made here); the local Maildir is not.
        """
        mailer = mailer_from_url(self.settings.effective_mail_url,
                                 connections=self.settings.smtp_connections,
                                 monotonic=self.monotonic)
        if self.relay_bucket is not None and mailer.name == "smtp":
            return RateLimitedMailer(mailer, self.relay_bucket)
        return mailer

    def send_mail(self, ids: Sequence[int] | None = None, limit: int = 500,
                  max_rows: int = 100_000) -> Counter[str]:
        """Drain the mail outbox (or just ``ids``; at most ``max_rows``) through the
        configured transport."""
        mailer = self.mailer()
        try:
            return deliver(self.uow, mailer, self.sender, clock=self.clock, ids=ids,
                           limit=limit, max_rows=max_rows, lease=self.lease)
        finally:
            mailer.close()

    def dispatch(self, rows: Sequence[Claimed], owner: str) -> Counter[str]:
        """A journey step's mails, leased to ``owner``, sent right after their batch
        committed."""
        mailer = self.mailer()
        try:
            return send_claimed(self.uow, mailer, self.sender, rows, clock=self.clock,
                                owner=owner, lease=self.lease)
        finally:
            mailer.close()

    def push_handovers(self, handover_ids: Sequence[int]) -> None:
        """Right after a request made handovers (fast lane): their webhooks and the reps'
        notices now, not at the next tick — and nothing else (a backlog is the tick's)."""
        with self.uow() as uow:
            keys = [f"handover:{h.public_id}:rep" for h in (
                uow.session.get(Handover, i) for i in handover_ids) if h is not None]
            mails = uow.outbox_ids_by_key(keys)
            deliveries = [d.id for i in handover_ids for d in uow.webhooks(handover_id=i)
                          if d.id is not None and d.status in ("pending", "retry")]
        if deliveries:
            self.send_webhooks(deliveries)
        if mails:
            self.send_mail(mails)

    def webhook_secrets(self) -> dict[str, list[str]]:
        """Each endpoint's secrets from its environment variable (space-separated, newest
        first: two during a key rotation)."""
        return {e.id: self.environ.get(e.secret_env, "").split()
                for e in self.config.sla.webhooks}

    def send_webhooks(self, ids: Sequence[int] | None = None,
                      limit: int = 200) -> Counter[str]:
        """Deliver due handover webhooks (or just ``ids``), signed per Standard Webhooks."""
        with httpx.Client() as client:
            sender = WebhookSender(uow=self.uow,
                                   endpoints={e.id: e for e in self.config.sla.webhooks},
                                   secrets=self.webhook_secrets(), clock=self.clock,
                                   stamp=self.wall, client=client, lease=self.lease)
            return sender.deliver(ids=ids, limit=limit)

    def dispose(self) -> None:
        self.db.dispose()


GENERATED_KEY = "secret-key"
#: Printed at every start while links are signed with a generated key.
GENERATED_KEY_WARNING = (
    "RIPEN_SECRET_KEYS is not set: links in mails are signed with a key generated for this "
    "installation (var/secret-key). Fine on a laptop; before mail goes to real people set "
    "RIPEN_SECRET_KEYS (at least 32 characters, e.g. `openssl rand -hex 32`) and "
    "RIPEN_ENV=production.")


def generated_key(var_dir: Path) -> str:
    """The installation's own signing key for development, made once (readable by its owner
    only) and kept in ``var_dir``: never a key written in the source, which anybody could
    use to forge links. Several processes starting at once agree on the first one written."""
    path = var_dir / GENERATED_KEY
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        draft = var_dir / f".{GENERATED_KEY}.{os.getpid()}"
        draft.write_text(secrets.token_hex(32), encoding="utf-8")
        draft.chmod(0o600)
        try:
            os.link(draft, path)  # fails if another process was first: its key counts
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise RipenError(f"{path} holds no usable key (at least 32 characters): delete it "
                         "to make a new one, or set RIPEN_SECRET_KEYS")
    return key


def bootstrap_migrated(settings: Settings | None = None, *,
                       clock: Clock = system_clock) -> Ripen:
    """Like ``bootstrap`` for processes that must not migrate (workers, API processes): the
    database must already be at the code's schema revision, or a plain error says what to
    run. Several of them start at once; only ``ripen deploy``/``ripen db upgrade`` migrate."""
    ripen = bootstrap(settings, clock=clock, migrate=False)
    try:
        current, head = database.current_revision(ripen.db), database.head_revision()
    except Exception:
        ripen.dispose()
        raise
    if current != head:
        ripen.dispose()
        raise RipenError(f"the database is at schema revision {current or 'none'}, this ripen "
                         f"needs {head}: run `ripen db upgrade` (or `ripen deploy`) first")
    return ripen


def config_paths(settings: Settings) -> ConfigPaths:
    return ConfigPaths.under(Path(settings.home))


def bootstrap(
    settings: Settings | None = None, *, clock: Clock = system_clock, migrate: bool = True
) -> Ripen:
    """Validate the configuration, open (and migrate) the database.

    Raises ``ConfigError`` for a broken configuration and ``RipenError`` for bad settings,
    before anything is started.
    """
    settings = settings or load_settings()
    config = load_and_compile(config_paths(settings))
    engine = database.make_engine(settings.effective_database_url)
    if migrate:
        database.upgrade(engine)
    return Ripen(settings=settings, config=config, db=engine, clock=clock)
