"""The review page: one self-contained HTML file a reviewer can open offline or attach.

The first screen is the whole journey: the drawing fills the space left of a
side panel (rules, legend, who enters, warnings) and is fitted to it, so every
stage is on screen and readable; zoom and pan are a small inline script, allowed
by its hash in the Content-Security-Policy and by nothing else. The page holds
two drawings, left to right and top to bottom, and opens on the one that fits
larger (a long journey reads better top to bottom); a button switches.

Everything is inline (the SVGs, the CSS, the script; no font or image
fetched) and the policy forbids any fetch, so the page shows the same thing on
an air-gapped laptop and leaks nothing about who opened it. Every text goes
through `html.escape`; the SVG comes from our Graphviz renderer, whose labels
are escaped already, and is inlined without its XML prolog.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re

from dsl.diagnostics import Diagnostic, render_plain
from dsl.model import EXIT, Journey

from . import text as t
from .diagram import BADGE_TEXT, Diagram, counts_text, stage_of_span

__all__ = ["inline_svg", "review_html", "fit_scale", "pick_layout", "SCRIPT", "LAYOUTS", "DRAWING_BOX"]

LAYOUTS = ("LR", "TB")
#: The drawing's share of a 1400×1000 first screen (CSS px): what `pick_layout` fits to.
DRAWING_BOX = (1400 - 380 - 24, 1000 - 96)

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d2939}
header{padding:.5rem 1rem;height:84px;overflow:hidden;border-bottom:1px solid #d0d5dd}
h1{font-size:1.35rem;margin:0 0 .15rem;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
h2{font-size:1.15rem;margin-top:1.6rem;border-bottom:1px solid #d0d5dd}
aside h2{font-size:1rem;margin:.9rem 0 .3rem}
.meta{color:#475467;font-size:.85rem;line-height:1.35}
.first{display:grid;grid-template-columns:minmax(0,1fr) 380px;height:calc(100vh - 84px);min-height:420px}
#drawing{position:relative;overflow:hidden;background:#fff;border-right:1px solid #d0d5dd;touch-action:none;cursor:grab}
#drawing svg{display:block;width:100%;height:100%}
#drawing svg[hidden]{display:none}
.controls{position:absolute;top:.5rem;left:.5rem;display:flex;gap:.25rem;z-index:2}
.controls button{font:inherit;font-size:.85rem;padding:.15rem .5rem;border:1px solid #98a2b3;border-radius:4px;background:#fff;cursor:pointer}
aside{overflow:auto;padding:.25rem 1rem 1rem;font-size:.88rem;background:#fcfcfd}
aside ul{margin:.2rem 0;padding-left:1.1rem}
main{padding:0 1rem 2rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border:1px solid #eaecf0;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#f2f4f7} code{font-size:.9em} td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;font-size:.72rem;font-weight:bold;color:#fff;border-radius:3px;padding:0 .35rem;margin-right:.25rem}
.b-initial{background:#1d4ed8}.b-final{background:#344054}.b-sales-ready{background:#b54708}
.b-exit{background:#fff;color:#475467;border:1px solid #667085}
.warn{color:#b54708}
pre.diag{background:#fffaeb;border-left:4px solid #dc6803;padding:.5rem;white-space:pre-wrap}
.ok{color:#1a7f37}
.bar{background:#1d4ed8;height:1rem;border-radius:2px;min-width:1px}
.bar.exit{background:#98a2b3}
.legend td{border:none;padding:.1rem .3rem}
.sample{display:inline-block;width:2.2rem;vertical-align:middle}
.chart svg{max-width:100%;height:auto}
"""

#: Zoom (wheel, buttons, + - 0 keys), pan (drag) and the layout switch. It edits the viewBox of
#: the SVG on show; nothing else. Allowed by its hash only.
SCRIPT = """(function(){
var box=document.getElementById('drawing');
function cur(){return box.querySelector('svg.journey:not([hidden])');}
function vb(s){return s.getAttribute('viewBox').split(/[ ,]+/).map(Number);}
function setvb(s,v){s.setAttribute('viewBox',v.join(' '));}
function at(s,cx,cy){var p=s.createSVGPoint();p.x=cx;p.y=cy;return p.matrixTransform(s.getScreenCTM().inverse());}
function zoom(f,cx,cy){var s=cur();if(!s)return;var r=s.getBoundingClientRect();
 if(cx===undefined){cx=r.left+r.width/2;cy=r.top+r.height/2;}
 var q=at(s,cx,cy),v=vb(s);setvb(s,[q.x-(q.x-v[0])/f,q.y-(q.y-v[1])/f,v[2]/f,v[3]/f]);}
function fit(){var s=cur();if(s)s.setAttribute('viewBox',s.dataset.fit);}
function layout(name){box.querySelectorAll('svg.journey').forEach(function(s){s.toggleAttribute('hidden',s.dataset.layout!==name);});
 document.getElementById('layout').textContent=name==='LR'?'top to bottom':'left to right';box.dataset.layout=name;}
box.addEventListener('wheel',function(e){e.preventDefault();zoom(e.deltaY<0?1.25:0.8,e.clientX,e.clientY);},{passive:false});
var drag=null;
box.addEventListener('pointerdown',function(e){if(e.target.closest('button'))return;var s=cur();if(!s)return;
 drag={x:e.clientX,y:e.clientY,v:vb(s),k:s.getScreenCTM().a};box.setPointerCapture(e.pointerId);box.style.cursor='grabbing';});
box.addEventListener('pointermove',function(e){if(!drag)return;var s=cur();
 setvb(s,[drag.v[0]-(e.clientX-drag.x)/drag.k,drag.v[1]-(e.clientY-drag.y)/drag.k,drag.v[2],drag.v[3]]);});
box.addEventListener('pointerup',function(){drag=null;box.style.cursor='';});
document.getElementById('zoom-in').onclick=function(){zoom(1.25);};
document.getElementById('zoom-out').onclick=function(){zoom(0.8);};
document.getElementById('zoom-fit').onclick=fit;
document.getElementById('layout').onclick=function(){layout(box.dataset.layout==='LR'?'TB':'LR');};
document.addEventListener('keydown',function(e){if(e.target.closest&&e.target.closest('input,textarea'))return;
 if(e.key==='+'||e.key==='=')zoom(1.25);else if(e.key==='-')zoom(0.8);else if(e.key==='0')fit();});
})();"""

_SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode()
_CSP = (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src '{_SCRIPT_HASH}'; "
        "connect-src 'none'; base-uri 'none'; form-action 'none'")

_VIEWBOX = re.compile(r'viewBox="([-\d.]+)[ ,]+([-\d.]+)[ ,]+([-\d.]+)[ ,]+([-\d.]+)"')


def inline_svg(svg: str, layout: str | None = None, shown: bool = True) -> str:
    """Graphviz SVG without its XML prolog, doctype and comments, ready for an HTML body.

    With `layout`, the root also loses its fixed size (the page fits it to the
    drawing area) and is tagged for the zoom script.
    """
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = svg.strip()
    if layout is None:
        return svg
    head, rest = svg.split(">", 1)
    head = re.sub(r'\s(width|height)="[^"]*"', "", head)
    m = _VIEWBOX.search(head)
    fit = " ".join(m.groups()) if m else ""
    extra = f' class="journey" data-layout="{layout}" data-fit="{fit}" preserveAspectRatio="xMidYMid meet"'
    return head + extra + ("" if shown else " hidden") + ">" + rest


def fit_scale(svg: str, box: tuple[float, float] = DRAWING_BOX) -> float:
    """How much a drawing is scaled to fit `box` (CSS px per SVG unit)."""
    m = _VIEWBOX.search(svg)
    if not m:
        return 1.0
    width, height = float(m.group(3)) or 1.0, float(m.group(4)) or 1.0
    return min(box[0] / width, box[1] / height)


def pick_layout(svgs: dict[str, str]) -> str:
    """The layout whose drawing fits the first screen larger (so its labels read best)."""
    return max(LAYOUTS, key=lambda name: (fit_scale(svgs[name]) if name in svgs else -1.0, name == "LR"))


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _badges(stage) -> str:
    names = [("initial", stage.initial), ("sales-ready", stage.handoff), ("final", stage.final),
             ("exit", EXIT in stage.targets())]
    return "".join(f'<span class="badge b-{n}">{_e(BADGE_TEXT[n])}</span>' for n, on in names if on)


def _count(edge) -> str:
    return "" if edge is None or edge.count is None else f" · <b>{_e(counts_text(edge))}</b>"


def _content_table(journey: Journey, diagram: Diagram, warnings: dict[str, list[Diagnostic]]) -> str:
    titles = {(c.kind, c.id): c.title for c in journey.contents if c.title}
    by_ref = {id(e.ref): e for e in diagram.edges if e.ref is not None and e.kind != "hold"}
    rows = []
    for stage in journey.stages:
        sends = "<br>".join([
            f"{_e(t.offset_text(s))}: <code>{_e(s.kind)}</code> {_e(s.content)}"
            + (" (every visit)" if s.every_visit else "")
            + (f" — <i>{_e(titles[(s.kind, s.content)])}</i>" if (s.kind, s.content) in titles else "")
            for s in stage.sends
        ] + [f"{_e(t.action_offset_text(a))}: ⚙ {_e(t.action_text(a))}" for a in stage.actions]) or "—"
        outs = [f"<b>{i}.</b> {_e(t.trigger_text(tr))} → <code>{_e(t.target_text(tr.target))}</code>"
                f"{_count(by_ref.get(id(tr)))}" for i, tr in enumerate(stage.triggers, 1)]
        if stage.hold is not None:
            h = stage.hold
            outs.append(f"{_e(t.hold_text(h))} {_e(t.hold_detail(h))}, then → <code>{_e(t.target_text(h.then))}"
                        f"</code>{_count(by_ref.get(id(h)))}")
        warned = "".join(f'<br><span class="warn">⚠ {_e(d.code)} {_e(d.message)}</span>'
                         for d in warnings.get(stage.id, ()))
        rows.append(
            f'<tr id="row-{_e(stage.id)}"><td><b>{_e(stage.title)}</b><br><code>{_e(stage.id)}</code><br>'
            f"{_badges(stage)}{warned}</td><td>{sends}</td><td>{'<br>'.join(outs) or '—'}</td></tr>"
        )
    return ("<table class=\"content\"><thead><tr><th>Stage</th><th>Content (in order)</th>"
            "<th>Ways out (tried in this order: the first that matches wins)</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>")


def _rules(journey: Journey) -> str:
    rows = []
    for r in journey.scoring:
        where = t.condition_text(r.condition) if r.condition is not None else ""
        cap = f"at most {r.cap_count} per {r.cap_window}" if r.cap_count is not None else ""
        rows.append(f"<tr><td><code>{_e(r.event)}</code> {_e(where)}</td>"
                    f"<td>{_e(t.points_text(r.points))}</td><td>{_e(cap)}</td></tr>")
    parts = []
    if rows:
        parts.append("<table class=\"scoring\"><thead><tr><th>Scoring</th><th>Points</th><th>Cap</th>"
                     f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    items = []
    if journey.decay is not None:
        items.append(f"Decay: half-life {journey.decay.half_life}")
    items += [f"Fit: {t.fit_rule_text(r)}" for r in journey.fit]
    items += [t.exit_rule_text(r) for r in journey.exits]
    items += [f"Goal: {t.goal_text(g)}" for g in journey.goals]
    items += [t.cap_text(c) for c in journey.caps]
    items += t.time_rule_texts(journey)
    if items:
        parts.append("<ul class=\"rules\">" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>")
    return "".join(parts) or "<p>No scoring rules.</p>"


_SAMPLE = {  # (colour, CSS border style, width) per edge kind, as the drawing shows it
    "event": ("#344054", "solid", 2), "goal": ("#0e7490", "solid", 3), "score-up": ("#1a7f37", "solid", 4), "score-down": ("#d9480f", "solid", 4),
    "time": ("#1d4ed8", "dashed", 2), "hold": ("#7c3aed", "dotted", 3), "hold-end": ("#7c3aed", "dotted", 3),
    "exit-rule": ("#98a2b3", "dashed", 1), "enroll": ("#1d4ed8", "solid", 3),
}


def _legend(diagram: Diagram) -> str:
    rows = []
    for kind, meaning in diagram.legend:
        if kind in _SAMPLE:
            colour, style, width = _SAMPLE[kind]
            sample = f'<span class="sample" style="border-top:{width}px {style} {colour}"></span>'
        else:
            sample = "<b>1.</b>" if kind == "numbers" else "<b>n</b>"
        rows.append(f"<tr><td>{sample}</td><td>{_e(meaning)}</td></tr>")
    rows.append('<tr><td><span class="badge b-exit">can exit</span></td>'
                "<td>the stage has a way out of the journey</td></tr>")
    rows.append('<tr><td class="warn">⚠</td><td>a checker warning on this stage</td></tr>')
    return f'<table class="legend">{"".join(rows)}</table>'


def _warnings(diagnostics: list[Diagnostic], sources: dict[str, str]) -> str:
    if not diagnostics:
        return '<p class="ok">The checker found nothing to report.</p>'
    return "".join(f'<pre class="diag">{_e(render_plain(d, sources))}</pre>' for d in diagnostics)


def _warning_list(journey: Journey, diagnostics: list[Diagnostic]) -> str:
    if not diagnostics:
        return '<p class="ok">No warnings.</p>'
    items = []
    for d in diagnostics:
        stage = stage_of_span(journey, d.span)
        where = f'<a href="#row-{_e(stage)}">{_e(stage)}</a>' if stage else _e(f"line {d.span.line}")
        items.append(f'<li class="warn">{where}: {_e(d.code)} {_e(d.message)}</li>')
    return f"<ul>{''.join(items)}</ul>"


def _funnel(journey: Journey, diagram: Diagram) -> str:
    counts = {n.stage if n.stage is not None else EXIT: n.count or 0 for n in diagram.nodes}
    rows_data = [(s.title, s.id, counts.get(s.id, 0), "") for s in journey.stages]
    rows_data.append(("Left the journey", "exit", counts.get(EXIT, 0), " exit"))
    top = max([n for *_, n, _ in rows_data] + [1])
    rows = [f'<tr><td>{_e(title)} <code>{_e(sid)}</code></td><td class="n">{n}</td>'
            f'<td style="width:55%"><div class="bar{cls}" style="width:{100 * n / top:.1f}%"></div></td></tr>'
            for title, sid, n, cls in rows_data]
    inside = sum(counts.get(s.id, 0) for s in journey.stages)
    enrolled = "" if diagram.entry_count is None else f"{diagram.entry_count} enrolled in all; "
    return ("<table class=\"funnel\"><thead><tr><th>Stage</th><th>Leads now</th><th></th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table><p>{enrolled}{inside} in the journey now, "
            f"{counts.get(EXIT, 0)} left it.</p>")


def review_html(journey: Journey, diagram: Diagram, svgs: dict[str, str], diagnostics: list[Diagnostic],
                sources: dict[str, str], *, title: str | None = None, version: str = "", layout: str | None = None,
                notes: tuple[str, ...] = (), analytics: str = "") -> str:
    """The whole page: the fitted drawing with the rules beside it, then content per stage, checker
    findings, and with counts the funnel (and `analytics`, HTML made by visualize.report)."""
    name = title or journey.name or "(unnamed journey)"
    layout = layout or pick_layout(svgs)
    drawings = "".join(inline_svg(svgs[k], k, shown=(k == layout)) for k in LAYOUTS if k in svgs)
    warnings: dict[str, list[Diagnostic]] = {}
    for d in diagnostics:
        stage = stage_of_span(journey, d.span)
        if stage is not None:
            warnings.setdefault(stage, []).append(d)
    files = ", ".join(f"<code>{_e(f)}</code>" for f in sources) or f"<code>{_e(journey.path)}</code>"
    version_text = f"version <code>{_e(version)}</code> · " if version else ""
    note_html = "".join(f'<p class="warn">⚠ {_e(n)}</p>' for n in notes)
    funnel = f"<h2>Funnel</h2>{_funnel(journey, diagram)}" if diagram.counted else ""
    other = "top to bottom" if layout == "LR" else "left to right"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_e(name)} — journey review</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{_e(name)}</h1>
<div class="meta">Journey review · {version_text}{len(journey.stages)} stages · source: {files}</div>
<div class="meta">Who enters: {_e(diagram.entry or "—")}</div>
</header>
<div class="first">
<div id="drawing" data-layout="{layout}">
<div class="controls"><button id="zoom-in" type="button" title="zoom in (+)">+</button>
<button id="zoom-out" type="button" title="zoom out (-)">−</button>
<button id="zoom-fit" type="button" title="fit (0)">fit</button>
<button id="layout" type="button">{other}</button></div>
{drawings}
</div>
<aside>
{note_html}
<h2>Legend</h2>{_legend(diagram)}
<h2>Rules for every stage</h2>{_rules(journey)}
<h2>Warnings</h2>{_warning_list(journey, diagnostics)}
</aside>
</div>
<main>
{funnel}
<h2>Content per stage</h2>
{_content_table(journey, diagram, warnings)}
<h2>Checker</h2>
{_warnings(diagnostics, sources)}
{analytics}
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""
