"""The review page: complete, self-contained, and on the first screen of a real headless Chromium, offline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dsl import load_journey
from visualize.review import SCRIPT

from .browser_session import browser  # noqa: F401  (the shared session fixture)
from .conftest import JOURNEYS
from .visualize_helpers import run_cli

WIDTH, HEIGHT = 1400, 1000


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("review") / "review.html"
    from click.testing import CliRunner

    from coltiva.commands.review import command

    result = CliRunner().invoke(command, ["journeys/demand_generation.journey", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_page_has_everything_a_reviewer_needs(page):
    html = page.read_text()
    journey = load_journey("journeys/demand_generation.journey").journey
    assert "<svg" in html and "<?xml" not in html and "<!DOCTYPE svg" not in html
    assert html.count('class="journey"') == 2  # left to right and top to bottom
    for stage in journey.stages:
        assert f'id="row-{stage.id}"' in html
        for send in stage.sends:
            assert send.content in html
    for heading in ("Legend", "Rules for every stage", "Warnings", "Content per stage", "Checker"):
        assert f"<h2>{heading}</h2>" in html
    assert "The checker found nothing to report." in html
    assert "Funnel" not in html
    from engine.compiler import journey_version

    assert f"version <code>{journey_version(journey)}</code>" in html
    assert "source: <code>journeys/demand_generation.journey</code>" in html
    assert "Who enters: enroll: any event of a new lead" in html
    assert "<b>1.</b> on form.submitted → <code>shown_interest</code>" in html  # trigger order numbered
    assert '<span class="badge b-exit">can exit</span>' in html and ">EXIT<" not in html


def test_page_is_self_contained(page):
    html = page.read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
    assert scripts == [SCRIPT]  # the one zoom script, allowed by its hash only
    assert not re.search(r"<(link(?![^>]*href=\"data:)|img|iframe|object)\b", html)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "@import" not in html and "url(" not in html


def test_checker_warnings_are_shown_on_their_stage(tmp_path, capsys, browser):
    journey = tmp_path / "warn.journey"
    source = Path("journeys/webinar_followup.journey").read_text()
    twice = 'send email "see-you-there" on entry'
    journey.write_text(source.replace(twice, twice + '\n  send email "see-you-there" after 1 day'))
    out = tmp_path / "r.html"
    code, _, err = run_cli(["review", str(journey), "-o", str(out)], capsys)
    assert code == 0, err
    html = out.read_text()
    assert 'class="diag"' in html and "warning C048" in html
    stage = load_journey(str(journey)).journey.initial.id
    found = browser.open(out, script="""() => [...document.querySelectorAll(
        '#drawing svg:not([hidden]) g.node.warned')].map(g => [g.id, g.textContent.includes('⚠ C048')])""")
    assert found["result"] == [[f"stage-{stage}", True]]
    code, _, err = run_cli(["review", str(journey), "-o", str(tmp_path / "r.pdf")], capsys)
    assert code == 1 and "HTML" in err


#: Every stage's title text in the drawing on show: its box on screen, in CSS px.
_LABELS = """() => {
  const svg = document.querySelector('#drawing svg.journey:not([hidden])');
  const out = {layout: svg.dataset.layout, labels: {}};
  for (const g of svg.querySelectorAll('g.node.stage')) {
    const texts = [...g.querySelectorAll('text')];
    const title = texts.reduce((a, t) => (+t.getAttribute('font-size') > +a.getAttribute('font-size') ? t : a));
    const r = title.getBoundingClientRect();
    out.labels[g.id] = {text: title.textContent, x: r.left, y: r.top, right: r.right, bottom: r.bottom,
                        height: r.height};
  }
  return out;
}"""


def _assert_first_screen(result, journey):
    assert result["errors"] == [], result["errors"]  # a CSP refusal or a script error shows here
    assert len(result["requests"]) == 1 and result["requests"][0].startswith("file://")  # fetched nothing
    labels = result["result"]["labels"]
    assert set(labels) == {f"stage-{s.id}" for s in journey.stages}
    for stage in journey.stages:
        box = labels[f"stage-{stage.id}"]
        assert box["text"] == stage.title
        assert 0 <= box["x"] and box["right"] <= WIDTH and 0 <= box["y"] and box["bottom"] <= HEIGHT, box
        assert box["height"] >= 9, (stage.id, box)


@pytest.mark.parametrize("path", JOURNEYS, ids=lambda p: p.name)
def test_first_screen_shows_every_stage_readable(path, tmp_path, capsys, browser):
    out = tmp_path / "review.html"
    code, _, err = run_cli(["review", str(path), "-o", str(out)], capsys)
    assert code == 0, err
    _assert_first_screen(browser.open(out, script=_LABELS, width=WIDTH, height=HEIGHT),
                         load_journey(str(path)).journey)


def test_first_screen_with_counts_from_a_store(tmp_path, capsys, browser):
    events = tmp_path / "events.jsonl"
    from coltiva.sample import generate

    events.write_text("\n".join(generate(leads=60, days=60, seed=3)) + "\n")
    db = tmp_path / "s.db"
    code, _, err = run_cli(["run", "journeys/demand_generation.journey", "--events", str(events), "--db", str(db)],
                           capsys)
    assert code == 0, err
    out = tmp_path / "review.html"
    code, _, err = run_cli(["review", "journeys/demand_generation.journey", "-o", str(out), "--db", str(db)], capsys)
    assert code == 0, err
    html = out.read_text()
    assert "<h2>Funnel</h2>" in html and "Left the journey" in html and "shared by" not in html
    _assert_first_screen(browser.open(out, script=_LABELS, width=WIDTH, height=HEIGHT),
                         load_journey("journeys/demand_generation.journey").journey)


_ZOOM = """async () => {
  const svg = () => document.querySelector('#drawing svg.journey:not([hidden])');
  // a stage's box (its outline, not its text: text snaps to whole pixels)
  const label = () => svg().querySelector('g.node.stage path, g.node.stage polygon').getBoundingClientRect();
  const before = label();
  document.getElementById('zoom-in').click();
  const zoomed = label();
  const box = document.getElementById('drawing').getBoundingClientRect();
  const x = box.left + box.width / 2, y = box.top + box.height / 2;
  document.getElementById('drawing').dispatchEvent(new WheelEvent('wheel', {deltaY: -100, clientX: x, clientY: y,
                                                                            bubbles: true, cancelable: true}));
  const wheeled = label();
  const down = {clientX: x, clientY: y, bubbles: true, pointerId: 1, isPrimary: true};
  const drawing = document.getElementById('drawing');
  drawing.dispatchEvent(new PointerEvent('pointerdown', down));
  drawing.dispatchEvent(new PointerEvent('pointermove', {...down, clientX: x + 50, clientY: y + 30}));
  drawing.dispatchEvent(new PointerEvent('pointerup', {...down, clientX: x + 50, clientY: y + 30}));
  const panned = label();
  document.dispatchEvent(new KeyboardEvent('keydown', {key: '-', bubbles: true}));
  const keyed = label();
  document.dispatchEvent(new KeyboardEvent('keydown', {key: '0', bubbles: true}));
  const reset = label();
  document.getElementById('zoom-in').click();
  document.getElementById('zoom-fit').click();
  const fitted = label();
  const first = svg().dataset.layout;
  document.getElementById('layout').click();
  return {before: before.width, zoomed: zoomed.width, wheeled: wheeled.width,
          moved: [panned.left - wheeled.left, panned.top - wheeled.top], fitted: fitted.width,
          keyed: keyed.width, reset: reset.width,
          first, second: svg().dataset.layout};
}"""


def test_zoom_pan_and_layout_switch_work(page, browser):
    result = browser.open(page, script=_ZOOM, width=WIDTH, height=HEIGHT)
    assert result["errors"] == []
    r = result["result"]
    assert r["zoomed"] == pytest.approx(r["before"] * 1.25, rel=0.02)
    assert r["wheeled"] == pytest.approx(r["zoomed"] * 1.25, rel=0.02)
    assert r["moved"] == [pytest.approx(50, abs=1), pytest.approx(30, abs=1)]
    assert r["keyed"] == pytest.approx(r["wheeled"] * 0.8, rel=0.02)  # the "-" key
    assert r["reset"] == pytest.approx(r["before"], rel=0.01)  # the "0" key fits again
    assert r["fitted"] == pytest.approx(r["before"], rel=0.01)
    assert {r["first"], r["second"]} == {"LR", "TB"}


def test_layout_option_picks_the_drawing(tmp_path, capsys, browser):
    out = tmp_path / "lr.html"
    code, _, err = run_cli(["review", "journeys/webinar_followup.journey", "-o", str(out), "--layout", "TB"], capsys)
    assert code == 0, err
    shown = browser.open(out, script="() => document.querySelector('#drawing svg.journey:not([hidden])')"
                                     ".dataset.layout")
    assert shown["result"] == "TB"


def test_a_long_journey_opens_top_to_bottom_and_stays_readable(tmp_path, capsys, browser):
    """16 stages, with steps back: the page picks the top-to-bottom drawing, and every label still reads."""
    lines = ['journey "Long"', ""]
    for i in range(16):
        lines.append(f'stage s{i} "Stage number {i} of a long journey"')
        lines.append("  initial" if i == 0 else "")
        if i < 15:
            lines.append(f"  on step.done -> s{i + 1}")
            if i > 2:
                lines.append(f"  on step.back -> s{i - 2}")
        else:
            lines.append("  final")
    path = tmp_path / "long.journey"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "long.html"
    code, _, err = run_cli(["review", str(path), "-o", str(out)], capsys)
    assert code == 0, err
    result = browser.open(out, script=_LABELS, width=WIDTH, height=HEIGHT)
    assert result["result"]["layout"] == "TB"
    _assert_first_screen(result, load_journey(str(path)).journey)
