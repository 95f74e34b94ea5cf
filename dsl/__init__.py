"""The journey language: parse, build the model, check, format.

`load_journey(path)` is the front door: it returns the merged journey and every
diagnostic of every file it read.
"""

from .diagnostics import Diagnostic, Severity, has_errors, render_plain, to_json
from .errors import ColtivaError, EventError, JourneyError, StoreError
from .loader import Loaded, load_journey, load_text, parse_journey
from .model import Journey

__all__ = [
    "Diagnostic",
    "Severity",
    "has_errors",
    "render_plain",
    "to_json",
    "ColtivaError",
    "EventError",
    "JourneyError",
    "StoreError",
    "Loaded",
    "load_journey",
    "load_text",
    "parse_journey",
    "Journey",
]
