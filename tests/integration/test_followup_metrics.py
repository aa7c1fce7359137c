"""Follow-up metrics (R4) on a small constructed data set: the page and the CSV give the
values computed by hand, and they agree with counts taken directly from the alert and audit
tables."""

from __future__ import annotations

import csv
import io
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from test_api_support import api_client, audit_rows
from test_web_support import DELTA, GAMMA, log_in, write

from ingest_service import migrate
from ingest_service.alert_lifecycle import act
from ingest_service.web.followup import CLINIC, month_of
from vitals import Reading

ZONE = ZoneInfo("Asia/Shanghai")  # VITALSTREAM_WEB_TIMEZONE's default


def _alert(conn: psycopg.Connection[Any], subject: str, rule: str,
           severity: str, created: datetime) -> int:  # fmt: skip
    row = conn.execute(
        "INSERT INTO alerts (subject, rule, severity, time, message, created_at, active_since)"
        " VALUES (%s, %s, %s, %s, 'constructed', %s, %s) RETURNING id",
        (subject, rule, severity, created, created, created),
    ).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0])


def _reading(subject: str, at: datetime) -> Reading:
    return Reading(subject=subject, device=f"cuff-{subject}", metric="bp_systolic", value=130.0,
                   unit="mm[Hg]", time=at, source="sim")  # fmt: skip


def test_followup_metrics_page_and_csv(database_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    base = now - timedelta(hours=3)
    if month_of(base, ZONE) != month_of(now, ZONE):
        pytest.skip("the constructed data would straddle a month boundary")
    minute = timedelta(minutes=1)
    # Observed time: GAMMA 2 h, DELTA 1 h = 0.125 patient-days.
    readings = [_reading(GAMMA, base), _reading(GAMMA, base + 120 * minute),
                _reading(DELTA, base), _reading(DELTA, base + 60 * minute)]  # fmt: skip
    write(database_url, readings, now)
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        a1 = _alert(conn, GAMMA, "bp_crisis_systolic", "critical", base)
        a2 = _alert(conn, GAMMA, "spo2_low", "high", base)
        a3 = _alert(conn, DELTA, "hr_high", "high", base)
        a4 = _alert(conn, DELTA, "fever", "medium", base)
        _alert(conn, DELTA, "glucose_level2_hypo", "critical", base)  # never answered
        act(conn, a1, "acknowledge", "doctor:dr-li", base + 3 * minute, note="calling")
        act(conn, a2, "acknowledge", "doctor:dr-wang", base + 20 * minute)
        act(conn, a3, "resolve", "doctor:dr-li", base + 10 * minute, note="rechecked: 96")
        act(conn, a4, "acknowledge", "doctor:dr-li", base + 40 * minute)
        act(conn, a4, "resolve", "doctor:dr-li", base + 50 * minute, note="37.2 today")
        users = conn.execute("SELECT to_regclass('users') IS NOT NULL").fetchone() == (True,)
        if users:  # migration 10 (login) present: dr-li's contract list is known
            conn.execute(
                "INSERT INTO users (username, role, contracted_subjects, password_hash,"
                " created_at) VALUES ('dr-li', 'doctor', %s, 'x', now())",
                ([GAMMA, DELTA],),
            )
            conn.commit()

    with api_client(database_url, tmp_path) as client:
        log_in(client, "doctor", "dr-li", subjects=[GAMMA, DELTA])
        page = client.get("/doctor/followup")
        assert page.status_code == 200, page.text
        assert "Follow-up metrics" in page.text and "dr-wang" in page.text
        exported = client.get("/doctor/followup.csv", params={"months": 1})
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
    rows = {r["scope"]: r for r in csv.DictReader(io.StringIO(exported.text))}
    assert set(rows) == {CLINIC, "doctor:dr-li", "doctor:dr-wang"}
    clinic, li, wang = rows[CLINIC], rows["doctor:dr-li"], rows["doctor:dr-wang"]
    month = month_of(now, ZONE)
    assert clinic["month"] == li["month"] == month

    # By hand. Times to acknowledge: 3, 20, 10, 40 min (a3 was resolved directly).
    assert (clinic["alerts_acted_on"], clinic["tta_median_min"], clinic["tta_p90_min"]) == (
        "4", "15.0", "34.0",
    )  # fmt: skip
    # Urgent: a1 in time (3 <= 5), a2 late (20 > 15), a3 in time, the unanswered critical late.
    assert (clinic["urgent"], clinic["urgent_in_time"], clinic["urgent_in_time_share"]) == (
        "4", "2", "0.500",
    )  # fmt: skip
    # Follow-ups = noted acknowledgements/resolutions: a1, a3, a4's resolution; panel of 2.
    assert (clinic["follow_ups"], clinic["contracted_patients"]) == ("3", "2")
    assert clinic["follow_ups_per_patient"] == "1.500"
    # Burden: 5 alerts over 0.125 patient-days.
    assert (clinic["alerts"], clinic["patient_days"], clinic["alerts_per_patient_day"]) == (
        "5", "0.12", "40.000",
    )  # fmt: skip
    assert (li["alerts_acted_on"], li["tta_median_min"], li["tta_p90_min"]) == ("3", "10.0", "34.0")
    assert (li["urgent"], li["urgent_in_time"], li["follow_ups"]) == ("2", "2", "3")
    assert li["contracted_patients"] == ("2" if users else "")
    assert li["alerts_per_patient_day"] == "40.000"
    assert (wang["alerts_acted_on"], wang["tta_median_min"], wang["urgent_in_time"]) == (
        "1", "20.0", "0",
    )  # fmt: skip
    assert (wang["follow_ups"], wang["alerts"], wang["alerts_per_patient_day"]) == (
        "0", "2", "24.000",
    )  # fmt: skip

    # The same numbers straight from the alerts and audit tables.
    audit = audit_rows(database_url)
    noted = [r for r in audit if r[1] in ("alert_acknowledged", "alert_resolved") and r[3]["note"]]
    assert len(noted) == int(clinic["follow_ups"])
    assert sum(1 for r in noted if r[0] == "doctor:dr-li") == int(li["follow_ups"])
    with psycopg.connect(database_url) as conn:
        first = conn.execute(
            "SELECT extract(epoch FROM min(l.time) - a.created_at) / 60 FROM alerts a"
            " JOIN audit_log l ON l.resource = 'alert/' || a.id"
            " AND l.action IN ('alert_acknowledged', 'alert_resolved') GROUP BY a.id"
        ).fetchall()
    minutes = [float(m) for (m,) in first]
    assert len(minutes) == int(clinic["alerts_acted_on"])
    assert f"{statistics.median(minutes):.1f}" == clinic["tta_median_min"]
    reads = [r for r in audit if r[2].startswith("web/doctor/followup")]
    assert [r[2] for r in reads] == ["web/doctor/followup", "web/doctor/followup.csv"]
