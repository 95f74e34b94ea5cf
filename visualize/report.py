"""The funnel over time, from the store: what `coltiva report` prints and the review page shows.

Numbers come from SQL on the store's tables (see visualize.analytics); a week is
named by its Monday (UTC). Leads reaching a stage count each lead once per week
and stage; conversion is the share of leads that ever entered a stage and ever
moved from it to another; time in stage is measured on finished stays (the
lead has moved on), with the stays still open counted beside it; sends per lead
per week are compared with the journey's frequency caps scaled to a week (a cap
of N per 7 days allows N in any calendar week).

Charts are SVG made by matplotlib, inline in the page (text kept as text, no
font or image fetched), next to tables with the same numbers.
"""

from __future__ import annotations

import html
import io
import sqlite3
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from dsl.errors import ColtivaError
from dsl.model import EXIT

from .analytics import WEEK_SQL, find_journey, open_store

__all__ = ["StageWeek", "Conversion", "StageTime", "SendWeek", "HandoffWeek", "Report", "build_report",
           "report_json", "report_section", "report_page", "percentile", "cap_per_week"]

DAY = 86_400
WEEK = 7 * DAY


@dataclass(frozen=True)
class StageWeek:
    week: str
    stage: str
    leads: int


@dataclass(frozen=True)
class Conversion:
    source: str
    target: str
    entered: int  # leads that ever entered `source`
    moved: int  # of them, leads that ever moved from `source` to `target`
    rate: float


@dataclass(frozen=True)
class StageTime:
    stage: str
    stays: int  # finished stays
    open: int  # stays still going on
    median_days: float | None
    p90_days: float | None


@dataclass(frozen=True)
class SendWeek:
    week: str
    leads: int  # leads sent anything this week
    sends: int
    mean_per_lead: float
    max_per_lead: int
    over_cap: int  # leads sent more than the weekly cap


@dataclass(frozen=True)
class HandoffWeek:
    week: str
    handoffs: int


@dataclass(frozen=True)
class Report:
    journey: str
    version: str
    stages: tuple[str, ...]  # in declaration order, then "exit"
    weeks: tuple[str, ...]  # every week from the first move to the last, gaps included
    reaching: tuple[StageWeek, ...]
    conversions: tuple[Conversion, ...]
    times: tuple[StageTime, ...]
    cap_per_week: float | None  # the strictest frequency cap, as messages per week
    sends: tuple[SendWeek, ...]
    handoffs: tuple[HandoffWeek, ...]


def percentile(values, q: float) -> float:
    """The q-quantile by linear interpolation between closest ranks (numpy's default)."""
    data = sorted(values)
    pos = (len(data) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def _weeks(first: str | None, last: str | None) -> tuple[str, ...]:
    if first is None or last is None:
        return ()
    out, day, end = [], date.fromisoformat(first), date.fromisoformat(last)
    while day <= end:
        out.append(day.isoformat())
        day += timedelta(days=7)
    return tuple(out)


def cap_per_week(caps) -> float | None:
    """The strictest cap as messages per week: N per window allows N * week / window (at most N per week
    when the window is a week or longer)."""
    per_week = [count * max(1.0, WEEK / seconds) for count, seconds in caps if seconds > 0]
    return min(per_week) if per_week else None


def _query(db: sqlite3.Connection, name: str, stage_ids: list[str], caps) -> dict:
    q = lambda sql, *args: db.execute(sql, (name, *args)).fetchall()  # noqa: E731
    reaching = q(f"SELECT {WEEK_SQL} AS week, dst, COUNT(DISTINCT lead) FROM transitions WHERE journey = ? "
                 "GROUP BY week, dst")
    entered = dict(q("SELECT dst, COUNT(DISTINCT lead) FROM transitions WHERE journey = ? GROUP BY dst"))
    moved = q("SELECT src, dst, COUNT(DISTINCT lead) FROM transitions WHERE journey = ? AND src IS NOT NULL "
              "AND src != dst GROUP BY src, dst")
    stays = q("SELECT dst, time, nxt FROM (SELECT dst, time, LEAD(time) OVER (PARTITION BY lead ORDER BY seq) "
              "AS nxt FROM transitions WHERE journey = ?) WHERE dst != ?", EXIT)
    sends = q(f"SELECT {WEEK_SQL} AS week, lead, COUNT(*) FROM outbox WHERE journey = ? AND kind = 'send' "
              "GROUP BY week, lead")
    handoffs = q(f"SELECT {WEEK_SQL} AS week, COUNT(*) FROM outbox WHERE journey = ? AND kind = 'handoff' "
                 "GROUP BY week")
    bounds = q(f"SELECT MIN(week), MAX(week) FROM (SELECT {WEEK_SQL} AS week FROM transitions WHERE journey = ? "
               f"UNION ALL SELECT {WEEK_SQL} FROM outbox WHERE journey = ?)", name)
    return dict(reaching=reaching, entered=entered, moved=moved, stays=stays, sends=sends, handoffs=handoffs,
                bounds=bounds[0])


def build_report(db: str, name: str | None = None, journey=None) -> Report:
    """The report for the journey called `name` in the store at `db` (the only one when None).

    `journey`, a model loaded from a file, gives the stage order and the caps;
    without it they come from the version the store runs.
    """
    with open_store(db) as store:
        current = find_journey(store, db, name)
        model = journey if journey is not None else current.journey
        stage_ids = [s.id for s in model.stages]
        caps = [(c.count, c.window.seconds) for c in model.caps]
        try:
            rows = _query(store.db, current.name, stage_ids, caps)
        except sqlite3.Error as err:
            raise ColtivaError(f"{db}: cannot read the store: {err}") from None
    order = {s: i for i, s in enumerate(stage_ids + [EXIT])}
    rank = lambda s: (order.get(s, len(order)), s)  # noqa: E731  (stages the file lacks go last)
    seen = {dst for _, dst, _ in rows["reaching"]}
    stages = tuple(sorted(set(stage_ids) | seen | {EXIT}, key=rank))
    reaching = tuple(StageWeek(w, s, n) for w, s, n in sorted(rows["reaching"], key=lambda r: (r[0], rank(r[1]))))
    conversions = tuple(
        Conversion(src, dst, rows["entered"].get(src, 0), n, n / rows["entered"][src] if rows["entered"].get(src)
                   else 0.0)
        for src, dst, n in sorted(rows["moved"], key=lambda r: (rank(r[0]), rank(r[1]))))
    finished: defaultdict[str, list] = defaultdict(list)
    still: defaultdict[str, int] = defaultdict(int)
    for stage, start, end in rows["stays"]:
        if end is None:
            still[stage] += 1
        else:
            finished[stage].append((end - start) / DAY)
    times = []
    for stage in stages:
        if stage == EXIT or (stage not in finished and stage not in still):
            continue
        days = finished.get(stage, [])
        times.append(StageTime(stage, len(days), still.get(stage, 0),
                               round(statistics.median(days), 3) if days else None,
                               round(percentile(days, 0.9), 3) if days else None))
    cap = cap_per_week(caps)
    per_week = defaultdict(list)
    for week, _lead, n in rows["sends"]:
        per_week[week].append(n)
    sends = tuple(SendWeek(w, len(ns), sum(ns), round(sum(ns) / len(ns), 3), max(ns),
                           sum(1 for n in ns if cap is not None and n > cap))
                  for w, ns in sorted(per_week.items()))
    handoffs = tuple(HandoffWeek(w, n) for w, n in sorted(rows["handoffs"]))
    return Report(current.name, current.version, stages, _weeks(*rows["bounds"]), reaching, conversions,
                  tuple(times), cap, sends, handoffs)


def report_json(report: Report) -> dict:
    """The report as plain JSON data (lists of objects, one per row)."""
    return asdict(report)


# -- drawing ---------------------------------------------------------------------------------------

def _svg(fig) -> str:
    from .review import inline_svg

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return inline_svg(buf.getvalue())


def _figure(title: str, width: float = 7.5, height: float = 3.2):
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "coltiva", "font.size": 9})
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_title(title, loc="left", fontsize=10, fontweight="bold")
    ax.grid(axis="y", color="#eaecf0")
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _week_axis(ax, weeks) -> None:
    step = max(1, -(-len(weeks) // 9))  # at most nine labels, so they never overlap
    ax.set_xticks(range(0, len(weeks), step))
    ax.set_xticklabels([weeks[i][5:] for i in range(0, len(weeks), step)])
    ax.set_xlabel("week starting (month-day, UTC)")


def charts(report: Report) -> dict[str, str]:
    """Inline SVG charts by name: reaching, sends, handoffs, times."""
    weeks = list(report.weeks)
    index = {w: i for i, w in enumerate(weeks)}
    out = {}
    if weeks:
        fig, ax = _figure("Leads reaching each stage per week")
        for stage in report.stages:
            ys = [0] * len(weeks)
            for row in report.reaching:
                if row.stage == stage:
                    ys[index[row.week]] = row.leads
            if any(ys):
                ax.plot(range(len(weeks)), ys, marker=".", label="left the journey" if stage == EXIT else stage)
        _week_axis(ax, weeks)
        ax.set_ylabel("leads")
        ax.legend(fontsize=7, ncols=2, frameon=False)
        out["reaching"] = _svg(fig)

        fig, ax = _figure("Sends per lead per week")
        mean = [0.0] * len(weeks)
        top = [0] * len(weeks)
        for sent in report.sends:
            mean[index[sent.week]], top[index[sent.week]] = sent.mean_per_lead, sent.max_per_lead
        ax.plot(range(len(weeks)), mean, marker=".", label="mean per lead sent anything")
        ax.plot(range(len(weeks)), top, marker=".", label="most sent to one lead")
        if report.cap_per_week is not None:
            ax.axhline(report.cap_per_week, color="#d92d20", linestyle="--", label="frequency cap per week")
        _week_axis(ax, weeks)
        ax.set_ylabel("messages")
        ax.legend(fontsize=7, frameon=False)
        out["sends"] = _svg(fig)

        fig, ax = _figure("Handoffs to sales per week")
        ys = [0] * len(weeks)
        for handed in report.handoffs:
            ys[index[handed.week]] = handed.handoffs
        ax.bar(range(len(weeks)), ys, color="#b54708")
        _week_axis(ax, weeks)
        ax.set_ylabel("handoffs")
        out["handoffs"] = _svg(fig)
    timed = [t for t in report.times if t.median_days is not None]
    if timed:
        fig, ax = _figure("Time in stage (finished stays), days", height=0.45 * len(timed) + 1.2)
        ys = list(range(len(timed)))
        ax.barh([y + 0.2 for y in ys], [t.p90_days for t in timed], height=0.4, color="#98a2b3", label="p90")
        ax.barh([y - 0.2 for y in ys], [t.median_days for t in timed], height=0.4, color="#1d4ed8", label="median")
        ax.set_yticks(list(ys))
        ax.set_yticklabels([t.stage for t in timed])
        ax.invert_yaxis()
        ax.grid(axis="x", color="#eaecf0")
        ax.legend(fontsize=7, frameon=False)
        out["times"] = _svg(fig)
    return out


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _table(head: list[str], rows: list[list], cls: str) -> str:
    def cell(v):
        if isinstance(v, float):
            return f'<td class="n">{v:.2f}</td>'
        if isinstance(v, int):
            return f'<td class="n">{v}</td>'
        return f"<td>{_e('—' if v is None else v)}</td>"
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return (f'<table class="{cls}"><thead><tr>{"".join(f"<th>{_e(h)}</th>" for h in head)}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def report_section(report: Report) -> str:
    """The report as an HTML section (charts and tables), for the review page or the report page."""
    svg = charts(report)
    chart = lambda name: f'<div class="chart" id="chart-{name}">{svg[name]}</div>' if name in svg else ""  # noqa: E731
    reach: defaultdict[str, dict] = defaultdict(dict)
    for row in report.reaching:
        reach[row.week][row.stage] = row.leads
    reach_rows = [[w] + [reach[w].get(s, 0) for s in report.stages] for w in report.weeks]
    cap = "no frequency cap" if report.cap_per_week is None else f"cap: {report.cap_per_week:g} per week"
    parts = [
        '<section id="report">',
        f"<h2>Over time</h2><p>Store: journey <code>{_e(report.journey)}</code>, version "
        f"<code>{_e(report.version)}</code>; {len(report.weeks)} week(s), weeks start on Monday (UTC).</p>",
        chart("reaching"),
        "<h3>Leads reaching each stage per week</h3>",
        _table(["week"] + ["left" if s == EXIT else s for s in report.stages], reach_rows, "reaching"),
        "<h3>Stage-to-stage conversion</h3>",
        _table(["from", "to", "entered from", "moved", "conversion"],
               [[c.source, c.target, c.entered, c.moved, f"{c.rate:.1%}"] for c in report.conversions],
               "conversion"),
        chart("times"),
        "<h3>Time in stage</h3>",
        _table(["stage", "finished stays", "still in stage", "median (days)", "p90 (days)"],
               [[t.stage, t.stays, t.open, t.median_days, t.p90_days] for t in report.times], "times"),
        chart("sends"),
        f"<h3>Sends per lead per week ({_e(cap)})</h3>",
        _table(["week", "leads sent to", "sends", "mean per lead", "max per lead", "leads over the cap"],
               [[s.week, s.leads, s.sends, s.mean_per_lead, s.max_per_lead, s.over_cap] for s in report.sends],
               "sends"),
        chart("handoffs"),
        "<h3>Handoffs per week</h3>",
        _table(["week", "handoffs"], [[h.week, h.handoffs] for h in report.handoffs], "handoffs"),
        "</section>",
    ]
    return "\n".join(parts)


_PAGE_CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:1.5rem;
color:#1d2939;max-width:1100px}h1{font-size:1.4rem}h2{font-size:1.2rem;border-bottom:1px solid #d0d5dd}
h3{font-size:1rem;margin-top:1.2rem}table{border-collapse:collapse;font-size:.88rem;margin:.3rem 0 1rem}
th,td{border:1px solid #eaecf0;padding:.25rem .5rem;text-align:left}th{background:#f2f4f7}
td.n{text-align:right;font-variant-numeric:tabular-nums}.chart svg{max-width:100%;height:auto}"""


def report_page(report: Report) -> str:
    """A self-contained HTML page: no script, nothing fetched."""
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<link rel="icon" href="data:,">
<title>{_e(report.journey)} — report</title><style>{_PAGE_CSS}</style></head>
<body><h1>{_e(report.journey)} — the funnel over time</h1>
{report_section(report)}
</body></html>
"""
