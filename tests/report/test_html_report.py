"""The HTML report: one self-contained page, usable with 20,000 files, checked in a real browser.

Debian's chromium (headless) loads the page from a file; the test reads the DOM it rendered
(totals, the top-packages table, the why chain of a file chosen in the URL) and a screenshot
(both colours are drawn). CI installs chromium; elsewhere these tests skip, unless
MICROPRUNE_REQUIRE_BROWSER=1 makes a missing browser a failure.
"""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.cli.helpers import run_cli
from tests.report.synth import make_app

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]
KEPT_RGB = (0x2F, 0x7E, 0xD8)
DROPPED_RGB = (0xD9, 0xD9, 0xD9)


def need_browser() -> str:
    if BROWSER is None:
        if os.environ.get("MICROPRUNE_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return BROWSER


@pytest.fixture(scope="module")
def big_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    root = tmp_path_factory.mktemp("big")
    app, deps = make_app(root / "src", files=20_000)
    page = root / "report.html"
    result = run_cli("report", app, "--deps", deps, "--html", page, "--format", "json", timeout=300)
    assert result.code == 0, result.err
    return page, result.json()


def browse(page: Path, fragment: str, tmp_path: Path, *extra: str) -> str:
    browser = need_browser()
    proc = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra,
                           f"{page.as_uri()}#{fragment}"], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_the_page_is_self_contained(big_report: tuple[Path, dict[str, object]]) -> None:
    page, report = big_report
    text = page.read_text(encoding="utf-8")
    assert report["html"] == str(page)
    # no fetch of any kind: no external script/style/img/link, a CSP that forbids the network
    assert not re.search(r"<(script|img|iframe)[^>]+src=|<link\b|@import|url\(", text)
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls          # an XML namespace name, never fetched
    assert "default-src 'none'" in text
    # the data block cannot end its script element early, whatever the file names are
    data = text.split('id="microprune-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data
    assert len(text) < 8_000_000


def test_the_browser_renders_totals_top_packages_and_a_why_chain(
        big_report: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    page, report = big_report
    dom = browse(page, "file=bigpkg/sub7/m13.py", tmp_path, "--dump-dom")
    # the page's script ran to the end and says how many shapes it drew: small items are
    # folded, so 20,000 files do not become 20,000 rectangles
    shapes = int(re.search(r'data-shapes="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    assert 2 <= shapes <= 2 * 401
    assert re.search(r'data-render-ms="[\d.]+"', dom)
    totals = report["totals"]
    assert isinstance(totals, dict)
    assert f"{totals['kept_files'] + totals['dropped_files']} files" in dom
    # top packages: both distributions, the used one first
    table = dom.split('id="top-table"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    assert [re.findall(r"<td[^>]*>(.*?)</td>", r)[0] for r in rows[1:]] == ["bigpkg", "junk"]
    assert "unused" in rows[2]
    # the why chain of the chosen file: entry -> app.py:1 -> m12.py:1 -> m13.py
    chain = dom.split('id="why-chain"', 1)[1].split("</ol>", 1)[0]
    steps = re.findall(r"<li>(.*?)</li>", chain)
    assert len(steps) == 3, chain
    assert "app/app.py" in steps[0]
    assert "app/app.py:1" in steps[1] and "bigpkg/sub7/m12.py" in steps[1]
    assert "bigpkg/sub7/m12.py:1" in steps[2] and "bigpkg/sub7/m13.py" in steps[2]


def test_a_dropped_file_says_why_it_is_dropped(big_report: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    page, _ = big_report
    dom = browse(page, "file=junk/__init__.py", tmp_path, "--dump-dom")
    state = dom.split('id="detail-state"', 1)[1].split("</p>", 1)[0]
    assert "is dropped" in state and "unused-distribution" in state
    assert 'id="why-chain"' not in dom


def test_the_screenshot_shows_kept_and_dropped(big_report: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    page, _ = big_report
    shot = tmp_path / "report.png"
    browse(page, "path=bigpkg", tmp_path, "--window-size=1280,900", f"--screenshot={shot}", "--hide-scrollbars")
    width, height, pixels = read_png(shot.read_bytes())
    assert (width, height) == (1280, 900)
    counts = {KEPT_RGB: 0, DROPPED_RGB: 0}
    for rgb in pixels:
        if rgb in counts:
            counts[rgb] += 1
    # the treemap is most of the page: both colours cover real area
    assert counts[DROPPED_RGB] > 50_000, counts
    assert counts[KEPT_RGB] > 200, counts


def read_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """The pixels of an 8-bit RGB or RGBA PNG (what chromium writes), with the stdlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    step = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * step
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    pos = 0
    for _ in range(height):
        kind, line = raw[pos], bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up = previous[i]
            corner = previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 0xFF
        pixels.extend(tuple(line[i:i + 3]) for i in range(0, stride, step))  # type: ignore[misc]
        previous = line
    return width, height, pixels


def test_hostile_file_names_are_data_not_markup(tmp_path: Path) -> None:
    """File names are the input's: `</script>`, quotes, markup and bytes that are not UTF-8
    must be shown as text, never run, and never stop the page."""
    app, deps = make_app(tmp_path / "src", files=200)
    # "/" cannot be in a name, but a path joins names with it: bigpkg/</script><script>...</script>.txt
    hostile = ["<", "<script>document.title='pwned';<", "script>.txt"]
    nested = deps / "bigpkg" / hostile[0] / ("script>" + hostile[1])
    nested.mkdir(parents=True)
    (nested / hostile[2]).write_text("data\n")
    for name in ("<img src=x onerror=alert(1)>.txt", "quote\"and'apostrophe.txt"):
        (deps / "bigpkg" / name).write_text("data\n")
    os.mkdir(os.fsencode(deps / "bigpkg") + b"/caf\xe9-dir")
    (Path(os.fsdecode(os.fsencode(deps / "bigpkg") + b"/caf\xe9-dir")) / "x.txt").write_text("x\n")
    page = tmp_path / "hostile.html"
    result = run_cli("report", app, "--deps", deps, "--html", page)
    assert result.code == 0, result.err
    text = page.read_text(encoding="utf-8")
    assert "bigpkg/\\u003c/script>\\u003cscript>document.title" in text     # the names are in the data ...
    assert "caf\\\\xe9-dir/x.txt" in text                                   # ... \xNN for bytes that are not UTF-8
    dom = browse(page, "path=bigpkg/bigpkg", tmp_path, "--dump-dom")
    assert "pwned" not in dom.split("<title>", 1)[1].split("</title>", 1)[0]
    assert re.search(r'data-shapes="\d+"', dom), "the page's script did not run to the end"
    assert "<img src=" not in dom.split('id="microprune-data"', 1)[0]   # never parsed as markup
