"""The compiled hot path: `python setup.py build_ext --inplace` (run by `make setup`) compiles engine.NATIVE_MODULES.

mypyc (shipped with mypy) turns each module into a C extension written beside its
source; engine/__init__.py falls back to the sources when they are absent or stale.
Only an explicit `build_ext` compiles: `pip install -e .` (both virtual environments
run it, the Flink one while the tests run) stays a pure-Python install and never
rewrites a compiled file in use. Everything else about the package is in pyproject.toml.
"""

import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from engine import NATIVE_GROUP, NATIVE_MODULES  # noqa: E402

ext_modules = []
if "build_ext" in sys.argv[1:]:
    from mypyc.build import mypycify

    ext_modules = mypycify([name.replace(".", "/") + ".py" for name in NATIVE_MODULES], group_name=NATIVE_GROUP,
                           opt_level="3")

setup(ext_modules=ext_modules)
