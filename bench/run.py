"""``make bench``: every scenario on SQLite and PostgreSQL, each in its own process (so its
peak RSS is its own), one line per figure, all figures in ``bench/results.json``.

    python -m bench.run [S1 S2 …] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.scenarios import ONCE, ONLY, SCENARIOS

RESULTS = Path(__file__).parent / "results.json"


def _one(name: str, backend: str) -> dict[str, Any]:
    from bench.scenarios import run

    return run(name, backend)


def _line(name: str, figure: dict[str, Any]) -> str:
    value, unit = figure["value"], figure["unit"]
    text = f"{name} [{figure['backend']}]: {value:,.3f} {unit}" if value < 100 else \
        f"{name} [{figure['backend']}]: {value:,.0f} {unit}"
    parts = []
    if figure.get("baseline"):
        parts.append(f"{value / figure['baseline']:.1f}× baseline ({figure['baseline_name']}: "
                     f"{figure['baseline']:,.0f} {unit})")
    if "limit" in figure:
        parts.append(f"{value / figure['limit']:.2f} of limit ({figure['limit_name']}: "
                     f"{figure['limit']:,.0f} {unit})")
    if parts:
        text += " (" + "; ".join(parts) + ")"
    text += f", peak RSS {figure['peak_rss_mib']:.0f} MiB"
    verdict = _verdict(figure)
    if verdict:
        text += f" — {verdict}"
    if figure.get("detail"):
        text += f"\n    {figure['detail']}"
    if figure.get("smtp"):
        text += f"\n    SMTP: {figure['smtp']}"
    return text


def _verdict(figure: dict[str, Any]) -> str:
    targets = figure.get("targets", {})
    missed = []
    value = figure["value"]
    if "value" in targets and value < targets["value"]:
        missed.append(f"target ≥ {targets['value']:,}")
    if "max" in targets and value > targets["max"]:
        missed.append(f"target ≤ {targets['max']}")
    if "ratio" in targets and figure.get("baseline") and \
            value / figure["baseline"] < targets["ratio"]:
        missed.append(f"target ≥ {targets['ratio']}× baseline")
    if "share" in targets and figure.get("limit") and \
            value / figure["limit"] < targets["share"]:
        missed.append(f"target ≥ {targets['share']} of limit")
    if "rss_max" in targets and figure["peak_rss_mib"] > targets["rss_max"]:
        missed.append(f"target peak RSS ≤ {targets['rss_max'] * 2**20 / 1e6:.0f} MB")
    for count in ("duplicates", "lost"):
        if count in targets and figure.get(count, 0) > targets[count]:
            missed.append(f"target {count} = {targets[count]}")
    if "p99" in targets and figure.get("p99") is not None and figure["p99"] > targets["p99"]:
        missed.append(f"target p99 ≤ {targets['p99']} s")
    figure["met"] = not missed
    return "targets met" if not missed else "MISSED " + ", ".join(missed)


def markdown(results: dict[str, Any]) -> str:
    """The figures of ``results.json`` as the README's table."""
    rows = ["| figure | database | value | baseline | ratio | of limit | peak RSS | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for f in results["figures"]:
        ratio = f"{f['value'] / f['baseline']:.1f}×" if f.get("baseline") else ""
        share = f"{f['value'] / f['limit']:.2f}" if f.get("limit") else ""
        value = f"{f['value']:,.3g} {f['unit']}" if f["value"] < 100 else \
            f"{f['value']:,.0f} {f['unit']}"
        base = f"{f['baseline']:,.0f}" if f.get("baseline") else ""
        verdict = _verdict(f).replace("MISSED", "missed")
        rows.append(f"| {f['name']} | {f['backend']} | {value} | {base} | {ratio} | {share} | "
                    f"{f['peak_rss_mib']:.0f} MiB | {verdict} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--one", nargs=2, metavar=("SCENARIO", "BACKEND"),
                        help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--markdown", action="store_true",
                        help="print bench/results.json as a Markdown table and stop")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(RESULTS.read_text())))
        return
    if args.one:
        print(json.dumps(_one(*args.one)))
        return
    results: dict[str, Any] = {"machine": {"python": platform.python_version(),
                                           "cpus": os.cpu_count(),
                                           "platform": platform.platform()},
                               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "figures": []}
    failed = False
    for name in args.scenarios:
        backends = ["sqlite"] if name in ONCE else args.backends.split(",")
        if name in ONLY:
            backends = [b for b in backends if b == ONLY[name]]
        for backend in backends:
            started = time.monotonic()
            child = subprocess.run(  # noqa: S603
                [sys.executable, "-m", "bench.run", "--one", name, backend],
                capture_output=True, text=True, cwd=Path(__file__).parent.parent)
            if child.returncode != 0:
                failed = True
                print(f"{name} [{backend}]: FAILED\n{child.stderr[-3000:]}", flush=True)
                continue
            figures = json.loads(child.stdout.strip().splitlines()[-1])
            for label, figure in figures.items():
                print(_line(label, figure), flush=True)
                results["figures"].append({"name": label, **figure})
            print(f"    ({time.monotonic() - started:.0f} s)", flush=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results: {RESULTS}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
