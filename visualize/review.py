"""The review page: one self-contained HTML file a reviewer can open offline or attach.

Everything is inline (the SVG, the CSS; no script, font or image fetched) and a
Content-Security-Policy forbids any fetch, so the page shows the same thing on
an air-gapped laptop and leaks nothing about who opened it. Every text goes
through `html.escape`; the SVG comes from our Graphviz renderer, whose labels
are escaped already, and is inlined without its XML prolog.
"""

from __future__ import annotations

import html
import re

from dsl.diagnostics import Diagnostic, render_plain
from dsl.model import Journey

from . import text as t

__all__ = ["inline_svg", "review_html"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:2rem;color:#1d2939}
h1{font-size:1.6rem;margin:0 0 .2rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d5dd}
.meta{color:#667085;margin-bottom:1rem}
.diagram{overflow:auto;border:1px solid #d0d5dd;border-radius:6px;padding:.5rem;background:#fff}
.diagram svg{max-width:none;height:auto}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{border:1px solid #eaecf0;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f4f7} code{font-size:.9em}
.badge{display:inline-block;font-size:.72rem;font-weight:bold;color:#fff;border-radius:3px;padding:0 .35rem;margin-right:.25rem}
.b-initial{background:#1d4ed8}.b-final{background:#344054}.b-sales-ready{background:#b54708}.b-exit{background:#d92d20}
pre.diag{background:#fffaeb;border-left:4px solid #dc6803;padding:.5rem;white-space:pre-wrap}
.ok{color:#1a7f37}
.bar{background:#1d4ed8;height:1rem;border-radius:2px;min-width:1px}
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def inline_svg(svg: str) -> str:
    """Graphviz SVG without its XML prolog, doctype and comments, ready for an HTML body."""
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    return svg.strip()


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _badges(stage) -> str:
    names = [("initial", stage.initial), ("sales-ready", stage.handoff), ("final", stage.final)]
    return "".join(f'<span class="badge b-{n}">{_e(n.upper())}</span>' for n, on in names if on)


def _content_table(journey: Journey) -> str:
    titles = {(c.kind, c.id): c.title for c in journey.contents if c.title}
    rows = []
    for stage in journey.stages:
        sends = "<br>".join(
            f"{_e(t.offset_text(s))}: <code>{_e(s.kind)}</code> {_e(s.content)}"
            + (f" — <i>{_e(titles[(s.kind, s.content)])}</i>" if (s.kind, s.content) in titles else "")
            for s in stage.sends
        ) or "—"
        outs = [f"{_e(t.trigger_text(tr))} → <code>{_e(t.target_text(tr.target))}</code>" for tr in stage.triggers]
        if stage.hold is not None:
            h = stage.hold
            outs.append(f"{_e(t.hold_text(h))} {_e(t.hold_detail(h))}, then → <code>{_e(t.target_text(h.then))}</code>")
        rows.append(
            f'<tr id="row-{_e(stage.id)}"><td><b>{_e(stage.title)}</b><br><code>{_e(stage.id)}</code><br>{_badges(stage)}</td>'
            f"<td>{sends}</td><td>{'<br>'.join(outs) or '—'}</td></tr>"
        )
    return ("<table class=\"content\"><thead><tr><th>Stage</th><th>Content (in order)</th><th>Ways out</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>")


def _rules(journey: Journey) -> str:
    rows = []
    for r in journey.scoring:
        where = t.condition_text(r.condition) if r.condition is not None else ""
        cap = f"at most {r.cap_count} per {r.cap_window}" if r.cap_count is not None else ""
        rows.append(f"<tr><td><code>{_e(r.event)}</code></td><td>{_e(where)}</td>"
                    f"<td>{_e(t.points_text(r.points))}</td><td>{_e(cap)}</td></tr>")
    parts = []
    if rows:
        parts.append("<table class=\"scoring\"><thead><tr><th>Event</th><th>Where</th><th>Points</th><th>Cap</th>"
                     f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    items = []
    if journey.decay is not None:
        items.append(f"Decay: half-life {journey.decay.half_life}")
    items += [f"Fit: {t.fit_rule_text(r)}" for r in journey.fit]
    items += [t.exit_rule_text(r) for r in journey.exits]
    items += [t.enroll_rule_text(r) for r in journey.enrollments]
    items += [t.cap_text(c) for c in journey.caps]
    if items:
        parts.append("<ul class=\"rules\">" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>")
    return "".join(parts) or "<p>No scoring rules.</p>"


def _warnings(diagnostics: list[Diagnostic], sources: dict[str, str]) -> str:
    if not diagnostics:
        return '<p class="ok">The checker found nothing to report.</p>'
    return "".join(f'<pre class="diag">{_e(render_plain(d, sources))}</pre>' for d in diagnostics)


def _funnel(journey: Journey, counts: dict[str, int]) -> str:
    top = max([counts.get(s.id, 0) for s in journey.stages] + [1])
    rows = []
    for s in journey.stages:
        n = counts.get(s.id, 0)
        rows.append(f'<tr><td>{_e(s.title)} <code>{_e(s.id)}</code></td><td class="n">{n}</td>'
                    f'<td style="width:60%"><div class="bar" style="width:{100 * n / top:.1f}%"></div></td></tr>')
    total = sum(counts.get(s.id, 0) for s in journey.stages)
    return ("<table class=\"funnel\"><thead><tr><th>Stage</th><th>Leads now</th><th></th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table><p>{total} lead(s) in the journey now.</p>")


def review_html(journey: Journey, svg: str, diagnostics: list[Diagnostic], sources: dict[str, str],
                stage_counts: dict[str, int] | None = None, title: str | None = None) -> str:
    """The whole page: diagram, content per stage, scoring, checker warnings, and the funnel if counted."""
    name = title or journey.name or "(unnamed journey)"
    funnel = "" if stage_counts is None else f"<h2>Funnel</h2>{_funnel(journey, stage_counts)}"
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
<h1>{_e(name)}</h1>
<div class="meta">Journey review · {_e(journey.path)} · {len(journey.stages)} stages</div>
<h2>Diagram</h2>
<div class="diagram" id="diagram">{inline_svg(svg)}</div>
<h2>Content per stage</h2>
{_content_table(journey)}
<h2>Scoring and global rules</h2>
{_rules(journey)}
<h2>Checker</h2>
{_warnings(diagnostics, sources)}
{funnel}
</body>
</html>
"""
