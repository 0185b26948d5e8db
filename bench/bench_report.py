"""Benchmark the HTML report: page size and render time in headless chromium, by file count.

For each size, a synthetic app (tests/report/synth.py: one distribution of N modules in 100
subpackages, one unused distribution) is analysed with `microprune report --html`; chromium
(headless, offline flags) loads the page --runs times and the page itself reports its render
time (data-render-ms: from the script's start to the treemap drawn) and how many shapes it drew.
The issue's target: usable with 20,000 files, rendered under a second.

Usage: python3 bench/bench_report.py [--sizes 1000,5000,20000,50000] [--runs 3] [--json]
Progress on stderr, the table on stdout. Exit 1 if the 20,000-file page takes a second or more.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.report.synth import make_app  # noqa: E402  (after the sys.path insert)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--dump-dom"]


def microprune() -> list[str]:
    found = os.environ.get("MICROPRUNE") or shutil.which("microprune")
    return found.split() if found else [sys.executable, "-m", "microprune"]


def measure(size: int, runs: int, browser: str, scratch: Path) -> dict[str, object]:
    app, deps = make_app(scratch / f"app{size}", files=size)
    page = scratch / f"report{size}.html"
    started = time.monotonic()
    subprocess.run([*microprune(), "-q", "report", str(app), "--deps", str(deps), "--html", str(page)],
                   check=True, capture_output=True, timeout=600)
    write_s = time.monotonic() - started
    renders, shapes = [], 0
    for run in range(runs):
        dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={scratch / f'profile{size}-{run}'}",
                              page.as_uri() + "#path=bigpkg/bigpkg"],
                             check=True, capture_output=True, text=True, timeout=300).stdout
        renders.append(float(re.search(r'data-render-ms="([\d.]+)"', dom).group(1)))  # type: ignore[union-attr]
        shapes = int(re.search(r'data-shapes="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    return {"files": size, "page_bytes": page.stat().st_size, "report_seconds": round(write_s, 2),
            "render_ms_median": statistics.median(renders), "render_ms_max": max(renders), "shapes": shapes}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,20000,50000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-report-") as scratch:
        for size in (int(s) for s in args.sizes.split(",")):
            print(f"{size} files ...", file=sys.stderr)
            rows.append(measure(size, args.runs, browser, Path(scratch)))
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
    else:
        print(f"{'files':>7} {'page':>10} {'report s':>9} {'render ms (median)':>19} {'max':>7} {'shapes':>7}")
        for r in rows:
            print(f"{r['files']:>7,} {r['page_bytes']:>10,} {r['report_seconds']:>9} {r['render_ms_median']:>19.1f} "
                  f"{r['render_ms_max']:>7.1f} {r['shapes']:>7}")
    target = next((r for r in rows if r["files"] == 20000), None)
    if target is not None:
        ok = float(target["render_ms_max"]) < 1000       # type: ignore[arg-type]
        print(f"target 20,000 files rendered under a second: {'met' if ok else 'MISSED'}")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
