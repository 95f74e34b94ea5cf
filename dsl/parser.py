"""Text to syntax tree, with syntax errors phrased for a marketer.

The Lark parser is built once per process (LALR, contextual lexer, positions
propagated). A syntax error is matched against a corpus of typical mistakes
(`dsl.mistakes`) to say what is wrong and how to fix it; then the offending
line is blanked and parsing resumes, so one run reports every broken line.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)
from lark.indenter import DedentError, Indenter

from .diagnostics import Diagnostic, Severity
from .fastparse import fast_parse
from .limits import MAX_NESTING
from .model import Span

__all__ = ["parse_text", "source_text", "may_nest_too_deep", "grammar_parser", "MAX_SYNTAX_ERRORS"]

MAX_SYNTAX_ERRORS = 20

# Words that start a statement, for "did you mean" on a misspelled one.
KEYWORDS = ["journey", "include", "scoring", "fit", "content", "exit", "enroll", "at", "stage",
            "initial", "final", "send", "on", "when", "after", "hold", "handoff", "decay",
            "notify", "create", "set", "tag", "add", "call", "re-enter", "catalogue"]


class JourneyIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types: list[str] = []
    CLOSE_PAREN_types: list[str] = []
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


@functools.cache
def grammar_parser() -> Lark:
    """The one parser of the process: building it costs ~100 ms, parsing is cheap."""
    return Lark.open(
        "journey.lark",
        rel_to=__file__,
        parser="lalr",
        lexer="contextual",
        postlex=JourneyIndenter(),
        propagate_positions=True,
        maybe_placeholders=False,
    )


# Friendly names for terminals in "expected ..." messages.
_TERMINAL_WORDS = {
    "_NL": "the end of the line",
    "_INDENT": "an indented line",
    "_DEDENT": "the end of the block",
    "STRING": 'a quoted text like "welcome"',
    "STAGE_ID": "a stage id",
    "EVENT": "an event type like email.opened",
    "FIELD": "a field name like path or company.size",
    "KIND": "a content kind like email or ebook",
    "POINTS": "points like +5 or -10",
    "INT": "a whole number",
    "AMOUNT": "a number",
    "NUMBER": "a number",
    "UNIT": "minutes, hours, days or weeks",
    "CMP": "a comparison (>=, >, <=, <, ==, !=)",
    "$END": "the end of the file",
}


def _describe_expected(expected) -> str:
    parser = grammar_parser()
    words = []
    for name in sorted(expected):
        if name in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[name])
            continue
        try:
            pattern = parser.get_terminal(name).pattern
        except KeyError:
            words.append(name)
            continue
        words.append(f"`{pattern.value}`" if pattern.type == "str" else name)
    words = sorted(set(words))
    if len(words) > 8:
        words = words[:8] + ["..."]
    return ", ".join(words)


def _token_text(token: Token) -> str:
    if token.type == "_NL":
        return "end of line"
    if token.type == "_INDENT":
        return "indentation"
    if token.type == "_DEDENT":
        return "end of the block"
    if token.type == "$END":
        return "end of file"
    return f"`{token}`"


def _line_span(path: str, lines: list[str], line: int, column: int, width: int = 1) -> Span:
    return Span(path, line, column, line, column + max(width, 1))


def _error_position(err: UnexpectedInput, lines: list[str]) -> tuple[int, int, int]:
    """(line, column, width) to underline; indentation tokens point at the next line."""
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type == "_NL" and tok.line is not None:
            return tok.line, tok.column, 1  # the line ended too early: point at its end
        if tok.type in ("_INDENT", "_DEDENT") and tok.end_line is not None:
            line = min(tok.end_line, len(lines))
            text = lines[line - 1]
            col = len(text) - len(text.lstrip()) + 1
            return line, col, max(len(text.strip()), 1)
        if tok.type == "$END" or tok.line is None:
            line = len(lines)
            return line, len(lines[line - 1]) + 1 if lines else 1, 1
        return tok.line, tok.column, max(len(str(tok)), 1)
    line = getattr(err, "line", None) or len(lines)
    column = getattr(err, "column", None) or 1
    return line, column, 1


def _diagnose(err: UnexpectedInput | DedentError, path: str, lines: list[str],
              parsed: list[str] | None = None) -> Diagnostic:
    """The diagnostic for a parse error; `lines` as written, `parsed` as parsed (broken lines blanked)."""
    from .mistakes import explain_mistake

    if isinstance(err, DedentError):
        # DedentError carries no position; find the first line whose indent matches no block
        return _bad_dedent(path, lines, parsed if parsed is not None else lines)
    line, col, width = _error_position(err, lines)
    span = _line_span(path, lines, line, col, width)
    for explain in (_odd_space, _slash_comment, _hyphen_in_stage_id, _unexpected_indent, _unknown_statement,
                    _single_quotes, _glued_arrow, _between_events, _score_band, _non_ascii_name, _odd_number,
                    _extra_words):
        found = explain(err, lines, line, col)
        if found is not None:
            code, message, hint, *where = found
            if where:  # the explainer underlines a whole word: (column, width)
                span = _line_span(path, lines, line, *where[0])
            return Diagnostic(code, Severity.ERROR, message, span, hint)
    known = explain_mistake(err) if isinstance(err, UnexpectedInput) else None
    if known is not None:
        code, message, hint = known
        if code == "C019":
            word = lines[line - 1][col - 1 :].split(" ", 1)[0] if line <= len(lines) else ""
            guess = difflib.get_close_matches(word, KEYWORDS, n=1, cutoff=0.7)
            if guess:
                message, hint = f"unknown word `{word}`", f"did you mean `{guess[0]}`?"
        return Diagnostic(code, Severity.ERROR, message, span, hint)
    if isinstance(err, UnexpectedCharacters):
        ch = lines[line - 1][col - 1] if line <= len(lines) and col <= len(lines[line - 1]) else "?"
        if ch == '"':
            return Diagnostic(
                "C008", Severity.ERROR, "this text has no closing quote", span,
                'close the text with a double quote on the same line, e.g. "welcome"',
            )
        return Diagnostic(
            "C001", Severity.ERROR, f"unexpected character `{ch}`", span,
            f"expected {_describe_expected(err.allowed)}" if err.allowed else None,
        )
    if isinstance(err, UnexpectedEOF):
        return Diagnostic(
            "C001", Severity.ERROR, "the file ends in the middle of a statement", span,
            f"expected {_describe_expected(err.expected)}",
        )
    assert isinstance(err, UnexpectedToken)
    return Diagnostic(
        "C001", Severity.ERROR, f"unexpected {_token_text(err.token)}", span,
        f"expected {_describe_expected(err.expected)}",
    )


# Terminals that start a statement (the words the parser names in `expected`).
_STATEMENT_WORDS = {name: name.lower() for name in (
    "JOURNEY", "INCLUDE", "SCORING", "FIT", "CONTENT", "EXIT", "ENROLL", "AT", "STAGE",
    "INITIAL", "FINAL", "SEND", "ON", "WHEN", "AFTER", "HOLD", "HANDOFF", "DECAY",
    "NOTIFY", "CREATE", "SET", "TAG", "ADD", "CALL", "CATALOGUE")}


@functools.cache
def _statement_word(terminal: str) -> str | None:
    """The keyword a terminal stands for, if it starts a statement (lark numbers `re-enter`: __ANON_n)."""
    if terminal in _STATEMENT_WORDS:
        return _STATEMENT_WORDS[terminal]
    for t in grammar_parser().terminals:
        if t.name == terminal and t.pattern.type == "str" and t.pattern.value in KEYWORDS:
            return t.pattern.value
    return None
_WORD_TOKENS = {"EVENT", "FIELD", "KIND", "STAGE_ID"}


#: Spaces a word processor pastes that look like a space but are not one (`coltiva fmt` replaces them).
ODD_SPACES = "\u00a0\u2007\u202f\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2008\u2009\u200a\u3000\u200b\ufeff"
_SPACE_NAMES = {"\u00a0": "a non-breaking space", "\u202f": "a narrow non-breaking space",
                "\u2007": "a figure space", "\u200b": "a zero-width space", "\ufeff": "a zero-width no-break space"}


def replace_odd_spaces(text: str) -> str:
    """Each odd space outside double-quoted texts and comments made a plain space (what `coltiva fmt` does)."""
    out = []
    for line in text.split("\n"):
        chars, quoted, escaped = [], False, False
        for i, ch in enumerate(line):
            if not quoted and ch == "#":
                chars.append(line[i:])
                break
            if quoted:
                if escaped:  # the character after a backslash is taken as it is, `\"` included
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    quoted = False
            elif ch == '"':
                quoted = True
            chars.append(" " if not quoted and ch in ODD_SPACES else ch)
        out.append("".join(chars))
    return "\n".join(out)


def _char_at(err, lines, line, col) -> str:
    if not isinstance(err, UnexpectedCharacters):
        return ""
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    return text[col - 1] if 1 <= col <= len(text) else ""


def _odd_space(err, lines, line, col):
    """A non-breaking space pasted from a word processor: it looks like a space, the parser sees a letter."""
    ch = _char_at(err, lines, line, col)
    if not ch or ch not in ODD_SPACES:
        return None
    what = _SPACE_NAMES.get(ch, f"an unusual space (U+{ord(ch):04X})")
    return ("C091", f"this line has {what} where a plain space belongs (often pasted from a word processor)",
            "replace it with a plain space; `coltiva fmt FILE` replaces them all", (col, 1))


def _slash_comment(err, lines, line, col):
    """`// note`: comments start with `#`."""
    if _char_at(err, lines, line, col) != "/":
        return None
    text = lines[line - 1]
    if text[col - 1:col + 1] != "//":
        return None
    return ("C093", "comments start with `#`, not `//`",
            f"write `#{text[col + 1:]}`", (col, 2))


def _hyphen_in_stage_id(err, lines, line, col):
    """`stage shown-interest`, `-> shown-interest`: a stage id has no `-` (event types may)."""
    if _char_at(err, lines, line, col) != "-":
        return None
    text = lines[line - 1]
    start = col - 1
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_-"):
        start -= 1
    end = col - 1
    while end < len(text) and (text[end].isalnum() or text[end] in "_-"):
        end += 1
    word, before = text[start:end], text[:start].split()
    if not word or not (before == ["stage"] or before[-1:] in (["->"], ["then"])):
        return None
    fixed = word.replace("-", "_")
    return ("C092", f"a stage id is one word of letters, digits and `_`: `{word}` has a `-`",
            f"write `{fixed}` (here and in `stage {fixed}`)", (start + 1, end - start))


def _between_events(err, lines, line, col):
    """`on a and b`, `on a, b`, `email.opened or email.clicked +1`: how to say "either event"."""
    if not isinstance(err, UnexpectedToken):
        return None
    word = str(err.token)
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    head = text.split()
    if word == "or" and "POINTS" in err.expected:
        return ("C094", "a scoring rule names one event type",
                "write one line per event type, e.g. `email.opened +1` and `email.clicked +1` "
                "(each line counts, and caps, its own events)", (col, 2))
    if word in ("and", ",") and ("OR" in err.expected or "WHERE" in err.expected) and head[:1] in (
            ["on"], ["exit"], ["enroll"]):
        return ("C095", f"`{word}` cannot join two event types: an event has one type",
                "write `or` to take either event, e.g. `on demo.requested or meeting.booked -> sales_ready`",
                (col, len(word)))
    return None


def _score_band(err, lines, line, col):
    """`when score >= 40 and score < 60`: a threshold compares the score with one number."""
    if not isinstance(err, UnexpectedToken) or str(err.token) not in ("and", "or"):
        return None
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    if not text.strip().startswith("when"):
        return None
    return ("C096", "a score threshold compares the score with one number, without `and` or `or`",
            "thresholds are tried in the order written and the first met wins: for a band, write the higher "
            "one first, e.g. `when score >= 60 -> hot` then `when score >= 40 -> warm`", (col, len(str(err.token))))


def _unexpected_indent(err, lines, line, col):
    """A line indented deeper than the block it is in (or under a line that opens no block)."""
    if not (isinstance(err, UnexpectedToken) and err.token.type == "_INDENT"):
        return None
    hint = ("the lines of one block start at the same column; only `scoring`, `fit`, `content` and "
            "`stage` open a block, so indent by two spaces under them and nowhere else")
    if _mixes_tabs(lines):
        hint = f"{TAB_HINT}; {hint}"
    return "C018", "this line is indented more than the line above it", hint


def _unknown_statement(err, lines, line, col):
    """The first word of a line is no statement the parser accepts there: a typo, most often."""
    if not isinstance(err, UnexpectedToken) or err.token.type not in _WORD_TOKENS:
        return None
    if not (1 <= line <= len(lines)):
        return None
    text = lines[line - 1]
    if col != len(text) - len(text.lstrip()) + 1:
        return None  # not the first word of its line
    allowed = sorted({w for w in map(_statement_word, err.expected) if w is not None})
    if not allowed:
        return None
    word = str(err.token)
    guess = difflib.get_close_matches(word, allowed, n=1, cutoff=0.6)
    if guess:
        return "C019", f"unknown word `{word}`", f"did you mean `{guess[0]}`?"
    if "." in word and col == 1:
        return ("C018", f"`{word}` looks like a scoring rule outside a block",
                "indent scoring rules by two spaces under `scoring`")
    return ("C019", f"`{word}` does not start a statement here",
            "a line here starts with " + ", ".join(f"`{w}`" for w in allowed) + " (see docs/language.md)")


def _extra_words(err, lines, line, col):
    """The statement was complete, but the line goes on."""
    if not isinstance(err, UnexpectedToken) or set(err.expected) - {"_NL", "_DEDENT", "$END"}:
        return None
    if err.token.type in ("_NL", "_INDENT", "_DEDENT", "$END"):
        return None
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    if col <= len(text) - len(text.lstrip()) + 1:
        return None  # the first word of a line: not an extra word
    return ("C001", f"the line should end before {_token_text(err.token)}",
            "remove the extra words, or start a new line for a new statement")


def _single_quotes(err, lines, line, col):
    if not isinstance(err, UnexpectedCharacters):
        return None
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    if col <= len(text) and text[col - 1] in "'\u2018\u2019\u201c\u201d":
        return ("C057", "texts are written in straight double quotes",
                f'write "..." instead of {text[col - 1]}...{text[col - 1]}, e.g. `send email "welcome" on entry`')
    return None


def _glued_arrow(err, lines, line, col):
    """`on go->b`: event types may contain `-`, so `go-` is read as the event and `>` is left over."""
    if not isinstance(err, (UnexpectedCharacters, UnexpectedToken)):
        return None
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    if not (2 <= col <= len(text) and text[col - 1] == ">" and text[col - 2] == "-"):
        return None
    fixed = re.sub(r"\s*->\s*", " -> ", text.strip())
    return ("C002", "put a space before `->`: a `-` right after an event type is read as part of its name",
            f"write `{fixed}`", (col - 1, 2))


_NAME_CHAR = re.compile(r"[\w.-]")


def _ascii_name(word: str) -> str:
    """`début` -> `debut`: accents dropped, anything else outside [A-Za-z0-9_] made `_`."""
    plain = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()
    plain = re.sub(r"[^A-Za-z0-9_.]+", "_", plain).strip("_") if plain else ""
    if not plain or plain[0].isdigit():
        plain = "stage_" + plain if plain else "my_stage"
    return plain


def _non_ascii_name(err, lines, line, col):
    """`stage début`: names are ASCII words; only texts in quotes can be in any language."""
    if not isinstance(err, UnexpectedCharacters):
        return None
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    if not (1 <= col <= len(text)) or not _NAME_CHAR.match(text[col - 1]):
        return None
    start, end = col - 1, col - 1
    while start > 0 and _NAME_CHAR.match(text[start - 1]):
        start -= 1
    while end < len(text) and _NAME_CHAR.match(text[end]):
        end += 1
    word = text[start:end]
    if word.isascii():
        return None
    before = text[:start].split()
    plain = _ascii_name(word)
    where = (start + 1, end - start)
    if before == ["stage"]:
        return ("C014", f"a stage id is written with ASCII letters, digits and `_` only, not `{word}`",
                f'write e.g. `stage {plain} "{word}"`: the label in quotes can be in any language', where)
    if before[-1:] in (["->"], ["then"]):
        return ("C014", f"a stage id is written with ASCII letters, digits and `_` only, not `{word}`",
                f"write e.g. `-> {plain}` (and `stage {plain} \"{word}\"`: a label in quotes can be "
                "in any language)", where)
    if start == col - 1 and "STRING" in (err.allowed or ()):  # a text was expected: quote it
        code = "C015" if before[:1] in (["journey"], ["include"], ["stage"]) else "C003"
        what = "this text" if code == "C015" else "a content id"
        return (code, f"{what} must be in double quotes: `\"{word}\"`",
                f'write `{text[:start].strip()} "{word}"{text[end:].rstrip()}`', where)
    return ("C001", f"names (event types, fields, content kinds) are written with ASCII letters, digits, "
                    f"`_` and `.` only, not `{word}`",
            f"write e.g. `{plain}`; only texts in quotes can be in any language", where)


_AFTER_COMPARISON = re.compile(r"(==|!=|>=|<=|>|<|=)\s*$")


def _odd_number(err, lines, line, col):
    """`when score >= 1e400`, `>= 1,5`, `>= 20%`: a number is plain digits, with an optional `.5`."""
    if not isinstance(err, (UnexpectedCharacters, UnexpectedToken)):
        return None
    if isinstance(err, UnexpectedToken) and err.token.type in ("_NL", "_INDENT", "_DEDENT", "$END"):
        return None
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    start = col - 1
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    end = text.find(" ", start)
    word = text[start:] if end < 0 else text[start:end]
    if start == col - 1 or not re.match(r"[+-]?\.?\d", word) or not _AFTER_COMPARISON.search(text[:start]):
        return None  # the error is not inside a number written after a comparison
    where = (start + 1, len(word))
    if text.strip().startswith("when"):
        return ("C017", f"a threshold is a plain number like 20 or 12.5, not `{word}`",
                "write e.g. `when score >= 20 -> next_stage`", where)
    return ("C016", f"a number is written plainly, like 20 or 12.5, not `{word}`",
            "write e.g. `where amount >= 100`; put other values in double quotes", where)


#: What the parser does with a tab (lark's Indenter, `JourneyIndenter.tab_len`): 8 columns, wherever it stands.
TAB_HINT = (f"this file mixes tabs and spaces: use spaces only (a tab counts as {JourneyIndenter.tab_len} "
            "columns wherever it stands, so a tab and a few spaces rarely line up with spaces)")


def _columns(text: str) -> int:
    """The indentation of a line as the parser counts it (see `lark.indenter.Indenter.handle_NL`)."""
    lead = text[: len(text) - len(text.lstrip(" \t"))]
    return lead.count(" ") + lead.count("\t") * JourneyIndenter.tab_len


def _mixes_tabs(lines: list[str]) -> bool:
    leads = [t[: len(t) - len(t.lstrip(" \t"))] for t in lines if _is_code(t)]
    return any("\t" in lead for lead in leads) and any(" " in lead for lead in leads)


def _find_bad_dedent(lines: list[str]) -> tuple[int, int]:
    """(line, its indentation in columns) of the first line that dedents to no open block.

    Replays the parser's indentation stack. The indentation of the file's first line
    is ignored by the parser (no newline precedes it), so it is here too.
    """
    stack = [0]
    for number, text in enumerate(lines, 1):
        if not _is_code(text) or number == 1:
            continue
        indent = _columns(text)
        if indent > stack[-1]:
            stack.append(indent)
        else:
            while indent < stack[-1]:
                stack.pop()
            if indent != stack[-1]:
                return number, indent
    return max(len(lines), 1), 0


def _bad_dedent(path: str, lines: list[str], parsed: list[str]) -> Diagnostic:
    """C009 at the first line whose indentation matches no block, caret under its first word."""
    line, indent = _find_bad_dedent(parsed)
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    col = len(text) - len(text.lstrip(" \t")) + 1
    message = f"this line's indentation ({indent} columns) matches no enclosing block"
    deeper = next((n for n in range(line - 1, 0, -1) if _is_code(parsed[n - 1])), None)
    if deeper is not None:
        message += f": line {deeper} is indented by {_columns(parsed[deeper - 1])}"
    hint = "indent every line of a block by the same amount (two spaces is the convention)"
    if _mixes_tabs(lines):
        hint = f"{TAB_HINT}; {hint}"
    return Diagnostic("C009", Severity.ERROR, message,
                      _line_span(path, lines, line, col, len(text.strip())), hint)


def _blank(lines: list[str], line: int) -> None:
    """Blank a broken line, and the indented body under it if it was a block header."""
    if not (1 <= line <= len(lines)):
        return
    text = lines[line - 1]
    indent = len(text) - len(text.lstrip())
    lines[line - 1] = ""
    if text.strip() and not text.lstrip().startswith("#"):
        nxt = line
        while nxt < len(lines):
            following = lines[nxt]
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            lines[nxt] = ""
            nxt += 1
    if indent > 0:
        _blank_empty_header(lines, line, indent)


def _is_code(text: str) -> bool:
    return bool(text.strip()) and not text.lstrip().startswith("#")


def _blank_empty_header(lines: list[str], line: int, indent: int) -> None:
    """A block whose only lines were blanked would be a new error: blank its header too."""
    header = line - 1
    while header >= 1 and not (_is_code(lines[header - 1]) and _indent(lines[header - 1]) < indent):
        header -= 1
    if header < 1:
        return
    head_indent = _indent(lines[header - 1])
    nxt = header
    while nxt < len(lines):
        following = lines[nxt]
        if _is_code(following):
            if _indent(following) <= head_indent:
                break
            return  # the block still has a line
        nxt += 1
    _blank(lines, header)


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def source_text(text: str) -> str:
    """The text the parser reads: its lines joined by `\n`, with a `\n` at the end (so `\r\n` is read as `\n`)."""
    return "\n".join(text.splitlines()) + "\n"


def parse_text(text: str, path: str = "<string>") -> tuple[Tree | None, list[Diagnostic]]:
    """Parse one file. Returns the tree (None on syntax errors) and every syntax error."""
    if not text.endswith("\n"):
        text += "\n"
    original = text.splitlines()
    work = list(original)
    diagnostics: list[Diagnostic] = []
    parser = grammar_parser()
    seen_lines: set[int] = set()
    while len(diagnostics) < MAX_SYNTAX_ERRORS:
        source = "\n".join(work) + "\n"
        try:
            # the fast loop gives Lark's tree, or None where Lark would raise: then Lark raises
            tree = fast_parse(parser, source) or parser.parse(source)
        except (UnexpectedInput, DedentError) as err:
            diag = _diagnose(err, path, original, work)
            if diag.span.line in seen_lines:
                break  # blanking did not help; stop instead of looping
            seen_lines.add(diag.span.line)
            diagnostics.append(diag)
            _blank(work, diag.span.line)
            continue
        if may_nest_too_deep(source):
            diagnostics += _too_deep(tree, path, original)
        return (tree if not diagnostics else None), diagnostics
    return None, diagnostics


# Parse-tree nodes that nest a condition one level deeper.
_NESTING = frozenset({"not_", "all_of", "any_of"})


def may_nest_too_deep(text: str) -> bool:
    """Whether any statement may nest deeper than MAX_NESTING; False is a proof that none does.

    Each level is a node of its own with a word of its own (`not`, `and`, `or`) on the
    statement's one line, so a line with at most MAX_NESTING of these letters sequences
    (counted as substrings: an upper bound on the words) cannot hold a deeper condition.
    Saves walking the whole tree of a big journey (~5 % of loading 1,000 stages).
    """
    def words(s: str) -> int:
        return s.count("and") + s.count("or") + s.count("not")

    # no two of these words overlap (none ends with what another starts with), so each takes two characters
    # at least: a line shorter than that for MAX_NESTING + 1 of them holds too few (most lines: not counted)
    shortest = 2 * (MAX_NESTING + 1)
    return words(text) > MAX_NESTING and any(len(line) >= shortest and words(line) > MAX_NESTING
                                             for line in text.split("\n"))


def _too_deep(tree: Tree, path: str, lines: list[str]) -> list[Diagnostic]:
    """C062 for each statement whose condition nests deeper than MAX_NESTING.

    Everything after the parser (model builder, formatter, checks, engine) walks
    conditions recursively; this bound keeps them far from Python's recursion
    limit. So it is found here, on the parse tree, with an explicit stack: the
    tree of a hostile condition may be thousands of levels deep. The caret
    points at the first level too many.
    """
    found: dict[int, Diagnostic] = {}
    stack: list[tuple[Tree, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if node.data in _NESTING:
            depth += 1
            if depth > MAX_NESTING:
                meta = node.meta
                if meta.line not in found:
                    text = lines[meta.line - 1] if 1 <= meta.line <= len(lines) else ""
                    width = len(text[meta.column - 1:].split(" ", 1)[0])  # the first word of the level
                    found[meta.line] = Diagnostic(
                        "C062", Severity.ERROR,
                        f"this condition is nested too deeply: more than {MAX_NESTING} levels "
                        "of `not`, `and` and `or` inside each other",
                        _line_span(path, lines, meta.line, meta.column, width),
                        "write it flatter: `not not x` is `x`, `a and (b and c)` is `a and b and c`, "
                        "and `not (a or b)` is `not a and not b`",
                    )
                continue
        stack.extend((child, depth) for child in node.children if isinstance(child, Tree))
    return [found[line] for line in sorted(found)]


def read_source(path: str | Path) -> str:
    """Read a journey file as UTF-8 (BOM tolerated), bounded and never blocking (see dsl.source)."""
    from .source import read_journey_file

    return read_journey_file(path)
