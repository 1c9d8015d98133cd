"""The composition root: settings, database, configuration, services and clock, built once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from engine.adapters.mailers import Mailer, mailer_from_url
from engine.clock import Clock, system_clock
from engine.config.compiler import CompiledConfig, load_and_compile
from engine.config.loader import ConfigPaths
from engine.consent import ConsentService
from engine.journeys import JourneyRuntime
from engine.mail.render import Renderer
from engine.outbox import Sender, deliver
from engine.settings import Settings, load_settings
from engine.store import database
from engine.store.uow import UnitOfWork
from engine.tokens import Tokens


@dataclass
class Ripen:
    """Everything a flow, the API or the CLI needs, wired together."""

    settings: Settings
    config: CompiledConfig
    db: Engine
    clock: Clock = field(default=system_clock)

    def __post_init__(self) -> None:
        self.tokens = Tokens(self.settings.secret_keys)
        self.renderer = Renderer(self.config.templates.folder)
        identity = self.config.mail.sender
        self.sender = Sender(identity.name, str(identity.address),
                             str(identity.reply_to) if identity.reply_to else None)
        self.journeys = JourneyRuntime(
            uow=self.uow, config=self.config, tokens=self.tokens, renderer=self.renderer,
            clock=self.clock, base_url=self.settings.public_base_url)
        self.consent = ConsentService(
            uow=self.uow, config=self.config, tokens=self.tokens, renderer=self.renderer,
            clock=self.clock, base_url=self.settings.public_base_url,
            check_deliverability=self.settings.check_deliverability,
            on_confirmed=self.journeys.enroll_confirmed)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db)

    def mailer(self) -> Mailer:
        """A fresh transport (SMTP connections are not shared between threads)."""
        return mailer_from_url(self.settings.effective_mail_url)

    def send_mail(self, ids: Sequence[int] | None = None, limit: int = 500) -> Counter[str]:
        """Drain the mail outbox (or just ``ids``) through the configured transport."""
        mailer = self.mailer()
        try:
            return deliver(self.uow, mailer, self.sender, clock=self.clock, ids=ids,
                           limit=limit)
        finally:
            mailer.close()

    def dispose(self) -> None:
        self.db.dispose()


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
