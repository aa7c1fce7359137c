"""An ER nurse of one hospital in a real browser: Debian's headless Chromium driven by
Playwright (``executable_path``, nothing downloaded) against `vitalstream serve` on 127.0.0.1.

- she logs in through the password form and lands on the board, which shows her hospital's
  incoming ambulance and not another hospital's nor an unrouted one;
- opening the other hospital's incident gives the 403 page, and the refusal is in the audit
  log; her own incident's page draws its charts;
- the board's event stream names only her hospital's incidents (an admin's names all);
- her incident's vitals stream ends when the incident is diverted to another hospital, and
  reconnecting is refused.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import httpx
import psycopg
import pytest
from playwright.sync_api import expect, sync_playwright
from test_auth_support import PASSWORD
from test_er_hospital_support import (
    B_COMPLAINT,
    B_INCIDENT,
    ER_A,
    HOSPITAL_B,
    UNROUTED,
    seed_hospitals,
)
from test_incident_support import STROKE

from ingest_service.api import load_signing_key, mint_token
from scripts.screenshots import launch, log_in, served

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Most SSE lines read before a stream that should have said something is given up on.
MAX_LINES = 200

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (apt-get install -y chromium)",
    ),
]


def _event(lines: Iterator[str], name: str) -> dict[str, float]:
    """The data of the next ``name`` event of a stream."""
    for _ in range(MAX_LINES):
        if next(lines) == f"event: {name}":
            data: dict[str, float] = json.loads(next(lines).removeprefix("data: "))
            return data
    raise AssertionError(f"no {name} event in {MAX_LINES} lines")


def test_an_er_nurse_of_one_hospital_in_chromium(database_url: str, tmp_path: Path) -> None:
    seed_hospitals(database_url, tmp_path / "seed")
    workdir = tmp_path / "serve"
    workdir.mkdir()
    with (
        served(database_url, workdir, VITALSTREAM_WEB_SSE_INTERVAL_S="0.3") as base,
        sync_playwright() as playwright,
    ):
        browser = launch(playwright)
        try:
            page = log_in(browser, base, ER_A, PASSWORD)
            assert urlparse(page.url).path == "/er"
            expect(page.locator(f"#incident-{STROKE}")).to_be_visible()
            assert page.locator(f"#incident-{B_INCIDENT}").count() == 0
            assert page.locator(f"#incident-{UNROUTED}").count() == 0

            refused = page.goto(f"{base}/er/incidents/{B_INCIDENT}?live=false")
            assert refused is not None and refused.status == 403
            expect(page.get_by_role("alert")).to_have_text(
                "This incident is routed to another hospital."
            )
            assert B_COMPLAINT not in page.content()

            opened = page.goto(f"{base}/er/incidents/{STROKE}?live=false")
            assert opened is not None and opened.status == 200
            expect(page.locator("#chart-heart_rate canvas").first).to_be_visible()
            cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        finally:
            browser.close()

        mine = {"Authorization": f"Bearer {cookies['vs_token']}"}
        key = load_signing_key(workdir / "api-token.key")
        admin = {
            "Authorization": "Bearer "
            + mint_token(key, user="ops", role="admin", now=datetime.now(UTC))
        }
        shown: dict[str, set[str]] = {}
        for who, headers in (("er", mine), ("admin", admin)):
            with httpx.stream("GET", f"{base}/er/events", headers=headers, timeout=10) as stream:
                shown[who] = set(_event(stream.iter_lines(), "lastdata"))
        assert shown == {"er": {STROKE}, "admin": {STROKE, B_INCIDENT, UNROUTED}}

        url = f"{base}/er/incidents/{STROKE}/events"
        with httpx.stream("GET", url, headers=mine, timeout=10) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "retry: 10000"
            diverted = httpx.put(
                f"{base}/api/v1/incidents/{STROKE}/hospital",
                json={"hospital": HOSPITAL_B, "reason": "CT down"},
                headers=admin,
            )
            assert diverted.status_code == 200, diverted.text
            rest = [line for _, line in zip(range(MAX_LINES), lines, strict=False)]
            assert len(rest) < MAX_LINES, "the stream went on after the diversion"
        assert httpx.get(url, headers=mine, timeout=10).status_code == 403

    with psycopg.connect(database_url) as conn:
        denied = conn.execute(
            "SELECT resource, detail->>'reason', detail->>'hospital' FROM audit_log"
            " WHERE actor = %s AND action = 'read_denied' ORDER BY id",
            (f"er:{ER_A}",),
        ).fetchall()
    assert denied == [
        (f"web/er/incident/{B_INCIDENT}", "other hospital", HOSPITAL_B),
        (f"web/er/incident/{STROKE}", "other hospital", HOSPITAL_B),  # the reconnect
    ]
