"""Issue #11's flows in a real browser: Debian's headless Chromium driven by Playwright
(``executable_path``, nothing downloaded) against `vitalstream serve` on 127.0.0.1, on a
database filled like the demo by ``scripts/screenshots.py`` (the demo's simulated patients and
rule packs through the ingest path and the rules engine, doctors answering alerts, MIT-BIH ECG
snippets, password accounts).

- a doctor logs in through the password form, finds the demo's open alerts in the inbox,
  acknowledges one with the button (the alert's state, its transition and the audit row are
  checked in the database) and opens a patient whose BP and glucose charts are drawn (canvas
  pixels of the series colour, not only the HTML);
- a patient logs in, sees their own data only, and another patient's page is refused (403
  page) with an audited ``read_denied`` row;
- an ECG reader opens a snippet from the queue and files the report form (``ecg_reports`` row
  and ``ecg_reported`` audit row); the family doctor then finds it on the patient's page, and
  an ambulance snippet's report shows on the ER's incident page;
- every page's screenshot (the script's own code), and the Chinese doctor pages (chart legends,
  follow-up table) in Chinese.

Set VITALSTREAM_TEST_SCREENSHOTS=docs/screenshots to keep the screenshots.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from psycopg import sql
from test_incident_support import STROKE, STROKE_SUBJECT, seed_incidents

from ingest_service import users
from ingest_service.waveforms import store_waveforms
from scripts.screenshots import (
    PASSWORD,
    PREFIX,
    DemoWorld,
    launch,
    log_in,
    seed_demo,
    served,
    shots,
    synthetic_ecg,
)
from scripts.screenshots import take_screenshots as screenshot_every_page
from vitals import WaveformBatch, WaveformSnippet, encode, gateway_topic

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OPEN_STATES = ("active", "acknowledged", "snoozed", "shelved")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (apt-get install -y chromium)",
    ),
]

#: Pixels of a chart's first series (#a3001b, static/charts.js) on its canvas: how many
#: distinct rows and columns they cover, and the canvas's size on the page.
SERIES_PIXELS = """(canvas) => {
  const ctx = canvas.getContext("2d");
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const rows = new Set(), cols = new Set();
  for (let y = 0; y < canvas.height; y++) {
    for (let x = 0; x < canvas.width; x++) {
      const i = (y * canvas.width + x) * 4;
      if (data[i + 3] > 128 && data[i] > 120 && data[i + 1] < 60 && data[i + 2] < 90) {
        rows.add(y); cols.add(x);
      }
    }
  }
  const box = canvas.getBoundingClientRect();
  return {width: box.width, height: box.height, rows: rows.size, cols: cols.size};
}"""


@dataclass(frozen=True)
class Site:
    """The seeded database and the server on it."""

    base: str
    database_url: str
    world: DemoWorld


@pytest.fixture(scope="module")
def site(servers: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One database filled like the demo and `vitalstream serve` on it, for this module."""
    admin_url = servers[0]
    name = f"vs_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    try:
        world = seed_demo(url)
        with served(url, tmp_path_factory.mktemp("serve")) as base:
            yield Site(base, url, world)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium through Playwright."""
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


def _rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def _path(page: Page) -> str:
    return urlparse(page.url).path


def test_doctor_acknowledges_a_demo_alert_and_sees_the_charts_drawn(
    site: Site, browser: Browser
) -> None:
    world = site.world
    page = log_in(browser, site.base, world.doctor)
    assert _path(page) == "/doctor"
    logins = _rows(
        site.database_url,
        "SELECT actor, detail FROM audit_log WHERE resource = 'auth/web' AND action = 'login'",
    )
    assert any(
        actor == "doctor:dr-li" and detail["grant_type"] == "password" for actor, detail in logins
    )

    # The inbox lists exactly the open alerts of the doctor's patients, as stored.
    page.click("nav a[href='/doctor/alerts']")
    page.wait_for_url("**/doctor/alerts")
    stored = dict(
        _rows(
            site.database_url,
            "SELECT id, state FROM alerts WHERE state = ANY(%s) AND subject = ANY(%s)",
            list(OPEN_STATES),
            world.subjects,
        )
    )
    shown = page.locator("tr.alert-row").evaluate_all("rows => rows.map(r => r.id)")
    assert {int(s.removeprefix("alert-")) for s in shown} == set(stored)
    assert "active" in stored.values() and len(stored) >= 3

    # Acknowledge the first unacknowledged alert (the inbox puts them first) with a note.
    row = page.locator("tr.alert-row.state-active").first
    alert_id = int(str(row.get_attribute("id")).removeprefix("alert-"))
    note = "Called the patient; re-measuring now"
    row.locator(f"#ack-note-{alert_id}").fill(note)
    row.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(f"#alert-{alert_id}")).to_have_class(re.compile(r"\bstate-acknowledged\b"))
    expect(page.locator("#status")).to_have_text(f"Alert {alert_id} acknowledged.")
    expect(page.locator(f"#alert-{alert_id}")).to_contain_text("by doctor:dr-li")

    [(state, by, acknowledged_at)] = _rows(
        site.database_url,
        "SELECT state, acknowledged_by, acknowledged_at FROM alerts WHERE id = %s",
        alert_id,
    )
    assert (state, by) == ("acknowledged", "doctor:dr-li") and acknowledged_at is not None
    audit = _rows(
        site.database_url,
        "SELECT actor, detail FROM audit_log WHERE resource = %s AND action = 'alert_acknowledged'",
        f"alert/{alert_id}",
    )
    assert len(audit) == 1
    actor, detail = audit[0]
    assert actor == "doctor:dr-li"
    assert (detail["from_state"], detail["to_state"], detail["note"], detail["via"]) == (
        "active",
        "acknowledged",
        note,
        "web",
    )
    assert detail["subject"] in world.subjects and detail["role"] == "doctor"
    transitions = _rows(
        site.database_url,
        "SELECT action, actor, note FROM alert_transitions WHERE alert_id = %s",
        alert_id,
    )
    assert transitions == [("acknowledge", "doctor:dr-li", note)]

    # The diabetic patient's page from the panel: BP and glucose drawn on their canvases.
    diabetes = world.patients["diabetes"]
    page.click("nav a[href='/doctor']")
    page.click(f"a[href='/doctor/subjects/{diabetes}']")
    page.wait_for_url(f"**/doctor/subjects/{diabetes}")
    for chart in ("bp", "glucose"):
        canvas = page.locator(f"#chart-{chart} canvas").first
        canvas.wait_for()
        drawn = canvas.evaluate(SERIES_PIXELS)
        assert drawn["width"] > 300 and drawn["height"] > 150, (chart, drawn)
        # A line across the week at many heights, not only a target line or its label.
        assert drawn["rows"] >= 40 and drawn["cols"] >= 300, (chart, drawn)
    expect(page.locator("#chart-bp .u-legend")).to_contain_text("systolic (mmHg)")
    expect(page.locator("#chart-glucose .u-legend")).to_contain_text("glucose (mmol/L)")
    reads = _rows(
        site.database_url,
        "SELECT detail FROM audit_log WHERE actor = 'doctor:dr-li'"
        " AND action = 'read' AND resource = %s",
        f"web/subject/{diabetes}",
    )
    assert len(reads) == 1 and reads[0][0]["returned"]["glucose"] > 0
    page.context.close()


def test_patient_sees_only_their_own_data_and_is_refused_another_patients_page(
    site: Site, browser: Browser
) -> None:
    world = site.world
    own, other = world.patients["diabetes"], world.patients["copd"]
    page = log_in(browser, site.base, world.patient_user)
    assert _path(page) == "/me"
    expect(page.locator("h1")).to_have_text("My health readings")
    expect(page.locator("#latest-h + .readings")).to_contain_text("Blood sugar")
    assert other not in page.content()
    [(own_reads,)] = _rows(
        site.database_url,
        "SELECT count(*) FROM audit_log WHERE actor = %s"
        " AND resource = 'web/me' AND detail->>'subject' = %s",
        f"patient:{world.patient_user}",
        own,
    )
    assert own_reads == 1

    # Their own export holds exactly their stored readings, from their own devices.
    exported = page.request.get(f"{site.base}/me/export.csv")
    assert exported.status == 200
    rows = list(csv.DictReader(io.StringIO(exported.text())))
    [(count,)] = _rows(site.database_url, "SELECT count(*) FROM readings WHERE subject = %s", own)
    assert len(rows) == count > 1000
    assert {r["device"].rsplit("-", 1)[0] for r in rows} == {"sim-web-home02"}

    # Another patient's page, typed into the address bar: a 403 page, audited.
    for target, resource in (
        (f"/doctor/subjects/{other}", f"web/subject/{other}"),
        (f"/doctor/subjects/{other}/cgm", f"web/subject/{other}/cgm"),
    ):
        response = page.goto(site.base + target)
        assert response is not None and response.status == 403, target
        expect(page.locator("main")).to_contain_text("This page is not available to your account.")
        assert other not in page.locator("main").inner_text()
        denied = _rows(
            site.database_url,
            "SELECT actor, detail FROM audit_log WHERE resource = %s AND action = 'read_denied'",
            resource,
        )
        assert [(a, d["reason"], d["role"]) for a, d in denied] == [
            (f"patient:{world.patient_user}", "role", "patient")
        ], resource
    leaked = _rows(
        site.database_url,
        "SELECT resource FROM audit_log WHERE actor = %s AND action = 'read' AND resource LIKE %s",
        f"patient:{world.patient_user}",
        f"%{other}%",
    )
    assert leaked == []
    page.context.close()


def test_ecg_reader_files_a_report_that_the_family_doctor_then_sees(
    site: Site, browser: Browser
) -> None:
    world = site.world
    heart_failure = world.patients["heart_failure"]
    [(snippet,)] = _rows(
        site.database_url, "SELECT id FROM waveforms WHERE subject = %s", heart_failure
    )
    page = log_in(browser, site.base, world.reader)
    page.click("nav a[href='/ecg']")
    page.wait_for_url("**/ecg")
    page.click(f"#snippet-{snippet} a")
    page.wait_for_url(f"**/ecg/{snippet}")
    expect(page.locator("#ecg-paper .trace").first).to_be_attached()
    finding = page.locator("#af-finding").inner_text()

    note = "AF with a ventricular rate about 90/min; ectopics. Family doctor: anticoagulation?"
    page.select_option("#rhythm", "af")
    page.check("input[name=findings][value=pvc]")
    page.fill("#note", note)
    page.get_by_role("button", name="File the report").click()
    page.wait_for_url(f"**/ecg?reported={snippet}")
    expect(page.locator("main .notice")).to_have_text(f"Report saved for snippet {snippet}.")
    expect(page.locator(f"#snippet-{snippet}")).to_have_count(0)

    [(report_id, rhythm, findings, stored_note, reader, role, af)] = _rows(
        site.database_url,
        "SELECT id, rhythm, findings, note, reader, reader_role, af_finding FROM ecg_reports"
        " WHERE waveform_id = %s",
        snippet,
    )
    assert (rhythm, findings, stored_note) == ("af", ["pvc"], note)
    assert (reader, role) == ("doctor:dr-zhou", "doctor")
    shown_status = {"af": "atrial fibrillation", "no_af": "no atrial fibrillation"}
    assert af["status"] in shown_status and shown_status[af["status"]] in finding
    audit = _rows(
        site.database_url,
        "SELECT actor, detail FROM audit_log WHERE resource = %s AND action = 'ecg_reported'",
        f"ecg/{snippet}",
    )
    assert len(audit) == 1
    actor, detail = audit[0]
    assert actor == "doctor:dr-zhou"
    assert (detail["report"], detail["subject"], detail["rhythm"], detail["via"]) == (
        report_id,
        heart_failure,
        "af",
        "web",
    )
    page.context.close()

    # Back to the team that asked: the family doctor finds it on the patient's page.
    family = log_in(browser, site.base, world.doctor)
    family.click(f"a[href='/doctor/subjects/{heart_failure}']")
    family.wait_for_url(f"**/doctor/subjects/{heart_failure}")
    report = family.locator(f"#ecg-report-{report_id}")
    expect(report).to_contain_text("Atrial fibrillation")
    expect(report).to_contain_text("Ventricular ectopics")
    expect(report).to_contain_text(note)
    expect(report).to_contain_text("doctor:dr-zhou")
    reads = _rows(
        site.database_url,
        "SELECT detail FROM audit_log WHERE actor = 'doctor:dr-li' AND resource = %s",
        f"web/subject/{heart_failure}",
    )
    assert [r[0]["ecg_reports"] for r in reads] == [[report_id]]
    family.context.close()


def test_an_ambulance_ecg_report_reaches_the_er_incident_page(site: Site, browser: Browser) -> None:
    now = datetime.now(UTC)
    seed_incidents(site.database_url, now)
    strip = synthetic_ecg()[0]
    taken = now - timedelta(minutes=3)
    batch = WaveformBatch(
        batch_id="er-ecg-1",
        gateway="amb-12-gw",
        sent_at=taken + timedelta(seconds=12),
        snippets=(
            WaveformSnippet(subject=STROKE_SUBJECT, device="amb-12-monitor", channel=strip.channel,
                            start=taken, sample_rate_hz=strip.sample_rate_hz, scale=strip.scale,
                            samples=strip.samples, source="sim", incident=STROKE),
        ),
    )  # fmt: skip
    with psycopg.connect(site.database_url) as conn:
        with conn.transaction():
            store_waveforms(conn, [(gateway_topic("amb-12-gw", "waveform", PREFIX), encode(batch))],
                            now, PREFIX)  # fmt: skip
            users.add_user(conn, users.SecretHasher(), username="er-cardio", role="er",
                           password=PASSWORD, now=now)  # fmt: skip
        [(snippet,)] = conn.execute(
            "SELECT id FROM waveforms WHERE incident = %s", (STROKE,)
        ).fetchall()

    page = log_in(browser, site.base, "er-cardio")
    assert _path(page) == "/er"
    page.goto(f"{site.base}/er/incidents/{STROKE}?live=false")
    ecg = page.locator("section[aria-labelledby=ecg-h]")
    expect(ecg).to_contain_text("not reported yet")
    ecg.get_by_role("link", name="read and report this ECG").click()
    page.wait_for_url(f"**/ecg/{snippet}")
    page.select_option("#rhythm", "sinus_tachycardia")
    page.check("input[name=findings][value=st_elevation]")
    page.fill("#note", "Sinus tachycardia 118/min, no ST change to speak of in this lead.")
    page.get_by_role("button", name="File the report").click()
    page.wait_for_url(f"**/ecg?reported={snippet}")

    page.goto(f"{site.base}/er/incidents/{STROKE}?live=false")
    report = page.locator("#ecg-report")
    expect(report).to_contain_text("Sinus tachycardia")
    expect(report).to_contain_text("ST elevation")
    expect(report).to_contain_text("er:er-cardio")
    assert "not reported yet" not in ecg.inner_text()
    [(reader, incident)] = _rows(
        site.database_url,
        "SELECT r.reader, w.incident FROM ecg_reports r JOIN waveforms w ON w.id = r.waveform_id"
        " WHERE r.waveform_id = %s",
        snippet,
    )
    assert (reader, incident) == ("er:er-cardio", STROKE)
    page.context.close()


def test_chinese_doctor_pages_have_chinese_legends_and_follow_up_table(
    site: Site, browser: Browser
) -> None:
    world = site.world
    page = log_in(browser, site.base, world.doctor)
    page.goto(f"{site.base}/doctor/subjects/{world.patients['hypertension']}?lang=zh")
    page.locator("#chart-bp canvas").first.wait_for()
    expect(page.locator("#chart-bp .u-legend")).to_contain_text("收缩压 (mmHg)")
    expect(page.locator("#chart-bp .u-legend")).to_contain_text("时间")
    expect(page.locator("#chart-heart_rate .u-legend")).to_contain_text("心率 (/min)")
    assert "systolic" not in page.locator("#chart-bp .u-legend").inner_text()

    page.goto(f"{site.base}/doctor/followup?lang=zh")
    table = page.locator("table.followup")
    expect(table).to_contain_text("确认用时中位数（分钟）")  # noqa: RUF001
    expect(table).to_contain_text("全体医生")
    expect(page.locator("main")).to_contain_text("统计方法")
    for english in ("Time to acknowledge", "Follow-ups", "How these are counted", "all doctors"):
        assert english not in page.locator("main").inner_text()
    page.context.close()


def test_a_screenshot_of_every_page(site: Site, browser: Browser, tmp_path: Path) -> None:
    out = Path(os.environ.get("VITALSTREAM_TEST_SCREENSHOTS") or tmp_path)
    written = screenshot_every_page(browser, site.base, site.world, out)
    assert [p.name for p in written] == [f"{s.name}.png" for s in shots(site.world)]
    for png in written:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png.name
        width = int.from_bytes(data[16:20], "big")
        assert width <= 1280, png.name
