"""The two time examples in journeys/ behave as their comments say, and every view shows their time rules.

The drawings are made by real Graphviz (`dot`) and the page by the real review
command; Mermaid in headless Chromium draws these examples in
tests/test_visualize_mermaid_real.py, which renders every example.
"""

from __future__ import annotations

import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from dsl import load_journey
from engine.events import format_time
from visualize.diagram import build_diagram
from visualize.dot import render_bytes
from visualize.mermaid import mermaid_escape, to_mermaid

from .engine_helpers import JOURNEYS, Driver, example
from .visualize_helpers import svg_root, svg_texts

SERIES = JOURNEYS / "webinar_series.journey"
TRIAL = JOURNEYS / "trial_business_hours.journey"

STARTS = {"session1_at": "2026-04-14T16:00:00Z", "session2_at": "2026-04-21T16:00:00Z",
          "session3_at": "2026-04-28T16:00:00Z"}


def _sent(d: Driver) -> list[tuple[str, str]]:
    return [(a.data["content"], format_time(a.time)) for a in d.of("send")]


def test_the_series_reminds_before_each_session():
    cj, _ = example(SERIES)
    d = Driver(cj)
    d.send("series.registered", "2026-04-01T09:00:00Z", data=STARTS)
    d.tick("2026-04-15T00:00:00Z")
    d.send("webinar.attended", "2026-04-14T17:00:00Z", data={"session": 1})
    d.tick("2026-04-22T00:00:00Z")
    assert _sent(d) == [
        ("series-welcome", "2026-04-01T09:00:00Z"), ("s1-reminder-24h", "2026-04-13T16:00:00Z"),
        ("s1-reminder-1h", "2026-04-14T15:00:00Z"), ("s1-starting", "2026-04-14T15:50:00Z"),
        ("s1-recording", "2026-04-14T17:00:00Z"), ("s2-reminder-24h", "2026-04-20T16:00:00Z"),
        ("s2-reminder-1h", "2026-04-21T15:00:00Z")]


def test_a_late_registration_gets_only_what_is_still_ahead_and_the_starting_email_at_once():
    cj, _ = example(SERIES)
    d = Driver(cj)
    d.send("series.registered", "2026-04-14T15:55:00Z", data=STARTS)  # five minutes before session 1
    assert _sent(d) == [("series-welcome", "2026-04-14T15:55:00Z"), ("s1-starting", "2026-04-14T15:55:00Z")]


def test_the_trial_welcomes_leads_at_ten_on_their_own_weekday_clock():
    cj, _ = example(TRIAL)
    welcomes = {}
    for zone in ("America/New_York", "Europe/Rome", "Asia/Tokyo"):
        d = Driver(cj, lead=zone)
        d.send("trial.started", "2026-04-04T12:00:00Z",  # a Saturday everywhere
               data={"trial_ends": "2026-04-18T12:00:00Z"}, attributes={"timezone": zone})
        d.tick("2026-04-08T00:00:00Z")
        sent = d.of("send")
        local = [datetime.fromtimestamp(a.time, ZoneInfo(zone)) for a in sent]
        assert all(x.weekday() < 5 and 10 <= x.hour < 16 for x in local), (zone, local)
        welcomes[zone] = (local[0].strftime("%a %H:%M"), [a.data["content"] for a in sent])
    assert welcomes == {z: ("Mon 10:00", ["welcome", "setup-guide"]) for z in welcomes}


def test_drawings_and_the_review_page_show_windows_and_date_anchors(tmp_path):
    for path, expected in ((TRIAL, ["send only weekdays 10:00-16:00", "time zone from timezone, default",
                                    "3 days before trial_ends of trial.started",
                                    'after 3 days since "setup-guide"', "after 10 days in journey"]),
                           (SERIES, ["24 hours before session1_at of series.registered",
                                     "if past send now", 'after 14 days since "s3-replay"'])):
        journey = load_journey(path).journey
        diagram = build_diagram(journey)
        dot_file = tmp_path / f"{path.stem}.dot"
        dot_file.write_bytes(render_bytes(diagram, "dot"))
        svg = subprocess.run(["dot", "-Tsvg", str(dot_file)], capture_output=True, check=True).stdout
        text = " ".join(svg_texts(svg_root(svg)).split())
        mermaid = to_mermaid(diagram)
        from coltiva.commands.review import command

        page = tmp_path / f"{path.stem}.html"
        result = CliRunner().invoke(command, [str(path), "-o", str(page)])
        assert result.exit_code == 0, result.output
        html = page.read_text()
        for words in expected:
            assert words in text, (path.name, words)
            assert mermaid_escape(words) in mermaid, (path.name, words)
            assert words.replace('"', "&quot;") in html or words in html, (path.name, words)
