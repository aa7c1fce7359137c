"""Gateways and silence, dead letters, alerts, the audit log, /healthz and /metrics."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb
from test_api_support import ALPHA, BETA, api_client, audit_rows, bearer

from ingest_service import migrate
from ingest_service.storage import dead_letter_message


def _sql(database_url: str, statement: str, *rows: tuple[object, ...]) -> None:
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        with conn.cursor() as cur:
            cur.executemany(statement.encode(), list(rows))


def test_gateways_silent_after_a_multiple_of_the_cadence(database_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    _sql(
        database_url,
        "INSERT INTO gateways (gateway, state, last_seen, status) VALUES (%s, %s, %s, %s)",
        ("gw-fresh", "online", now, Jsonb({"queue_depth": 0})),
        ("gw-quiet", "online", now - timedelta(seconds=60), Jsonb({"queue_depth": 12})),
    )
    with api_client(database_url, tmp_path) as client:
        doctor = bearer(client, "doctor", "dr-li")
        default = client.get("/api/v1/gateways", headers=doctor).json()
        lenient = client.get("/api/v1/gateways?silent_factor=20", headers=doctor).json()
        only = client.get("/api/v1/gateways?silent_only=true", headers=doctor).json()
        invalid = client.get("/api/v1/gateways?cadence_s=0", headers=doctor)
    assert (default["cadence_s"], default["silent_factor"]) == (5.0, 3.0)
    assert {g["gateway"]: g["silent"] for g in default["gateways"]} == {
        "gw-fresh": False,
        "gw-quiet": True,
    }
    quiet = default["gateways"][1]
    assert quiet["silent_for_s"] >= 60 and quiet["status"] == {"queue_depth": 12}
    assert not any(g["silent"] for g in lenient["gateways"])  # 20 x 5 s = 100 s > 60 s
    assert [g["gateway"] for g in only["gateways"]] == ["gw-quiet"]
    assert invalid.status_code == 422


def test_dead_letters_are_paged_with_raw_bytes_as_base64(database_url: str, tmp_path: Path) -> None:
    payloads = [b"\xff\xfe not utf-8 \x00", b'{"schema_version": 99}', b"third"]
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        for index, payload in enumerate(payloads):
            with conn.transaction():
                dead_letter_message(
                    conn, "vs/v1/gw/gw-1/readings", payload, datetime.now(UTC), "gw-1",
                    "malformed" if index < 2 else "too_large", f"case {index}",
                )  # fmt: skip
    with api_client(database_url, tmp_path) as client:
        service = bearer(client, "service", "replayer")
        first = client.get("/api/v1/dead-letters?limit=2", headers=service).json()
        rest = client.get(
            f"/api/v1/dead-letters?limit=2&before={first['next_before']}", headers=service
        ).json()
        malformed = client.get("/api/v1/dead-letters?reason=malformed", headers=service).json()
        er = client.get("/api/v1/dead-letters", headers=bearer(client, "er", "er-1"))
    pages = first["dead_letters"] + rest["dead_letters"]
    assert [base64.b64decode(d["payload_base64"]) for d in pages] == payloads[::-1]
    assert pages[-1]["payload_bytes"] == len(payloads[0])
    assert rest["next_before"] is None
    assert len(malformed["dead_letters"]) == 2
    assert er.status_code == 403
    reads = [r for r in audit_rows(database_url) if r[2] == "dead-letters" and r[1] == "read"]
    assert reads[0][0] == "service:replayer" and len(reads[0][3]["ids"]) == 2
    assert all("payload" not in str(r[3]) for r in reads)  # ids, never contents


def test_alerts_filter_by_subject_and_state(database_url: str, tmp_path: Path) -> None:
    t = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    _sql(
        database_url,
        "INSERT INTO alerts (subject, rule, severity, time, message, metric, value, state)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (ALPHA, "spo2_low", "high", t, "SpO2 88 %", "spo2", 88.0, "active"),
        (ALPHA, "hr_high", "medium", t, "HR 131", "heart_rate", 131.0, "resolved"),
        (BETA, "spo2_low", "high", t, "SpO2 87 %", "spo2", 87.0, "active"),
    )
    with api_client(database_url, tmp_path) as client:
        me = bearer(client, "patient", "u-alpha", subject=ALPHA)
        admin = bearer(client, "admin", "ops")
        mine = client.get("/api/v1/alerts", headers=me).json()["alerts"]
        active = client.get("/api/v1/alerts?state=active", headers=admin).json()["alerts"]
        beta = client.get(f"/api/v1/alerts?subject={BETA}", headers=admin).json()["alerts"]
    assert {a["subject"] for a in mine} == {ALPHA} and len(mine) == 2
    assert sorted(a["subject"] for a in active) == [ALPHA, BETA]
    assert [a["message"] for a in beta] == ["SpO2 87 %"]


def test_the_audit_log_is_for_admins_and_shows_the_chain(database_url: str, tmp_path: Path) -> None:
    with api_client(database_url, tmp_path) as client:
        admin = bearer(client, "admin", "ops")
        client.get(f"/api/v1/subjects/{ALPHA}/latest", headers=admin)
        page = client.get("/api/v1/audit", headers=admin).json()
        filtered = client.get(
            "/api/v1/audit", params={"resource": f"subject/{ALPHA}"}, headers=admin
        ).json()
        service = client.get("/api/v1/audit", headers=bearer(client, "service", "svc"))
    (row,) = page["rows"]
    assert row["resource"] == f"subject/{ALPHA}/latest" and row["actor"] == "admin:ops"
    assert row["prev_hash"] == "00" * 32 and len(row["hash"]) == 64
    assert len(filtered["rows"]) == 1
    assert service.status_code == 403


def test_healthz_needs_no_token_and_reports_the_storage_path(
    database_url: str, tmp_path: Path
) -> None:
    with api_client(database_url, tmp_path) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "postgresql"}


_SAMPLE = re.compile(r"^(vitalstream_[a-z_]+) (NaN|-?[0-9.e+-]+)$")


def _parse(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not Prometheus text format: {line!r}"
        values[match.group(1)] = float(match.group(2))
    return values


def test_metrics_in_prometheus_format(database_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    _sql(
        database_url,
        "INSERT INTO ingest_batches (batch_id, gateway, sent_at, first_committed_at, readings,"
        " inserted, duplicates, dead_lettered) VALUES (%s, 'gw-1', %s, %s, %s, %s, 0, 0)",
        ("b1", now - timedelta(seconds=11), now - timedelta(seconds=10), 100, 100),
        ("b2", now - timedelta(seconds=6), now - timedelta(seconds=5), 200, 190),
        ("old", now - timedelta(hours=2), now - timedelta(hours=2), 999, 999),
    )
    with psycopg.connect(database_url) as conn, conn.transaction():
        dead_letter_message(conn, "t", b"x", now, None, "malformed", "bad")
        conn.execute(  # three readings waiting 30 s for a rules consumer that is not running
            "INSERT INTO rule_inbox (committed_at, observations) VALUES (%s, %s::json)",
            (
                now - timedelta(seconds=30),
                '[["s","spo2",1,97],["s","spo2",2,96],["s","spo2",3,null]]',
            ),
        )
    with api_client(database_url, tmp_path) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE vitalstream_dead_letters_total counter" in response.text
    values = _parse(response.text)
    assert values["vitalstream_database_up"] == 1.0
    assert values["vitalstream_ingest_batches_last_minute"] == 2
    assert values["vitalstream_ingest_readings_per_second"] == 300 / 60
    assert values["vitalstream_ingest_batch_size_avg"] == 150
    assert values["vitalstream_ingest_batch_size_max"] == 200
    assert 4 <= values["vitalstream_ingest_lag_seconds"] < 60
    assert abs(values["vitalstream_ingest_commit_delay_seconds"] - 1.0) < 0.01
    assert values["vitalstream_dead_letters_total"] == 1
    assert values["vitalstream_ingest_readings_inserted_total"] == 1289
    assert values["vitalstream_readings_estimate"] >= 0
    assert values["vitalstream_rules_backlog_readings"] == 3
    assert 29 <= values["vitalstream_rules_backlog_seconds"] < 60


def test_metrics_token_when_configured(database_url: str, tmp_path: Path) -> None:
    with api_client(database_url, tmp_path, api_metrics_token="scrape-secret") as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert right.status_code == 200
