"""The per-patient page in a real browser: Debian's headless Chromium against `vitalstream
serve` (uvicorn) on 127.0.0.1, logged in by a token, must draw the uPlot charts (canvases in
the DOM), and leaves a screenshot for a person to look at."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from test_web_support import GAMMA, add_alert, seed

from ingest_service.api import load_signing_key, mint_token

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (apt-get install -y chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
    port = _free_port()
    env = {
        **os.environ,
        "VITALSTREAM_API_KEY_FILE": str(key_file),
        "VITALSTREAM_DATA_DIR": str(tmp_path / "data"),
        "VITALSTREAM_WEB_SSE_INTERVAL_S": "0.3",
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "vitalstream"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--database-url",
            database_url,
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, "vitalstream serve exited"
            assert time.monotonic() < deadline, "vitalstream serve did not come up"
            time.sleep(0.2)
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
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
