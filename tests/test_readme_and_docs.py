"""The README and the docs beside docs/language.md stay true: their examples run, their commands exist."""

import json
import re

from coltiva.cli import COMMANDS
from dsl import load_text, render_plain
from engine.compiler import compile_journey
from engine.events import Event, parse_event

from .conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(path, language):
    text = path.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_the_readme_journey_checks_clean_and_compiles(tmp_path):
    (block,) = _blocks(ROOT / "README.md", "coltiva")
    loaded = load_text(block, "README.md", tmp_path)
    assert loaded.ok and loaded.diagnostics == [], "\n".join(render_plain(d, loaded.sources) for d in loaded.diagnostics)
    compile_journey(loaded.journey, loaded.diagnostics)


def test_the_event_example_is_a_valid_event():
    (block,) = _blocks(ROOT / "docs" / "events.md", "json")
    event = parse_event(json.dumps(json.loads(block)))
    assert isinstance(event, Event), event
    assert event.attributes and event.data == {"path": "/pricing"}


def test_every_coltiva_command_the_docs_mention_exists():
    mentioned = set()
    for path in DOCS:
        mentioned |= set(re.findall(r"`coltiva ([a-z]+)", path.read_text(encoding="utf-8")))
        for block in _blocks(path, "sh"):
            mentioned |= set(re.findall(r"^\s*coltiva ([a-z]+)", block, flags=re.M))
    mentioned.discard("fragment")  # ```coltiva fragment is language.md's tag for a partial example
    assert mentioned, "the docs mention no command at all?"
    assert mentioned <= set(COMMANDS), f"documented but not a command: {sorted(mentioned - set(COMMANDS))}"


def test_every_command_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in COMMANDS if f"`coltiva {name}" not in readme]
    assert not missing, f"commands missing from the README: {missing}"
