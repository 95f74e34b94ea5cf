"""The engine. Its hot path runs compiled by mypyc when `make setup` built it, else as plain Python.

`make setup` compiles NATIVE_MODULES in place (setup.py: `python setup.py build_ext
--inplace`), beside their sources; Python then imports the compiled files first. The
sources stay the fallback, used for all of them at once (they call each other
natively, so never a mix): when COLTIVA_PURE=1 is set, when one is not built, or
when a source is newer than its compiled file (an edit not rebuilt yet: the
compiled code would not be the code you read). `NATIVE` says which is in use and
`NATIVE_WHY` why not (docs/decisions.md, "The hot path compiled with mypyc").
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from typing import Mapping

__all__ = ["NATIVE_MODULES", "NATIVE_GROUP", "NATIVE", "NATIVE_WHY", "native_problem", "compiled_file"]

#: The modules compiled by mypyc (where it pays: docs/performance.md), each with its source beside it.
NATIVE_MODULES = ("engine.conditions", "engine.record", "engine.compiled", "engine.timers", "engine.step")
#: mypyc's group: its shared library (the compiled code of every module) is `engine/native__mypyc.*.so`.
NATIVE_GROUP = "engine.native"

_HERE = Path(__file__).resolve().parent


def compiled_file(folder: Path, name: str) -> Path | None:
    """The compiled extension of module `name` (its last part) in `folder` for this interpreter, if built."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def native_problem(folder: Path, names: tuple[str, ...], library: str,
                   environ: Mapping[str, str] = os.environ) -> str | None:
    """Why the modules `names` (last parts) in `folder` must run from their sources, or None if the compiled ones
    fit; `library`: the name of the compiled group's shared library in `folder`."""
    if environ.get("COLTIVA_PURE", "") not in ("", "0"):
        return "COLTIVA_PURE is set"
    if compiled_file(folder, library) is None:
        return "the engine is not compiled (run `make setup`)"
    for name in names:
        built = compiled_file(folder, name)
        if built is None:
            return f"{name} is not compiled (run `make setup`)"
        if built.stat().st_mtime < (folder / f"{name}.py").stat().st_mtime:
            return f"{name}.py is newer than its compiled file (run `make setup` to rebuild)"
    return None


class _Sources:
    """A meta path finder that loads the engine's modules from their .py sources, ahead of compiled files: all of
    them when the compiled ones must not run, else those not in NATIVE_MODULES (a file left by an older build)."""

    def __init__(self, native: tuple[str, ...]):
        self.native = native

    def find_spec(self, fullname: str, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        source = _HERE / f"{name}.py"
        if package != __name__ or fullname in self.native or not source.exists():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


#: Why the engine runs its hot path from sources (None: compiled, the normal build).
NATIVE_WHY = native_problem(_HERE, tuple(name.rpartition(".")[2] for name in NATIVE_MODULES),
                            NATIVE_GROUP.rpartition(".")[2] + "__mypyc")
#: Whether NATIVE_MODULES are the compiled ones.
NATIVE = NATIVE_WHY is None
sys.meta_path.insert(0, _Sources(NATIVE_MODULES if NATIVE else ()))
