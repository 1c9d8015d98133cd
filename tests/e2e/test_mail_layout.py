"""The shipped mail templates on a phone and a desktop, light and dark, in real Chromium.

Every shipped template is rendered by ripen's renderer (CSS inlined as sent) with long,
realistic values — a tokenised unsubscribe link, a long company name — and loaded at 375 px
(a phone) and 700 px (a desktop pane): nothing scrolls sideways, the card is at most 600 px
wide, and every piece of text keeps a contrast of at least 4.5:1 (WCAG AA) against what is
behind it, in the light and in the dark colour scheme. Screenshots go to test-artifacts/.
The plain-text part is wrapped for reading: no line over 76 characters but a lone link."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.mail.context import marketing_context, sample_lead
from engine.mail.render import Renderer
from tests.e2e.test_signup_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.factories import REPO

LONG_TOKEN = "eyJsIjoiNmY0YTJkOGMtZmFrZS1sZWFkIiwicCI6InVuc3Vic2NyaWJlIn0." + "x" * 90
COMPANY = "Maschinenbau-Zulieferungsgesellschaft Nordrhein-Westfalen mbH & Co. KG"


def _rendered() -> dict[str, tuple[str, str]]:
    """(html, text) of every shipped template, as ripen renders them for sending."""
    config = load_and_compile(ConfigPaths.under(REPO))
    renderer = Renderer(config.templates.folder)
    persona = config.personas["monika-marketing"]
    items = [i for i in config.content.values() if persona.id in i.personas]
    assert items
    item = max(items, key=lambda i: len(i.title))
    offer = next((i for i in config.content.values() if i.fast_lane), None)
    lead = {**sample_lead(persona), "company": COMPANY}
    base = "https://ripen.example.com"
    marketing = marketing_context(
        subject=item.title, lead=lead, persona=persona, content=item, fast_lane_offer=offer,
        fast_lane_url=f"{base}/fast-lane/{LONG_TOKEN}", unsubscribe_url=f"{base}/u/{LONG_TOKEN}",
        identity=config.mail, content_url=f"{base}/c/{LONG_TOKEN}",
        fast_lane_offer_url=f"{base}/c/{LONG_TOKEN}2" if offer else None)
    contexts: dict[str, dict[str, Any]] = {
        "transactional/doi_confirm": {
            "subject": "Bitte bestätigen Sie Ihre Anmeldung", "update": False,
            "lead": {"language": "de", "first_name": "Erika"},
            "confirm_url": f"{base}/confirm/{LONG_TOKEN}", "valid_days": 30,
            "imprint": config.mail.imprint},
        "transactional/handover_notice": {
            "subject": f"Neuer Lead für Sie: Erika Mustermann ({COMPANY})",
            "rep": {"name": "Rita Vertrieb"},
            "lead": {"name": "Erika Mustermann", "email": "erika.mustermann@example.com",
                     "job_title": "Leiterin Marketing und Vertriebsentwicklung",
                     "company": COMPANY, "phone": "+49 211 1234567", "stage": "Evaluieren"},
            "reason": "MQL", "detail": "score 82 ≥ 70 and grade A; downloaded the checklist",
            "grade": "A", "answer_url": f"{base}/h/{LONG_TOKEN}",
            "timeline_url": f"{base}/l/{LONG_TOKEN}",
            "accept_by": datetime(2026, 12, 4, 17, 0, tzinfo=UTC),
            "imprint": config.mail.imprint},
    }
    names = [n for n in config.templates.names() if not config.templates.missing_parts(n)]
    assert set(contexts) < set(names)  # both transactional templates are shipped
    return {name: renderer.render(name, contexts.get(name, marketing)) for name in names}


RENDERED = _rendered()

MEASURE = """() => {
  const seen = (c) => c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent';
  const behind = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (seen(c)) return c;
    }
    return getComputedStyle(document.documentElement).colorScheme === 'dark'
      ? 'rgb(0, 0, 0)' : 'rgb(255, 255, 255)';
  };
  const own = (el) => [...el.childNodes].some(
    (n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
  const card = document.querySelector('.card');
  return {
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
    card: card ? card.getBoundingClientRect().width : null,
    texts: [...document.body.querySelectorAll('*')]
      .filter((e) => own(e) && e.getClientRects().length)
      .map((e) => [getComputedStyle(e).color, behind(e),
                   e.tagName + ': ' + e.textContent.trim().slice(0, 40)]),
  };
}"""


def _luminance(rgb: str) -> float:
    channels = [int(v) / 255 for v in re.findall(r"\d+(?:\.\d+)?", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    light, dark = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_is_the_wcag_ratio() -> None:
    """The measure the layout test relies on: black on white 21:1, grey #777 on white
    about 4.48:1 (just below AA)."""
    assert contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)") == pytest.approx(21.0)
    assert contrast("rgb(119, 119, 119)", "rgb(255, 255, 255)") == pytest.approx(4.48, abs=0.01)


@pytest.fixture(scope="module")
def browser() -> Any:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 700])
@pytest.mark.parametrize("name", sorted(RENDERED))
def test_a_shipped_mail_fits_the_screen_and_stays_readable(
        browser: Any, name: str, width: int, scheme: str) -> None:
    html, _ = RENDERED[name]
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  color_scheme=scheme, java_script_enabled=True)
    try:
        page = context.new_page()
        page.route("**/*", lambda route: route.abort())  # nothing is fetched (open pixel)
        page.set_content(html, wait_until="domcontentloaded")
        measured = page.evaluate(MEASURE)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"mail-{name.replace('/', '_')}-{width}-"
                                             f"{scheme}.png"), full_page=True)
    finally:
        context.close()
    assert measured["scroll"] <= measured["inner"], f"{name} scrolls sideways at {width} px"
    if measured["card"] is not None:
        assert measured["card"] <= 600
    assert measured["texts"], "no text found"
    weak = [(where, round(contrast(fg, bg), 2)) for fg, bg, where in measured["texts"]
            if contrast(fg, bg) < 4.5]
    assert weak == [], f"{name} at {width} px, {scheme}: text below 4.5:1"


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_the_plain_text_part_reads_well(name: str) -> None:
    """Wrapped at 72 (a line over 76 only when it is one link), no markup, no runs of
    blank lines, every link of the HTML part's buttons present."""
    html, text = RENDERED[name]
    long_lines = [line for line in text.splitlines()
                  if len(line) > 76 and not re.fullmatch(r"\S*https?://\S+", line)]
    assert long_lines == []
    assert not re.search(r"<[a-zA-Z/][^>]*>", text)
    assert "\n\n\n\n" not in text
    for link in re.findall(r'href="(https?://[^"]+)"', html):
        assert link.replace("&amp;", "&") in text, link
