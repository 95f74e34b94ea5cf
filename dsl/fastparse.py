"""The same LALR parse as Lark's, in one loop, for text that parses.

Lark's own run costs ~10 Python calls per token: the lexer thread, the
contextual lexer, the line counter, the `Token` constructor, the post-lexer's
generators (indentation), the parser state, and three tree-building wrappers
per reduction. Together they were ~75 % of loading a 1,000-stage journey.
This module runs Lark's own tables in one loop: the contextual lexer's
regular expression for each parser state (Lark's scanners, the same
keyword-versus-word rules), Lark's LALR table, the indentation rules of
`lark.indenter.Indenter`, and the tree shaping and positions of
`lark.parse_tree_builder` (`?rule`, `_rule`, filtered keywords, `meta` and
its `container_*` fields). The tree it gives is equal, node for node and
position for position, to Lark's (`tests/test_fastparse.py`).

It never reports an error: at the first thing it does not expect (a
character no terminal matches, a token the table refuses, a bad dedent) it
returns None and the caller parses with Lark, which raises exactly the
error it always raised. So syntax errors and their messages stay Lark's.

`fast_build` runs the same loop without making the tree: each reduction calls
the model builder's method for its rule at once (`dsl.builder.build_text`),
with the node's position as Lark would set it; tokens that no rule keeps are
stacked as their positions only. The model is the one built from the tree,
field for field (`tests/test_fastparse.py`).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from lark import Lark, Token, Tree
from lark.parse_tree_builder import maybe_create_child_filter
from lark.parsers.lalr_analysis import Shift
from lark.tree import Meta

__all__ = ["fast_parse", "fast_build", "Method"]

# The standard library's regular-expression parser (what `re.compile` reads a pattern with).
_sre = importlib.import_module("re._parser")
_c = importlib.import_module("re._constants")

#: The ignored terminal this loop knows how to skip (the grammar's `%ignore`).
_SPACES = re.compile("[\t ]+")


def _may_start_with(pattern: str, chars: str) -> bool:
    """Whether a match of `pattern` may begin with one of `chars` (True when unsure)."""
    return any(_first(_sre.parse(pattern), ch)[0] for ch in chars)


def _first(items, ch: str) -> tuple[bool, bool]:
    """(may the sequence's match begin with `ch`, may it match the empty string), from re's parse tree."""
    for op, arg in items:
        if op is _c.LITERAL:
            yes, empty = chr(arg) == ch, False
        elif op is _c.NOT_LITERAL or op is _c.ANY:
            yes, empty = chr(arg) != ch if op is _c.NOT_LITERAL else True, False
        elif op is _c.IN:
            yes, empty = _in_set(arg, ch), False
        elif op is _c.BRANCH:
            found = [_first(branch, ch) for branch in arg[1]]
            yes, empty = any(y for y, _ in found), any(e for _, e in found)
        elif op is _c.SUBPATTERN:
            yes, empty = _first(arg[-1], ch)
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
            yes, empty = _first(arg[2], ch)
            empty = empty or arg[0] == 0
        elif op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            yes, empty = False, True  # zero width: it restricts, never adds, a first character
        else:
            return True, True  # anything else: unsure
        if yes:
            return True, empty
        if not empty:
            return False, False
    return False, True


def _in_set(items, ch: str) -> bool:
    """Whether a character class `[...]` may match `ch` (True when unsure)."""
    negate, hit = False, False
    for op, arg in items:
        if op is _c.NEGATE:
            negate = True
        elif op is _c.LITERAL:
            hit = hit or chr(arg) == ch
        elif op is _c.RANGE:
            hit = hit or arg[0] <= ord(ch) <= arg[1]
        elif op is _c.CATEGORY and arg in (_c.CATEGORY_DIGIT, _c.CATEGORY_WORD) and not negate:
            continue  # \d and \w never match a space or a tab
        else:
            return True
    return hit != negate

_new_str = str.__new__


@dataclass(frozen=True, slots=True)
class _Rule:
    """How one grammar rule reduces: Lark's `ParseTreeBuilder` wrappers, read once."""

    data: str                                  # the tree's name (alias, else the rule's)
    size: int                                  # symbols popped
    origin: str                                # the nonterminal pushed (goto)
    keep: tuple[tuple[int, bool], ...] | None  # (child index, inline its children); None: keep all
    expand1: bool                              # `?rule`: a single child replaces the node
    unit: bool                                 # `?rule: x`: Lark gives x back untouched (see _run)
    inline: bool                               # `_rule`: its children go into its parent's (fast_build)


@dataclass(frozen=True, slots=True)
class _Tables:
    """Everything the loop reads, built from the process's one Lark parser."""

    actions: dict                 # state -> {symbol: (is_shift, next state or _Rule)}
    scanners: dict                # state -> (its terminals' one regex's `match`, keyword fullmatch by type)
    start: int
    end: int
    ignore: frozenset
    newline: frozenset
    dropped: frozenset            # token types at no kept position of any rule (fast_build stacks their positions)
    nl: str
    indent: str
    dedent: str
    tab_len: int


@functools.cache
def _tables(parser: Lark) -> _Tables | None:
    """Lark's tables in the shape the loop wants; None if the parser is not the shape this loop runs.

    None too if Lark's internals are not where this module reads them (another Lark version):
    then every text is parsed by Lark, as before this module, only slower.
    """
    try:
        return _read_tables(parser)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        return None


def _read_tables(parser: Lark) -> _Tables | None:
    frontend = parser.parser
    postlex = getattr(frontend.lexer, "postlexer", None)
    lexer = getattr(frontend.lexer, "lexer", None)
    lalr = frontend.parser.parser
    table = lalr.parse_table
    if (postlex is None or lexer is None or not hasattr(lexer, "lexers") or postlex.OPEN_PAREN_types
            or any(isinstance(key, str) for key in lalr.callbacks)):
        return None  # not LALR + contextual lexer + an indenter without brackets, or terminal callbacks
    rules: dict = {}
    kept: set[str] = set()
    for rule in lalr.callbacks:
        options = rule.options
        child_filter = maybe_create_child_filter(rule.expansion, options.keep_all_tokens, False, [])
        kept.update(rule.expansion[i].name for i in (
            range(len(rule.expansion)) if child_filter is None else (i for i, _ in child_filter.args[0])))
        rules[rule] = _Rule(
            data=rule.alias or options.template_source or rule.origin.name,
            size=len(rule.expansion),
            origin=str(rule.origin.name),
            keep=tuple(child_filter.args[0]) if child_filter is not None else None,
            expand1=bool(options.expand1 and not rule.alias),
            unit=bool(options.expand1 and not rule.alias and child_filter is None and len(rule.expansion) == 1),
            inline=not rule.alias and rule.origin.name.startswith("_"),
        )
        if rules[rule].inline and rules[rule].expand1:
            return None  # `?_rule`: Lark inlines the children of its one child; fast_build does not

    actions = {
        state: {str(symbol): (action is Shift, rules[arg] if action is not Shift else arg)
                for symbol, (action, arg) in row.items()}
        for state, row in table.states.items()
    }
    spaces = _SPACES.pattern
    if [t.pattern.to_regexp() for t in parser.terminals if t.name in lexer.root_lexer.ignore_types] != [spaces]:
        return None
    if any(_may_start_with(t.pattern.to_regexp(), " \t") for t in parser.terminals
           if t.name not in lexer.root_lexer.ignore_types):
        return None  # a terminal may start with a space: spaces cannot be skipped before matching
    root = lexer.root_lexer
    scanners = _Scanners(lexer.lexers, spaces)
    ignore, newline = root.ignore_types, root.newline_types
    terminals = {t.name for t in parser.terminals} | {postlex.INDENT_type, postlex.DEDENT_type, "$END"}
    return _Tables(actions, scanners, table.start_states["start"], table.end_states["start"],
                   frozenset(ignore), frozenset(newline), frozenset(terminals - kept), postlex.NL_type,
                   postlex.INDENT_type, postlex.DEDENT_type, postlex.tab_len)


class _Scanners(dict):
    """State -> (its one regex's `match`, keyword fullmatch by terminal), built when a state is first met.

    Lark builds its per-state lexers lazily too: building all 456 at once costs ~40 ms,
    which a small journey would pay for states it never reaches.
    """

    def __init__(self, lexers: dict, spaces: str):
        super().__init__()
        self.lexers, self.spaces = lexers, spaces
        self.built: dict[int, tuple] = {}

    def __missing__(self, state):
        basic = self.lexers[state]
        entry = self.built.get(id(basic))
        if entry is None:
            scanner = basic.scanner
            if any(type(cb).__name__ != "UnlessCallback" for cb in basic.callback.values()):
                raise KeyError(state)  # user lexer callbacks: not run here (the caller lets Lark parse)
            if len(scanner._mres) != 1:
                raise KeyError(state)  # over 100 terminals in one state: Lark splits its regex; not run here
            keywords = {name: callback.scanner.fullmatch for name, callback in basic.callback.items()}
            # spaces are ignored and no other terminal starts with one, so each match skips them first
            mre = scanner._mres[0]
            entry = self.built[id(basic)] = (re.compile(f"(?:{self.spaces})?(?:{mre.pattern})", mre.flags).match,
                                             keywords)
        self[state] = entry
        return entry


def _token(type_: str, value: str, start: int | None, line: int | None, column: int | None,
           end_line: int | None, end_column: int | None, end: int | None) -> Token:
    """A `lark.Token`, its fields set directly (what `Token.__new__` does, without its two calls)."""
    tok = _new_str(Token, value)
    tok.type = type_
    tok.value = value
    tok.start_pos = start
    tok.line = line
    tok.column = column
    tok.end_line = end_line
    tok.end_column = end_column
    tok.end_pos = end
    return tok


def _reduce(rule, children):  # (_Rule, list) -> Tree | Token; untyped: Meta's container_* fields are Lark's
    """Lark's ChildFilterLALR_NoPlaceholders, ExpandSingleChild and PropagatePositions, in one call."""
    keep = rule.keep
    if keep is None:
        filtered = children
    else:
        filtered = []
        for i, inline in keep:
            if inline:
                if filtered:
                    filtered += children[i].children
                else:
                    filtered = children[i].children
            else:
                filtered.append(children[i])
    if rule.expand1 and len(filtered) == 1:
        res = filtered[0]
        if type(res) is not Tree:
            return res
        meta = res.meta
        fresh = False
    else:
        meta = Meta()
        res = Tree(rule.data, filtered, meta)
        fresh = True
    for c in children:  # the first child that has a position
        if type(c) is Token:
            line, column, start = c.line, c.column, c.start_pos
            break
        m = c._meta
        if not m.empty:
            line, column, start = m.container_line, m.container_column, m.container_start_pos
            break
    else:
        return res  # nothing positioned: neither a start nor an end
    if fresh or not hasattr(meta, "line"):
        meta.line, meta.column, meta.start_pos, meta.empty = line, column, start, False
    meta.container_line, meta.container_column, meta.container_start_pos = line, column, start
    for c in reversed(children):  # the last one
        if type(c) is Token:
            line, column, end = c.end_line, c.end_column, c.end_pos
            break
        m = c._meta
        if not m.empty:
            line, column, end = m.container_end_line, m.container_end_column, m.container_end_pos
            break
    if fresh or not hasattr(meta, "end_line"):
        meta.end_line, meta.end_column, meta.end_pos, meta.empty = line, column, end, False
    meta.container_end_line, meta.container_end_column, meta.container_end_pos = line, column, end
    return res


def _positioned(value) -> bool:
    """Whether a tree-mode stack value has a position (a token always has)."""
    return type(value) is Token or not value._meta.empty


def _whole_tree(value) -> Tree | None:
    return value if type(value) is Tree else None


def fast_parse(parser: Lark, text: str) -> Tree | None:
    """The tree `parser.parse(text)` gives, or None wherever Lark would raise (then let Lark raise it)."""
    tables = _tables(parser)
    if tables is None:
        return None
    try:
        return _run(tables, text, _reduce, _positioned, _whole_tree)
    except (KeyError, IndexError, AttributeError, TypeError):
        return None  # anything unexpected: Lark decides, and says why


#: What a rule's method is called with: its position (line, column, end line, end column; None when it
#: has none) and its children (tokens, and what its child rules' methods gave).
Method = Callable[[Optional[tuple[int, int, int, int]], list], object]


def fast_build(parser: Lark, text: str, methods: Callable[[str], Method]) -> list | None:
    """What `start`'s method gives when each rule's method is called as the rule is reduced, or None
    wherever Lark would raise.

    The same as building the tree `fast_parse` gives bottom-up (each node's method called with its
    position and its built children, a `_rule`'s children given to its parent, a `?rule` of one child
    that child), without making the tree: each reduction calls its rule's method at once. `methods(name)`
    is the method of the rule (or alias) `name`. The methods must not fail on a tree Lark accepts; a
    KeyError, IndexError, AttributeError or TypeError makes this give None, as for text that does not parse.
    """
    tables = _tables(parser)
    if tables is None:
        return None
    try:
        return _run(tables, text, _builder(methods), None, _whole_built, tables.dropped)
    except (KeyError, IndexError, AttributeError, TypeError):
        return None


def _whole_built(entry):
    return entry[0] if type(entry) is tuple else None


def _builder(methods: Callable[[str], Method]):
    """fast_build's reduction: `_reduce`'s child filter and positions, a method call instead of a Tree.

    The stack holds tokens as they are and each reduced rule as (value, line, column, end line, end
    column) of what Lark's `meta.container_*` would be (None, None, None, None: no position)."""
    found: dict[str, Method] = {}

    def reduce(rule, children):
        # `_reduce`'s child filter, on stack entries (written out again: a helper shared by both would
        # be one more call per reduction, ~47,000 for 1,000 stages)
        keep = rule.keep
        if keep is None:
            kept = children
        else:
            kept = []
            for i, inline in keep:
                if inline:  # a `_rule`'s value: its kept children, as they were on the stack
                    if kept:
                        kept += children[i][0]
                    else:
                        kept = children[i][0]  # taken over, as Lark does: a list `x*` grows in place
                else:
                    kept.append(children[i])
        for c in children:  # the first child that has a position
            if type(c) is Token:
                line, column = c.line, c.column
                break
            if c[1] is not None:
                line, column = c[1], c[2]
                break
        else:
            line = column = end_line = end_column = None
        if line is not None:
            for c in reversed(children):  # the last one
                if type(c) is Token:
                    end_line, end_column = c.end_line, c.end_column
                    break
                if c[1] is not None:
                    end_line, end_column = c[3], c[4]
                    break
        if rule.expand1 and len(kept) == 1:
            only = kept[0]
            if type(only) is Token:
                return only
            return (only[0], line, column, end_line, end_column) if line is not None else only
        if rule.inline:
            return (kept, line, column, end_line, end_column)
        method = found.get(rule.data)
        if method is None:
            method = found[rule.data] = methods(rule.data)
        value = method(None if line is None else (line, column, end_line, end_column),
                       [c if type(c) is Token else c[0] for c in kept])
        return (value, line, column, end_line, end_column)

    return reduce


def _run(t, text, reduce, positioned, whole, dropped=frozenset()):  # (_Tables, str, ...) -> the root's value | None
    """The loop. `dropped`: token types that no rule keeps, stacked as (None, line, column, end line, end column)
    instead of a `Token` (fast_build: their positions count, nothing else does; over half of all tokens)."""
    actions, scanners, ignore, newline = t.actions, t.scanners, t.ignore, t.newline
    nl_type, indent_type, dedent_type, tab_len, end_state = t.nl, t.indent, t.dedent, t.tab_len, t.end
    token = _token

    def make(type_, value, start, line, column, end_line, end_column, end):
        if type_ in dropped:
            return (None, line, column, end_line, end_column)
        return token(type_, value, start, line, column, end_line, end_column, end)

    states = [t.start]
    values: list = []
    push_state, push_value = states.append, values.append
    levels = [0]
    pos, line, line_start, size = 0, 1, 0, len(text)
    last = None  # the last token's positions (the indenter's end-of-file dedents borrow them)
    ended = False
    while not ended:
        if pos >= size:  # the end: close the open blocks, then `$END`
            batch: tuple | list = [(dedent_type, make(dedent_type, "", *last)) for _ in levels[1:]]
            batch.append(("$END", make("$END", "", 0, 1, 1, 1, 1, 0)))
            ended = True
        else:
            match, keywords = scanners[states[-1]]
            found = match(text, pos)
            if found is None:
                return None  # no terminal matches here: Lark's UnexpectedCharacters
            type_ = found.lastgroup
            start, end = found.span(type_)  # spaces before a token are skipped by the same match (see _tables)
            pos = end
            if type_ in ignore:  # spaces with nothing after them on this line that this state takes
                continue
            value = text[start:end]
            column = start - line_start + 1
            start_line = line
            if type_ in newline and "\n" in value:
                line += value.count("\n")
                line_start = start + value.rindex("\n") + 1
            end_column = end - line_start + 1
            if type_ in keywords:
                type_ = keywords[type_](value) or type_
            last = (start, start_line, column, line, end_column, end)
            if type_ in dropped:
                tok = (None, start_line, column, line, end_column)
            else:
                tok = token(type_, value, start, start_line, column, line, end_column, end)
            batch = ((type_, tok),)
            if type_ == nl_type:  # the indenter: blocks open and close after a newline
                spaces = value.rsplit("\n", 1)[1]
                indent = spaces.count(" ") + spaces.count("\t") * tab_len
                if indent > levels[-1]:
                    levels.append(indent)
                    batch = ((type_, tok),
                             (indent_type, make(indent_type, spaces, start, start_line, column, line, end_column, end)))
                elif indent < levels[-1]:
                    batch = [(type_, tok)]
                    while indent < levels[-1]:
                        levels.pop()
                        batch.append((dedent_type, make(dedent_type, spaces, start, start_line, column, line,
                                                        end_column, end)))
                    if indent != levels[-1]:
                        return None  # Lark's DedentError
        for type_, tok in batch:  # Lark's ParserState.feed_token: reductions, then the shift
            while True:
                shift, arg = actions[states[-1]][type_]
                if shift:
                    push_state(arg)
                    push_value(tok)
                    break
                if arg.unit and (positioned is None or positioned(values[-1])):
                    # `?rule: x` (a fourth of all reductions): Lark returns x, and its positions would
                    # be set from x itself, so x stays on the stack as it is
                    del states[-1]
                else:
                    n = arg.size
                    if n:
                        children = values[-n:]
                        del states[-n:]
                        del values[-n:]
                    else:
                        children = []
                    push_value(reduce(arg, children))
                goto = actions[states[-1]][arg.origin][1]
                push_state(goto)
                if goto == end_state:  # only `start` leads there, reduced on `$END`: the tree is whole
                    return whole(values[-1]) if ended else None
    return None  # `$END` was shifted: Lark asserts this never happens
