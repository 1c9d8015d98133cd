"""The example configuration, journey compilation, versions, durations and settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.durations import format_duration, parse_duration
from engine.errors import RipenError
from engine.settings import load_settings
from engine.stages import BuyingStage, JourneyStage
from tests.factories import REPO, config_tree


@pytest.fixture(scope="module")
def example():  # type: ignore[no-untyped-def]
    return load_and_compile(ConfigPaths.under(REPO))


def test_example_has_the_seed_personas(example) -> None:  # type: ignore[no-untyped-def]
    """The three personas from the seeds are there, Monika with the facts of seed 000 §2.3."""
    assert set(example.personas) >= {"monika-marketing", "peter-produktionsleiter",
                                     "kurt-konstrukteur"}
    monika = example.personas["monika-marketing"]
    assert monika.name == "Monika Marketing"
    assert "CMO" in monika.positions
    assert monika.company_size is not None
    assert (monika.company_size.min, monika.company_size.max) == (30, 150)
    assert monika.regions == ["DE", "AT", "CH"]


def test_example_content_covers_every_persona_and_stage(example) -> None:  # type: ignore[no-untyped-def]
    """Each persona has content for INF–BEW and at least one fast-lane item of its own."""
    for persona in example.personas:
        for stage in BuyingStage:
            assert example.content_for(persona, JourneyStage(stage.value)), (persona, stage)
        assert any(c.fast_lane and persona in c.personas for c in example.content.values())


def test_example_has_a_journey_per_persona_plus_recycling_and_after_sales(example) -> None:  # type: ignore[no-untyped-def]
    """Nurture journeys per persona, and recycle and after-sales journeys exist."""
    kinds = {j.model.kind for j in example.journeys.values()}
    assert kinds == {"nurture", "recycle", "after_sales"}
    nurtured = {j.model.persona for j in example.journeys.values() if j.model.kind == "nurture"}
    assert nurtured == set(example.personas)


def test_compiled_journey_knows_where_each_step_leads(example) -> None:  # type: ignore[no-untyped-def]
    """Branches lead to both targets, advance to the next stage's first step, exit nowhere."""
    journey = example.journeys["monika-marketing"]
    assert journey.name == f"journey:monika-marketing@{journey.version}"
    assert journey.transitions["inf-engaged"] == ("inf-done", "inf-second")
    assert journey.transitions["inf-done"] == (journey.entry[JourneyStage.BEF],)
    assert journey.transitions["inf-intro"] == ("inf-engaged",)
    assert journey.transitions["bew-guide"] == ()
    assert journey.stage_of["eva-proof"] is JourneyStage.EVA
    assert journey.order[0] == "inf-intro"


def test_version_ignores_comments_and_changes_with_meaning(tmp_path: Path) -> None:
    """A comment leaves the journey version alone; a changed wait gives a new version."""
    base = load_and_compile(ConfigPaths.under(config_tree(tmp_path / "a"))).journeys["anna"]
    commented = load_and_compile(ConfigPaths.under(config_tree(
        tmp_path / "b", {"config/journeys/anna.yaml": [("wait: 3d", "wait: 3d  # three days")]})))
    changed = load_and_compile(ConfigPaths.under(config_tree(
        tmp_path / "c", {"config/journeys/anna.yaml": [("wait: 3d", "wait: 4d")]})))
    assert commented.journeys["anna"].version == base.version
    assert changed.journeys["anna"].version != base.version
    assert len(base.version) == 12


def test_compiled_config_is_immutable(example) -> None:  # type: ignore[no-untyped-def]
    """Runtime objects cannot be changed by accident."""
    with pytest.raises(TypeError):
        example.journeys["x"] = None
    with pytest.raises(Exception, match="frozen"):
        example.personas["monika-marketing"].name = "Other"


@pytest.mark.parametrize(("text", "expected"), [
    ("90m", timedelta(minutes=90)), ("12h", timedelta(hours=12)), ("3d", timedelta(days=3)),
    ("2w", timedelta(weeks=2)), (" 7d ", timedelta(days=7)),
])
def test_durations_parse(text: str, expected: timedelta) -> None:
    """The duration syntax marketers use in YAML."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["3 days", "3", "d", "0d", "-1d", "1.5d", "3D"])
def test_bad_durations_are_refused(text: str) -> None:
    """Anything but a positive whole number and one unit letter is refused."""
    with pytest.raises(ValueError, match=r"duration|zero"):
        parse_duration(text)


def test_format_duration_picks_the_largest_exact_unit() -> None:
    """Round trip for display (graphs, summaries)."""
    assert [format_duration(timedelta(days=14)), format_duration(timedelta(hours=36)),
            format_duration(timedelta(minutes=90))] == ["2w", "36h", "90m"]


def test_production_refuses_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets refuse defaults outside development."""
    monkeypatch.setenv("RIPEN_ENV", "production")
    monkeypatch.delenv("RIPEN_SECRET_KEYS", raising=False)
    with pytest.raises(RipenError, match="RIPEN_SECRET_KEYS must be set"):
        load_settings()
    monkeypatch.setenv("RIPEN_SECRET_KEYS", "x" * 40 + "," + "y" * 40)
    assert load_settings().secret_keys == ["x" * 40, "y" * 40]


def test_development_defaults_use_the_embedded_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without settings ripen uses SQLite and a Maildir under var/."""
    for name in ("RIPEN_ENV", "RIPEN_DATABASE_URL", "RIPEN_MAIL_URL", "RIPEN_SECRET_KEYS",
                 "RIPEN_HOME"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.effective_database_url == "sqlite:///var/ripen.db"
    assert settings.effective_mail_url == "maildir:var/outbox"
    assert settings.secret_keys == []  # a key generated for the installation signs
