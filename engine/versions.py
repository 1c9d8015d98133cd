"""Journey versions: what happens to leads in flight when a journey changes.

A journey's version is the hash of its meaning. The first tick with a new version makes it
live (``register``); leads already in the journey then follow the journey's ``in_flight``:

- ``pin``: they finish the version they started (it is stored, so it can still run);
- ``migrate``: they move to the new version now, each step through ``step_map`` (or the
  step of the same id, or else the start of their stage);
- ``drain``: they finish their current stage on the old version and enter the new version
  when they reach the next stage.

``plan`` shows, before going live, how many leads each change would move.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from engine.config.compiler import CompiledConfig, CompiledJourney, compile_journey
from engine.config.journey import Journey
from engine.stages import JourneyStage
from engine.store.tables import Enrollment, JourneyVersion
from engine.store.uow import UnitOfWork


@dataclass(frozen=True)
class PlannedMove:
    journey: str
    policy: str
    from_version: str
    from_step: str
    to_step: str | None  # None: stays on the old version (pin, drain until stage end)
    leads: int


def register(uow: UnitOfWork, config: CompiledConfig, now: datetime) -> list[str]:
    """Store the current version of every journey that is not stored yet (going live)."""
    known = uow.journey_versions()
    added = []
    for journey in config.journeys.values():
        if (journey.id, journey.version) not in known:
            uow.add(JourneyVersion(journey_id=journey.id, version=journey.version,
                                   definition=journey.model.model_dump(mode="json"),
                                   live_since=now))
            added.append(journey.name)
    return added


def migration_target(journey: CompiledJourney, enrollment: Enrollment) -> str:
    """Where a migrating lead continues in the new version."""
    mapped = journey.model.in_flight.step_map.get(enrollment.step_id, enrollment.step_id)
    if mapped in journey.steps:
        return mapped
    stage = JourneyStage(enrollment.stage)
    return journey.entry.get(stage, next(iter(journey.entry.values())))


def plan(uow: UnitOfWork, config: CompiledConfig) -> list[PlannedMove]:
    """What going live with ``config`` would do to leads in flight, per journey and step."""
    moves: Counter[tuple[str, str, str, str, str | None]] = Counter()
    for journey in config.journeys.values():
        policy = journey.model.in_flight.policy
        for enrollment in uow.in_flight(journey.id):
            if enrollment.journey_version == journey.version:
                continue
            target = migration_target(journey, enrollment) if policy == "migrate" else None
            moves[(journey.id, policy, enrollment.journey_version, enrollment.step_id,
                   target)] += 1
    return [PlannedMove(*key, leads=count) for key, count in sorted(moves.items())]


def migrate(uow: UnitOfWork, config: CompiledConfig, now: datetime) -> int:
    """Apply ``migrate`` policies now; return how many leads moved."""
    moved = 0
    for journey in config.journeys.values():
        if journey.model.in_flight.policy != "migrate":
            continue
        for enrollment in uow.in_flight(journey.id):
            if enrollment.journey_version == journey.version:
                continue
            target = migration_target(journey, enrollment)
            enrollment.journey_version = journey.version
            enrollment.step_id = target
            enrollment.stage = journey.stage_of[target].value
            enrollment.step_entered_at = now
            enrollment.due_at = now if enrollment.status == "active" else None
            uow.add(enrollment)
            moved += 1
    return moved


class VersionCache:
    """Compiled older versions, for leads pinned to them (compiled once per process)."""

    def __init__(self, config: CompiledConfig) -> None:
        self.config = config
        self._compiled: dict[tuple[str, str], CompiledJourney | None] = {}

    def get(self, uow: UnitOfWork, journey_id: str, version: str) -> CompiledJourney | None:
        current = self.config.journeys.get(journey_id)
        if current is not None and current.version == version:
            return current
        key = (journey_id, version)
        if key not in self._compiled:
            stored = uow.journey_versions().get(key)
            self._compiled[key] = compile_journey(
                Journey.model_validate(stored.definition), self.config) if stored else None
        return self._compiled[key]
