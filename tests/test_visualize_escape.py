"""Hostile text (labels, content ids, condition values, the journey name) stays text everywhere."""

from __future__ import annotations

import html.parser
import subprocess

import pytest

from dsl import load_text
from visualize.diagram import build_diagram
from visualize.dot import render_bytes, to_dot
from visualize.mermaid import mermaid_escape, to_mermaid
from visualize.review import review_html

from .browser_session import browser  # noqa: F401  (the shared session fixture)
from .visualize_helpers import SVG, svg_root, svg_texts

EVIL = '<script>alert("x")</script> & {a|b} \\ end \\N \\n'
SOURCE = r'''journey "<script>alert(1)</script> & \"q\" {x|y} \ name"

scoring
  page.visited where path == "<script>&\"{}|\\" +5

exit on email.unsubscribed where reason == "</svg><script>x</script>"

stage start "<script>alert(\"x\")</script> & {a|b} \ end \N \n"
  initial
  send email "<img src=x onerror=alert(1)>&{|}\\\"" on entry
  on form.submitted where path == "<script>&\"{}|\\" -> done

stage done "]]> <!-- --> &amp; \"done\""
  final
'''


@pytest.fixture(scope="module")
def journey():
    loaded = load_text(SOURCE, "hostile.journey")
    assert loaded.ok, loaded.diagnostics
    stage = loaded.journey.stage("start")
    assert stage.label == EVIL
    return loaded.journey


def test_svg_is_well_formed_and_keeps_hostile_text_as_text(journey):
    svg = render_bytes(build_diagram(journey), "svg")
    root = svg_root(svg)
    assert not [el for el in root.iter() if el.tag.rsplit("}", 1)[-1].lower() in ("script", "img", "foreignobject")]
    text = svg_texts(root)
    assert EVIL in text
    assert "<img src=x onerror=alert(1)>&{|}\\\"" in text.replace("on entry · email ", "")
    assert 'path == "<script>&\\"{}|\\\\"' in text
    assert journey.name in text
    assert ']]> <!-- --> &amp; "done"' in text
    assert root.find(f".//{SVG}g[@id='stage-start']") is not None


def test_dot_source_is_accepted_by_dot_and_draws_the_same_text(journey, tmp_path):
    source = to_dot(build_diagram(journey))
    done = subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True, check=True)
    assert EVIL in svg_texts(svg_root(done.stdout))
    assert "<script>" not in source  # only entities inside HTML-like labels


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, _ in attrs:
            assert not name.startswith("on"), name

    def handle_data(self, data):
        self.text.append(data)


def test_review_page_escapes_everything(journey):
    diagram = build_diagram(journey)
    page = review_html(journey, diagram, {"LR": render_bytes(diagram, "svg").decode()}, [],
                       {"hostile.journey": SOURCE})
    parser = _Tags()
    parser.feed(page)
    assert parser.tags.count("script") == 1 and "img" not in parser.tags  # only the page's own zoom script
    text = "".join(parser.text)
    assert text.count(EVIL) >= 2  # in the diagram and in the content table
    assert "<img src=x onerror=alert(1)>" in text


def test_mermaid_escapes_its_own_way(journey, browser):
    """The real Mermaid draws the hostile text as text: no error, no element made of it."""
    text = to_mermaid(build_diagram(journey))
    assert mermaid_escape(EVIL) in text
    assert "#60;script#62;" in text and "#34;" in text and "#38;" in text and "#123;" in text
    assert "#124;" in text and "#92;" in text
    [result] = browser.mermaid([text])
    assert result["error"] is None, result["error"]
    assert result["scripts"] == 0
    drawn = {n["id"].split("-")[2]: " ".join(n["text"].replace("\u2060", "").split()) for n in result["nodes"]}
    assert " ".join(EVIL.split()) in drawn["s_start"], drawn["s_start"]


def test_mermaid_escape_keeps_letters_of_any_language():
    assert mermaid_escape("Novità: Problema") == "Novità#58; Problema"
    assert mermaid_escape('a "b" #c;') == "a #34;b#34; #35;c#59;"
    assert mermaid_escape("a\\n") == "a#92;\u2060n"  # a backslash is followed by an invisible joiner


def _yaml_double_quoted(value: str) -> str:
    """A strict little reader for one YAML double-quoted scalar: the only escapes are \\", \\\\ and \\uXXXX."""
    assert value.startswith('"') and value.endswith('"') and len(value) >= 2, value
    body, out, i = value[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        assert ch != '"', f"unescaped quote in {value!r}"
        if ch == "\\":
            nxt = body[i + 1]
            if nxt in '"\\':
                out.append(nxt)
                i += 2
            elif nxt == "u":
                out.append(chr(int(body[i + 2:i + 6], 16)))
                i += 6
            else:
                raise AssertionError(f"unknown escape \\{nxt} in {value!r}")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _front_matter_title(text: str) -> str:
    lines = text.splitlines()
    assert lines[0] == "---" and lines[2] == "---", lines[:3]
    key, _, value = lines[1].partition(": ")
    assert key == "title"
    return _yaml_double_quoted(value)


@pytest.mark.parametrize("name", [
    "Demand & gen (B2B): EU",
    'Q3 #1 push: "ABM" \\ EMEA # not a comment',
    "Novità: già #42; {x|y} <b>",
])
def test_mermaid_title_is_a_quoted_yaml_string_that_round_trips(name):
    source = f'journey "{name.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"\n\n' \
             'stage a "A & B: c"\n  initial\n  final\n'
    loaded = load_text(source, "t.journey")
    assert loaded.ok, loaded.diagnostics
    assert loaded.journey.name == name
    text = to_mermaid(build_diagram(loaded.journey))
    title_line = text.splitlines()[1]
    assert title_line.startswith('title: "') and title_line.endswith('"')
    assert "#38;" not in title_line and "#58;" not in title_line  # no Mermaid entities in the front matter
    assert _front_matter_title(text) == name
    # the diagram body keeps its own escaping
    assert 's_a["<b>A #38; B#58; c (a)</b>' in text


def test_mermaid_title_of_the_bug_report():
    loaded = load_text('journey "Demand & gen (B2B): EU"\n\nstage a "A"\n  initial\n  final\n', "t.journey")
    text = to_mermaid(build_diagram(loaded.journey))
    assert text.splitlines()[1] == 'title: "Demand & gen (B2B): EU"'


def test_review_page_in_a_browser_runs_no_hostile_script(journey, tmp_path, browser):
    """The hostile page opened for real: only our zoom script exists, nothing fails, the text reads as written."""
    from visualize.diagram import compact

    diagram = build_diagram(journey)
    svgs = {"LR": render_bytes(compact(diagram), "svg").decode()}
    page = tmp_path / "hostile.html"
    page.write_text(review_html(journey, diagram, svgs, [], {"hostile.journey": SOURCE}), encoding="utf-8")
    result = browser.open(page, script="""() => ({scripts: document.scripts.length,
        images: document.images.length,
        label: document.querySelector('#stage-start').textContent,
        row: document.querySelector('#row-start').textContent})""")
    assert result["errors"] == [] and len(result["requests"]) == 1
    found = result["result"]
    assert found["scripts"] == 1 and found["images"] == 0
    assert " ".join(EVIL.split()) in " ".join(found["row"].split())
    assert EVIL.split()[0] in found["label"]


def test_a_title_of_only_closing_brackets_is_drawn():
    """`dot` refuses an HTML-like label whose text is only `]` or `]]` (found by hypothesis)."""
    from dsl.model import Journey
    from visualize import build_diagram, render_bytes

    for name in ("]", "]]", "[]", "a]"):
        assert render_bytes(build_diagram(Journey(name=name)), "svg").startswith(b"<")
