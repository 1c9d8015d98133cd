"""Explicit fit of a lead to a persona (title, industry, company size, region)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.config.persona import Persona
from engine.config.scoring import Scoring


@dataclass(frozen=True)
class Profile:
    """What explicit scoring looks at, from the lead and its account."""

    job_title: str | None = None
    industry: str | None = None
    company_size: int | None = None
    region: str | None = None


def fit_points(profile: Profile, persona: Persona, scoring: Scoring) -> int:
    """Points for each of the persona's fit criteria the lead matches."""
    fit, points = persona.fit, scoring.explicit.fit
    total = 0
    title = (profile.job_title or "").lower()
    if fit.title_keywords and any(word.lower() in title for word in fit.title_keywords):
        total += points.title
    if fit.industries and profile.industry and profile.industry.lower() in {
            i.lower() for i in fit.industries}:
        total += points.industry
    if fit.company_size and profile.company_size is not None and \
            fit.company_size.contains(profile.company_size):
        total += points.company_size
    if fit.regions and profile.region and profile.region.upper() in {
            r.upper() for r in fit.regions}:
        total += points.region
    return total


def fit_grade(points: int, scoring: Scoring) -> str:
    grades = scoring.grades.fit
    for grade in ("A", "B", "C"):
        if points >= getattr(grades, grade):
            return grade
    return "D"


def best_persona(profile: Profile, personas: list[Persona], scoring: Scoring) -> Persona | None:
    """The persona the lead fits best; ``None`` when it fits none at all."""
    scored = sorted(((fit_points(profile, p, scoring), p.id, p) for p in personas),
                    key=lambda entry: (-entry[0], entry[1]))
    if not scored or scored[0][0] == 0:
        return None
    return scored[0][2]
