"""The ER board in a real browser: Debian's headless Chromium against `vitalstream serve` on
127.0.0.1, with incidents stored through the handoff tables and monitor readings carrying the
incident id. Checks the board's and the incident page's DOM (incident row, team, "last data",
uPlot canvases), leaves screenshots, and checks that the incident's vitals stream sends a new
reading."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from test_incident_support import AMBULANCE, STROKE, STROKE_SUBJECT, TRAUMA, seed_incidents
from test_web_browser import _chromium
from test_web_support import write

from ingest_service.api import load_signing_key, mint_token
from scripts.screenshots import served
from vitals import Reading

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Where the screenshots are kept for a person to look at (set to e.g. docs/screenshots).
SCREENSHOT_DIR = os.environ.get("VITALSTREAM_TEST_SCREENSHOTS")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (apt-get install -y chromium)",
    ),
]


def test_er_board_renders_incidents_and_live_vitals_in_headless_chromium(
    database_url: str, tmp_path: Path
) -> None:
    seed_incidents(database_url, datetime.now(UTC), last_data_age_s=40)
    key_file = tmp_path / "api-token.key"
    key = load_signing_key(key_file)
    with served(
        database_url, tmp_path, VITALSTREAM_WEB_SSE_INTERVAL_S="0.3", VITALSTREAM_WEB_TIMEZONE="UTC"
    ) as base:
        token = mint_token(key, user="er-nurse", role="er", now=datetime.now(UTC))

        def login(target: str) -> str:
            return f"{base}/login?" + urlencode({"token": token, "next": target})

        # Live updates off in Chromium: an open event stream keeps headless Chromium waiting.
        board = _chromium(tmp_path / "profile-board", "--dump-dom", login("/er?live=false"))
        assert board.returncode == 0, board.stderr[-2000:]
        html = board.stdout
        row = html[html.index(f'id="incident-{STROKE}"') : html.index(f'id="incident-{TRAUMA}"')]
        assert "Stroke team: not acknowledged" in row
        # 40 s old at render, then ticked by er.js (Chromium's virtual time runs ahead).
        assert 'class="last-data stale-amber"' in row
        assert re.search(r"last data \d+ s ago", row)

        page = _chromium(
            tmp_path / "profile-incident", "--dump-dom", login(f"/er/incidents/{STROKE}?live=false")
        )
        assert page.returncode == 0, page.stderr[-2000:]
        html = page.stdout
        assert 'id="last-data"' in html
        assert "Acknowledge for the stroke team" in html
        heart = html[html.index('id="chart-heart_rate"') :]
        assert '<div class="uplot' in heart[:400]
        assert html.count("<canvas") >= 4  # heart rate, SpO2, BP, respiratory rate

        screenshots = Path(SCREENSHOT_DIR) if SCREENSHOT_DIR else tmp_path / "screenshots"
        screenshots.mkdir(parents=True, exist_ok=True)
        for name, target, size in (
            ("er-board", "/er?live=false", "1280,600"),
            ("er-incident", f"/er/incidents/{STROKE}?live=false", "1400,1500"),
        ):
            shot = screenshots / f"{name}.png"
            taken = _chromium(
                tmp_path / f"profile-{name}", f"--screenshot={shot}", f"--window-size={size}",
                login(target),
            )  # fmt: skip
            assert taken.returncode == 0, taken.stderr[-2000:]
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        print(f"screenshots: {screenshots}")

        # The incident's stream sends a reading the monitor sends now.
        auth = {"Authorization": f"Bearer {token}"}
        url = f"{base}/er/incidents/{STROKE}/events"
        with httpx.stream("GET", url, headers=auth, timeout=10) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == "retry: 10000"
            now = datetime.now(UTC)
            write(database_url, [Reading(subject=STROKE_SUBJECT, device=f"{AMBULANCE}-monitor",
                                         metric="heart_rate", value=131.0, unit="/min",
                                         time=now - timedelta(seconds=1), source="sim",
                                         incident=STROKE)], now)  # fmt: skip
            deadline = time.monotonic() + 10
            while next(lines) != "event: vitals":
                assert time.monotonic() < deadline, "no vitals event"
            data = json.loads(next(lines).removeprefix("data: "))
            assert [p[1:3] for p in data["points"]] == [["heart_rate", 131.0]]
