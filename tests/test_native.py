"""The engine's hot path runs compiled by mypyc in the normal build, and its pure-Python sources behave the same.

`make setup` compiles engine.NATIVE_MODULES (setup.py); engine/__init__.py loads
the sources instead when COLTIVA_PURE=1 is set or a compiled file is missing or
stale. This file runs in both modes: in the normal build it demands the compiled
modules (a silent fallback would lose the speed unseen), and it runs the engine's
key tests again in a subprocess on the sources, where it demands the sources.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

import engine
from engine import NATIVE_MODULES, native_problem

ROOT = Path(__file__).resolve().parent.parent
PURE = os.environ.get("COLTIVA_PURE", "") not in ("", "0")

#: The engine's key tests, run again on the pure-Python modules: the step, the record, the typed plan, the
#: reference model (the step against an independent model of the rules).
KEY_TESTS = ["tests/test_engine_step.py", "tests/test_record_eq.py", "tests/test_compiled_plan.py",
             "tests/test_reference_model.py", "tests/test_native.py"]
KEY_SELECTION = "not seeded_workload and not lead_wide_rules and not key_tests_pass_on_the_sources"  # the reference model's generated streams stay


def _compiled(module: types.ModuleType) -> bool:
    """Whether `module` was loaded from a compiled extension, and its functions are not Python functions."""
    from_extension = str(module.__file__).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    functions = [v for v in vars(module).values()
                 if callable(v) and getattr(v, "__module__", None) == module.__name__ and not isinstance(v, type)]
    return from_extension and not any(isinstance(f, types.FunctionType) for f in functions)


def test_the_engine_in_use_is_the_one_this_run_asked_for():
    """The normal build runs the compiled modules; the COLTIVA_PURE=1 run (the subprocess below) the sources."""
    if PURE:
        assert not engine.NATIVE and engine.NATIVE_WHY == "COLTIVA_PURE is set"
    else:
        assert engine.NATIVE, f"the engine runs from its sources: {engine.NATIVE_WHY}"
    for name in NATIVE_MODULES:
        module = importlib.import_module(name)
        if PURE:
            assert str(module.__file__).endswith(".py") and not _compiled(module)
        else:
            assert _compiled(module), f"{name} is not the compiled module: {module.__file__}"


def test_the_plan_the_step_reads_is_made_of_native_classes():
    """The step reads the compiled journey, its stage plans and rules on every event: compiled, they are native
    classes (fields at fixed offsets; mypyc lists them in `__mypyc_attrs__`), not Python classes read by
    generic lookup."""
    from engine.compiled import CompiledJourney, EventRule, ScorePlan, Send, StagePlan, Transition
    from engine.record import Lead
    from engine.step import Context

    for cls in (CompiledJourney, StagePlan, Transition, EventRule, ScorePlan, Send, Lead, Context):
        native = hasattr(cls, "__mypyc_attrs__")
        assert native != PURE, f"{cls.__name__} is {'' if native else 'not '}a native class"
    assert importlib.import_module("engine.compiler").CompiledJourney is CompiledJourney  # one class, re-exported


def test_key_tests_pass_on_the_sources():
    """Deselected in the subprocess it starts (KEY_SELECTION), so it never runs itself again."""
    env = {**os.environ, "COLTIVA_PURE": "1"}
    env.pop("PYTEST_XDIST_WORKER", None)
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                          "-k", KEY_SELECTION, *KEY_TESTS], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout and "skipped" not in run.stdout


def _fake_build(tmp_path: Path, names: tuple[str, ...]) -> None:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    for name in names:
        (tmp_path / f"{name}.py").write_text("")
        (tmp_path / f"{name}{suffix}").write_bytes(b"")
    (tmp_path / f"group__mypyc{suffix}").write_bytes(b"")


def test_a_fresh_build_is_used(tmp_path):
    _fake_build(tmp_path, ("a", "b"))
    assert native_problem(tmp_path, ("a", "b"), "group__mypyc", environ={}) is None


@pytest.mark.parametrize("value", ["1", "yes"])
def test_coltiva_pure_forces_the_sources(tmp_path, value):
    _fake_build(tmp_path, ("a",))
    assert native_problem(tmp_path, ("a",), "group__mypyc", environ={"COLTIVA_PURE": value}) == "COLTIVA_PURE is set"
    assert native_problem(tmp_path, ("a",), "group__mypyc", environ={"COLTIVA_PURE": "0"}) is None


def test_a_missing_module_or_library_means_the_sources(tmp_path):
    _fake_build(tmp_path, ("a",))
    (tmp_path / "b.py").write_text("")
    assert "b is not compiled" in str(native_problem(tmp_path, ("a", "b"), "group__mypyc", environ={}))
    assert "not compiled" in str(native_problem(tmp_path, ("a",), "other__mypyc", environ={}))


def test_a_source_edited_after_the_build_means_the_sources(tmp_path):
    """The compiled code would not be the code one reads: every module falls back, until `make setup` rebuilds."""
    _fake_build(tmp_path, ("a", "b"))
    later = time.time() + 10
    os.utime(tmp_path / "b.py", (later, later))
    assert "b.py is newer" in str(native_problem(tmp_path, ("a", "b"), "group__mypyc", environ={}))


def test_a_module_outside_the_native_set_loads_from_its_source():
    """A compiled file an older build left (a module no longer compiled) never shadows its source."""
    from engine import _Sources

    spec = _Sources(("engine.step",)).find_spec("engine.compiled")
    assert spec is not None and str(spec.origin).endswith("compiled.py")
    assert _Sources(("engine.step",)).find_spec("engine.step") is None  # the compiled one, found the usual way
    assert _Sources(()).find_spec("engine.nonexistent") is None
    assert _Sources(()).find_spec("dsl.model") is None
    assert importlib.import_module("engine.compiler").__file__.endswith("compiler.py")  # not in NATIVE_MODULES
