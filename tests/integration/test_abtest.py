"""A/B tests on a send step, with real mail: stable assignment by share, results per variant
from what leads really did, the Bayesian verdict, and the winner rule sending the winner to
everyone once it is clear."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from engine import abtest
from engine.bootstrap import Ripen
from engine.clock import ManualClock
from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.errors import ConfigError
from engine.settings import load_settings
from engine.store.tables import Lead, MailOutbox
from tests.conftest import API_KEY, SmtpSink
from tests.factories import NOW, example_tree
from tests.integration.test_journeys import click_first_link, confirmed_lead, tick

SUBJECT_B = "Leadmanagement in 10 Minuten – für {{ lead.company or 'Ihr Team' }}"
VARIANTS = f"""
          variants:
            - {{id: a, share: 50}}
            - {{id: b, share: 50, subject: "{SUBJECT_B}"}}
          winner: {{metric: click, probability: 0.9, min_sends: 10}}"""
INTRO = ("        send: {content: mm-leadmanagement-grundlagen, template: content_offer, "
         "fast_lane_offer: mm-checkliste-auswahl}")


def _tree(tmp_path: Path, variants: str = VARIANTS) -> Path:
    root = tmp_path / "shop"
    example_tree(root)
    journey = root / "config" / "journeys" / "monika-marketing.yaml"
    text = journey.read_text(encoding="utf-8")
    assert INTRO in text
    journey.write_text(text.replace(INTRO, (
        "        send:\n          content: mm-leadmanagement-grundlagen\n"
        "          template: content_offer\n          fast_lane_offer: mm-checkliste-auswahl"
        + variants), 1), encoding="utf-8")
    return root


@pytest.fixture
def app(migrated: Engine, smtp: tuple[SmtpSink, int], tmp_path: Path) -> Ripen:
    _, port = smtp
    settings = load_settings(mail_url=f"smtp://127.0.0.1:{port}?starttls=no",
                             public_base_url="https://ripen.example", api_keys=[API_KEY],
                             secret_keys=["k" * 40])
    return Ripen(settings=settings, config=load_and_compile(ConfigPaths.under(_tree(tmp_path))),
                 db=migrated, clock=ManualClock(NOW))


def _mails(app: Ripen) -> list[MailOutbox]:
    with app.uow() as uow:
        return list(uow.session.exec(select(MailOutbox).where(
            MailOutbox.category == "nurture").order_by(MailOutbox.id)).all())


def test_variants_are_stable_by_share_and_the_winner_goes_to_everyone(
        app: Ripen, smtp: tuple[SmtpSink, int]) -> None:
    sink, _ = smtp
    people = [f"ab{n:02d}@example.com" for n in range(60)]
    for n, email in enumerate(people):
        if n and n % 25 == 0:  # the form takes 30 sign-ups an hour from one address
            app.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
        confirmed_lead(app, sink, email, persona="monika-marketing")
    tick(app)
    tick(app)  # a second tick sends nothing twice
    mails = _mails(app)
    assert len(mails) == 60
    journey = app.config.journeys["monika-marketing"]
    send = journey.steps["inf-intro"].send  # type: ignore[union-attr]
    with app.uow() as uow:
        public = {lead.id: lead.public_id for lead in uow.session.exec(select(Lead)).all()}
    for mail in mails:  # each lead got the variant its hash gives, whatever the tick
        assert mail.variant == abtest.assign(send, journey.id, "inf-intro",
                                             public[mail.lead_id]).id
    shares = Counter(mail.variant for mail in mails)
    assert set(shares) == {"a", "b"}
    assert 15 <= shares["b"] <= 45  # 50 % of 60, give or take the hash
    subjects = {m.variant: m.subject for m in mails}
    assert subjects["a"] == "Leadmanagement in 10 Minuten: vom Kontakt zum Kunden"
    assert subjects["b"] == "Leadmanagement in 10 Minuten – für Ihr Team"

    # Everyone who got B clicks; of A, one.
    by_address = {m["To"]: m for m in sink.parsed()}
    clicked_a = 0
    for mail in mails:
        if mail.variant == "b" or clicked_a == 0:
            clicked_a += mail.variant == "a"
            click_first_link(app, by_address[mail.to_address])
    with app.uow() as uow:
        [result] = abtest.results(uow, app.config)
    arms = {arm.variant: arm for arm in result.variants}
    assert (arms["a"].delivered, arms["b"].delivered) == (shares["a"], shares["b"])
    assert (arms["a"].clicked, arms["b"].clicked) == (1, shares["b"])
    assert arms["b"].next_stage == shares["b"]  # each click on INF content moved it to BEF
    assert arms["b"].best is not None
    assert arms["b"].best > 0.99
    assert result.verdict.startswith(f"b beats a on clicks, {abtest.percent(arms['b'].best)} "
                                     "probability")
    assert result.winner == "b"  # 10 mails each at least, and over 0.9

    # New leads now all get B.
    for n in range(6):
        confirmed_lead(app, sink, f"late{n}@example.com", persona="monika-marketing")
    late: list[MailOutbox] = []
    for _ in range(96):  # quiet hours and weekends defer them, never drop them
        tick(app)
        late = [m for m in _mails(app) if m.to_address and m.to_address.startswith("late")]
        if len(late) == 6:
            break
        app.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    assert [m.variant for m in late] == ["b"] * 6

    # The workbench shows the test under the journey's diagram.
    from tests.consent_helpers import client

    page = client(app).get("/workbench/journeys/monika-marketing",
                           headers={"authorization": f"Bearer {API_KEY}"})
    assert page.status_code == 200
    assert "A/B test at inf-intro" in page.text
    assert 'data-variant="b"><td>b <strong>(winner)</strong>' in page.text
    assert "A/B a 50 % / b 50 %" in page.text  # on the step's box


def test_a_broken_test_is_refused_at_its_line(tmp_path: Path) -> None:
    """Shares that do not add up, an unknown variant content and a bad variant subject are
    configuration errors with file, line and column, like any other."""
    for variants, message in (
            ("\n          variants:\n            - {id: a, share: 50}\n"
             "            - {id: b, share: 40, subject: B}", "add up to 90, not 100"),
            ("\n          variants:\n            - {id: a, share: 50}\n"
             "            - {id: b, share: 50, content: no-such-item}", "unknown content"),
            ("\n          variants:\n            - {id: a, share: 50}\n"
             "            - {id: b, share: 50, subject: '{{ lead.frist_name }}'}",
             "frist_name"),
    ):
        with pytest.raises(ConfigError) as caught:
            load_and_compile(ConfigPaths.under(_tree(tmp_path / str(len(message)), variants)))
        assert message in str(caught.value)
        assert "config/journeys/monika-marketing.yaml:" in str(caught.value)


def test_the_bayesian_probability_is_exact_for_two_variants() -> None:
    """Evan Miller's closed form against a known value and its symmetry."""
    assert abtest.beats(60, 200, 40, 200) == pytest.approx(0.98941, abs=1e-4)
    assert abtest.beats(40, 200, 60, 200) == pytest.approx(1 - 0.98941, abs=1e-4)
    assert abtest.beats(5, 10, 5, 10) == pytest.approx(0.5)
    assert (abtest.percent(0.9999), abtest.percent(0.971), abtest.percent(0.001)) == (
        "> 99 %", "97 %", "< 1 %")
    three = abtest.best_probabilities([(40, 200), (60, 200), (50, 200)])
    assert sum(three) == pytest.approx(1.0)
    assert max(three) == three[1]
