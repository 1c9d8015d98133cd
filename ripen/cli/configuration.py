"""Configuration: check it, write its JSON Schemas, look at a journey or a mail, audit the
content."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from engine.config.compiler import CompiledConfig, load_and_compile
from engine.errors import ConfigError, RipenError
from engine.stages import BuyingStage, JourneyStage
from ripen.cli._common import (
    RootOption,
    app,
    audit_app,
    config_paths,
    known,
    load_cli_settings,
    out,
    personas_app,
)
from ripen.cli.output import JsonOption, print_json, table


@app.command()
def validate(root: RootOption = None, as_json: JsonOption = False) -> None:
    """Check every YAML file and template; print a summary, or each problem as file:line:col.

    With --json: {"ok": true, ...counts} or {"ok": false, "problems": [...]} on stdout, and
    exit 1 when there are problems."""
    if not as_json:
        _summary(load_and_compile(config_paths(root)))
        return
    try:
        config = load_and_compile(config_paths(root))
    except ConfigError as exc:
        print_json({"ok": False, "problems": [
            {"file": p.file, "line": p.line, "column": p.column, "message": p.message,
             "hint": p.hint} for p in exc.problems]})
        raise typer.Exit(1) from None
    print_json({"ok": True, "version": config.version, "notes": _notes(config),
                "personas": sorted(config.personas),
                "content_items": len(config.content),
                "journeys": [{"journey": j.id, "kind": j.model.kind, "version": j.version,
                              "steps": len(j.steps)} for j in config.journeys.values()]})


def _summary(config: CompiledConfig) -> None:
    stages = [s.value for s in BuyingStage]
    matrix = table("persona", *stages, "fast lane", title="Content per persona and stage",
                   numbers=True)
    for persona in config.personas.values():
        per_stage = [str(len(config.content_for(persona.id, JourneyStage(s)))) for s in stages]
        fast = sum(1 for c in config.content.values() if c.fast_lane and persona.id in c.personas)
        matrix.add_row(f"{persona.name} ({persona.id})", *per_stage, str(fast))
    out.print(matrix)
    journeys = table("journey", "kind", "version", "stages", "steps", title="Journeys",
                     right=("steps",))
    for journey in config.journeys.values():
        journeys.add_row(journey.id, journey.model.kind, journey.version,
                         " ".join(s.value for s, _ in journey.model.stages.declared()),
                         str(len(journey.steps)))
    out.print(journeys)
    steps = sum(len(j.steps) for j in config.journeys.values())
    counts = ", ".join(_count(n, what) for n, what in (
        (len(config.personas), "persona"), (len(config.content), "content item"),
        (len(config.journeys), "journey"), (steps, "step")))
    out.print(f"OK: {counts} (config version {config.version})", soft_wrap=True)
    for note in _notes(config):
        out.print(f"note: {note}", markup=False, soft_wrap=True)


def _notes(config: CompiledConfig) -> list[str]:
    """What is valid but probably not meant: personas a lead can fit equally well."""
    from engine.fit import overlaps

    return overlaps(list(config.personas.values()), config.scoring)


def _count(number: int, what: str) -> str:
    return f"{number} {what}{'' if number == 1 else 's'}"


@personas_app.command("match")
def personas_match(
    lead: Annotated[str, typer.Argument(
        help='The lead as "job title, industry, company size, region" (any order; e.g. '
             '"Leiter Konstruktion, mechanical-engineering, 200, DE")')],
    root: RootOption = None,
    as_json: JsonOption = False,
) -> None:
    """Which persona a lead would get, and why: the fit criteria it matches for every
    persona, their points and fit grade (the most points win; on a tie, the first id)."""
    from engine.fit import match, parse_profile

    config = load_and_compile(config_paths(root))
    personas = list(config.personas.values())
    profile = parse_profile(lead, personas)
    chosen, rows = match(profile, personas, config.scoring)
    if as_json:
        print_json({"profile": profile, "persona": chosen.id if chosen else None,
                    "fits": rows})
        return
    out.print("read as: " + "; ".join(f"{name} {value}" for name, value in (
        ("title", profile.job_title), ("industry", profile.industry),
        ("company size", profile.company_size), ("region", profile.region))
        if value is not None), markup=False, soft_wrap=True)
    fits = table("persona", "matches", "points", "fit grade", right=("points",),
                 ids=("persona",))
    for row in rows:
        fits.add_row(row.persona, ", ".join(row.matched) or "nothing", str(row.points),
                     row.grade)
    out.print(fits)
    if chosen is None:
        out.print("no persona: the lead matches no fit criterion (a form may still name "
                  "one)", markup=False, soft_wrap=True)
        return
    tied = [r.persona for r in rows if r.points == rows[0].points]
    out.print(f"persona: {chosen.id}" + (f" (tied with {', '.join(tied[1:])}: the first id "
                                         "wins)" if len(tied) > 1 else ""),
              markup=False, soft_wrap=True)


@app.command()
def graph(
    journey: Annotated[str, typer.Argument(help="Journey id, e.g. monika-marketing")],
    html: Annotated[Path | None, typer.Option(
        "--html", help="Also write a self-contained HTML page of the diagram to this file "
                       "(renders without the internet)")] = None,
    root: RootOption = None,
) -> None:
    """Print a journey as a Mermaid flowchart: its stages, steps and branches as they run,
    each stage's exit rule and the slowest case."""
    from engine.diagram import boxes, mermaid, slowest_case

    config = load_and_compile(config_paths(root))
    found = known(config.journeys, journey, "journey")
    source = mermaid(found)
    if html is None:
        print(source, end="")
        return
    from ripen.api.pages import render

    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(render("workbench/graph.html", journey=found, stages=boxes(found),
                           slowest=slowest_case(found), source=source), encoding="utf-8")
    out.print(f"wrote {html}", markup=False, soft_wrap=True)


@app.command()
def preview(
    template: Annotated[str, typer.Argument(help="Template name, e.g. content_offer")],
    persona: Annotated[str, typer.Option(help="Persona id whose sample lead is shown")],
    content: Annotated[str, typer.Option(help="Content item id offered in the mail")],
    fast_lane: Annotated[str | None, typer.Option(
        "--fast-lane", help="A fast_lane content item offered alongside")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the files")] = Path(
        "var/preview"),
    root: RootOption = None,
) -> None:
    """Render a marketing template for a persona and content item into HTML and text files."""
    from engine.mail.context import marketing_context, sample_lead
    from engine.mail.render import Renderer

    config = load_and_compile(config_paths(root))
    chosen = known(config.personas, persona, "persona")
    item = known(config.content, content, "content")
    offer = known(config.content, fast_lane, "content") if fast_lane else None
    if template not in config.templates.names() or config.templates.missing_parts(template):
        raise RipenError(f'no template "{template}" with both parts in '
                         f"{config.templates.display('')}")
    base = load_cli_settings(root).public_base_url.rstrip("/")
    context = marketing_context(
        subject=item.title, lead=sample_lead(chosen), persona=chosen, content=item,
        fast_lane_offer=offer, fast_lane_url=f"{base}/fast-lane/PREVIEW",
        unsubscribe_url=f"{base}/u/PREVIEW", identity=config.mail)
    html, text = Renderer(config.templates.folder).render(template, context)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{template.replace('/', '_')}-{persona}-{content}"
    (out_dir / f"{stem}.html").write_text(html, encoding="utf-8")
    (out_dir / f"{stem}.txt").write_text(text, encoding="utf-8")
    out.print(f"wrote {out_dir / stem}.html and .txt (subject: {item.title})", markup=False,
              soft_wrap=True)


@app.command()
def schema(
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the *.schema.json files")]
    = Path("config/schemas"),
) -> None:
    """Write JSON Schemas for every config file kind (editors validate and autocomplete)."""
    from engine.config.schema import write_schemas

    for path in write_schemas(out_dir):
        out.print(f"wrote {path}")


@audit_app.command("content")
def audit_content(
    root: RootOption = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 1 when a persona × stage cell has no content (for CI)")] = False,
    stale_after: Annotated[str, typer.Option(
        help="Content published longer ago than this is listed as stale (e.g. 365d, 104w)")
    ] = "730d",
    as_json: JsonOption = False,
) -> None:
    """The persona × stage content matrix: items, fast-lane offers, the journey's sends and
    cadence, the runway in days; content no journey uses; stale content."""

    from engine.audit import audit_content as run_audit
    from engine.durations import parse_duration

    try:
        age = parse_duration(stale_after)
    except ValueError as exc:
        raise RipenError(f"--stale-after: {exc}") from None
    config = load_and_compile(config_paths(root))
    report = run_audit(config, today=datetime.now(UTC).date(), stale_after=age)
    if as_json:
        print_json({
            "cells": [{"persona": c.persona, "stage": c.stage.value, "items": list(c.items),
                       "fast_lane": list(c.fast_lane), "sends": c.sends,
                       "wait_days": c.wait_days, "runway_days": c.runway_days}
                      for c in report.cells],
            "gaps": [f"{c.persona}/{c.stage.value}" for c in report.gaps],
            "unreferenced": list(report.unreferenced),
            "stale": [{"content": i, "published": str(d)} for i, d in report.stale]})
    else:
        matrix = table("persona", *(s.value for s in report.stages),
                       title="items (fast lane) · sends/days · runway")
        for persona in sorted({c.persona for c in report.cells}):
            row = []
            for cell in (c for c in report.cells if c.persona == persona):
                if cell.empty:
                    row.append("[red]GAP[/red]")
                    continue
                text = f"{len(cell.items)} ({len(cell.fast_lane)})"
                if cell.sends:
                    text += f" · {cell.sends}/{cell.wait_days:g}d"
                if cell.runway_days is not None:
                    text += f" · {cell.runway_days:.0f}d"
                row.append(text)
            matrix.add_row(persona, *row)
        out.print(matrix)
        out.print("unused by any journey: " + (", ".join(report.unreferenced) or "none"),
                  markup=False, soft_wrap=True)
        out.print(f"stale (published over {stale_after} ago): "
                  + (", ".join(f"{i} ({d})" for i, d in report.stale) or "none"),
                  markup=False, soft_wrap=True)
        for gap in report.gaps:
            out.print(f"gap: no content for {gap.persona} at {gap.stage.value}", markup=False)
    if strict and report.gaps:
        raise typer.Exit(1)
