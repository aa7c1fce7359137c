"""Follow-up metrics (R4) on a database filled like the demo (scripts/screenshots.py: the
demo's patients through ingest and the rules engine, two doctors answering alerts with the
inbox's lifecycle code): every number of ``/doctor/followup.csv`` equals a count or a
percentile taken directly from the ``alerts`` and ``audit_log`` tables (and ``readings`` for
the observed time) in SQL, per month and per doctor.

The page's code reads ``alert_transitions`` and counts in Python; this test reads the audit
log and counts in PostgreSQL, so the two only agree if the metrics mean what docs/web.md says.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_api_support import api_client
from test_web_support import log_in

from ingest_service.alert_lifecycle import DEFAULT_POLICY
from ingest_service.web.followup import CLINIC
from ingest_service.web.settings import WebSettings
from scripts.screenshots import seed_demo

pytestmark = pytest.mark.slow

FIRST_ACTS = """
WITH firsts AS (
    SELECT DISTINCT ON (a.id) a.id, l.actor, l.time AS at
    FROM alerts a JOIN audit_log l ON l.resource = 'alert/' || a.id
    WHERE l.action IN ('alert_acknowledged', 'alert_resolved') AND l.actor NOT LIKE 'system:%%'
    ORDER BY a.id, l.time, l.id
)
SELECT to_char(a.created_at AT TIME ZONE %(zone)s, 'YYYY-MM') AS month, a.id, a.subject,
       a.created_at, f.actor, f.at, extract(epoch FROM f.at - a.created_at) / 60 AS minutes,
       CASE a.severity WHEN 'critical' THEN %(critical)s WHEN 'high' THEN %(high)s END AS delay
FROM alerts a LEFT JOIN firsts f ON f.id = a.id
WHERE a.subject = ANY(%(subjects)s)
"""


def _num(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def test_followup_csv_equals_counts_from_the_alert_and_audit_tables(
    database_url: str, tmp_path: Path
) -> None:
    # Readings end an hour ago: every unanswered urgent alert is past its 15/5 min delay
    # both when the page counts and when this test does.
    world = seed_demo(database_url, datetime.now(UTC) - timedelta(hours=1), days=10)
    with api_client(database_url, tmp_path) as client:
        log_in(client, "doctor", world.doctor, subjects=world.subjects)
        exported = client.get("/doctor/followup.csv", params={"months": 12})
        assert exported.status_code == 200, exported.text
    rows = {(r["month"], r["scope"]): r for r in csv.DictReader(io.StringIO(exported.text))}

    params: dict[str, Any] = {
        "zone": WebSettings().web_timezone,
        "subjects": world.subjects,
        "high": DEFAULT_POLICY.escalate_after,
        "critical": DEFAULT_POLICY.escalate_after_critical,
    }
    with psycopg.connect(database_url) as conn:
        facts = f"({FIRST_ACTS}) facts"
        per_scope = conn.execute(
            "SELECT month, scope, count(at),"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes),"
            " percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes),"
            " count(*) FILTER (WHERE delay IS NOT NULL AND (at IS NOT NULL OR"
            "  (scope = %(clinic)s AND now() - created_at > delay))),"
            " count(*) FILTER (WHERE at - created_at <= delay)"
            f" FROM (SELECT *, %(clinic)s AS scope FROM {facts}"
            f"  UNION ALL SELECT *, actor FROM {facts} WHERE actor IS NOT NULL) s"
            " GROUP BY month, scope",
            {**params, "clinic": CLINIC},
        ).fetchall()
        follow_ups = conn.execute(
            "SELECT to_char(l.time AT TIME ZONE %(zone)s, 'YYYY-MM'), l.actor, count(*)"
            " FROM audit_log l JOIN alerts a ON l.resource = 'alert/' || a.id"
            " WHERE l.action IN ('alert_acknowledged', 'alert_resolved')"
            " AND l.actor NOT LIKE 'system:%%' AND coalesce(l.detail->>'note', '') <> ''"
            " AND a.subject = ANY(%(subjects)s) GROUP BY 1, 2",
            params,
        ).fetchall()
        alerts = conn.execute(
            f"SELECT month, subject, count(*) FROM ({FIRST_ACTS}) f GROUP BY 1, 2",
            params,
        ).fetchall()
        acted_on = conn.execute(
            f"SELECT DISTINCT month, actor, subject FROM ({FIRST_ACTS}) f WHERE actor IS NOT NULL",
            params,
        ).fetchall()
        observed = conn.execute(
            "SELECT to_char(time AT TIME ZONE %(zone)s, 'YYYY-MM'), subject,"
            " extract(epoch FROM max(time) - min(time)) / 86400 FROM readings"
            " WHERE value IS NOT NULL AND subject = ANY(%(subjects)s) GROUP BY 1, 2",
            params,
        ).fetchall()
        contracts = dict(
            conn.execute(
                "SELECT 'doctor:' || username, cardinality(contracted_subjects) FROM users"
                " WHERE role = 'doctor' AND cardinality(contracted_subjects) > 0"
            ).fetchall()
        )
        [(oldest,)] = conn.execute("SELECT min(created_at) FROM alerts").fetchall()
    assert oldest > datetime.now(UTC) - timedelta(days=300)  # all inside the 12 months asked

    noted = {(str(m), str(a)): int(n) for m, a, n in follow_ups}
    alert_count = {(str(m), str(s)): int(n) for m, s, n in alerts}
    days = {(str(m), str(s)): float(d) for m, s, d in observed}
    concerned: dict[tuple[str, str], set[str]] = defaultdict(set)
    for month, actor, subject in acted_on:
        concerned[(str(month), str(actor))].add(str(subject))
    for month in {m for m, _ in days} | {m for m, _ in alert_count}:
        concerned[(month, CLINIC)] = set(world.subjects)

    # Rows: a clinic row for every month with alerts, notes or readings; a row for every
    # doctor who acted first on an alert or wrote a note that month.
    stats = {
        (str(m), str(s)): (int(a), md, p9, int(u), int(t)) for m, s, a, md, p9, u, t in per_scope
    }
    months = {m for m, _ in alert_count} | {m for m, _ in noted} | {m for m, _ in days}
    scopes = {(m, CLINIC) for m in months} | set(stats) | set(noted)
    expected: dict[tuple[str, str], dict[str, str]] = {}
    for key in scopes:
        month, scope = key
        acted, median, p90, urgent, in_time = stats.get(key, (0, None, None, 0, 0))
        subjects = concerned[key]
        count = sum(n for (m, s), n in alert_count.items() if m == month and s in subjects)
        patient_days = sum(d for (m, s), d in days.items() if m == month and s in subjects)
        follow = (
            sum(n for (m, _), n in noted.items() if m == month)
            if scope == CLINIC
            else noted.get(key, 0)
        )
        contracted = len(world.subjects) if scope == CLINIC else contracts.get(scope)
        expected[key] = {
            "alerts_acted_on": str(acted),
            "tta_median_min": _num(median, 1),
            "tta_p90_min": _num(p90, 1),
            "urgent": str(urgent),
            "urgent_in_time": str(in_time),
            "urgent_in_time_share": _num(in_time / urgent if urgent else None, 3),
            "follow_ups": str(follow),
            "contracted_patients": "" if contracted is None else str(contracted),
            "follow_ups_per_patient": _num(follow / contracted if contracted else None, 3),
            "patient_days": _num(patient_days, 2),
            "alerts": str(count),
            "alerts_per_patient_day": _num(count / patient_days if patient_days else None, 3),
        }

    # The demo's doctors did answer: two of them, with notes; some alerts were urgent.
    clinic = [v for (_, scope), v in expected.items() if scope == CLINIC]
    assert sum(int(v["alerts_acted_on"]) for v in clinic) >= 5
    assert sum(int(v["follow_ups"]) for v in clinic) >= 3
    assert sum(int(v["urgent"]) for v in clinic) >= 1
    assert {s for _, s in expected} >= {CLINIC, "doctor:dr-li", "doctor:dr-wang"}

    assert set(rows) == set(expected)
    for key, want in expected.items():
        got = {column: rows[key][column] for column in want}
        assert got == want, key
