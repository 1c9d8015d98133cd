"""The composition root: settings, database, compiled configuration and clock, built once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from engine.clock import Clock, system_clock
from engine.config.compiler import CompiledConfig, load_and_compile
from engine.config.loader import ConfigPaths
from engine.settings import Settings, load_settings
from engine.store import database


@dataclass
class Ripen:
    """Everything a flow, the API or the CLI needs, wired together."""

    settings: Settings
    config: CompiledConfig
    db: Engine
    clock: Clock = field(default=system_clock)

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
