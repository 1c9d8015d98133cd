"""Stage 2: cross-check the validated files and compile them into frozen runtime objects.

Everything that needs more than one file is checked here: references between personas,
content, journeys, templates and the SLA; content used in a stage it is not tagged for;
unreachable steps; loops without a wait; stages without a fast-lane offer; marketing
templates without unsubscribe link or imprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from jinja2 import TemplateSyntaxError

from engine.config.consent import ConsentConfig
from engine.config.content import ContentItem
from engine.config.journey import (
    AdvanceStep,
    BranchStep,
    ExitStep,
    Journey,
    SendStep,
    Step,
    WaitStep,
)
from engine.config.loader import ConfigPaths, Loaded, LoadedConfig, load_config
from engine.config.mail import MailIdentity
from engine.config.persona import Persona
from engine.config.policy import Policy
from engine.config.retention import Retention
from engine.config.scoring import Scoring
from engine.config.sla import Sla
from engine.config.yamlfile import Loc, YamlDocument
from engine.errors import ConfigError, Problem
from engine.mail.context import (
    DOI,
    DOI_SCHEMA,
    NOTICE,
    NOTICE_SCHEMA,
    OPTIONAL,
    SCHEMA,
    SUBJECT_SCHEMA,
    marketing_context,
    sample_lead,
)
from engine.mail.message import check_header
from engine.mail.templates import (
    PARTS,
    TRANSACTIONAL,
    TemplateCatalog,
    make_environment,
    misuses,
)
from engine.stages import JourneyStage

NEXT = "next"


@dataclass(frozen=True)
class CompiledJourney:
    """A journey ready to run: its version, its steps by id, and where each step leads."""

    model: Journey
    version: str
    steps: Mapping[str, Step]
    stage_of: Mapping[str, JourneyStage]
    order: tuple[str, ...]
    entry: Mapping[JourneyStage, str]
    transitions: Mapping[str, tuple[str, ...]]
    following: Mapping[str, str | None]  # the next step in the same stage (None: last)

    @property
    def id(self) -> str:
        return self.model.id

    @property
    def name(self) -> str:
        """``journey:<id>@<version>`` — how its Prefect tasks (and diagrams) name it."""
        return f"journey:{self.model.id}@{self.version}"

    def target(self, step_id: str, target: str) -> str | None:
        """A branch target as the engine follows it: ``next`` is the following step."""
        return self.following[step_id] if target == NEXT else target


@dataclass(frozen=True)
class CompiledConfig:
    """The whole configuration, cross-checked and immutable."""

    personas: Mapping[str, Persona]
    content: Mapping[str, ContentItem]
    journeys: Mapping[str, CompiledJourney]
    scoring: Scoring
    sla: Sla
    policy: Policy
    consent: ConsentConfig
    mail: MailIdentity
    templates: TemplateCatalog
    version: str
    retention: Retention = field(default_factory=Retention)

    def content_for(self, persona: str, stage: JourneyStage) -> list[ContentItem]:
        return [c for c in self.content.values() if persona in c.personas and stage in c.stages]


def load_and_compile(paths: ConfigPaths) -> CompiledConfig:
    """Both stages; raises ``ConfigError`` with every problem found."""
    return compile_config(load_config(paths))


#: Fields added to a send step after journeys had versions, with their defaults: left out of
#: the hash while unused, so an upgrade does not make every journey a new version.
_ADDED_TO_SEND: dict[str, Any] = {"variants": [], "winner": None}


def _without_later_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        send = node.get("send")
        if isinstance(send, dict):
            node = {**node, "send": {k: v for k, v in send.items()
                                     if k not in _ADDED_TO_SEND or v != _ADDED_TO_SEND[k]}}
        return {k: _without_later_defaults(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_without_later_defaults(v) for v in node]
    return node


def model_version(model: Any) -> str:
    """A short content hash of a validated model: same YAML meaning → same version."""
    canonical = json.dumps(_without_later_defaults(model.model_dump(mode="json")),
                           sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


#: The transactional mails ripen itself sends, the variables each has, and who reads it.
TRANSACTIONAL_MAILS = ((DOI, DOI_SCHEMA, "the confirmation mail"),
                       (NOTICE, NOTICE_SCHEMA, "the rep's handover notice"))


def _transactional_problems(templates: TemplateCatalog) -> list[Problem]:
    """The double opt-in mail and the rep's notice, checked in every branch against their
    own variables like a marketing template against its: one misspelt variable would fail
    every sign-up, or every handover's notice. (A tree without them sends neither.)"""
    problems: list[Problem] = []
    for name, schema, mail in TRANSACTIONAL_MAILS:
        missing = templates.missing_parts(name)
        if len(missing) == len(PARTS):
            continue
        if missing:
            present = next(part for part in PARTS if part not in missing)
            problems.append(Problem(
                templates.display(templates.file(name, missing[0])), 1, 1,
                f"{mail} has no {'HTML' if missing[0] == 'html' else 'text'} part",
                f"create it beside {templates.display(templates.file(name, present))}"))
            continue
        problems.extend(templates.misuse_problems(name, schema, mail=mail))
    return problems


def compile_config(loaded: LoadedConfig) -> CompiledConfig:
    problems: list[Problem] = []
    templates = TemplateCatalog(loaded.paths.templates,
                                loaded.paths.display(loaded.paths.templates))
    problems.extend(templates.syntax_problems())
    problems.extend(_transactional_problems(templates))

    personas: dict[str, Persona] = _unique(loaded.personas, "persona", problems)
    content_docs: dict[str, tuple[YamlDocument, int]] = {}
    content: dict[str, ContentItem] = {}
    for catalog in loaded.content:
        for index, item in enumerate(catalog.model.items):
            if item.id in content:
                other, _ = content_docs[item.id]
                problems.append(catalog.doc.problem(
                    ("items", index, "id"), f'content id "{item.id}" is used twice',
                    f"it is also in {other.path}; give each content item its own id"))
                continue
            if item.personas == "all":  # every persona, the ones added later too
                item = item.model_copy(update={"personas": sorted(personas)})
            content[item.id] = item
            content_docs[item.id] = (catalog.doc, index)
            for j, persona in enumerate(item.personas):
                if persona not in personas:
                    problems.append(catalog.doc.problem(
                        ("items", index, "personas", j), f'unknown persona "{persona}"',
                        _choices(personas)))

    journey_models: dict[str, Journey] = _unique(loaded.journeys, "journey", problems)
    journey_docs = {j.model.id: j.doc for j in loaded.journeys}
    checker = _JourneyChecker(personas, content, content_docs, templates, journey_models,
                              loaded.mail.model, problems)
    journeys = {
        jid: checker.compile(journey, journey_docs[jid]) for jid, journey in journey_models.items()
    }
    _check_sla(loaded.sla, journey_models, personas, content, problems)
    _check_scoring(loaded.scoring, problems)
    _check_consent(loaded.consent, problems)
    if problems:
        raise ConfigError(problems)
    versions = {
        "personas": {k: model_version(v) for k, v in personas.items()},
        "content": {k: model_version(v) for k, v in content.items()},
        "journeys": {k: v.version for k, v in journeys.items()},
        "scoring": model_version(loaded.scoring.model),
        "sla": model_version(loaded.sla.model),
        "policy": model_version(loaded.policy.model),
        "consent": model_version(loaded.consent.model),
        "mail": model_version(loaded.mail.model),
    }
    if loaded.retention is not None:
        versions["retention"] = model_version(loaded.retention.model)
    version = hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()[:12]
    return CompiledConfig(
        personas=MappingProxyType(personas),
        content=MappingProxyType(content),
        journeys=MappingProxyType(journeys),
        scoring=loaded.scoring.model,
        sla=loaded.sla.model,
        policy=loaded.policy.model,
        consent=loaded.consent.model,
        mail=loaded.mail.model,
        templates=templates,
        version=version,
        retention=loaded.retention.model if loaded.retention is not None else Retention(),
    )


def compile_journey(journey: Journey, config: CompiledConfig) -> CompiledJourney:
    """Compile a stored journey definition (an older version) against today's config.

    Used to let leads pinned to an older version finish it; problems that the live config
    would report are not raised here (the version already went live), but missing content
    or steps make the caller migrate such leads instead (see ``engine.versions``).
    """
    problems: list[Problem] = []
    doc = YamlDocument(f"journey {journey.id} (stored version)", {})
    checker = _JourneyChecker(config.personas, config.content, {}, config.templates,
                              {j.id: j.model for j in config.journeys.values()}, config.mail,
                              problems)
    return checker.compile(journey, doc)


def _unique(loaded: Iterable[Loaded[Any]], what: str, problems: list[Problem]) -> dict[str, Any]:
    """Models by id; a second model with the same id is a problem at its `id`."""
    found: dict[str, Any] = {}
    where: dict[str, str] = {}
    for item in loaded:
        value = item.model.id
        if value in found:
            problems.append(item.doc.problem(
                ("id",), f'{what} id "{value}" is used twice',
                f"it is also in {where[value]}; give each {what} its own id"))
        else:
            found[value] = item.model
            where[value] = item.doc.path
    return found


def _choices(known: Iterable[str], what: str = "known") -> str:
    names = sorted(known)
    if not names:
        return f"there are no {what} yet"
    shown = ", ".join(names[:8]) + (" …" if len(names) > 8 else "")
    return f"{what}: {shown}"


class _JourneyChecker:
    def __init__(
        self,
        personas: Mapping[str, Persona],
        content: Mapping[str, ContentItem],
        content_docs: Mapping[str, tuple[YamlDocument, int]],
        templates: TemplateCatalog,
        journeys: Mapping[str, Journey],
        identity: MailIdentity,
        problems: list[Problem],
    ) -> None:
        self.identity = identity
        self.personas = personas
        self.content = content
        self.content_docs = content_docs
        self.templates = templates
        self.template_names = templates.names()
        self.journeys = journeys
        self.problems = problems
        self.checked_templates: set[str] = set()
        self.misused: dict[str, bool] = {}  # template → misuses found (no render then)

    def compile(self, journey: Journey, doc: YamlDocument) -> CompiledJourney:
        problem = self.problems.append
        if journey.persona is not None and journey.persona not in self.personas:
            problem(doc.problem(("persona",), f'unknown persona "{journey.persona}"',
                                _choices(self.personas, "personas")))
            # Check the rest as a journey for no persona in particular: one mistake, one error.
            journey = journey.model_copy(update={"persona": None})

        steps: dict[str, Step] = {}
        stage_of: dict[str, JourneyStage] = {}
        locs: dict[str, Loc] = {}
        order: list[str] = []
        entry: dict[JourneyStage, str] = {}
        stages = journey.stages.declared()
        for stage, plan in stages:
            for index, step in enumerate(plan.steps):
                loc = ("stages", stage.value, "steps", index)
                if step.id in steps:
                    problem(doc.problem((*loc, "id"), f'step id "{step.id}" is used twice',
                                        "give each step of a journey its own id"))
                    continue
                steps[step.id] = step
                stage_of[step.id] = stage
                locs[step.id] = loc
                order.append(step.id)
                entry.setdefault(stage, step.id)

        declared = [stage for stage, _ in stages]
        transitions: dict[str, tuple[str, ...]] = {}
        following_steps: dict[str, str | None] = {}
        for stage, plan in stages:
            ids = [s.id for s in plan.steps]
            for index, step in enumerate(plan.steps):
                step_loc: Loc = ("stages", stage.value, "steps", index)
                if locs.get(step.id) != step_loc:
                    continue  # a duplicate, already reported
                following = ids[index + 1] if index + 1 < len(ids) else None
                following_steps[step.id] = following
                transitions[step.id] = self._step(journey, doc, stage, step, step_loc,
                                                  following, steps, entry, declared)
            self._stage_exit(doc, stage, plan.exit, declared)
            if journey.kind == "nurture":
                self._fast_lane_offer(journey, doc, stage, plan.steps)

        self._reachability(doc, order, entry, transitions, locs)
        self._loops(doc, order, steps, transitions, locs)
        self._slowest_case(journey, doc)
        for new in journey.in_flight.step_map.values():
            if new not in steps:
                problem(doc.problem(("in_flight", "step_map"),
                                    f'step map names unknown step "{new}"',
                                    "map old step ids to step ids of this journey"))
        return CompiledJourney(
            model=journey,
            version=model_version(journey),
            steps=MappingProxyType(steps),
            stage_of=MappingProxyType(stage_of),
            order=tuple(order),
            entry=MappingProxyType(entry),
            transitions=MappingProxyType(transitions),
            following=MappingProxyType(following_steps),
        )

    def _step(
        self, journey: Journey, doc: YamlDocument, stage: JourneyStage, step: Step, loc: Loc,
        following: str | None, steps: Mapping[str, Step],
        entry: Mapping[JourneyStage, str], declared: list[JourneyStage],
    ) -> tuple[str, ...]:
        problem = self.problems.append
        if isinstance(step, SendStep):
            self._send(journey, doc, stage, step, loc)
        if isinstance(step, BranchStep):
            targets = []
            for key in ("then", "otherwise"):
                target = getattr(step.branch, key)
                if target == NEXT:
                    if following is not None:
                        targets.append(following)
                elif target not in steps:
                    problem(doc.problem((*loc, "branch", key), f'unknown step "{target}"',
                                        "name a step id of this journey, or `next`"))
                else:
                    targets.append(target)
            condition = step.branch.when
            if condition.content is not None and condition.content not in self.content:
                problem(doc.problem((*loc, "branch", "when", "content"),
                                    f'unknown content "{condition.content}"',
                                    _choices(self.content, "content")))
            return tuple(dict.fromkeys(targets))
        if isinstance(step, AdvanceStep):
            if step.advance not in declared:
                problem(doc.problem((*loc, "advance"),
                                    f"stage {step.advance} has no steps in this journey",
                                    f"add stages.{step.advance} or advance to one of "
                                    f"{', '.join(declared)}"))
                return ()
            return (entry[step.advance],)
        if isinstance(step, ExitStep):
            return ()
        return (following,) if following is not None else ()

    def _send(self, journey: Journey, doc: YamlDocument, stage: JourneyStage, step: SendStep,
              loc: Loc) -> None:
        problem = self.problems.append
        send = step.send
        item = self._send_content(journey, doc, stage, send.content, (*loc, "send", "content"))
        if send.fast_lane_offer is not None:
            offer = self.content.get(send.fast_lane_offer)
            if offer is None:
                problem(doc.problem((*loc, "send", "fast_lane_offer"),
                                    f'unknown content "{send.fast_lane_offer}"',
                                    _choices(self._fast_lane_items(journey), "fast-lane items")))
            elif not offer.fast_lane:
                problem(doc.problem((*loc, "send", "fast_lane_offer"),
                                    f'content "{offer.id}" is not a fast-lane item',
                                    f"set `fast_lane: true` on it in "
                                    f"{self._content_file(offer.id)}, or pick "
                                    + _choices(self._fast_lane_items(journey),
                                               "fast-lane items")))
            elif journey.persona and journey.persona not in offer.personas:
                problem(doc.problem((*loc, "send", "fast_lane_offer"),
                                    f'content "{offer.id}" is not tagged for persona '
                                    f"{journey.persona}",
                                    _choices(self._fast_lane_items(journey), "fast-lane items")))
        persona = self.personas.get(journey.persona) if journey.persona else None
        offer = self.content.get(send.fast_lane_offer) if send.fast_lane_offer else None

        def sample(chosen: ContentItem | None) -> dict[str, Any] | None:
            """The variables of a mail with ``chosen`` to a sample lead of the persona."""
            return marketing_context(
                subject=chosen.title, lead=sample_lead(persona), persona=persona,
                content=chosen, fast_lane_offer=offer,
                fast_lane_url="https://example.invalid/fast-lane/t",
                unsubscribe_url="https://example.invalid/u/t",
                identity=self.identity) if chosen is not None else None

        context = sample(item)
        if send.subject is not None:
            self._subject(doc, (*loc, "send", "subject"), send.subject, context)
        if self._template(doc, (*loc, "send", "template"), send.template) and \
                context is not None and not self.misused.get(send.template):
            # every branch was checked against the schema; a sample render finds what
            # depends on values (an optional variable used without {% if %} …)
            self.problems.extend(self.templates.render_problems(send.template, context))
        for index, variant in enumerate(send.variants):  # each arm of an A/B test alike
            where = (*loc, "send", "variants", index)
            chosen = self._send_content(journey, doc, stage, variant.content,
                                        (*where, "content")) if variant.content else item
            arm = sample(chosen)
            if variant.subject is not None:
                self._subject(doc, (*where, "subject"), variant.subject, arm)
            template = variant.template or send.template
            if variant.template is not None and not self._template(
                    doc, (*where, "template"), variant.template):
                continue
            if arm is not None and not self.misused.get(template) and \
                    (variant.template is not None or variant.content is not None):
                self.problems.extend(self.templates.render_problems(template, arm))

    def _send_content(self, journey: Journey, doc: YamlDocument, stage: JourneyStage,
                      content_id: str, loc: Loc) -> ContentItem | None:
        """The item a send (or a variant of it) mails: known, for its stage and persona."""
        problem = self.problems.append
        item = self.content.get(content_id)
        if item is None:
            problem(doc.problem(loc, f'unknown content "{content_id}"',
                                _choices(self._content_for(journey, stage), "content for "
                                         f"this persona and {stage}")))
            return None
        if stage not in item.stages:
            problem(doc.problem(
                loc, f'content "{item.id}" is tagged for {", ".join(item.stages)}, not {stage}',
                f"add {stage} to its stages in {self._content_file(item.id)}, or pick "
                + _choices(self._content_for(journey, stage), f"content for {stage}")))
        if journey.persona and journey.persona not in item.personas:
            problem(doc.problem(
                loc, f'content "{item.id}" is not tagged for persona {journey.persona}',
                f"add {journey.persona} to its personas in {self._content_file(item.id)}"))
        return item

    def _subject(self, doc: YamlDocument, loc: Loc, subject: str,
                 context: dict[str, Any] | None) -> None:
        """A step's subject is a one-line template with the mail's variables."""
        env = make_environment(self.templates.folder)
        try:
            ast = env.parse(subject)
        except TemplateSyntaxError as exc:
            self.problems.append(doc.problem(loc, f"the subject is not a valid template: "
                                                  f"{exc.message}",
                                             "write variables as {{ lead.first_name }} and "
                                             "close every {% if %} with {% endif %}"))
            return
        misused = misuses(ast, SUBJECT_SCHEMA, env, OPTIONAL)
        for misuse in misused:
            self.problems.append(doc.problem(loc, misuse.message, misuse.hint))
        if misused or context is None:
            return
        try:
            rendered = env.from_string(subject).render(context)
            check_header("subject", rendered)
        except Exception as exc:  # what a sample lead's values make of it
            self.problems.append(doc.problem(loc, f"{type(exc).__name__}: {exc}",
                                             "guard optional values with {% if … %}"))

    def _template(self, doc: YamlDocument, loc: Loc, name: str) -> bool:
        """Report a missing template or part; True when both parts exist."""
        if name not in self.template_names:
            self.problems.append(doc.problem(
                loc, f'unknown template "{name}"',
                f"create {self.templates.display(self.templates.file(name, 'html'))} and "
                f".txt.j2, or use one of: "
                + ", ".join(sorted(n for n in self.template_names
                                   if "/" not in n and not n.startswith("base")))))
            return False
        missing = self.templates.missing_parts(name)
        if missing:
            part = missing[0]
            self.problems.append(doc.problem(
                loc, f'template "{name}" has no {"HTML" if part == "html" else "text"} part',
                f"create {self.templates.display(self.templates.file(name, part))}"))
        if name not in self.checked_templates:
            self.checked_templates.add(name)
            self.problems.extend(self.templates.marketing_problems(name))
            if not missing and not name.startswith(TRANSACTIONAL):
                misused = self.templates.misuse_problems(name, SCHEMA, OPTIONAL)
                self.misused[name] = bool(misused)
                self.problems.extend(misused)
        return not missing

    def _stage_exit(self, doc: YamlDocument, stage: JourneyStage, rule: Any,
                    declared: list[JourneyStage]) -> None:
        if rule is None or rule.to is None:
            return
        if rule.to not in declared:
            self.problems.append(doc.problem(
                ("stages", stage.value, "exit", "to"),
                f"stage {rule.to} has no steps in this journey",
                f"add stages.{rule.to} or exit to one of {', '.join(declared)}"))
        elif list(JourneyStage).index(rule.to) <= list(JourneyStage).index(stage):
            self.problems.append(doc.problem(
                ("stages", stage.value, "exit", "to"),
                f"the exit rule of {stage} leads back to {rule.to}",
                "an exit rule moves a lead forward; use a branch to repeat content"))

    def _fast_lane_offer(self, journey: Journey, doc: YamlDocument, stage: JourneyStage,
                         steps: list[Step]) -> None:
        for step in steps:
            if isinstance(step, SendStep):
                if step.send.fast_lane_offer is not None:
                    return
                item = self.content.get(step.send.content)
                if item is not None and item.fast_lane:
                    return
        items = self._fast_lane_items(journey)
        self.problems.append(doc.problem(
            ("stages", stage.value), f"stage {stage} has no fast-lane offer",
            "add `fast_lane_offer: <id>` to one send step of this stage (Sales Fast Lane: "
            "every stage offers a way straight to sales); "
            + _choices(items, "fast-lane items")))

    def _reachability(self, doc: YamlDocument, order: list[str],
                      entry: Mapping[JourneyStage, str],
                      transitions: Mapping[str, tuple[str, ...]], locs: Mapping[str, Loc]) -> None:
        reached = set(entry.values())
        todo = list(reached)
        while todo:
            for target in transitions.get(todo.pop(), ()):
                if target not in reached:
                    reached.add(target)
                    todo.append(target)
        for step_id in order:
            if step_id not in reached:
                self.problems.append(doc.problem(
                    (*locs[step_id], "id"), f'step "{step_id}" can never be reached',
                    "a step after advance/exit, or skipped by both branch targets, never runs; "
                    "move it, point a branch at it, or delete it"))

    def _loops(self, doc: YamlDocument, order: list[str], steps: Mapping[str, Step],
               transitions: Mapping[str, tuple[str, ...]], locs: Mapping[str, Loc]) -> None:
        """Every cycle must contain a wait (a wait step or a branch's `within`)."""
        waits = {sid for sid, s in steps.items() if isinstance(s, WaitStep | BranchStep)}
        graph = {sid: [t for t in transitions.get(sid, ()) if t not in waits]
                 for sid in order if sid not in waits}
        state: dict[str, int] = {}
        reported: set[str] = set()

        def visit(node: str, path: list[str]) -> None:
            state[node] = 1
            path.append(node)
            for target in graph.get(node, ()):
                if state.get(target) == 1:
                    cycle = path[path.index(target):]
                    first = min(cycle, key=order.index)
                    if first not in reported:
                        reported.add(first)
                        self.problems.append(doc.problem(
                            (*locs[first], "id"),
                            "loop without a wait: " + " → ".join([*cycle, target]),
                            "add a wait step (e.g. `wait: 7d`) inside the loop, or a branch "
                            "with `within`"))
                elif state.get(target) is None:
                    visit(target, path)
            path.pop()
            state[node] = 2

        for node in graph:
            if node not in state:
                visit(node, [])

    def _slowest_case(self, journey: Journey, doc: YamlDocument) -> None:
        target = journey.slowest_case.move_to
        if target is None:
            return
        if target == journey.id:
            self.problems.append(doc.problem(
                ("slowest_case", "move_to"), "the slowest case moves leads into the same journey",
                "move them to a long-term journey (e.g. a monthly newsletter), or leave "
                "move_to empty to end the journey"))
        elif target not in self.journeys:
            self.problems.append(doc.problem(("slowest_case", "move_to"),
                                             f'unknown journey "{target}"',
                                             _choices(self.journeys, "journeys")))

    def _content_for(self, journey: Journey, stage: JourneyStage) -> list[str]:
        return [c.id for c in self.content.values()
                if stage in c.stages and (journey.persona is None or journey.persona in c.personas)]

    def _fast_lane_items(self, journey: Journey) -> list[str]:
        return [c.id for c in self.content.values()
                if c.fast_lane and (journey.persona is None or journey.persona in c.personas)]

    def _content_file(self, content_id: str) -> str:
        found = self.content_docs.get(content_id)
        return found[0].path if found else "the content catalog"


def _check_sla(sla: Loaded[Sla], journeys: Mapping[str, Journey], personas: Mapping[str, Persona],
               content: Mapping[str, ContentItem], problems: list[Problem]) -> None:
    doc, model = sla.doc, sla.model
    reps = _distinct(doc, "reps", "id", [r.id for r in model.reps], "rep", problems)
    for index, rule in enumerate(model.routing.rules):
        for j, rep_id in enumerate(rule.assign):
            if rep_id not in reps:
                problems.append(doc.problem(("routing", "rules", index, "assign", j),
                                            f'unknown rep "{rep_id}"', _choices(reps, "reps")))
        for j, persona in enumerate(rule.when.personas):
            if persona not in personas:
                problems.append(doc.problem(("routing", "rules", index, "when", "personas", j),
                                            f'unknown persona "{persona}"',
                                            _choices(personas, "personas")))
    _distinct(doc, "rejection_reasons", "code", [r.code for r in model.rejection_reasons],
              "rejection reason", problems)
    for index, reason in enumerate(model.rejection_reasons):
        _journey_ref(doc, ("rejection_reasons", index, "recycle_journey"),
                     reason.recycle_journey, journeys, problems)
    for outcome, route in model.outcomes.items():
        _journey_ref(doc, ("outcomes", outcome, "journey"), route.journey, journeys, problems)
        target = journeys.get(route.journey)
        if outcome == "won" and target is not None and target.kind != "after_sales":
            problems.append(doc.problem(("outcomes", outcome, "journey"),
                                        f'journey "{route.journey}" is a {target.kind} journey',
                                        "won customers go to an after_sales journey "
                                        "(AFS, WIK, CUS)"))
    for index, signal in enumerate(model.fast_lane.signals):
        if signal.content is not None and signal.content not in content:
            problems.append(doc.problem(("fast_lane", "signals", index, "content"),
                                        f'unknown content "{signal.content}"',
                                        _choices(content, "content")))
    _distinct(doc, "webhooks", "id", [w.id for w in model.webhooks], "webhook endpoint",
              problems)


def _distinct(doc: YamlDocument, section: str, field: str, keys: list[str], what: str,
              problems: list[Problem]) -> set[str]:
    """The keys of a list section; a repeated key is a problem at its second use."""
    seen: set[str] = set()
    for index, key in enumerate(keys):
        if key in seen:
            problems.append(doc.problem((section, index, field),
                                        f'{what} {field} "{key}" is used twice',
                                        f"give each {what} its own {field}"))
        seen.add(key)
    return seen


def _journey_ref(doc: YamlDocument, loc: Loc, journey_id: str, journeys: Mapping[str, Journey],
                 problems: list[Problem]) -> None:
    if journey_id not in journeys:
        problems.append(doc.problem(loc, f'unknown journey "{journey_id}"',
                                    _choices(journeys, "journeys")))


def _check_scoring(scoring: Loaded[Scoring], problems: list[Problem]) -> None:
    model = scoring.model
    most = model.explicit.maximum()
    for grade in ("A", "B", "C"):
        needed = getattr(model.grades.fit, grade)
        if needed > most:
            problems.append(scoring.doc.problem(
                ("grades", "fit", grade),
                f"grade {grade} needs {needed} points, but explicit scoring gives at most {most}",
                "lower the threshold or raise the points under `explicit`"))
            break


def _check_consent(consent: Loaded[ConsentConfig], problems: list[Problem]) -> None:
    """Versions are unique (a shown text is never edited) and `current` is one of them."""
    versions = _distinct(consent.doc, "texts", "version",
                         [t.version for t in consent.model.texts], "consent text", problems)
    if consent.model.current not in versions:
        problems.append(consent.doc.problem(
            ("current",), f'no consent text has version "{consent.model.current}"',
            "versions: " + ", ".join(sorted(versions))))
