"""Scoring rules (Lead-Scoring explicit/implicit; seed 001 Learning 7, BANT from seed 003)."""

from __future__ import annotations

from pydantic import Field, model_validator

from engine.config.types import Duration, EventType, Frozen, ripen_error
from engine.stages import JourneyStage


class FitPoints(Frozen):
    """Points for each persona criterion a lead matches."""

    title: int = Field(default=30, ge=0, le=100)
    industry: int = Field(default=25, ge=0, le=100)
    company_size: int = Field(default=20, ge=0, le=100)
    region: int = Field(default=10, ge=0, le=100)


class BantPoints(Frozen):
    """Points for BANT: authority, need, budget, timeline (buying within N months)."""

    authority: int = Field(default=5, ge=0, le=100)
    need: int = Field(default=5, ge=0, le=100)
    budget: int = Field(default=5, ge=0, le=100)
    timeline: int = Field(default=5, ge=0, le=100)
    timeline_months: int = Field(
        default=12, ge=1, le=36, description="a purchase within this many months counts"
    )


class Explicit(Frozen):
    fit: FitPoints = FitPoints()
    bant: BantPoints = BantPoints()

    def maximum(self) -> int:
        fit, bant = self.fit, self.bant
        return (fit.title + fit.industry + fit.company_size + fit.region
                + bant.authority + bant.need + bant.budget + bant.timeline)


class Implicit(Frozen):
    """Activity points: event type → points, weighted by the stage of the content."""

    events: dict[EventType, int] = Field(min_length=1)
    stage_weights: dict[JourneyStage, float] = Field(
        default_factory=dict, description="multiplier per content stage; default 1.0"
    )
    content_points: bool = Field(
        default=True, description="add the content item's own `points` on click/download"
    )
    half_life: Duration = Field(description="implicit points halve over this time")


class FitGrades(Frozen):
    """Lowest explicit score for each fit grade."""

    A: int = Field(ge=0)
    B: int = Field(ge=0)
    C: int = Field(ge=0)
    D: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _descending(self) -> FitGrades:
        if not self.A > self.B > self.C >= self.D:
            raise ripen_error(
                f"grade thresholds must fall from A to D (got A={self.A}, B={self.B}, "
                f"C={self.C}, D={self.D})",
                "e.g. A: 70, B: 50, C: 30, D: 0",
            )
        return self


class EngagementGrades(Frozen):
    """Lowest implicit score for each engagement grade (1 = most engaged)."""

    e1: int = Field(alias="1", ge=0)
    e2: int = Field(alias="2", ge=0)
    e3: int = Field(alias="3", ge=0)
    e4: int = Field(default=0, alias="4", ge=0)

    @model_validator(mode="after")
    def _descending(self) -> EngagementGrades:
        if not self.e1 > self.e2 > self.e3 >= self.e4:
            raise ripen_error(
                "engagement thresholds must fall from 1 to 4 "
                f"(got 1={self.e1}, 2={self.e2}, 3={self.e3}, 4={self.e4})",
                'e.g. "1": 75, "2": 50, "3": 25, "4": 0',
            )
        return self


class Grades(Frozen):
    fit: FitGrades
    engagement: EngagementGrades


class Scoring(Frozen):
    """``config/scoring.yaml``."""

    explicit: Explicit = Explicit()
    implicit: Implicit
    grades: Grades
