"""One real headless Chromium per test session, shared by every browser test (tests/browser/driver.cjs).

The driver is a Node script using playwright-core against Debian's chromium, both
installed by `make test-deps` (npm packages into .cache/node). Tests talk to it
one JSON line at a time. Import the `browser` fixture into a test module to use it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["Browser", "browser", "NODE_DIR", "MISSING"]

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = Path(os.environ.get("COLTIVA_NODE_DIR", ROOT / ".cache" / "node"))
DRIVER = ROOT / "tests" / "browser" / "driver.cjs"
MISSING = "run `make test-deps` (node, chromium and the npm packages mermaid and playwright-core)"


class Browser:
    """A running driver: `request(op, **fields)` sends one request and returns its answer."""

    def __init__(self) -> None:
        for need in (shutil.which("node"), Path("/usr/bin/chromium"), NODE_DIR / "node_modules" / "mermaid",
                     NODE_DIR / "node_modules" / "playwright-core"):
            assert need and Path(need).exists(), f"{need or 'node'} is missing: {MISSING}"
        self.proc = subprocess.Popen(["node", str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, encoding="utf-8", env={**os.environ, "COLTIVA_NODE_DIR": str(NODE_DIR)})
        hello = json.loads(self.proc.stdout.readline() or "{}")
        assert hello.get("ready"), f"the browser did not start: {hello}"
        self.version = hello["version"]

    def request(self, op: str, **fields):
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the browser driver stopped"
        answer = json.loads(line)
        assert answer["ok"], answer["error"]
        return answer["result"]

    def mermaid(self, diagrams: list[str]) -> list[dict]:
        """Each diagram parsed and rendered by the real Mermaid: [{error, nodes: [{id, x, y, w, h}]}]."""
        return self.request("mermaid", diagrams=list(diagrams))

    def open(self, path: Path, script: str | None = None, width: int = 1400, height: int = 1000,
             screenshot: Path | None = None, full_page: bool = False) -> dict:
        """Open a local file, run `script` (a JS function's source) in it: {result, requests, errors}."""
        fields = {"url": Path(path).resolve().as_uri(), "width": width, "height": height, "script": script,
                  "fullPage": full_page}
        if screenshot is not None:
            fields["screenshot"] = str(screenshot)
        return self.request("open", **fields)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def browser():
    b = Browser()
    yield b
    b.close()
