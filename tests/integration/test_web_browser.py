"""The per-patient page in a real browser: Debian's headless Chromium against `vitalstream
serve` (uvicorn) on 127.0.0.1, logged in by a token, must draw the uPlot charts (canvases in
the DOM), and leaves a screenshot for a person to look at."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from test_web_support import GAMMA, add_alert, seed

from ingest_service.api import load_signing_key, mint_token
from scripts.screenshots import served

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (apt-get install -y chromium)",
    ),
]


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=8000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_patient_page_draws_its_charts_in_headless_chromium(
    database_url: str, tmp_path: Path
) -> None:
    seed(database_url, datetime.now(UTC))
    key_file = tmp_path / "api-token.key"
    key = load_signing_key(key_file)
    with served(
        database_url,
        tmp_path,
        VITALSTREAM_WEB_SSE_INTERVAL_S="0.3",
        VITALSTREAM_WEB_TIMEZONE="Asia/Shanghai",
    ) as base:
        token = mint_token(
            key, user="dr-li", role="doctor", now=datetime.now(UTC), subjects=[GAMMA]
        )
        url = f"{base}/login?" + urlencode(
            {"token": token, "next": f"/doctor/subjects/{GAMMA}?days=7"}
        )
        dom = _chromium(tmp_path / "profile-dom", "--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-2000:]
        html = dom.stdout
        assert f'Patient <span class="mono">{GAMMA}</span>' in html
        bp = html[html.index('id="chart-bp"') :]
        assert '<div class="uplot' in bp[:400]
        assert html.count("<canvas") >= 5  # bp, glucose, weight, spo2, heart rate

        screenshots = tmp_path / "screenshots"
        screenshots.mkdir()
        patient = mint_token(key, user="u-gamma", role="patient", now=datetime.now(UTC),
                             subject=GAMMA)  # fmt: skip
        pages = {
            "doctor-subject": (url, "1280,2900"),
            # Live updates off: an open event stream would keep headless Chromium waiting.
            "doctor-panel": (
                f"{base}/login?" + urlencode({"token": token, "next": "/doctor?live=false"}),
                "1280,700",
            ),
            "patient-me": (f"{base}/login?" + urlencode({"token": patient}), "900,1500"),
        }
        for name, (address, size) in pages.items():
            shot = screenshots / f"{name}.png"
            taken = _chromium(
                tmp_path / f"profile-{name}", f"--screenshot={shot}", f"--window-size={size}",
                address,
            )  # fmt: skip
            assert taken.returncode == 0, taken.stderr[-2000:]
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        print(f"screenshots: {screenshots}")

        # The panel's live stream announces a new alert of a contracted patient.
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.stream("GET", f"{base}/doctor/events", headers=auth, timeout=10) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == "retry: 10000"
            add_alert(database_url, GAMMA, "spo2_low", "high", datetime.now(UTC), "SpO2 88 %")
            deadline = time.monotonic() + 10
            while next(lines) != "event: alerts":
                assert time.monotonic() < deadline, "no alerts event"
