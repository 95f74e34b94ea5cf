"""Every example journey drawn with the real `dot`: structure checked in the SVG, not pixels."""

from __future__ import annotations

import re
import subprocess

import pytest

from dsl import load_journey
from dsl.model import EventTrigger, ScoreTrigger, TimeTrigger
from visualize.diagram import build_diagram
from visualize.dot import EDGE_STYLE, render_bytes
from visualize.mermaid import to_mermaid

from .conftest import JOURNEYS
from .visualize_helpers import PNG_SIGNATURE, SVG, groups_with_class, run_cli, svg_root, svg_texts


def _load(path):
    loaded = load_journey(path)
    assert loaded.ok
    return loaded.journey


def _expected_kinds(journey):
    kinds = {k: 0 for k in EDGE_STYLE}
    for stage in journey.stages:
        for trig in stage.triggers:
            if isinstance(trig, EventTrigger):
                kinds["event"] += 1
            elif isinstance(trig, ScoreTrigger):
                kinds["score-up" if trig.upward else "score-down"] += 1
            elif isinstance(trig, TimeTrigger):
                kinds["time"] += 1
        if stage.hold is not None:
            kinds["hold"] += 1
            kinds["hold-end"] += 1
    kinds["goal"] = len(journey.goals)  # a goal is drawn once, from the "any stage" node
    kinds["enroll"] = 1  # the entry edge: who enrolls
    return kinds


@pytest.fixture(scope="module", params=JOURNEYS, ids=lambda p: p.name)
def rendered(request):
    journey = _load(request.param)
    diagram = build_diagram(journey)
    return journey, diagram, render_bytes(diagram, "svg"), render_bytes(diagram, "png")


def test_svg_shows_every_stage_trigger_and_content(rendered):
    journey, _, svg, _ = rendered
    root = svg_root(svg)
    text = svg_texts(root)
    for stage in journey.stages:
        assert stage.id in text and stage.title in text
        node = root.find(f".//{SVG}g[@id='stage-{stage.id}']")
        assert node is not None, stage.id
        for send in stage.sends:
            assert send.content in text
        for trig in stage.triggers:
            if isinstance(trig, EventTrigger):
                assert f"on {trig.event}" in text
        if stage.hold is not None:
            assert stage.hold.content in text and f"×{stage.hold.times}" in text
    for rule in journey.scoring:
        assert rule.event in text
    assert "Legend" in text and "Rules for every stage" in text


def test_edge_kinds_are_told_apart(rendered):
    journey, _, svg, _ = rendered
    root = svg_root(svg)
    for kind, expected in _expected_kinds(journey).items():
        groups = groups_with_class(root, f"edge-{kind}")
        assert len(groups) == expected, kind
        for g in groups:
            path = g.find(f"{SVG}path")
            assert path.get("stroke") == EDGE_STYLE[kind]["color"]
            dashed = path.get("stroke-dasharray")
            if EDGE_STYLE[kind]["style"] in ("dashed", "dotted"):
                assert dashed, kind
            else:
                assert not dashed, kind
            if kind in ("score-up", "score-down"):
                assert float(path.get("stroke-width")) >= 2


def test_stages_run_left_to_right_in_declaration_order(rendered):
    journey, _, svg, _ = rendered
    root = svg_root(svg)
    xs = []
    for stage in journey.stages:
        g = root.find(f".//{SVG}g[@id='stage-{stage.id}']")
        xs.append(min(float(t.get("x")) for t in g.iter(f"{SVG}text")))
    assert xs == sorted(xs)


def test_badges_and_exit_node(rendered):
    journey, _, svg, _ = rendered
    root = svg_root(svg)
    initial = groups_with_class(root, "badge-initial")
    assert [g.get("id") for g in initial] == [f"stage-{journey.initial.id}"]
    handoffs = {f"stage-{s.id}" for s in journey.stages if s.handoff}
    assert {g.get("id") for g in groups_with_class(root, "badge-sales-ready")} == handoffs
    finals = {f"stage-{s.id}" for s in journey.stages if s.final}
    assert {g.get("id") for g in groups_with_class(root, "badge-final")} == finals
    exits = any("exit" in s.targets() for s in journey.stages)
    assert (root.find(f".//{SVG}g[@id='exit']") is not None) == exits


def test_png_is_a_png(rendered):
    _, _, _, png = rendered
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000


def test_no_edge_label_overlaps_another(rendered):
    """Readable: no two edge labels' text boxes intersect (boxes estimated from font size)."""
    _, _, svg, _ = rendered
    root = svg_root(svg)
    boxes = []
    for g in root.iter(f"{SVG}g"):
        if not (g.get("class") or "").startswith("edge edge-"):
            continue
        for t in g.iter(f"{SVG}text"):
            size = float(t.get("font-size"))
            width = 0.55 * size * len("".join(t.itertext()))
            x = float(t.get("x"))
            x0 = {"start": x, "middle": x - width / 2, "end": x - width}[t.get("text-anchor")]
            y = float(t.get("y"))
            boxes.append((x0 + 1, y - size * 0.8 + 1, x0 + width - 1, y - 1))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_dot_source_is_accepted_by_dot(tmp_path):
    diagram = build_diagram(_load(JOURNEYS[0]))
    path = tmp_path / "j.dot"
    path.write_bytes(render_bytes(diagram, "dot"))
    done = subprocess.run(["dot", "-Tsvg", str(path)], capture_output=True, check=True)
    svg_root(done.stdout)


def test_mermaid_has_every_stage_and_edge():
    journey = _load("journeys/demand_generation.journey")
    diagram = build_diagram(journey)
    text = to_mermaid(diagram)
    assert "\nflowchart LR\n" in text
    for stage in journey.stages:
        assert f'    s_{stage.id}["<b>' in text
    drawn = [line for line in text.splitlines() if re.match(r"    \w+ (-->|==>|-\.->)\|", line)]
    assert len(drawn) == len(diagram.edges) + 1  # and the enrollment edge
    assert f'x_start -->|"enroll#58; any event of a new lead"| s_{journey.initial.id}' in text


@pytest.mark.parametrize("ext,check", [
    ("svg", lambda b: svg_root(b) is not None),
    ("png", lambda b: b.startswith(PNG_SIGNATURE)),
    ("pdf", lambda b: b.startswith(b"%PDF-")),
    ("dot", lambda b: b.startswith(b"digraph journey {")),
    ("mmd", lambda b: b"\nflowchart LR\n" in b),
])
def test_render_command_picks_format_from_extension(tmp_path, capsys, ext, check):
    out = tmp_path / f"j.{ext}"
    code, _, err = run_cli(["render", "journeys/webinar_followup.journey", "-o", str(out)], capsys)
    assert code == 0, err
    assert check(out.read_bytes())


def test_render_command_format_option_overrides_extension(tmp_path, capsys):
    out = tmp_path / "review.txt"
    code, _, _ = run_cli(["render", "journeys/webinar_followup.journey", "-o", str(out), "--format", "mermaid"],
                         capsys)
    assert code == 0 and out.read_text().count("flowchart LR") == 1


def test_render_command_reports_mistakes_without_traceback(tmp_path, capsys):
    code, _, err = run_cli(["render", "journeys/webinar_followup.journey", "-o", str(tmp_path / "x.jpg")], capsys)
    assert code == 1 and "unknown extension '.jpg'" in err and "Traceback" not in err
    code, _, err = run_cli(["render", str(tmp_path / "missing.journey"), "-o", str(tmp_path / "x.svg")], capsys)
    assert code == 1 and "cannot read" in err
    bad = tmp_path / "bad.journey"
    bad.write_text('journey "Bad"\n\nstage a "A"\n  initial\n  on x.y -> nowhere\n')
    code, _, err = run_cli(["render", str(bad), "-o", str(tmp_path / "x.svg")], capsys)
    assert code == 1 and "bad.journey:5" in err and "has errors" in err
    assert not (tmp_path / "x.svg").exists()
    code, _, err = run_cli(["render", "journeys/webinar_followup.journey", "-o",
                            str(tmp_path / "no" / "dir.svg")], capsys)
    assert code == 1 and "cannot write" in err
    code, _, err = run_cli(["render", "journeys/webinar_followup.journey", "-o", str(tmp_path / "x.svg"),
                            "--db", str(tmp_path / "none.db")], capsys)
    assert code == 1 and "no such database file" in err


def test_a_shared_fragment_is_drawn_as_its_rules_titled_by_its_file(tmp_path, capsys):
    for ext in ("svg", "mmd"):
        out = tmp_path / f"frag.{ext}"
        code, _, err = run_cli(["render", "journeys/shared/scoring.journey", "-o", str(out)], capsys)
        assert code == 0, err
        data = out.read_text(encoding="utf-8")
        assert "(unnamed journey)" not in data
        if ext == "svg":
            text = svg_texts(svg_root(data))
            assert "Shared fragment: scoring.journey" in text
            assert "Rules for every stage" in text and "demo.requested +50" in text
        else:
            assert data.splitlines()[1] == 'title: "Shared fragment: scoring.journey"'
            assert "demo.requested +50" in data
    page = tmp_path / "frag.html"
    code, _, err = run_cli(["review", "journeys/shared/scoring.journey", "-o", str(page)], capsys)
    assert code == 0, err
    assert "Shared fragment: scoring.journey" in page.read_text(encoding="utf-8")
    code, _, err = run_cli(["render", "journeys/shared/scoring.journey", "-o", str(tmp_path / "x.svg"),
                            "--db", str(tmp_path / "any.db")], capsys)
    assert code == 1 and "shared fragment has no leads" in err and "Traceback" not in err


def _huge_or_journey(tmp_path, n=3000):
    """A trigger whose condition is an n-way `or`: about 75 KB of condition text."""
    cond = " or ".join(f'company == "firm{i:04d}"' for i in range(n))
    path = tmp_path / "huge.journey"
    path.write_text(f'journey "Huge"\n\nscoring\n  page.visited where {cond} +5\n\n'
                    f'stage a "A"\n  initial\n  on form.submitted where {cond} -> b\n\n'
                    'stage b "B"\n  final\n', encoding="utf-8")
    return path


def test_a_3000_way_or_is_shortened_and_drawn(tmp_path, capsys):
    from visualize.diagram import MAX_TEXT

    path = _huge_or_journey(tmp_path)
    diagram = build_diagram(_load(path))
    edge = next(e for e in diagram.edges if e.kind == "event")
    assert len(edge.detail) <= MAX_TEXT and edge.detail.endswith("…")
    assert edge.detail.startswith('where company == "firm0000" or company == "firm0001"')
    assert edge.full.endswith('company == "firm2999"')  # the whole condition is kept for the tooltip
    panel_line = diagram.panel[0].lines[0]
    assert len(panel_line.text) <= MAX_TEXT and panel_line.full.endswith('"firm2999" +5')
    for ext in ("svg", "png", "mmd"):
        out = tmp_path / f"huge.{ext}"
        code, _, err = run_cli(["render", str(path), "-o", str(out)], capsys)
        assert code == 0, err
        assert "dot failed" not in err and "Traceback" not in err
    root = svg_root((tmp_path / "huge.svg").read_bytes())
    text = svg_texts(root)
    assert 'where company == "firm0000"' in text and "firm2999" not in text
    edge_group = root.find(f".//{SVG}g[@id='edge-e0']")
    titles = [a.get("{http://www.w3.org/1999/xlink}title") or "" for a in edge_group.iter(f"{SVG}a")]
    assert any(t.endswith('company == "firm2999"') for t in titles)
    assert len((tmp_path / "huge.mmd").read_text(encoding="utf-8")) < 10_000
    page = tmp_path / "huge.html"
    code, _, err = run_cli(["review", str(path), "-o", str(page)], capsys)
    assert code == 0, err


def test_a_panel_of_many_long_rules_stays_under_dots_label_limit(tmp_path):
    rules = "\n".join(f'  page.visited where path == "{"x" * 250}{i}" +{i % 9 + 1}' for i in range(400))
    path = tmp_path / "many.journey"
    path.write_text(f'journey "Many"\n\nscoring\n{rules}\n\nstage a "A"\n  initial\n  final\n', encoding="utf-8")
    svg = render_bytes(build_diagram(_load(path)), "svg")
    text = svg_texts(svg_root(svg))
    assert "more lines not drawn (see coltiva review)" in text
    assert "Rules for every stage" in text and "Legend" in text


def test_when_dot_still_fails_the_command_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    """Without the shortening, dot refuses the 75 KB label: one line of message, exit 1, no stack."""
    import visualize.diagram
    import visualize.dot

    monkeypatch.setattr(visualize.diagram, "shorten", lambda d: d)
    monkeypatch.setattr(visualize.dot, "shorten", lambda d: d)
    path = _huge_or_journey(tmp_path)
    code, _, err = run_cli(["render", str(path), "-o", str(tmp_path / "huge.svg")], capsys)
    assert code == 1
    assert err.startswith("coltiva: dot failed to draw the journey") and err.count("\n") == 1, err
    assert "Traceback" not in err and "String starting" not in err and "<FONT" not in err
    assert not (tmp_path / "huge.svg").exists()


def test_a_missing_dot_is_one_line_of_message(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` here
    code, _, err = run_cli(["render", "journeys/webinar_followup.journey", "-o", str(tmp_path / "x.svg")], capsys)
    assert code == 1 and "the `dot` program is missing" in err and "Traceback" not in err
    code, _, err = run_cli(["render", "journeys/webinar_followup.journey", "-o", str(tmp_path / "x.mmd")], capsys)
    assert code == 0, err  # Mermaid needs no dot


def test_render_direction_option(tmp_path, capsys):
    for ext in ("mmd", "dot"):
        out = tmp_path / f"tb.{ext}"
        code, _, err = run_cli(["render", "journeys/webinar_followup.journey", "-o", str(out), "--direction", "TB"],
                               capsys)
        assert code == 0, err
        assert ("\nflowchart TB\n" if ext == "mmd" else "rankdir=TB") in out.read_text()
