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


@dataclass(frozen=True)
class PersonaMatch:
    """How a profile fits one persona: the criteria matched, their points, the fit grade."""

    persona: str
    matched: tuple[str, ...]
    points: int
    grade: str


def match(profile: Profile, personas: list[Persona], scoring: Scoring
          ) -> tuple[Persona | None, list[PersonaMatch]]:
    """The persona a lead with ``profile`` gets (as enrollment picks it: most fit points,
    then the persona id in alphabetical order) and how it fits every persona, best first."""
    rows = [PersonaMatch(p.id, tuple(fit_criteria(profile, p)), fit_points(profile, p, scoring),
                         fit_grade(fit_points(profile, p, scoring), scoring))
            for p in personas]
    rows.sort(key=lambda row: (-row.points, row.persona))
    return best_persona(profile, personas, scoring), rows


def parse_profile(text: str, personas: list[Persona]) -> Profile:
    """``"Leiter Konstruktion, mechanical-engineering, 200, DE"``: comma-separated parts in
    any order — a number is the company size, a two-letter code the region, a known
    industry code (of any persona) the industry, the rest the job title."""
    industries = {i.lower(): i for p in personas for i in p.fit.industries}
    title: list[str] = []
    industry = region = None
    size = None
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.replace(".", "").isdigit():
            size = int(part.replace(".", ""))
        elif len(part) == 2 and part.isalpha() and part.isupper():
            region = part
        elif part.lower() in industries:
            industry = industries[part.lower()]
        else:
            title.append(part)
    return Profile(job_title=", ".join(title) or None, industry=industry, company_size=size,
                   region=region)


def overlaps(personas: list[Persona], scoring: Scoring) -> list[str]:
    """Pairs of personas a lead can fit equally well (enrollment then picks by id, which is
    rarely what the marketer meant): a title keyword of one inside one of the other's, or
    a lead titled for neither inside both personas' industries, sizes and regions."""
    found: list[str] = []
    ordered = sorted(personas, key=lambda p: p.id)
    for index, first in enumerate(ordered):
        for second in ordered[index + 1:]:
            shared = sorted({a for a in first.fit.title_keywords for b in
                             second.fit.title_keywords if a.lower() in b.lower()}
                            | {b for a in first.fit.title_keywords for b in
                               second.fit.title_keywords if b.lower() in a.lower()})
            if shared:
                found.append(f"personas {first.id} and {second.id} share the title "
                             f"keyword(s) {', '.join(shared)}: a title with it fits both; "
                             "keep title keywords distinct")
            profile = _common_profile(first, second)
            if profile is None:
                continue
            a, b = fit_points(profile, first, scoring), fit_points(profile, second, scoring)
            if a == b and a > 0:
                where = ", ".join(filter(None, (
                    profile.industry, f"{profile.company_size} employees"
                    if profile.company_size else None, profile.region)))
                found.append(
                    f"personas {first.id} and {second.id} overlap: a lead whose title matches "
                    f"neither ({where}) fits both with {a} points and goes to {first.id} "
                    "(the first id); separate them by industries, company_size or regions, "
                    "or accept it")
    return found


def _common_profile(first: Persona, second: Persona) -> Profile | None:
    """A profile (without a title) inside both personas' other criteria, or None."""
    def common(a: list[str], b: list[str]) -> str | bool | None:
        if not a or not b:
            return None  # one does not ask: no points from it for that one
        both = sorted({x.lower() for x in a} & {x.lower() for x in b})
        return both[0] if both else False

    industry = common(first.fit.industries, second.fit.industries)
    region = common(first.fit.regions, second.fit.regions)
    if industry is False or region is False:
        return None
    size = None
    one, two = first.fit.company_size, second.fit.company_size
    if one and two:
        low = max(one.min, two.min)
        high = min(x for x in (one.max, two.max, 10**9) if x is not None)
        if low > high:
            return None
        size = low
    return Profile(industry=str(industry) if industry else None, company_size=size,
                   region=str(region).upper() if region else None)
