"""The journey diff: a pure function over two models, then its marked diagram and the command."""

from __future__ import annotations

from pathlib import Path

from dsl import load_journey, load_text
from visualize.diff import diff_journeys
from visualize.diff_diagram import build_diff_diagram
from visualize.dot import render_bytes

from .visualize_helpers import SVG, groups_with_class, run_cli, svg_root, svg_texts

OLD = '''journey "Demo"

scoring
  email.opened +1
  email.clicked +3

at most 3 messages per 7 days

stage unaware "Unaware"
  initial
  send article "intro" on entry
  send ebook "x" after 7 days
  on form.submitted -> shown_interest
  on webinar.attended -> webinar_lead

stage webinar_lead "Webinar lead"
  on demo.requested -> customer
  after 30 days idle -> exit

stage shown_interest "Shown interest"
  send email "welcome" on entry
  when score >= 20 -> customer
  hold after 14 days idle: every 14 days send newsletter "digest", 6 times, then -> exit

stage customer "Customer"
  final
'''

NEW = '''journey "Demo"

scoring
  email.opened +2
  demo.requested +50

stage unaware "Unaware"
  initial
  send article "intro" after 1 day
  on form.submitted -> shown_interest
  on webinar.attended -> nurture_webinar

stage nurture_webinar "Nurture (webinar)"
  send email "thanks" on entry
  on demo.requested -> customer

stage shown_interest "Shown interest!"
  send email "welcome" on entry
  handoff to sales
  when score >= 30 -> customer
  when score < 5 -> unaware

stage customer "Customer"
  final
'''


def _load(text):
    loaded = load_text(text, "demo.journey")
    assert loaded.ok, loaded.diagnostics
    return loaded.journey


def test_every_kind_of_change_is_one_line():
    lines = diff_journeys(_load(OLD), _load(NEW)).lines()
    assert lines == [
        "~ scoring: email.opened +1 -> email.opened +2",
        "- scoring: email.clicked +3",
        "+ scoring: demo.requested +50",
        "- cap: at most 3 messages per 7 days",
        '~ stage unaware: send article "intro": on entry -> after 1 day',
        '- stage unaware: send ebook "x" after 7 days',
        "~ stage unaware: trigger on webinar.attended -> webinar_lead => nurture_webinar",
        "+ stage nurture_webinar",
        '~ stage shown_interest: label "Shown interest" -> "Shown interest!"',
        "+ stage shown_interest: handoff to sales",
        "~ stage shown_interest: threshold score >= 20 -> score >= 30",
        "+ stage shown_interest: threshold score < 5 -> unaware",
        '- stage shown_interest: hold after 14 days idle: every 14 days newsletter "digest" ×6, then -> exit',
        "- stage webinar_lead",
    ]


def test_same_journey_differently_written_has_no_changes():
    respaced = OLD.replace("stage customer", "# a comment\nstage customer").replace("+1\n", "+1 points\n")
    diff = diff_journeys(_load(OLD), _load(respaced))
    assert diff.empty and diff.lines() == []


def test_diff_is_directional():
    back = diff_journeys(_load(NEW), _load(OLD)).lines()
    assert "+ stage webinar_lead" in back and "- stage nurture_webinar" in back
    assert "~ stage shown_interest: threshold score >= 30 -> score >= 20" in back


def test_diff_diagram_marks_and_ghosts():
    diagram = build_diff_diagram(diff_journeys(_load(OLD), _load(NEW)))
    marks = {n.stage: n.mark for n in diagram.nodes}
    assert marks["nurture_webinar"] == "added" and marks["webinar_lead"] == "removed"
    assert marks["shown_interest"] == "changed" and marks["customer"] is None
    order = [n.stage for n in sorted(diagram.nodes, key=lambda n: n.order)]
    assert order[:4] == ["unaware", "webinar_lead", "nurture_webinar", "shown_interest"]
    root = svg_root(render_bytes(diagram, "svg"))
    ghost = root.find(f".//{SVG}g[@id='stage-webinar_lead']")
    assert "mark-removed" in ghost.get("class")
    assert ghost.find(f"{SVG}path").get("stroke-dasharray")  # drawn dashed
    changed = [g for g in groups_with_class(root, "mark-changed") if "edge-score-up" in g.get("class")]
    assert len(changed) == 1 and "was score ≥ 20 -> customer" in svg_texts(changed[0])
    removed_hold = [g for g in groups_with_class(root, "edge-hold") if "mark-removed" in g.get("class")]
    assert len(removed_hold) == 1
    added = [g for g in groups_with_class(root, "edge-score-down") if "mark-added" in g.get("class")]
    assert len(added) == 1 and added[0].find(f"{SVG}path").get("stroke") == "#1a7f37"
    text = svg_texts(root)
    assert "− after 7 days · ebook x" in text and "− email.clicked +3" in text and "+ demo.requested +50" in text


def test_diff_command_prints_summary_and_draws(tmp_path, capsys):
    old, new = tmp_path / "old.journey", tmp_path / "new.journey"
    old.write_text(OLD)
    new.write_text(NEW)
    out = tmp_path / "diff.svg"
    code, stdout, err = run_cli(["diff", str(old), str(new), "-o", str(out)], capsys)
    assert code == 0, err
    assert "+ stage nurture_webinar" in stdout
    assert "~ stage shown_interest: threshold score >= 20 -> score >= 30" in stdout
    assert '- stage unaware: send ebook "x" after 7 days' in stdout
    assert "Demo — changes" in svg_texts(svg_root(out.read_bytes()))
    code, stdout, _ = run_cli(["diff", str(old), str(old)], capsys)
    assert code == 0 and stdout.strip() == "no changes"
    code, _, err = run_cli(["diff", str(old), str(tmp_path / "missing.journey")], capsys)
    assert code == 1 and "cannot read" in err and "Traceback" not in err


def test_examples_diff_against_themselves_cleanly():
    for path in Path("journeys").glob("*.journey"):
        journey = load_journey(path).journey
        assert diff_journeys(journey, journey).empty


def test_added_and_removed_stages_list_what_they_contain(tmp_path, capsys):
    diff = diff_journeys(_load(OLD), _load(NEW))
    added = next(c for c in diff.changes if c.kind == "stage" and c.sign == "+")
    assert added.contents == ('label "Nurture (webinar)"', 'send email "thanks" on entry',
                              "1. trigger on demo.requested -> customer")
    removed = next(c for c in diff.changes if c.kind == "stage" and c.sign == "-")
    assert removed.contents == ('label "Webinar lead"', "1. trigger on demo.requested -> customer",
                                "2. timer after 30 days idle -> exit")
    old, new = tmp_path / "old.journey", tmp_path / "new.journey"
    old.write_text(OLD)
    new.write_text(NEW)
    code, stdout, err = run_cli(["diff", str(old), str(new)], capsys)
    assert code == 0, err
    assert "+ stage nurture_webinar\n    label \"Nurture (webinar)\"\n    send email \"thanks\" on entry\n" in stdout
    assert "- stage webinar_lead\n    label \"Webinar lead\"\n" in stdout


def test_diff_with_a_store_says_how_many_leads_sit_where_the_change_lands(tmp_path, capsys):
    import json

    old, new = tmp_path / "old.journey", tmp_path / "new.journey"
    old.write_text(OLD)
    new.write_text(NEW)
    events = tmp_path / "events.jsonl"
    rows = [("a", "form.submitted"), ("b", "webinar.attended"), ("c", "email.opened"), ("d", "webinar.attended")]
    events.write_text("".join(json.dumps({"id": f"e{i}", "lead": lead, "type": kind,
                                          "time": f"2026-03-02T09:0{i}:00Z"}) + "\n"
                              for i, (lead, kind) in enumerate(rows)))
    db = tmp_path / "store.db"
    code, _, err = run_cli(["run", str(old), "--events", str(events), "--db", str(db)], capsys)
    assert code == 0, err
    code, stdout, err = run_cli(["diff", str(old), str(new), "--db", str(db)], capsys)
    assert code == 0, err
    tail = stdout.split("leads now at the changed stages", 1)[1].splitlines()[1:]
    assert tail == ["  unaware: 1 lead", "  nurture_webinar: 0 leads (a new stage: nobody can be there yet)",
                    "  shown_interest: 1 lead", "  webinar_lead: 2 leads (a stage the new version removes)"]
    code, _, err = run_cli(["diff", str(old), str(new), "--db", str(tmp_path / "none.db")], capsys)
    assert code == 1 and "no such database file" in err and "Traceback" not in err


def test_diff_shows_control_characters_as_symbols(tmp_path, capsys):
    old, new = tmp_path / "old.journey", tmp_path / "new.journey"
    old.write_text(OLD)
    new.write_text(NEW.replace('stage nurture_webinar "Nurture (webinar)"',
                               'stage nurture_webinar "Nurture \x1b[31mred"'))
    code, stdout, err = run_cli(["diff", str(old), str(new)], capsys)
    assert code == 0, err
    assert "\x1b" not in stdout and 'label "Nurture ␛[31mred"' in stdout
