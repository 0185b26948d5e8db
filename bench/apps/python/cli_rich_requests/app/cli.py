"""repo-stats: fetch repository stats from an HTTP JSON API and show them as a rich table.

Usage:
    python3 cli.py repos --base-url http://127.0.0.1:8000 [--min-stars N] [--sort stars|name]
    python3 cli.py ping --base-url http://127.0.0.1:8000
"""
import click
import requests
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

console = Console(width=120, color_system=None, highlight=False)


def fetch_json(base_url: str, path: str) -> object:
    with requests.Session() as session:
        session.headers["User-Agent"] = "repo-stats/1.0"
        resp = session.get(base_url.rstrip("/") + path, timeout=10)
        resp.raise_for_status()
        return resp.json()


@click.group()
@click.option("--base-url", required=True, help="Root URL of the stats API.")
@click.pass_context
def cli(ctx: click.Context, base_url: str) -> None:
    """Show repository stats."""
    ctx.obj = base_url


@cli.command()
@click.pass_obj
def ping(base_url: str) -> None:
    """Check that the API answers."""
    info = fetch_json(base_url, "/api/info.json")
    console.print(Panel.fit(f"{info['service']} v{info['version']}", title="API"))


@cli.command()
@click.option("--min-stars", type=int, default=0, show_default=True)
@click.option("--sort", "sort_by", type=click.Choice(["stars", "name"]), default="stars")
@click.pass_obj
def repos(base_url: str, min_stars: int, sort_by: str) -> None:
    """List repositories with at least MIN_STARS stars."""
    rows = [r for r in fetch_json(base_url, "/api/repos.json") if r["stars"] >= min_stars]
    rows.sort(key=(lambda r: -r["stars"]) if sort_by == "stars" else (lambda r: r["name"]))
    table = Table(title=f"Repositories (>= {min_stars} stars)", show_footer=True)
    table.add_column("Name", footer="Total")
    table.add_column("Language")
    table.add_column("Stars", justify="right", footer=f"{sum(r['stars'] for r in rows):,}")
    for r in rows:
        table.add_row(r["name"], r["language"], f"{r['stars']:,}")
    console.print(table)
    click.echo(f"{len(rows)} repositories")


if __name__ == "__main__":
    cli()
