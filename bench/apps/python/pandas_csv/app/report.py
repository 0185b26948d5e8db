"""Sales report: read the CSV shipped with the app, aggregate with pandas, print JSON.

Usage: python3 report.py [CSV]   (default: data/sales.csv beside this file)
"""
import sys
from pathlib import Path

import pandas as pd

DEFAULT_CSV = Path(__file__).resolve().parent / "data" / "sales.csv"


def load(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, parse_dates=["date"], dtype={"region": "category", "product": "category"})
    df["revenue"] = df["units"] * df["unit_price"]
    df["month"] = df["date"].dt.to_period("M").astype(str)
    return df


def summarize(df: pd.DataFrame) -> dict[str, str]:
    by_region = (
        df.groupby("region", observed=True)
        .agg(units=("units", "sum"), revenue=("revenue", "sum"), orders=("units", "size"))
        .sort_index()
    )
    by_month = df.pivot_table(index="month", columns="product", values="revenue",
                              aggfunc="sum", observed=True).round(2)
    top = df.groupby(["region", "product"], observed=True)["revenue"].sum().nlargest(3)
    return {
        "by_region": by_region.to_json(orient="index", double_precision=2),
        "by_month": by_month.to_json(orient="split", double_precision=2),
        "top3": top.reset_index().to_json(orient="records", double_precision=2),
    }


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CSV
    df = load(path)
    print(f"rows={len(df)} first={df['date'].min():%Y-%m-%d} last={df['date'].max():%Y-%m-%d}")
    for name, payload in summarize(df).items():
        print(f"{name}={payload}")


if __name__ == "__main__":
    main()
