"""Explicit fit of a lead to a persona (title, industry, company size, region)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.config.persona import Persona
from engine.config.scoring import Scoring
from engine.store.tables import Account, Lead


@dataclass(frozen=True)
class Profile:
    """What explicit scoring looks at, from the lead and its account."""

    job_title: str | None = None
    industry: str | None = None
    company_size: int | None = None
    region: str | None = None


def profile_of(lead: Lead, account: Account | None) -> Profile:
    """The explicit-scoring view of a lead and its account."""
    return Profile(job_title=lead.job_title,
                   industry=account.industry if account else None,
                   company_size=account.company_size if account else None,
                   region=account.region if account else None)


def fit_criteria(profile: Profile, persona: Persona) -> list[str]:
    """The persona's fit criteria the lead matches: title, industry, company_size, region."""
    fit = persona.fit
    matched = []
    title = (profile.job_title or "").lower()
    if fit.title_keywords and any(word.lower() in title for word in fit.title_keywords):
        matched.append("title")
    if fit.industries and profile.industry and profile.industry.lower() in {
            i.lower() for i in fit.industries}:
        matched.append("industry")
    if fit.company_size and profile.company_size is not None and \
            fit.company_size.contains(profile.company_size):
        matched.append("company_size")
    if fit.regions and profile.region and profile.region.upper() in {
            r.upper() for r in fit.regions}:
        matched.append("region")
    return matched


def fit_points(profile: Profile, persona: Persona, scoring: Scoring) -> int:
    """Points for each of the persona's fit criteria the lead matches."""
    points = scoring.explicit.fit
    return sum(getattr(points, criterion) for criterion in fit_criteria(profile, persona))


def fit_grade(points: float, scoring: Scoring) -> str:
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
