"""Broken configurations: each names file, line, column, the problem and how to fix it.

Each case starts from the small valid tree in ``tests/fixtures/minimal``, applies one
mistake a marketer could make, and pins the whole error text (as pre-commit's tests do).
The locations were checked by hand against the fixture files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.errors import ConfigError
from tests.factories import Edits, config_tree


@dataclass(frozen=True)
class Broken:
    name: str
    edits: Edits
    expected: str


CASES = [
    Broken(
        'duration_with_words',
        {'config/journeys/anna.yaml': [('wait: 3d', 'wait: 3 days')]},
        'config/journeys/anna.yaml:10:15: stages.INF.steps[1].wait: "3 days" is not a duration\n  hint: write durations like 3d, 12h, 90m or 2w',
    ),
    Broken(
        'duration_without_unit',
        {'config/journeys/anna.yaml': [('wait: 3d', 'wait: 3')]},
        'config/journeys/anna.yaml:10:15: stages.INF.steps[1].wait: 3 has no unit\n  hint: write durations like 3d, 12h, 90m or 2w',
    ),
    Broken(
        'unknown_step_key_typo',
        {'config/journeys/anna.yaml': [('template: offer, fast_lane_offer: checklist}\n      - id: inf-wait', 'tempalte: offer, fast_lane_offer: checklist}\n      - id: inf-wait')]},
        'config/journeys/anna.yaml:8:38: stages.INF.steps[0].send.tempalte: unknown key `tempalte`\n  hint: did you mean `template`?',
    ),
    Broken(
        'step_with_two_actions',
        {'config/journeys/anna.yaml': [('        wait: 3d', '        wait: 3d\n        advance: BEF')]},
        'config/journeys/anna.yaml:9:9: stages.INF.steps[1]: a step needs exactly one of send, wait, branch, advance, goal, exit\n  hint: split it into several steps, e.g. `- {id: inf-1, send: …}` then `- {id: inf-2, wait: 3d}`',
    ),
    Broken(
        'step_with_no_action',
        {'config/journeys/anna.yaml': [('        wait: 3d\n', '')]},
        'config/journeys/anna.yaml:9:9: stages.INF.steps[1]: a step needs exactly one of send, wait, branch, advance, goal, exit\n  hint: split it into several steps, e.g. `- {id: inf-1, send: …}` then `- {id: inf-2, wait: 3d}`',
    ),
    Broken(
        'unknown_stage',
        {'config/journeys/anna.yaml': [('  BEF:\n', '  BEFF:\n')]},
        'config/journeys/anna.yaml:19:3: stages.BEFF: unknown key `BEFF`\n  hint: did you mean `BEF`?',
    ),
    Broken(
        'unknown_top_level_key',
        {'config/journeys/anna.yaml': [('slowest_case:', 'slowest_cases:')]},
        'config/journeys/anna.yaml:23:1: slowest_cases: unknown key `slowest_cases`\n  hint: did you mean `slowest_case`?',
    ),
    Broken(
        'missing_slowest_case',
        {'config/journeys/anna.yaml': [('slowest_case:\n  after: 60d\n', '')]},
        'config/journeys/anna.yaml:1:1: `slowest_case` is missing\n  hint: add `slowest_case: …` here',
    ),
    Broken(
        'bad_id',
        {'config/journeys/anna.yaml': [('id: anna\n', 'id: Anna Journey\n')]},
        'config/journeys/anna.yaml:1:5: id: "Anna Journey" is not a valid id\n  hint: ids use lowercase letters, digits and dashes, like monika-marketing',
    ),
    Broken(
        'nurture_without_persona',
        {'config/journeys/anna.yaml': [('persona: anna-analyst\n', '')]},
        'config/journeys/anna.yaml:1:1: a nurture journey needs a persona\n  hint: add `persona: <persona id>`',
    ),
    Broken(
        'unknown_persona_in_journey',
        {'config/journeys/anna.yaml': [('persona: anna-analyst', 'persona: anna-analytics')]},
        'config/journeys/anna.yaml:3:10: persona: unknown persona "anna-analytics"\n  hint: personas: anna-analyst',
    ),
    Broken(
        'unknown_content',
        {'config/journeys/anna.yaml': [('content: bef-guide', 'content: bef-guidebook')]},
        'config/journeys/anna.yaml:22:25: stages.BEF.steps[0].send.content: unknown content "bef-guidebook"\n  hint: content for this persona and BEF: bef-guide, checklist',
    ),
    Broken(
        'content_wrong_stage',
        {'config/journeys/anna.yaml': [('content: bef-guide', 'content: inf-article')]},
        'config/journeys/anna.yaml:22:25: stages.BEF.steps[0].send.content: content "inf-article" is tagged for INF, not BEF\n  hint: add BEF to its stages in content/items.yaml, or pick content for BEF: bef-guide, checklist',
    ),
    Broken(
        'unknown_template',
        {'config/journeys/anna.yaml': [('content: bef-guide, template: offer', 'content: bef-guide, template: offers')]},
        'config/journeys/anna.yaml:22:46: stages.BEF.steps[0].send.template: unknown template "offers"\n  hint: create templates/email/offers.html.j2 and .txt.j2, or use one of: offer',
    ),
    Broken(
        'fast_lane_offer_not_fast_lane',
        {'config/journeys/anna.yaml': [('content: bef-guide, template: offer, fast_lane_offer: checklist', 'content: bef-guide, template: offer, fast_lane_offer: bef-guide')]},
        'config/journeys/anna.yaml:22:70: stages.BEF.steps[0].send.fast_lane_offer: content "bef-guide" is not a fast-lane item\n  hint: set `fast_lane: true` on it in content/items.yaml, or pick fast-lane items: checklist',
    ),
    Broken(
        'stage_without_fast_lane',
        {'config/journeys/anna.yaml': [('content: bef-guide, template: offer, fast_lane_offer: checklist}', 'content: bef-guide, template: offer}')]},
        'config/journeys/anna.yaml:19:3: stages.BEF: stage BEF has no fast-lane offer\n  hint: add `fast_lane_offer: <id>` to one send step of this stage (Sales Fast Lane: every stage offers a way straight to sales); fast-lane items: checklist',
    ),
    Broken(
        'branch_to_unknown_step',
        {'config/journeys/anna.yaml': [('then: inf-done', 'then: inf-finished')]},
        'config/journeys/anna.yaml:15:17: stages.INF.steps[2].branch.then: unknown step "inf-finished"\n  hint: name a step id of this journey, or `next`',
    ),
    Broken(
        'unreachable_step',
        {'config/journeys/anna.yaml': [('        advance: BEF\n', '        advance: BEF\n      - id: inf-after\n        wait: 1d\n')]},
        'config/journeys/anna.yaml:19:13: stages.INF.steps[4].id: step "inf-after" can never be reached\n  hint: a step after advance/exit, or skipped by both branch targets, never runs; move it, point a branch at it, or delete it',
    ),
    Broken(
        'loop_without_wait',
        {'config/journeys/anna.yaml': [('      - id: inf-done\n        advance: BEF\n', '      - id: inf-done\n        advance: BEF\n'), ('        send: {content: bef-guide, template: offer, fast_lane_offer: checklist}\n', '        send: {content: bef-guide, template: offer, fast_lane_offer: checklist}\n      - id: bef-back\n        advance: INF\n'), ('      - id: inf-wait\n        wait: 3d\n', ''), ('      - id: inf-check\n        branch:\n          when: {event: click, stage: INF}\n          within: 7d\n          then: inf-done\n          otherwise: next\n', '')]},
        'config/journeys/anna.yaml:7:13: stages.INF.steps[0].id: loop without a wait: inf-send → inf-done → bef-send → bef-back → inf-send\n  hint: add a wait step (e.g. `wait: 7d`) inside the loop, or a branch with `within`',
    ),
    Broken(
        'advance_to_missing_stage',
        {'config/journeys/anna.yaml': [('advance: BEF', 'advance: EVA')]},
        'config/journeys/anna.yaml:18:18: stages.INF.steps[3].advance: stage EVA has no steps in this journey\n  hint: add stages.EVA or advance to one of INF, BEF',
    ),
    Broken(
        'branch_condition_needs_one_kind',
        {'config/journeys/anna.yaml': [('when: {event: click, stage: INF}', 'when: {stage: INF}')]},
        'config/journeys/anna.yaml:13:17: stages.INF.steps[2].branch.when: a condition needs exactly one of event, engagement_at_least, fit_at_least\n  hint: write e.g. `when: {event: click, stage: INF}` or `when: {engagement_at_least: 40}`',
    ),
    Broken(
        'duplicate_step_id',
        {'config/journeys/anna.yaml': [('      - id: inf-done\n', '      - id: inf-send\n'), ('then: inf-done', 'then: inf-send')]},
        'config/journeys/anna.yaml:17:13: stages.INF.steps[3].id: step id "inf-send" is used twice\n  hint: give each step of a journey its own id',
    ),
    Broken(
        'yaml_syntax_error',
        {'config/journeys/anna.yaml': [('name: Anna journey', 'name: Anna: the journey')]},
        'config/journeys/anna.yaml:2:11: invalid YAML: mapping values are not allowed here\n  hint: quote values that contain ": " (e.g. title: "Leads: the guide")',
    ),
    Broken(
        'yaml_duplicate_key',
        {'config/journeys/anna.yaml': [('name: Anna journey\n', 'name: Anna journey\nname: Again\n')]},
        'config/journeys/anna.yaml:3:1: duplicate key "name"\n  hint: each key may appear once in a mapping; merge or rename the two entries',
    ),
    Broken(
        'yaml_tab_indent',
        {'config/personas/anna.yaml': [('  title_keywords', '\ttitle_keywords')]},
        "config/personas/anna.yaml:5:1: invalid YAML: found character '\\t' that cannot start any token (while scanning for the next token)\n  hint: indent with spaces, not tabs",
    ),
    Broken(
        'empty_file',
        {'config/personas/anna.yaml': [('REPLACE_ALL', '')]},
        'config/personas/anna.yaml:1:1: the file is empty\n  hint: remove the file or fill it in',
    ),
    Broken(
        'content_unknown_type',
        {'content/items.yaml': [('type: guide', 'type: guid')]},
        'content/items.yaml:10:11: items[1].type: "guid" is not one of: article, blog_post, case_study, checklist, demo, ebook, event, guide, infographic, newsletter, podcast, study, tool, video, webinar or whitepaper\n  hint: did you mean guide?',
    ),
    Broken(
        'content_bad_url',
        {'content/items.yaml': [('url: https://example.com/guide', 'url: example dot com')]},
        'content/items.yaml:13:10: items[1].url: "example dot com" is not a URL\n  hint: write a full address like https://example.com/whitepaper',
    ),
    Broken(
        'content_unknown_persona',
        {'content/items.yaml': [('personas: [anna-analyst]\n    stages: [BEF]\n    url: https://example.com/guide', 'personas: [ana-analyst]\n    stages: [BEF]\n    url: https://example.com/guide')]},
        'config/journeys/anna.yaml:22:25: stages.BEF.steps[0].send.content: content "bef-guide" is not tagged for persona anna-analyst\n  hint: add anna-analyst to its personas in content/items.yaml\ncontent/items.yaml:11:16: items[1].personas[0]: unknown persona "ana-analyst"\n  hint: known: anna-analyst',
    ),
    Broken(
        'content_duplicate_id',
        {'content/items.yaml': [('id: bef-guide', 'id: inf-article')]},
        'config/journeys/anna.yaml:22:25: stages.BEF.steps[0].send.content: unknown content "bef-guide"\n  hint: content for this persona and BEF: checklist\ncontent/items.yaml:8:9: items[1].id: content id "inf-article" is used twice\n  hint: it is also in content/items.yaml; give each content item its own id',
    ),
    Broken(
        'content_points_too_high',
        {'content/items.yaml': [('fast_lane: true', 'fast_lane: true\n    points: 500')]},
        'content/items.yaml:21:13: items[2].points: 500 must be at most 100',
    ),
    Broken(
        'persona_without_fit',
        {'config/personas/anna.yaml': [('fit:\n  title_keywords: [analyst]\n', 'fit: {}\n')]},
        'config/personas/anna.yaml:4:1: fit: no fit criteria: explicit scoring could never match a lead to this persona\n  hint: add at least one of title_keywords, industries, company_size, regions',
    ),
    Broken(
        'persona_size_range_reversed',
        {'config/personas/anna.yaml': [('fit:\n', 'company_size: {min: 500, max: 50}\nfit:\n')]},
        'config/personas/anna.yaml:4:15: company_size: min (500) is larger than max (50)\n  hint: swap min and max',
    ),
    Broken(
        'persona_missing_name',
        {'config/personas/anna.yaml': [('name: Anna Analyst\n', '')]},
        'config/personas/anna.yaml:1:1: `name` is missing\n  hint: add `name: …` here',
    ),
    Broken(
        'sla_inline_secret',
        {'config/sla.yaml': [('secret_env: RIPEN_WEBHOOK_SECRET_CRM', 'secret_env: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')]},
        'config/sla.yaml:14:17: webhooks[0].secret_env: this is a secret, not the name of an environment variable; secrets never go into YAML\n  hint: put the secret into an environment variable, e.g. RIPEN_WEBHOOK_SECRET_CRM, and write `secret_env: RIPEN_WEBHOOK_SECRET_CRM`',
    ),
    Broken(
        'sla_empty_mql_rule',
        {'config/sla.yaml': [('- {fit_at_least: B, engagement_at_least: 60}', '- {}')]},
        'config/sla.yaml:3:7: mql.rules[0]: an MQL rule needs at least one condition (an empty rule would hand over every lead: the green-banana effect)\n  hint: e.g. `{fit_at_least: B, engagement_at_least: 60}`',
    ),
    Broken(
        'sla_unknown_recycle_journey',
        {'config/sla.yaml': [('recycle_journey: anna', 'recycle_journey: recycling')]},
        'config/sla.yaml:10:58: rejection_reasons[0].recycle_journey: unknown journey "recycling"\n  hint: journeys: anna',
    ),
    Broken(
        'sla_bad_email',
        {'config/sla.yaml': [('escalate_to: sales-lead@example.com', 'escalate_to: sales-lead(at)example.com')]},
        'config/sla.yaml:6:16: sales_response.escalate_to: An email address must have an @-sign.',
    ),
    Broken(
        'scoring_grades_not_descending',
        {'config/scoring.yaml': [('fit: {A: 70, B: 50, C: 30}', 'fit: {A: 50, B: 70, C: 30}')]},
        'config/scoring.yaml:5:8: grades.fit: grade thresholds must fall from A to D (got A=50, B=70, C=30, D=0)\n  hint: e.g. A: 70, B: 50, C: 30, D: 0',
    ),
    Broken(
        'scoring_grade_unreachable',
        {'config/scoring.yaml': [('fit: {A: 70, B: 50, C: 30}', 'fit: {A: 170, B: 50, C: 30}')]},
        'config/scoring.yaml:5:12: grades.fit.A: grade A needs 170 points, but explicit scoring gives at most 105\n  hint: lower the threshold or raise the points under `explicit`',
    ),
    Broken(
        'policy_unknown_timezone',
        {'config/policy.yaml': [('Europe/Berlin', 'Europe/Bonn')]},
        'config/policy.yaml:1:11: timezone: "Europe/Bonn" is not a known time zone\n  hint: use an IANA name like Europe/Berlin',
    ),
    Broken(
        'policy_bad_time',
        {'config/policy.yaml': [('start: "20:00"', 'start: "25:00"')]},
        'config/policy.yaml:2:22: quiet_hours.start: "25:00" is not a time of day\n  hint: write times as "HH:MM", e.g. "20:00"',
    ),
    Broken(
        'template_without_unsubscribe',
        {'templates/email/base.html.j2': [('<a href="{{ unsubscribe_url }}">Unsubscribe</a>', '')]},
        'templates/email/offer.html.j2:1:1: marketing template has no unsubscribe link\n  hint: show {{ unsubscribe_url }} in it, or extend base.html.j2 which does',
    ),
    Broken(
        'template_syntax_error',
        {'templates/email/offer.html.j2': [('{% endblock %}', '{% endblok %}')]},
        "templates/email/offer.html.j2:2:1: template syntax error: Encountered unknown tag 'endblok'. Jinja was looking for the following tags: 'endblock'. The innermost block that needs to be closed is 'block'.\n  hint: check the {{ … }} and {% … %} tags around this line",
    ),
    Broken(
        'missing_policy_file',
        {'config/policy.yaml': None},
        'config/policy.yaml:1:1: the file is missing\n  hint: create config/policy.yaml (see the README)',
    ),
    Broken(
        'sla_duplicate_rep',
        {'config/sla.yaml': [('  - {id: rep-one, name: Rep One, email: rep.one@example.com}\n', '  - {id: rep-one, name: Rep One, email: rep.one@example.com}\n  - {id: rep-one, name: Rep Two, email: rep.two@example.com}\n')]},
        'config/sla.yaml:9:10: reps[1].id: rep id "rep-one" is used twice\n  hint: give each rep its own id',
    ),
    Broken(
        'consent_current_version_missing',
        {'config/consent.yaml': [('current: "v1"', 'current: "v2"')]},
        'config/consent.yaml:1:10: current: no consent text has version "v2"\n  hint: versions: v1',
    ),
    Broken(
        'consent_duplicate_version',
        {'config/consent.yaml': [('      phone: Yes, you may call me about my requests.\n', '      phone: Yes, you may call me about my requests.\n  - version: "v1"\n    purposes:\n      email_marketing: Edited later.\n')]},
        'config/consent.yaml:8:14: texts[1].version: consent text version "v1" is used twice\n  hint: give each consent text its own version',
    ),
    Broken(
        'consent_without_email_purpose',
        {'config/consent.yaml': [('      email_marketing: Yes, send me e-mail about analytics. I can withdraw at any time.\n', '')]},
        'config/consent.yaml:3:5: texts[0]: a consent text needs an email_marketing purpose\n  hint: add `email_marketing: <the text shown next to the checkbox>`',
    ),
    Broken(
        'consent_purge_before_expiry',
        {'config/consent.yaml': [('current: "v1"\n', 'current: "v1"\ndoi:\n  link_valid_for: 7d\n  purge_after: 3d\n')]},
        'config/consent.yaml:2:1: doi: purge_after is shorter than link_valid_for: sign-ups would vanish while their link still works\n  hint: make purge_after at least link_valid_for (e.g. 14d for a 7d link)',
    ),
    Broken(
        'mail_sender_name_with_line_break',
        {'config/mail.yaml': [('  name: Example Analytics', '  name: "Example\\r\\nBcc: all@example.com"')]},
        'config/mail.yaml:2:9: sender.name: a mail header cannot contain a line break\n  hint: write it on one line (line breaks in headers let attackers add headers)',
    ),
    Broken(
        'mail_bad_sender_address',
        {'config/mail.yaml': [('address: hello@example.com', 'address: hello')]},
        'config/mail.yaml:3:12: sender.address: An email address must have an @-sign.',
    ),

    Broken(
        'template_undefined_variable',
        {'templates/email/offer.html.j2': [('{{ content.title }}</h1>', '{{ content.titel }}</h1>')]},
        "templates/email/offer.html.j2:2:1: undefined variable: content has no field 'titel'\n  hint: did you mean 'title'? content has: id, title, type, summary, url, language",
    ),

]


def test_there_are_at_least_thirty_cases() -> None:
    """The issue asks for at least 30 broken configurations."""
    assert len(CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


def test_minimal_fixture_is_valid(tmp_path: Path) -> None:
    """The starting point of every case compiles, so each case fails for its own mistake."""
    config = load_and_compile(ConfigPaths.under(config_tree(tmp_path / "cfg")))
    assert list(config.journeys) == ["anna"]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_broken_configuration_is_reported_exactly(case: Broken, tmp_path: Path) -> None:
    """The mistake is reported with its exact file, line, column, message and hint."""
    root = config_tree(tmp_path / "cfg", case.edits)
    with pytest.raises(ConfigError) as caught:
        load_and_compile(ConfigPaths.under(root))
    assert caught.value.format() == case.expected
