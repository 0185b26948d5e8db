"""Smoke check: report.py aggregates data/sales.csv with pandas.

The expected numbers are recomputed here with the csv module, so the check
does not trust pandas to grade itself.
"""
import csv
import json
from collections import defaultdict

from smokelib import Session, expect


def expected(csv_path):
    units, revenue, orders = defaultdict(int), defaultdict(float), defaultdict(int)
    months = set()
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            units[row["region"]] += int(row["units"])
            revenue[row["region"]] += int(row["units"]) * float(row["unit_price"])
            orders[row["region"]] += 1
            months.add(row["date"][:7])
    return units, revenue, orders, sorted(months)


def smoke(s: Session) -> None:
    out = s.run("report.py").stdout
    lines = dict(line.split("=", 1) for line in out.splitlines() if "=" in line and not line.startswith("rows"))
    expect(out.startswith("rows=240 first=2024-01-"), f"unexpected header: {out[:200]!r}")

    units, revenue, orders, months = expected(s.app_dir / "data" / "sales.csv")
    by_region = json.loads(lines["by_region"])
    expect(sorted(by_region) == sorted(units), f"regions: {sorted(by_region)}")
    for region, row in by_region.items():
        expect(row["units"] == units[region], f"{region} units {row['units']} != {units[region]}")
        expect(abs(row["revenue"] - revenue[region]) < 0.01, f"{region} revenue {row['revenue']}")
        expect(row["orders"] == orders[region], f"{region} orders {row['orders']}")

    by_month = json.loads(lines["by_month"])
    expect(by_month["index"] == months, f"months: {by_month['index']}")
    expect(sorted(by_month["columns"]) == ["gadget", "gizmo", "widget"], f"products: {by_month['columns']}")

    top3 = json.loads(lines["top3"])
    expect(len(top3) == 3 and top3[0]["revenue"] >= top3[2]["revenue"], f"top3: {top3}")
