"""Comments, found beside the parser (which swallows them with newlines) so `fmt` keeps them."""

from __future__ import annotations

from .model import Comment

__all__ = ["collect_comments", "comment_start"]


def comment_start(line: str) -> int | None:
    """Index of the `#` that starts a comment on this line, ignoring `#` inside quotes."""
    if "#" not in line:
        return None  # most lines: no need to walk them character by character
    in_string = False
    i = 0
    while i < len(line):
        ch = line[i]
        if in_string:
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "#":
            return i
        i += 1
    return None


def collect_comments(text: str) -> list[Comment]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        at = comment_start(line)
        if at is not None:
            out.append(Comment(number, at + 1, line[at:].rstrip()))
    return out
