"""Screenshots of Prefect's UI showing a journey's flow run and its artifact (README).

Run from the repository root (with `make install` done):

    .venv/bin/python docs/scripts/prefect_ui_screenshot.py

It starts Prefect's UI server as `ripen run --ui` does (on a temporary database and
PREFECT_HOME), lets 40 leads of Monika Marketing's journey be due, runs one tick, and has
Debian's Chromium (Playwright; no browser download) take `docs/images/prefect-journey-run.png`
and `docs/images/prefect-journey-artifact.png`. Nothing is sent anywhere: mail goes into a
Maildir in the temporary folder.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    sys.path.insert(0, str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="ripen-ui-"))
    os.environ.update({"PREFECT_HOME": str(work / "prefect"),
                       "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                       "RIPEN_DATABASE_URL": f"sqlite:///{work / 'ripen.db'}",
                       "RIPEN_MAIL_URL": f"maildir:{work / 'outbox'}",
                       "RIPEN_SECRET_KEYS": "s" * 40})
    from ripen.prefect_ui import UiServer

    ui = UiServer(_free_port(), work / "prefect-ui.log")
    ui.start()  # before Prefect is imported: the flows report to it
    try:
        _tick_and_shoot(ui.url)
    finally:
        ui.stop()


def _tick_and_shoot(url: str) -> None:
    import asyncio

    from playwright.sync_api import sync_playwright
    from prefect.client.orchestration import get_client

    from engine.bootstrap import bootstrap
    from flows import runtime
    from flows.tick import run_tick
    from tests.factories import enrollment, saved_leads

    app = bootstrap()
    runtime.use(app)
    journey = app.config.journeys["monika-marketing"]
    leads = saved_leads(app.db, 40, prefix="monika", last_name="Muster",
                        persona_id="monika-marketing")
    with app.uow() as uow:
        uow.add(*[enrollment(i, journey_version=journey.version, due_at=app.clock())
                  for i in leads])
        uow.commit()
    run_tick()

    async def journey_run() -> tuple[str, str]:
        async with get_client() as client:
            flows = {f.id: f.name for f in await client.read_flows()}
            runs = [r for r in await client.read_flow_runs()
                    if flows[r.flow_id] == "journey:monika-marketing"]
            artifacts = await client.read_artifacts()
            table = [a for a in artifacts if a.key == "journey-monika-marketing"]
        return str(runs[0].id), str(table[0].id)

    run_id, artifact_id = asyncio.run(journey_run())
    IMAGES.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{url}/runs/flow-run/{run_id}", wait_until="networkidle")
        page.wait_for_timeout(2500)
        page.screenshot(path=str(IMAGES / "prefect-journey-run.png"))
        page.goto(f"{url}/artifacts/artifact/{artifact_id}", wait_until="networkidle")
        page.wait_for_timeout(2500)
        page.screenshot(path=str(IMAGES / "prefect-journey-artifact.png"))
        browser.close()
    runtime.use(None)
    app.dispose()
    print(f"wrote {IMAGES / 'prefect-journey-run.png'} and prefect-journey-artifact.png")


if __name__ == "__main__":
    main()
