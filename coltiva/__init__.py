"""Coltiva: a journey engine for B2B lead nurturing.

This package is the front door (the `coltiva` command and its subcommands); the
work is done by the layered packages `dsl` (language), `engine` (state machines,
store, runner) and `visualize` (diagrams).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
