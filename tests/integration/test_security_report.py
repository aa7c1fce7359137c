"""``vitalstream security report`` against a real PostgreSQL, each condition planted.

The ID-like strings are SYNTHETIC: region 110101, a made-up birth date and sequence, and a
check character computed by ``check_character``; they stand for no one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import typer
from typer.testing import CliRunner

from ingest_service.audit import AuditEntry, append
from ingest_service.identity import check_character
from ingest_service.schema import DatabaseKind, migrate
from ingest_service.security_report import build_report
from ingest_service.storage import Delivery, ReadingWriter
from ingest_service.validate import validate_message
from vitals import Batch, Reading, encode
from vitalstream.commands.security import security_app

_BODY = "110101" + "19900307" + "123"
SYNTHETIC_ID = _BODY + check_character(_BODY)  # synthetic, valid check character
NEAR_MISS = _BODY + ("0" if SYNTHETIC_ID[-1] != "0" else "1")  # wrong check character


def _deliver(
    conn: psycopg.Connection[Any], topic: str, payload: bytes, now: datetime, kind: DatabaseKind
) -> None:
    outcome = validate_message(topic, payload, prefix="vs", now=now)
    with conn.transaction():
        ReadingWriter(kind).write(conn, [Delivery(topic, payload, now, outcome)], now)


def _batch(gateway: str, batch_id: str, device: str, now: datetime) -> bytes:
    reading = Reading(
        subject="psynthetic",
        device=device,
        metric="heart_rate",
        value=72.0,
        unit="/min",
        time=now - timedelta(minutes=1),
        source="sim",
    )
    return encode(Batch(batch_id=batch_id, gateway=gateway, sent_at=now, readings=(reading,)))


def _denied(conn: psycopg.Connection[Any], actor: str, moment: datetime, subject: str) -> None:
    append(
        conn,
        AuditEntry(
            time=moment,
            actor=actor,
            action="read_denied",
            resource=f"subjects/{subject}/readings",
            detail={"role": "doctor", "subject": subject, "reason": "not permitted"},
        ),
    )


def _plant_everything(database_url: str, now: datetime) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        kind = migrate(conn)
        # (b) a doctor's token probing 8 patients in 4 minutes; another doctor denied twice.
        for i in range(8):
            _denied(conn, "doc-probe", now - timedelta(minutes=30, seconds=-30 * i), f"px{i}")
        for i in range(2):
            _denied(conn, "doc-honest", now - timedelta(hours=2, minutes=i), "py")
        # (c) a clear ID in a dead letter (a malformed payload) ...
        _deliver(
            conn,
            "vs/v1/gw/gw-1/readings",
            f'{{"patient_id": "{SYNTHETIC_ID}", "hr": 72'.encode(),
            now,
            kind,
        )
        # ... a near miss that must not count ...
        _deliver(conn, "vs/v1/gw/gw-1/readings", f"seq={NEAR_MISS}".encode(), now, kind)
        # ... a device named after the patient's ID (stored as a reading) ...
        _deliver(
            conn, "vs/v1/gw/gw-1/readings", _batch("gw-1", "b-leak", SYNTHETIC_ID, now), now, kind
        )
        # ... and an audit row whose detail holds it.
        append(
            conn,
            AuditEntry(
                time=now - timedelta(minutes=3),
                actor="admin-1",
                action="read",
                resource="subjects",
                detail={"query": f"search={SYNTHETIC_ID}"},
            ),
        )
        # (d) gw-2 publishes a batch claiming to be gw-1, twice.
        for n in range(2):
            payload = _batch("gw-1", f"b-spoof-{n}", f"dev-{n}", now)
            _deliver(conn, "vs/v1/gw/gw-2/readings", payload, now, kind)


def _by_kind(alerts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        found.setdefault(alert["kind"], []).append(alert)
    return found


def test_clean_database_raises_nothing(database_url: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        kind = migrate(conn)
        _deliver(conn, "vs/v1/gw/gw-1/readings", _batch("gw-1", "b1", "oxi-1", now), now, kind)
        _denied(conn, "doc-1", now - timedelta(minutes=5), "px")
    with psycopg.connect(database_url) as conn:
        report = build_report(conn, now=now)
    assert report.alerts == ()


def test_each_planted_condition_is_reported(database_url: str) -> None:
    now = datetime.now(UTC)
    _plant_everything(database_url, now)
    with psycopg.connect(database_url) as conn:
        report = build_report(conn, now=now + timedelta(seconds=1)).as_dict()
    alerts = report["alerts"]
    assert isinstance(alerts, list)
    found = _by_kind(alerts)
    assert set(found) == {"clear_id_leak", "read_denied_burst", "gateway_mismatch"}

    (burst,) = found["read_denied_burst"]
    assert burst["severity"] == "high" and burst["count"] == 8
    assert "doc-probe" in burst["detail"] and "doc-honest" not in burst["detail"]

    leaks = {alert["detail"].split(" hold ")[0]: alert for alert in found["clear_id_leak"]}
    assert len(leaks) == 3, leaks
    counts = sorted(alert["count"] for alert in leaks.values())
    assert counts == [1, 1, 1]  # the near miss is not counted
    assert all(alert["severity"] == "critical" for alert in leaks.values())

    (mismatch,) = found["gateway_mismatch"]
    assert mismatch["count"] == 2 and "gw-2" in mismatch["detail"]
    assert mismatch["first_seen"] is not None

    # Nothing in the report repeats the ID.
    assert SYNTHETIC_ID not in json.dumps(report)
    assert SYNTHETIC_ID[:17] not in json.dumps(report)
    # Critical alerts come first.
    assert alerts[0]["severity"] == "critical"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(security_app, name="security")

    @app.callback()
    def _root() -> None:
        """Test root."""

    return app


def test_cli_reports_a_broken_chain(database_url: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        for i in range(4):
            _denied(conn, f"doc-{i}", now - timedelta(minutes=i), "px")
    runner = CliRunner()
    args = ["security", "report", "--json", "--database-url", database_url]
    result = runner.invoke(_app(), [*args, "--check"])
    assert result.exit_code == 0, result.output
    clean = json.loads(result.stdout.strip().splitlines()[-1])
    assert clean["alerts"] == [] and clean["checked_at"]

    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE audit_log SET actor = 'someone-else' WHERE id = 3")
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0
    out = json.loads(result.stdout.strip().splitlines()[-1])
    (alert,) = out["alerts"]
    assert set(alert) == {"kind", "severity", "detail", "count", "first_seen", "last_seen"}
    assert (alert["kind"], alert["severity"], alert["count"]) == (
        "audit_chain_broken",
        "critical",
        1,
    )
    assert "row id 3 of 4" in alert["detail"]
    assert runner.invoke(_app(), [*args, "--check"]).exit_code == 1
    # Burst rule parameters are options: 4 different actors never make a burst, but a
    # threshold of 1 makes each single denial one.
    result = runner.invoke(_app(), [*args, "--burst-threshold", "1"])
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert len([a for a in out["alerts"] if a["kind"] == "read_denied_burst"]) == 4
