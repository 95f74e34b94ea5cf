"""Files to one journey: read, parse, resolve `include`s (with cycle detection), merge.

`parse_journey` gives one file's model exactly as written (what the formatter
needs); `load_journey` gives the merged, checked journey (what everything else
needs), with every diagnostic of every file involved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import model as m
from .builder import build_journey, build_text
from .comments import collect_comments
from .diagnostics import Diagnostic, Severity, has_errors, sort_key
from .errors import SourceError
from .limits import MAX_FILE_BYTES, MAX_VALUE
from .parser import grammar_parser, may_nest_too_deep, parse_text, source_text
from .source import read_journey_file

if TYPE_CHECKING:
    from .catalogue import EventCatalogue

__all__ = ["Loaded", "parse_journey", "load_journey", "load_text", "load_sources", "gc_paused"]


@dataclass
class Loaded:
    """A loading result: the journey (None if unusable), diagnostics, and the sources read."""

    journey: m.Journey | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    #: a shared block for `include` (no `journey` line, no stages): checked for syntax, never run
    fragment: bool = False
    #: every file merged so far, so a file reached by two includes is merged once
    included: set = field(default_factory=set, repr=False)
    #: when set, includes are read from these texts (a store's copy), never from the disk
    files: dict[str, str] | None = field(default=None, repr=False)
    #: the event catalogue the journey was checked against (`--catalogue`, or its `catalogue` line)
    catalogue: EventCatalogue | None = None

    def shown_sources(self) -> dict[str, str]:
        """The texts diagnostics quote: the journey's files and its catalogue's."""
        if self.catalogue is None:
            return self.sources
        return {**self.sources, self.catalogue.path: self.catalogue.text}

    @property
    def ok(self) -> bool:
        return self.journey is not None and not has_errors(self.diagnostics)


def parse_journey(text: str, path: str = "<string>") -> tuple[m.Journey | None, list[Diagnostic]]:
    """One file's model as written (includes unresolved), with its syntax diagnostics.

    Text that parses is built as it is parsed (`build_text`), without a syntax tree; text with a
    syntax error, or that may nest too deep (C062 is found on the tree), goes through the tree.
    """
    built = None
    source = source_text(text)
    if not may_nest_too_deep(source):
        built = build_text(grammar_parser(), source, path, text)
    if built is not None:
        journey, diagnostics = built
    else:
        tree, diagnostics = parse_text(text, path)
        if tree is None:
            return None, diagnostics
        journey, more = build_journey(tree, path, text)
        diagnostics += more
    journey = dataclasses.replace(journey, comments=tuple(collect_comments(text)))
    return journey, diagnostics


def _merge(base: m.Journey, part: m.Journey) -> m.Journey:
    return dataclasses.replace(
        base,
        stages=base.stages + part.stages,
        scoring=base.scoring + part.scoring,
        decay=base.decay or part.decay,
        fit=base.fit + part.fit,
        exits=base.exits + part.exits,
        enrollments=base.enrollments + part.enrollments,
        caps=base.caps + part.caps,
        zones=base.zones + part.zones,
        windows=base.windows + part.windows,
        contents=base.contents + part.contents,
        moves=base.moves + part.moves,
        lead_scoring=base.lead_scoring + part.lead_scoring,
        lead_decay=base.lead_decay or part.lead_decay,
        lead_caps=base.lead_caps + part.lead_caps,
        priority=base.priority or part.priority,
        goals=base.goals + part.goals,
        reentry=base.reentry or part.reentry,
        catalogue=base.catalogue or part.catalogue,
    )


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _real(path: Path) -> Path:
    """The path with symlinks resolved; a loop of links stays unresolved (reading it then says so)."""
    return Path(os.path.realpath(path))


def _resolve(
    journey: m.Journey,
    directory: Path,
    stack: tuple[Path, ...],
    loaded: Loaded,
) -> m.Journey:
    for inc in journey.includes:
        if len(inc.path) > MAX_VALUE:
            loaded.diagnostics.append(
                Diagnostic("C063", Severity.ERROR, f"an include path is at most {MAX_VALUE:,} characters long; "
                           f"this one has {len(inc.path):,}", inc.span,
                           "move the shared file nearer, or give it a shorter path")
            )
            continue
        try:
            target = _real(directory / inc.path)
        except (OSError, ValueError) as err:  # a NUL in the path
            loaded.diagnostics.append(
                Diagnostic("C020", Severity.ERROR, f"cannot read included file `{inc.path}`: {err}", inc.span,
                           "write the path of a file, relative to the including file")
            )
            continue
        if target in loaded.included and target not in stack:
            continue  # already merged through another include: each file counts once
        if target in stack:
            chain = " -> ".join(_display(p) for p in stack + (target,))
            loaded.diagnostics.append(
                Diagnostic("C021", Severity.ERROR, f"include cycle: {chain}", inc.span,
                           "an included file must not include, directly or not, the file that includes it")
            )
            continue
        if loaded.files is not None:
            found = _stored_file(loaded.files, directory, inc.path)
            if found is None:
                loaded.diagnostics.append(
                    Diagnostic("C020", Severity.ERROR, f"included file `{inc.path}` is not among the stored sources",
                               inc.span, "the store keeps every file a journey was run with; re-run the journey")
                )
                continue
            name, text = found
        else:
            try:
                text = read_journey_file(target)
            except SourceError as err:
                loaded.diagnostics.append(
                    Diagnostic("C020", Severity.ERROR, f"cannot read included file `{inc.path}`: {err.reason}",
                               inc.span, f"the path is relative to {_display(directory) or '.'}/; an included "
                               f"file is a regular file of at most {MAX_FILE_BYTES // 2**20} MiB")
                )
                continue
            name = _display(target)
        loaded.sources[name] = text
        loaded.included.add(target)
        part, diagnostics = parse_journey(text, name)
        loaded.diagnostics.extend(diagnostics)
        if part is None:
            continue
        if part.name is not None:
            loaded.diagnostics.append(
                Diagnostic("C022", Severity.WARNING, "an included file's `journey` name is ignored",
                           part.span, "only the including file names the journey")
            )
        part = _resolve(part, target.parent, stack + (target,), loaded)
        journey = _merge(journey, part)
    return journey


def _stored_file(files: dict[str, str], directory: Path, include: str) -> tuple[str, str] | None:
    """(name, text) of an included file among stored sources: by its path, else by its longest path suffix.

    Stored names are the paths as they were shown when the journey was run
    (relative to that working directory), so the same include is found again
    wherever the store is opened from.
    """
    wanted = os.path.normpath(directory / include)
    for name, text in files.items():
        if os.path.normpath(name) == wanted:
            return name, text
    parts = Path(wanted).parts
    for size in range(len(parts), 0, -1):
        tail = parts[-size:]
        matches = [name for name in files if Path(os.path.normpath(name)).parts[-size:] == tail]
        if len(matches) == 1:
            return matches[0], files[matches[0]]
        if matches:
            return None  # ambiguous: never guess between two files
    return None


def load_sources(sources: dict[str, str], check: bool = True) -> Loaded:
    """Load a journey from stored sources: the first is the journey's file, the others its includes.

    The model comes out exactly as when it was run (same file names, same lines),
    so rule descriptions and positions agree between the process that ran a
    journey and any process that reopens it from a store.
    """
    path, text = next(iter(sources.items()))
    return load_text(text, path, Path(path).parent, check=check, files=dict(sources))


@contextlib.contextmanager
def gc_paused():
    """The cyclic garbage collector off while a journey loads or compiles (restored as it was).

    Parsing and building a big journey allocate hundreds of thousands of
    objects and free almost none, so the collector runs again and again over a
    growing heap for nothing: ~20 % of loading a 1,000-stage journey.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_text(text: str, path: str = "<string>", directory: Path | None = None, check: bool = True,
              files: dict[str, str] | None = None, catalogue: str | os.PathLike | None = None) -> Loaded:
    """Load a journey from text; `directory` resolves includes (default: the current one).

    With `files`, includes are read from that map (see `load_sources`), never from the disk.
    With `catalogue` (a file), the journey is checked against that event catalogue,
    whatever its own `catalogue` line says.
    """
    with gc_paused():
        return _load_text(text, path, directory, check, files, catalogue)


def _load_text(text: str, path: str, directory: Path | None, check: bool, files: dict[str, str] | None,
               catalogue: str | os.PathLike | None) -> Loaded:
    from .checks import run_checks

    loaded = Loaded(None, [], {path: text}, files=files)
    journey, diagnostics = parse_journey(text, path)
    loaded.diagnostics.extend(diagnostics)
    if journey is None:
        return loaded
    base = directory if directory is not None else Path.cwd()
    own = _real(base / Path(path).name) if path != "<string>" else _real(base) / "<string>"
    journey = _resolve(journey, base, (own,), loaded)
    empty = journey == m.Journey(name=None)
    if journey.name is None and not journey.stages and not empty:
        loaded.fragment = True  # scoring, fit or content shared by journeys that include it
        if check and not has_errors(loaded.diagnostics):  # drawn on its own: its texts must fit a diagram
            from .checks.names import check_lengths

            loaded.diagnostics.extend(check_lengths(journey))
        loaded.journey = journey
        loaded.diagnostics.sort(key=sort_key)
        return loaded
    if empty:
        loaded.diagnostics.append(
            Diagnostic("C023", Severity.ERROR, "the file is empty", m.Span(path, 1, 1, 1, 2),
                       'a journey starts with a line like `journey "Webinar follow-up"`, then its stages')
        )
    elif journey.name is None:
        loaded.diagnostics.append(
            Diagnostic("C023", Severity.ERROR, "the journey has no name",
                       m.Span(path, 1, 1, 1, 2), 'start the file with a line like `journey "Webinar follow-up"`')
        )
    if check and not has_errors(loaded.diagnostics):
        loaded.diagnostics.extend(run_checks(journey))
    if check and files is None:
        _check_catalogue(journey, base, catalogue, loaded)
    loaded.journey = journey
    loaded.diagnostics.sort(key=sort_key)
    return loaded


def _check_catalogue(journey: m.Journey, base: Path, explicit, loaded: Loaded) -> None:
    """Read the event catalogue (`--catalogue`, else the journey's `catalogue` line) and check against it."""
    from .catalogue import check_journey, read_catalogue

    if explicit is not None:
        found, diagnostics = read_catalogue(explicit)
    elif journey.catalogue is not None:
        line = journey.catalogue
        # the journey's own file is in `base`; an included file's name is relative to the working directory
        own = line.span.file in ("<string>", "<generated>", journey.path)
        here = base if own else Path(line.span.file).parent
        found, diagnostics = read_catalogue(os.path.normpath(here / line.path), line.span)
    else:
        return
    loaded.diagnostics.extend(diagnostics)
    loaded.catalogue = found
    if found is not None and not has_errors(diagnostics):
        loaded.diagnostics.extend(check_journey(journey, found))


def load_journey(path: str | os.PathLike, check: bool = True, catalogue: str | os.PathLike | None = None) -> Loaded:
    """Read, parse, resolve includes and check one journey file (against an event catalogue, if given)."""
    text = read_journey_file(path)  # SourceError (a ColtivaError) says why not
    return load_text(text, str(path), Path(path).parent, check=check, catalogue=catalogue)
