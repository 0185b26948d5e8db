"""One self-contained HTML page of a plan: a treemap of bytes, kept versus dropped, and why.

The page has no network access of any kind: its data is a JSON block, its script and style
are inline, the treemap is SVG drawn by that script. The data is compact (one array per file,
parents as indices) so that 20,000 files stay a few megabytes; the script draws one level
at a time and folds small items into one, so a view never has more than a few hundred shapes.

`page_data` is pure (analysis in, dict out); `render_html` is pure (dict in, str out).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import __version__
from .analyzer import Session
from .paths import display, write_text_atomically
from .plan import UNOWNED, PrunePlan
from .trace import Trace

PAGE_SCHEMA = 1


def page_data(session: Session, trace: Trace, plan: PrunePlan, report: dict[str, Any]) -> dict[str, Any]:
    """Everything the page shows. Files: [root, path, bytes, kept, dist, reasons, parent, line, via]
    where dist and parent are indices (-1: none) and via is "reason detail" of the first parent."""
    roots = session.inventory.roots
    root_names = sorted(roots)
    decisions = plan.decisions
    index = {d.path: i for i, d in enumerate(decisions)}
    dists = sorted({d.package for d in decisions if d.package} | {UNOWNED})
    dist_index = {name: i for i, name in enumerate(dists)}
    files = []
    for d in decisions:
        parent, line, via = -1, 0, ""
        prov = trace.kept.get(d.path) if d.keep else None
        if prov is not None and prov.parents:
            first = prov.parents[0]
            parent = index.get(first.path, -1) if first.path is not None else -1
            line = first.line or 0
            via = f"{first.reason.value} {first.detail}".strip()
        rel = d.path.relative_to(roots[d.root]).as_posix()
        files.append([root_names.index(d.root), display(rel), d.size, 1 if d.keep else 0,
                      dist_index[d.package] if d.package else -1, " ".join(d.reasons), parent, line, via])
    return {
        "page_schema": PAGE_SCHEMA,
        "tool": f"microprune {__version__}",
        "command": report["command"],
        "language": report["language"],
        "app": report["app"],
        "deps": report["deps"],
        "entries": [e["spec"] for e in report["entries"]],
        "totals": report["totals"],
        "app_totals": report["app_totals"],
        "deps_totals": report["deps_totals"],
        "distributions": report["distributions"],
        "warnings": len(report["warnings"]),
        "roots": root_names,
        "dists": dists,
        "files": files,
    }


def write_html(path: Path, data: dict[str, Any]) -> None:
    """Write the page next to itself and rename it into place: never half a page."""
    write_text_atomically(path, render_html(data))


def render_html(data: dict[str, Any]) -> str:
    # "</" inside a JSON string would end the script element: escape every "<".
    payload = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    title = f"microprune: {data['app']}".replace("&", "&amp;").replace("<", "&lt;")
    return (_PAGE.replace("@TITLE@", title).replace("@STYLE@", _STYLE).replace("@SCRIPT@", _SCRIPT)
            .replace("@DATA@", payload))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@TITLE@</title>
<style>@STYLE@</style></head>
<body>
<header><h1>microprune report</h1><div id="subtitle"></div></header>
<section id="summary" aria-label="totals"></section>
<main>
  <section id="mapbox" aria-label="treemap">
    <nav id="crumbs" aria-label="path"></nav>
    <div id="legend"><span class="sw kept"></span> kept <span class="sw dropped"></span> dropped
      <label><input type="checkbox" id="keptonly"> size by kept bytes only</label></div>
    <svg id="map" role="img" aria-label="bytes by distribution and file"></svg>
  </section>
  <aside id="details" aria-label="details"><p class="hint">Click an item to see its bytes and why it is kept; click a group to open it.</p></aside>
</main>
<section id="toplist" aria-label="top packages"></section>
<footer id="footer"></footer>
<script type="application/json" id="microprune-data">@DATA@</script>
<script>@SCRIPT@</script>
</body></html>
"""

_STYLE = """
:root{--kept:#2f7ed8;--dropped:#d9d9d9;--ink:#1d1d1f;--muted:#666;--line:#fff}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--ink);background:#fafafa}
header{padding:12px 20px 4px}h1{font-size:20px;margin:0}#subtitle{color:var(--muted);word-break:break-all}
#summary{display:flex;gap:12px;flex-wrap:wrap;padding:8px 20px}
.card{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:8px 14px;min-width:150px}
.card b{display:block;font-size:20px}.card span{color:var(--muted);font-size:12px}
main{display:flex;gap:16px;padding:8px 20px;align-items:flex-start}
#mapbox{flex:1 1 auto;min-width:0}#map{width:100%;height:560px;background:#fff;border:1px solid #e3e3e3;display:block}
#map rect{stroke:var(--line);stroke-width:1px;cursor:pointer}#map rect.kept{fill:var(--kept)}#map rect.dropped{fill:var(--dropped)}
#map rect.sel{stroke:#000;stroke-width:2px}#map text{font-size:11px;pointer-events:none;fill:#000}
#map text.onkept{fill:#fff}
#crumbs{margin:4px 0;min-height:20px;word-break:break-all}#crumbs a{color:var(--kept);cursor:pointer;text-decoration:underline}
#legend{color:var(--muted);margin:4px 0}.sw{display:inline-block;width:12px;height:12px;vertical-align:middle;margin-left:8px}
.sw.kept{background:var(--kept)}.sw.dropped{background:var(--dropped)}
aside{flex:0 0 340px;background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:10px 14px;max-height:640px;overflow:auto;word-break:break-all}
aside h2{font-size:15px;margin:0 0 6px}.hint{color:var(--muted)}ol.chain{padding-left:18px}ol.chain li{margin:3px 0}
code{font-size:12px;background:#f2f2f2;padding:0 3px;border-radius:3px}
table{border-collapse:collapse;background:#fff}td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
#toplist{padding:8px 20px}footer{padding:8px 20px 20px;color:var(--muted);font-size:12px}
"""

_SCRIPT = r"""
"use strict";
(function () {
  var t0 = performance.now();
  var D = JSON.parse(document.getElementById("microprune-data").textContent);
  var MAX_SHAPES = 400, SMALL = 0.0015;
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function human(n) {
    var u = ["B", "KiB", "MiB", "GiB"], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n.toFixed(0)) + " " + u[i];
  }
  function pct(a, b) { return b ? (100 * a / b).toFixed(1) + "%" : "0%"; }

  // -- the tree: app / distribution / directories / files ------------------------------
  function node(name, parent) { return {name: name, parent: parent, kids: {}, n: 0, kept: 0, dropped: 0, file: -1}; }
  var root = node(D.app, null), leaves = [];
  D.files.forEach(function (f, i) {
    var dist = f[4] >= 0 ? D.dists[f[4]] : null;
    var top = D.roots[f[0]] === "app" ? "(app)" : (dist || "(no distribution)");
    var parts = [top].concat(f[1].split("/"));
    var cur = root;
    for (var p = 0; p < parts.length; p++) {
      cur.n++; if (f[3]) cur.kept += f[2]; else cur.dropped += f[2];
      var key = parts[p];
      if (!cur.kids[key]) cur.kids[key] = node(key, cur);
      cur = cur.kids[key];
    }
    cur.n++; if (f[3]) cur.kept += f[2]; else cur.dropped += f[2];
    cur.file = i; leaves[i] = cur;
  });
  function kidsOf(n) { return Object.keys(n.kids).map(function (k) { return n.kids[k]; }); }
  function pathOf(n) { var p = []; for (var c = n; c.parent; c = c.parent) p.unshift(c.name); return p; }
  function byPath(parts) {
    var cur = root;
    for (var i = 0; i < parts.length; i++) { if (!cur.kids[parts[i]]) return null; cur = cur.kids[parts[i]]; }
    return cur;
  }
  // Single-child chains (site-packages/pkg/pkg) are opened at once.
  function open(n) { while (n.file < 0 && kidsOf(n).length === 1 && kidsOf(kidsOf(n)[0]).length) n = kidsOf(n)[0]; return n; }

  // -- squarified treemap ------------------------------------------------------------------
  function worst(row, side, scale) {
    var s = 0, mx = 0, mn = Infinity;
    row.forEach(function (r) { s += r.v; mx = Math.max(mx, r.v); mn = Math.min(mn, r.v); });
    s *= scale; var ss = s * s, w2 = side * side;
    return Math.max(w2 * mx * scale / ss, ss / (w2 * mn * scale));
  }
  function squarify(items, x, y, w, h, out) {
    var total = items.reduce(function (a, r) { return a + r.v; }, 0);
    if (!total) return;
    var scale = (w * h) / total, i = 0;
    while (i < items.length) {
      var side = Math.min(w, h), row = [items[i]], j = i + 1;
      while (j < items.length && worst(row.concat([items[j]]), side, scale) <= worst(row, side, scale)) { row.push(items[j]); j++; }
      var rs = row.reduce(function (a, r) { return a + r.v; }, 0) * scale, thick = rs / side, off = 0;
      row.forEach(function (r) {
        var len = r.v * scale / thick;
        if (w >= h) out.push({item: r, x: x, y: y + off, w: thick, h: len});
        else out.push({item: r, x: x + off, y: y, w: len, h: thick});
        off += len;
      });
      if (w >= h) { x += thick; w -= thick; } else { y += thick; h -= thick; }
      total -= rs / scale; scale = total > 0 ? (w * h) / total : 0; i = j;
    }
  }

  var current = root, selected = null;
  var map = document.getElementById("map");
  var keptOnly = document.getElementById("keptonly");
  function size(n) { return keptOnly.checked ? n.kept : n.kept + n.dropped; }

  function draw() {
    while (map.firstChild) map.removeChild(map.firstChild);
    var W = map.clientWidth || 900, H = map.clientHeight || 560;
    map.setAttribute("viewBox", "0 0 " + W + " " + H);
    var kids = kidsOf(current).filter(function (k) { return size(k) > 0; })
      .sort(function (a, b) { return size(b) - size(a) || (a.name < b.name ? -1 : 1); });
    var total = kids.reduce(function (a, k) { return a + size(k); }, 0);
    var items = [], rest = {name: "", small: [], kept: 0, dropped: 0, n: 0};
    kids.forEach(function (k) {
      if (items.length < MAX_SHAPES && size(k) >= total * SMALL) items.push({v: size(k), n: k});
      else { rest.small.push(k); rest.kept += k.kept; rest.dropped += k.dropped; rest.n += k.n; }
    });
    if (rest.small.length) { rest.name = rest.small.length + " small items"; items.push({v: size(rest), n: rest}); }
    var boxes = []; squarify(items, 0, 0, W, H, boxes);
    boxes.forEach(function (b) {
      var n = b.item.n, all = n.kept + n.dropped, keptShare = keptOnly.checked ? 1 : (all ? n.kept / all : 0);
      var g = svg("g", {}), title = svg("title", {});
      title.textContent = n.name + ": " + human(n.kept) + " kept, " + human(n.dropped) + " dropped";
      g.appendChild(title);
      // the kept part first along the long side, then the dropped part
      var horiz = b.w >= b.h, kl = (horiz ? b.w : b.h) * keptShare;
      var parts = [["kept", kl], ["dropped", (horiz ? b.w : b.h) - kl]], off = 0;
      parts.forEach(function (p) {
        if (p[1] <= 0.01) return;
        var r = svg("rect", horiz ? {x: b.x + off, y: b.y, width: p[1], height: b.h} : {x: b.x, y: b.y + off, width: b.w, height: p[1]});
        r.setAttribute("class", p[0] + (n === selected ? " sel" : ""));
        r.setAttribute("data-name", n.name);
        g.appendChild(r); off += p[1];
      });
      if (b.w > 60 && b.h > 16) {
        var label = svg("text", {x: b.x + 4, y: b.y + 13});
        label.setAttribute("class", keptShare > 0.5 ? "onkept" : "");
        label.textContent = fit(n.name, b.w) ;
        g.appendChild(label);
      }
      g.addEventListener("click", function () { choose(n); });
      map.appendChild(g);
    });
    crumbs();
  }
  function fit(s, w) { var max = Math.floor((w - 8) / 6.5); return s.length > max ? s.slice(0, Math.max(1, max - 1)) + "\u2026" : s; }

  function choose(n) {
    if (n.small) { show(n); return; }
    if (n.file < 0 && kidsOf(n).length) { current = open(n); selected = null; draw(); show(current); location.hash = "path=" + encodeURIComponent(pathOf(current).join("/")); return; }
    selected = n; draw(); show(n);
    location.hash = "file=" + encodeURIComponent(fileLabel(n.file));
  }
  function crumbs() {
    var c = document.getElementById("crumbs"); c.textContent = "";
    var chain = []; for (var n = current; n; n = n.parent) chain.unshift(n);
    chain.forEach(function (n, i) {
      if (i) c.appendChild(document.createTextNode(" / "));
      var a = el("a", {}, i ? n.name : "all"); a.addEventListener("click", function () { current = n; selected = null; draw(); show(n); });
      c.appendChild(a);
    });
  }

  // -- details: bytes, reasons and the why chain -------------------------------------------
  function fileLabel(i) { var f = D.files[i]; return (D.roots[f[0]] === "app" ? "app/" : "") + f[1]; }
  function whyChain(i) {
    var steps = [], seen = {};
    while (i >= 0 && !seen[i] && steps.length < 200) {
      seen[i] = 1; var f = D.files[i];
      steps.unshift({file: i, from: f[6], line: f[7], via: f[8]});
      i = f[6];
    }
    return steps;
  }
  function show(n) {
    var box = document.getElementById("details"); box.textContent = "";
    box.appendChild(el("h2", {id: "detail-name"}, n.small ? n.name : pathOf(n).join("/") || D.app));
    box.appendChild(el("p", {}, human(n.kept) + " kept, " + human(n.dropped) + " dropped" + (n.n ? " (" + n.n + " files)" : "")));
    var fileIndex = n.file;
    if (fileIndex < 0 && !n.small) {
      // a group: explain its largest kept file
      var best = -1;
      (function walk(m) { if (m.file >= 0) { var f = D.files[m.file]; if (f[3] && (best < 0 || f[2] > D.files[best][2])) best = m.file; } kidsOf(m).forEach(walk); })(n);
      if (best >= 0) { box.appendChild(el("p", {class: "hint"}, "Its largest kept file:")); fileIndex = best; }
    }
    if (n.small) {
      var ul = el("ul");
      n.small.slice(0, 50).forEach(function (k) { var li = el("li", {}, k.name + " \u2014 " + human(k.kept) + " kept"); ul.appendChild(li); });
      box.appendChild(ul); return;
    }
    if (fileIndex < 0) return;
    var f = D.files[fileIndex];
    var p = el("p", {id: "detail-state"}); p.appendChild(el("code", {}, fileLabel(fileIndex)));
    p.appendChild(document.createTextNode(f[3] ? " is kept: " + f[5] : " is dropped: " + f[5]));
    box.appendChild(p);
    if (!f[3]) return;
    var ol = el("ol", {class: "chain", id: "why-chain"});
    whyChain(fileIndex).forEach(function (s) {
      var li = el("li");
      if (s.from >= 0) { li.appendChild(el("code", {}, fileLabel(s.from) + (s.line ? ":" + s.line : ""))); li.appendChild(document.createTextNode(" " + (s.via || "imports") + " \u2192 ")); }
      else li.appendChild(document.createTextNode((s.via || "entry") + ": "));
      li.appendChild(el("code", {}, fileLabel(s.file)));
      ol.appendChild(li);
    });
    box.appendChild(ol);
  }

  // -- summary, top packages, footer ---------------------------------------------------------
  function card(label, value, sub) {
    var c = el("div", {class: "card"}); c.appendChild(el("b", {}, value)); c.appendChild(el("span", {}, label + (sub ? " \u00b7 " + sub : ""))); return c;
  }
  function summary() {
    document.getElementById("subtitle").textContent = D.language + " app " + D.app + (D.deps ? ", deps " + D.deps : "") + "; entries: " + D.entries.join(", ");
    var t = D.totals, before = t.kept_bytes + t.dropped_bytes, dt = D.deps_totals, db = dt.kept_bytes + dt.dropped_bytes;
    var s = document.getElementById("summary");
    s.appendChild(card("before", human(before), (t.kept_files + t.dropped_files) + " files"));
    s.appendChild(card("after", human(t.kept_bytes), t.kept_files + " files"));
    s.appendChild(card("deps dropped", pct(dt.dropped_bytes, db), human(dt.dropped_bytes)));
    s.appendChild(card("distributions used", D.distributions.filter(function (d) { return d.used; }).length + " / " + D.distributions.length));
    if (D.warnings) s.appendChild(card("warnings", String(D.warnings), "see --format json"));
    var top = D.distributions.slice().sort(function (a, b) { return b.kept_bytes - a.kept_bytes || (a.name < b.name ? -1 : 1); }).slice(0, 15);
    var box = document.getElementById("toplist"); box.appendChild(el("h2", {}, "Top packages by kept bytes"));
    var table = el("table", {id: "top-table"}), head = el("tr");
    ["package", "version", "kept", "dropped", "status"].forEach(function (h) { head.appendChild(el("th", {}, h)); });
    table.appendChild(head);
    top.forEach(function (d) {
      var tr = el("tr");
      tr.appendChild(el("td", {}, d.name)); tr.appendChild(el("td", {}, d.version));
      tr.appendChild(el("td", {class: "n"}, human(d.kept_bytes))); tr.appendChild(el("td", {class: "n"}, human(d.dropped_bytes)));
      tr.appendChild(el("td", {}, d.used ? "used" : "unused"));
      tr.addEventListener("click", function () { var n = root.kids[d.name]; if (n) choose(n); });
      table.appendChild(tr);
    });
    box.appendChild(table);
    document.getElementById("footer").textContent = D.tool + " \u00b7 " + D.command + " \u00b7 " + D.files.length + " files";
  }
  function fromHash() {
    var h = decodeURIComponent(location.hash.slice(1)), m = /^(path|file)=(.*)$/.exec(h);
    if (!m) return;
    var n = null;
    if (m[1] === "path") n = byPath(m[2].split("/"));
    else for (var i = 0; i < D.files.length && !n; i++) if (fileLabel(i) === m[2]) n = leaves[i];
    if (!n) return;
    if (m[1] === "path") { current = n; show(n); }
    else { current = n.parent || root; selected = n; show(n); }
  }
  keptOnly.addEventListener("change", draw);
  window.addEventListener("resize", draw);
  summary(); fromHash(); draw();
  document.body.setAttribute("data-render-ms", (performance.now() - t0).toFixed(1));
  document.body.setAttribute("data-shapes", String(map.querySelectorAll("rect").length));
})();
"""
