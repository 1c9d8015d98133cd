"""Which persona a lead gets, and personas a lead can fit equally well (validate's note)."""

from __future__ import annotations

from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.config.persona import Persona
from engine.fit import Profile, match, overlaps, parse_profile
from tests.factories import REPO

CONFIG = load_and_compile(ConfigPaths.under(REPO))
PERSONAS = list(CONFIG.personas.values())


def test_a_free_text_lead_is_read_part_by_part() -> None:
    assert parse_profile("Leiter Konstruktion, Mechanical-Engineering, 1.200, DE",
                         PERSONAS) == Profile(job_title="Leiter Konstruktion",
                                              industry="mechanical-engineering",
                                              company_size=1200, region="DE")
    assert parse_profile("Head of Marketing, CMO", PERSONAS) == Profile(
        job_title="Head of Marketing, CMO")


def test_match_names_the_persona_enrollment_picks_and_why() -> None:
    chosen, rows = match(parse_profile("Leiter Konstruktion, mechanical-engineering, 200, DE",
                                       PERSONAS), PERSONAS, CONFIG.scoring)
    assert chosen is not None
    assert chosen.id == "kurt-konstrukteur"
    assert (rows[0].persona, rows[0].matched, rows[0].points, rows[0].grade) == (
        "kurt-konstrukteur", ("title", "industry", "company_size", "region"), 85, "A")
    assert [r.persona for r in rows] == ["kurt-konstrukteur", "peter-produktionsleiter",
                                         "monika-marketing"]
    nobody, _ = match(Profile(job_title="Koch"), PERSONAS, CONFIG.scoring)
    assert nobody is None


def test_overlapping_personas_are_named_with_the_lead_that_fits_both() -> None:
    """Kurt and Peter share industries, sizes and regions: a managing director at a
    machine builder of 100 in Austria fits both with 55 points and goes to Kurt by id."""
    [note] = overlaps(PERSONAS, CONFIG.scoring)
    assert note.startswith("personas kurt-konstrukteur and peter-produktionsleiter overlap: "
                           "a lead whose title matches neither (mechanical-engineering, "
                           "100 employees, AT) fits both with 55 points")
    chosen, rows = match(Profile(job_title="Geschäftsführer",
                                 industry="mechanical-engineering", company_size=100,
                                 region="AT"), PERSONAS, CONFIG.scoring)
    assert chosen is not None
    assert (chosen.id, rows[0].points, rows[1].points) == ("kurt-konstrukteur", 55, 55)


def test_separated_personas_and_shared_title_keywords() -> None:
    """Disjoint industries: no overlap. A keyword inside another's keyword: named."""
    kurt, peter = CONFIG.personas["kurt-konstrukteur"], CONFIG.personas["peter-produktionsleiter"]
    apart = peter.model_copy(update={"fit": peter.fit.model_copy(
        update={"industries": ["metalworking"]})})
    assert overlaps([kurt, apart], CONFIG.scoring) == []
    echo = Persona.model_validate({**apart.model_dump(), "id": "echo", "fit": {
        **apart.fit.model_dump(), "title_keywords": ["konstruktion"]}})
    [note] = overlaps([kurt, echo], CONFIG.scoring)
    assert note.startswith("personas echo and kurt-konstrukteur share the title keyword(s) "
                           "konstrukt")
