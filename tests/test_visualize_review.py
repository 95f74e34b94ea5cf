"""The review page: self-contained, complete, and visible in a real headless Chromium, offline."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import threading
from pathlib import Path

import pytest

from dsl import load_journey

from .visualize_helpers import png_is_not_blank, run_cli

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=3000"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("review") / "review.html"
    from click.testing import CliRunner

    from coltiva.commands.review import command

    result = CliRunner().invoke(command, ["journeys/demand_generation.journey", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_page_has_everything_a_reviewer_needs(page):
    html = page.read_text()
    journey = load_journey("journeys/demand_generation.journey").journey
    assert "<svg" in html and "<?xml" not in html and "<!DOCTYPE svg" not in html
    for stage in journey.stages:
        assert f'id="row-{stage.id}"' in html
        for send in stage.sends:
            assert send.content in html
    for heading in ("Diagram", "Content per stage", "Scoring and global rules", "Checker"):
        assert f"<h2>{heading}</h2>" in html
    assert "The checker found nothing to report." in html
    assert "Funnel" not in html


def test_page_is_self_contained(page):
    html = page.read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"<(script|link(?![^>]*href=\"data:)|img|iframe|object)\b", html)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "@import" not in html and "url(" not in html


def test_checker_warnings_are_shown(tmp_path, capsys):
    journey = tmp_path / "warn.journey"
    source = Path("journeys/webinar_followup.journey").read_text()
    twice = 'send email "see-you-there" on entry'
    journey.write_text(source.replace(twice, twice + '\n  send email "see-you-there" after 1 day'))
    out = tmp_path / "r.html"
    code, _, err = run_cli(["review", str(journey), "-o", str(out)], capsys)
    assert code == 0, err
    assert 'class="diag"' in out.read_text() and "warning C048" in out.read_text()
    code, _, err = run_cli(["review", str(journey), "-o", str(tmp_path / "r.pdf")], capsys)
    assert code == 1 and "HTML" in err


class _Recorder(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802
        type(self).requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


def _chromium(args, tmp_path):
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, timeout=60)


def test_chromium_shows_the_diagram_and_fetches_nothing_else(page, tmp_path):
    assert Path(CHROMIUM).exists(), "install chromium: apt-get install -y chromium (make system-deps)"
    directory = str(page.parent)
    handler = lambda *a, **k: _Recorder(*a, directory=directory, **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{page.name}"
    try:
        shot = tmp_path / "shot.png"
        netlog = tmp_path / "net.json"
        _chromium([f"--screenshot={shot}", "--window-size=1400,1000", f"--log-net-log={netlog}", url], tmp_path)
        dom = _chromium(["--dump-dom", url], tmp_path).stdout.decode()
    finally:
        server.shutdown()
    assert png_is_not_blank(shot.read_bytes())
    assert "<svg" in dom and 'id="stage-may_purchase"' in dom and "May purchase" in dom
    assert set(_Recorder.requests) == {f"/{page.name}"}
    jobs = _request_jobs(netlog)
    assert (url, "not an origin") in jobs  # the navigation itself
    # Nothing initiated by the page (the browser's own update pings are "not an origin").
    assert [j for j in jobs if j[1] != "not an origin"] == []


def _request_jobs(netlog: Path) -> list[tuple[str, str]]:
    """(url, initiator) of every request Chromium started, from its net log."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [(e["params"]["url"], e["params"].get("initiator", "")) for e in log["events"]
            if e["type"] == start and "url" in e.get("params", {})]
