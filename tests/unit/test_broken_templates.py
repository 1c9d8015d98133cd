"""The broken templates marketers write most (issue 18): each is found by `ripen validate`
with file:line:col — in every branch, taken by the sample lead or not, in what the template
includes, and in a step's subject — before a lead meets it at send time.

The templates are fixtures (``tests/fixtures/broken_templates``), each installed as the
minimal tree's ``offer`` template; the whole error text is pinned.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.errors import ConfigError
from tests.factories import REPO, config_tree

FIXTURES = REPO / "tests" / "fixtures" / "broken_templates"
OFFER = "templates/email/offer.html.j2"
MAIL_HAS = ("a marketing mail has: subject, lead, persona, content, fast_lane_offer, "
            "fast_lane_url, unsubscribe_url, open_pixel_url, imprint, sender")
LEAD_HAS = "lead has: first_name, last_name, job_title, company, language"

TEMPLATES = {
    "else_branch": f"{OFFER}:3:1: undefined variable: lead has no field 'frist_name'\n"
                   f"  hint: did you mean 'first_name'? {LEAD_HAS}",
    "misspelt_variable": f"{OFFER}:3:1: undefined variable: no variable 'unsubscribe_link'\n"
                         f"  hint: did you mean 'unsubscribe_url'? {MAIL_HAS}",
    "branch_never_taken": f"{OFFER}:3:1: undefined variable: content has no field 'date'\n"
                          "  hint: content has: id, title, type, summary, url, language",
    "persona_field": f"{OFFER}:3:1: undefined variable: persona has no field 'pain_points'\n"
                     "  hint: did you mean 'pains'? persona has: id, name, description, "
                     "positions, industries, regions, pains, desired_results, objections, "
                     "keywords",
    "field_of_text": f"{OFFER}:3:1: undefined variable: lead.company is text; it has no "
                     "'name'\n  hint: use {{ lead.company }} as it is",
    "unknown_filter": f"{OFFER}:3:1: unknown filter 'capitalise'\n"
                      "  hint: did you mean 'capitalize'?",
    "unknown_test": f"{OFFER}:3:1: unknown test 'defind'\n  hint: did you mean 'defined'?",
    "variable_of_another_mail": f"{OFFER}:3:1: undefined variable: no variable "
                                f"'confirm_url'\n  hint: {MAIL_HAS}",
    "sender_field": f"{OFFER}:3:1: undefined variable: sender has no field 'adress'\n"
                    "  hint: did you mean 'address'? sender has: name, address",
    "unguarded_offer": f"{OFFER}:3:1: fast_lane_offer may be empty, and fast_lane_offer.title"
                       " then fails the mail\n"
                       "  hint: guard it: {% if fast_lane_offer %}…{% endif %}",
    "unclosed_if": f"{OFFER}:5:1: template syntax error: Encountered unknown tag 'endblock'. "
                   "You probably made a nesting mistake. Jinja is expecting this tag, but "
                   "currently looking for 'elif' or 'else' or 'endif'. The innermost block "
                   "that needs to be closed is 'if'.\n"
                   "  hint: check the {{ … }} and {% … %} tags around this line",
    "included_typo": "templates/email/partials/footer.html.j2:1:1: undefined variable: no "
                     f"variable 'imprnt'\n  hint: did you mean 'imprint'? {MAIL_HAS}",
}
SEND = "send: {content: inf-article, template: offer, fast_lane_offer: checklist}"
SUBJECTS = {
    "Für {{ lead.frist_name }}":
        "config/journeys/anna.yaml:8:92: stages.INF.steps[0].send.subject: undefined "
        f"variable: lead has no field 'frist_name'\n  hint: did you mean 'first_name'? "
        f"{LEAD_HAS}",
    "Für {{ lead.first_name }":
        "config/journeys/anna.yaml:8:92: stages.INF.steps[0].send.subject: the subject is "
        "not a valid template: unexpected '}'\n  hint: write variables as "
        "{{ lead.first_name }} and close every {% if %} with {% endif %}",
    "{% if lead.first_name %}Hallo {{ lead.first_name }}{% else %}{{ lead.vorname }}"
    "{% endif %}":
        "config/journeys/anna.yaml:8:92: stages.INF.steps[0].send.subject: undefined "
        "variable: lead has no field 'vorname'\n  hint: lead has: first_name, last_name, "
        "job_title, company, language",
}


def _validate(root: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_and_compile(ConfigPaths.under(root))
    return caught.value.format()


def test_there_are_a_dozen_template_fixtures() -> None:
    """Every fixture has its expectation, and the other way round."""
    assert sorted(p.name.removesuffix(".html.j2") for p in FIXTURES.glob("*.html.j2")) == \
        sorted(TEMPLATES)
    assert len(TEMPLATES) >= 12


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_a_broken_template_is_reported_where_it_is(name: str, tmp_path: Path) -> None:
    root = config_tree(tmp_path / "cfg")
    shutil.copy(FIXTURES / f"{name}.html.j2", root / OFFER)
    shutil.copytree(FIXTURES / "partials", root / "templates" / "email" / "partials")
    assert _validate(root) == TEMPLATES[name]


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_a_broken_subject_is_reported_at_its_yaml_line(subject: str, tmp_path: Path) -> None:
    root = config_tree(tmp_path / "cfg", {"config/journeys/anna.yaml": [
        (SEND, SEND[:-1] + f", subject: '{subject}'}}")]})
    assert _validate(root) == SUBJECTS[subject]


def test_a_good_subject_template_passes(tmp_path: Path) -> None:
    """Variables of the mail, guarded where they may be empty, are fine in a subject."""
    root = config_tree(tmp_path / "cfg", {"config/journeys/anna.yaml": [
        (SEND, SEND[:-1] + ", subject: '{{ content.title }}{% if lead.company %} für "
                           "{{ lead.company }}{% endif %}'}")]})
    config = load_and_compile(ConfigPaths.under(root))
    assert config.journeys["anna"].steps["inf-send"].send.subject.startswith(  # type: ignore[union-attr]
        "{{ content.title }}")


def test_the_schema_is_what_a_mail_gets() -> None:
    """SCHEMA (what validation checks against) has exactly the variables and fields the
    builder gives a mail, so the two cannot drift."""
    from engine.config.compiler import load_and_compile as compile_tree
    from engine.mail.context import SCHEMA, marketing_context, sample_lead

    config = compile_tree(ConfigPaths.under(REPO))
    persona = config.personas["monika-marketing"]
    item = config.content["mm-scoring-whitepaper"]
    context = marketing_context(subject="s", lead=sample_lead(persona), persona=persona,
                                content=item, fast_lane_offer=item, fast_lane_url="f",
                                unsubscribe_url="u", identity=config.mail,
                                open_pixel_url="o")

    def shape(value: object) -> object:
        return {k: shape(v) for k, v in value.items()} if isinstance(value, dict) else None

    def schema_shape(kind: object) -> object:
        return {k: schema_shape(v) for k, v in kind.items()} if isinstance(kind, dict) \
            else None

    assert shape(context) == schema_shape(SCHEMA)


NOTICE = "templates/email/transactional/handover_notice.txt.j2"
DOI = "templates/email/transactional/doi_confirm.txt.j2"
NOTICE_LEAD_HAS = "lead has: name, email, job_title, company, phone, stage"
TRANSACTIONAL = {  # file, text in it, what it becomes, the error
    "notice_else_branch": (
        NOTICE, "{% if lead.phone %}", "{% if not lead.phone %}{{ lead.phnoe }}{% endif %}"
        "{% if lead.phone %}",
        f"undefined variable: lead has no field 'phnoe'\n  hint: did you mean 'phone'? "
        f"{NOTICE_LEAD_HAS}"),
    "notice_time_method": (
        NOTICE, 'accept_by.strftime("%d.%m.%Y %H:%M")', 'accept_by.strftme("%d.%m.%Y")',
        "undefined variable: accept_by is a time; it has no 'strftme'\n"
        "  hint: use {{ accept_by }} as it is"),
    "notice_marketing_variable": (
        NOTICE, "{{ answer_url }}", "{{ unsubscribe_url }}",
        "undefined variable: no variable 'unsubscribe_url'\n  hint: the rep's handover "
        "notice has: subject, rep, lead, reason, detail, grade, answer_url, timeline_url, "
        "accept_by, imprint"),
    "doi_misspelt": (
        DOI, "{{ confirm_url }}", "{{ confrim_url }}",
        "undefined variable: no variable 'confrim_url'\n  hint: did you mean "
        "'confirm_url'? the confirmation mail has: subject, update, lead, confirm_url, "
        "valid_days, imprint"),
}


@pytest.mark.parametrize("name", sorted(TRANSACTIONAL))
def test_a_broken_transactional_template_is_reported_where_it_is(
        name: str, tmp_path: Path) -> None:
    """The double opt-in mail and the rep's notice are checked in every branch against
    their own variables: a typo there would fail every sign-up or every notice."""
    root = config_tree(tmp_path / "cfg")
    shutil.copytree(REPO / "templates" / "email" / "transactional",
                    root / "templates" / "email" / "transactional")
    load_and_compile(ConfigPaths.under(root))  # as shipped: fine
    relative, old, new, error = TRANSACTIONAL[name]
    path = root / relative
    text = path.read_text(encoding="utf-8")
    assert old in text
    line = text[:text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    assert _validate(root) == f"{relative}:{line}:1: {error}"


def test_a_transactional_template_without_its_other_part_is_reported(tmp_path: Path) -> None:
    root = config_tree(tmp_path / "cfg")
    shutil.copytree(REPO / "templates" / "email" / "transactional",
                    root / "templates" / "email" / "transactional")
    (root / "templates" / "email" / "transactional" / "doi_confirm.html.j2").unlink()
    assert _validate(root) == (
        "templates/email/transactional/doi_confirm.html.j2:1:1: the confirmation mail has no "
        "HTML part\n  hint: create it beside templates/email/transactional/doi_confirm.txt.j2")


def test_the_transactional_schemas_are_what_their_mails_get() -> None:
    """NOTICE_SCHEMA and DOI_SCHEMA have exactly the variables and fields their builders
    give the mails, so validation and sending cannot drift apart."""
    from datetime import UTC, datetime

    from engine.mail.context import DOI_SCHEMA, NOTICE_SCHEMA, doi_context, notice_context

    notice = notice_context(subject="s", rep_name="r", lead={"name": "n"}, reason="MQL",
                            detail="d", grade="A1", answer_url="a", timeline_url="t",
                            accept_by=datetime(2026, 12, 7, tzinfo=UTC), imprint="i")
    doi = doi_context(subject="s", update=False, language="de", first_name=None,
                      confirm_url="c", valid_days=7, imprint="i")

    def shape(value: object) -> object:
        return {k: shape(v) for k, v in value.items()} if isinstance(value, dict) else None

    assert shape(notice) == shape(NOTICE_SCHEMA)
    assert shape(doi) == shape(DOI_SCHEMA)
