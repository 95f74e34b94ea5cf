"""A corpus of typical mistakes, so a syntax error says what is wrong and how to fix it.

Lark's `match_examples` parses each example and compares the parser state at its
error with the state at the user's error: same state, same explanation.
"""

from __future__ import annotations

import functools

from lark.exceptions import UnexpectedInput

__all__ = ["MISTAKES", "explain_mistake"]

HOLD = "stage a\n  initial\n  hold after 14 days idle: every 14 days send newsletter \"d\", 6 times, then -> b\n"

# (code, message, hint) -> broken examples
MISTAKES: dict[tuple[str, str, str], list[str]] = {
    ("C002", "a trigger needs `->` before the stage it leads to",
     "write e.g. `on form.submitted -> shown_interest`"): [
        "stage a\n  on form.submitted b\n",
        "stage a\n  on form.submitted where x == 1 b\n",
        "stage a\n  when score >= 20 b\n",
        "stage a\n  after 3 days idle b\n",
        "stage a\n  after 3 days in stage b\n",
        "stage a\n  on form.submitted\n",
        "stage a\n  when score >= 20\n",
    ],
    ("C003", "a content id must be in double quotes",
     'write e.g. `send ebook "hidden-cost-of-x" on entry`'): [
        "stage a\n  send ebook hidden on entry\n",
        "stage a\n  hold after 1 day idle: every 1 day send newsletter digest, 2 times, then exit\n",
        "content\n  ebook x\n",
    ],
    ("C004", "a duration needs a unit: minutes, hours, days or weeks",
     "write e.g. `after 7 days`"): [
        'stage a\n  send ebook "x" after 7\n',
        "stage a\n  after 7 idle -> b\n",
        "stage a\n  after 7 in stage -> b\n",
        "scoring\n  email.opened +1 at most 3 per 30\n",
        "scoring\n  decay half-life 45\n",
        "at most 3 messages per 7\n",
        "stage a\n  hold after 14 idle: every 14 days send newsletter \"d\", 6 times, then exit\n",
        "stage a\n  hold after 14 days idle: every 14 send newsletter \"d\", 6 times, then exit\n",
    ],
    ("C005", "say when to send this content",
     'add `on entry` or a delay, e.g. `send ebook "x" after 7 days`'): [
        'stage a\n  send ebook "x"\n',
        'stage a\n  send ebook "x" entry\n',
    ],
    ("C006", "a scoring rule needs points",
     "write the event, then points with a sign, e.g. `email.clicked +3`"): [
        "scoring\n  email.clicked\n",
        "scoring\n  email.clicked where x == 1\n",
        "scoring\n  email.clicked points\n",
    ],
    ("C007", "a holding loop reads: hold after 14 days idle: every 14 days send newsletter \"digest\", "
             "6 times, then -> dormant",
     "check the `:` after `idle`, the commas, and `then -> STAGE` or `then exit` at the end"): [
        HOLD.replace("idle:", "idle"),
        HOLD.replace(", 6 times", " 6 times"),
        HOLD.replace(", then", " then"),
        HOLD.replace("then -> b", "then b"),
        HOLD.replace("then -> b", "-> b"),
        HOLD.replace(" 6 times", " 6"),
        "stage a\n  hold after 14 days: every 14 days send newsletter \"d\", 6 times, then exit\n",
        "stage a\n  hold after 14 days idle: send newsletter \"d\", 6 times, then exit\n",
    ],
    ("C014", "a stage needs an id: a single word like `shown_interest`",
     'write `stage shown_interest "Shown interest"`: the id first, then the label in quotes'): [
        'stage "Unaware"\n',
        "stage\n",
    ],
    ("C015", "a journey name or stage label must be in double quotes",
     'write e.g. `journey "Webinar follow-up"` or `stage shown_interest "Shown interest"` '
     "(a stage id is one word: join words with `_`)"): [
        "journey Webinar\n",
        "stage a Unaware\n",
        "stage a Shown interest\n",
        "include shared.journey\n",
    ],
    ("C016", "a condition compares a field with a value",
     'write e.g. `where path starts with "/pricing"`, `where amount >= 100` or `where plan in ["pro", "team"]`'): [
        "stage a\n  on page.visited where path == /pricing -> b\n",
        "stage a\n  on page.visited where -> b\n",
        "stage a\n  on page.visited where path -> b\n",
        "stage a\n  on page.visited where path starts \"/x\" -> b\n",
        "fit\n  company.size +15\n",
        "fit\n  company.size >= big +15\n",
        "scoring\n  page.visited where path +15\n",
    ],
    ("C017", "a score threshold reads `when score >= 20 -> next_stage`",
     "use one of >=, >, <=, < and a number"): [
        "stage a\n  when score -> b\n",
        "stage a\n  when score >= -> b\n",
        "stage a\n  when score is 20 -> b\n",
        "stage a\n  when 20 -> b\n",
    ],
    ("C018", "a line inside a block must be indented, and only there",
     "indent the lines of `scoring`, `fit`, `content` and each `stage` by two spaces; "
     "start other lines at the left margin"): [
        "stage a\ninitial\n",
        "journey \"x\"\n  stage a\n",
        "scoring\nemail.opened +1\n",
    ],
    ("C019", "this line is not a statement of the language here",
     "see docs/language.md: at the top level a line starts with journey, include, scoring, fit, content, "
     "exit on, enroll on, at most, re-enter, catalogue or stage; inside a stage with initial, final, send, on, "
     "when, after, hold, handoff to sales, notify, create task, set, tag, add to list or call webhook"): [
        "hello world\n",
        "stage a\n  sned email \"x\" on entry\n",
        "stage a\n  go to b\n",
        "stage a\n  handoff sales\n",
    ],
}


def _keys(err: UnexpectedInput) -> list[tuple]:
    """Where the parser stood: the LALR state on top of the stack (depth does not matter)."""
    state = getattr(err, "state", None)
    position = getattr(state, "position", state)
    token = getattr(getattr(err, "token", None), "type", None)
    kind = type(err).__name__
    # The token type is part of the key: one parser state may follow many statements
    # (e.g. the end of every duration), and only the unexpected word tells them apart.
    return [(kind, position, token)]


@functools.cache
def _index() -> dict[tuple, tuple[str, str, str]]:
    """Parse every example once; remember which explanation goes with which parser state."""
    from .parser import grammar_parser

    parser = grammar_parser()
    index: dict[tuple, tuple[str, str, str]] = {}
    for label, examples in MISTAKES.items():
        for example in examples:
            try:
                parser.parse(example)
            except UnexpectedInput as err:
                for key in _keys(err):
                    index.setdefault(key, label)
            except Exception:  # a DedentError example: indentation is explained elsewhere
                continue
    return index


def explain_mistake(err: UnexpectedInput) -> tuple[str, str, str] | None:
    index = _index()
    for key in _keys(err):
        if key in index:
            return index[key]
    return None
