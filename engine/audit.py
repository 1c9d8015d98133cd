"""The content audit (seed 001, Learning 4: audit before creating new content).

For every persona × buying stage: how many items there are, how many are fast-lane offers,
how many the persona's journey sends in that stage and over how many days (its cadence),
and how long the content would last at that cadence (the runway). Also: content no journey
references, and content older than a given age. An empty cell is a gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from engine.config.compiler import CompiledConfig
from engine.config.journey import SendStep, WaitStep
from engine.stages import JourneyStage

BUYING = (JourneyStage.INF, JourneyStage.BEF, JourneyStage.EVA, JourneyStage.BEW)
CUSTOMER = (JourneyStage.AFS, JourneyStage.WIK, JourneyStage.CUS)


@dataclass(frozen=True)
class Cell:
    persona: str
    stage: JourneyStage
    items: tuple[str, ...]
    fast_lane: tuple[str, ...]
    sends: int          # send steps of the persona's journey in this stage
    wait_days: float    # the waits between them
    runway_days: float | None  # items × days per send; None without a cadence

    @property
    def empty(self) -> bool:
        return not self.items


@dataclass(frozen=True)
class ContentAudit:
    stages: tuple[JourneyStage, ...]
    cells: tuple[Cell, ...]
    unreferenced: tuple[str, ...]
    stale: tuple[tuple[str, date], ...]
    gaps: tuple[Cell, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.gaps


def audit_content(config: CompiledConfig, *, today: date,
                  stale_after: timedelta = timedelta(days=730)) -> ContentAudit:
    """The persona × stage matrix of the configured content and journeys."""
    used = {s.value for j in config.journeys.values() for s in j.stage_of.values()}
    stages = BUYING + tuple(s for s in CUSTOMER if s.value in used)
    referenced: set[str] = set()
    for journey in config.journeys.values():
        for step in journey.steps.values():
            if isinstance(step, SendStep):
                referenced.add(step.send.content)
                if step.send.fast_lane_offer:
                    referenced.add(step.send.fast_lane_offer)
    cells = []
    for persona in sorted(config.personas):
        journeys = [j for j in config.journeys.values()
                    if j.model.kind == "nurture" and j.model.persona == persona]
        for stage in stages:
            items = sorted(i.id for i in config.content.values()
                           if persona in i.personas and stage in i.stages)
            fast = sorted(i for i in items if config.content[i].fast_lane)
            sends, wait = 0, timedelta(0)
            for journey in journeys:
                for step_id, step in journey.steps.items():
                    if journey.stage_of[step_id] != stage:
                        continue
                    if isinstance(step, SendStep):
                        sends += 1
                    elif isinstance(step, WaitStep):
                        wait += step.wait
            days = wait / timedelta(days=1)
            runway = len(items) * days / sends if sends and days else None
            cells.append(Cell(persona, stage, tuple(items), tuple(fast), sends, days, runway))
    unreferenced = tuple(sorted(set(config.content) - referenced))
    stale = tuple(sorted((i.id, i.published) for i in config.content.values()
                         if i.published is not None and today - i.published > stale_after))
    return ContentAudit(stages, tuple(cells), unreferenced, stale,
                        gaps=tuple(c for c in cells if c.empty))
