"""``/api/v1/incidents`` against a real fresh database: list (open first), detail, the FHIR
bundle, the team's acknowledgement (state + audit, idempotent), roles and their audit rows;
and migration 8 on a database where the old start-up DDL had created the handoff tables."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from test_api_support import api_client, audit_rows, bearer
from test_incident_support import STROKE, STROKE_SUBJECT, TRAUMA, seed_incidents

from ingest_service import schema
from ingest_service.schema import migrate


def test_list_puts_open_incidents_first_with_teams_and_ack_state(
    database_url: str, tmp_path: Path
) -> None:
    seeded = seed_incidents(database_url, datetime.now(UTC))
    with api_client(database_url, tmp_path) as client:
        answer = client.get("/api/v1/incidents", headers=bearer(client, "er", "er-nurse"))
        assert answer.status_code == 200, answer.text
        incidents = answer.json()["incidents"]
        assert [i["id"] for i in incidents] == [STROKE, TRAUMA]
        stroke, trauma = incidents
        assert stroke["status"] == "open" and trauma["status"] == "handed_over"
        assert stroke["suspected_pathway"] == "stroke" and stroke["eta"] is not None
        assert stroke["last_data_at"] is not None
        teams = {a["team"]: a for a in stroke["activations"]}
        assert teams["stroke_team"]["id"] == seeded.stroke_activation
        assert teams["stroke_team"]["acknowledged_at"] is None
        assert trauma["activations"][0]["acknowledged_by"] == "er:trauma-lead"

        only_open = client.get(
            "/api/v1/incidents", params={"state": "open"}, headers=bearer(client, "admin", "ops")
        ).json()["incidents"]
        assert [i["id"] for i in only_open] == [STROKE]
    read = [r for r in audit_rows(database_url) if r[2] == "incidents"]
    assert read[0][0] == "er:er-nurse" and read[0][1] == "read"
    assert read[0][3]["incidents"] == [STROKE, TRAUMA]


def test_detail_has_timeline_activations_notifications_vitals_and_bundle(
    database_url: str, tmp_path: Path
) -> None:
    seed_incidents(database_url, datetime.now(UTC))
    with api_client(database_url, tmp_path) as client:
        headers = bearer(client, "er", "er-nurse")
        detail = client.get(f"/api/v1/incidents/{STROKE}", headers=headers).json()
        assert detail["subject"] == STROKE_SUBJECT
        assert detail["timeline"]["call"] and detail["timeline"]["depart"]
        assert detail["findings"]["befast_positive"] is True
        assert detail["atmist"]["mechanism"] == "Medical: suspected stroke"
        assert detail["sbar"]["recommendation"] == "Stroke team and CT on arrival"
        assert [e["kind"] for e in detail["events"]] == ["open", "findings", "update"]
        stroke = next(a for a in detail["activations"] if a["pathway"] == "stroke")
        assert stroke["notifications"][0]["channel"] == "webhook"
        assert stroke["notifications"][0]["activation_to_notification_ms"] == 48.5
        metrics = {v["metric"] for v in detail["latest"]}
        assert {"heart_rate", "spo2", "respiratory_rate", "bp_systolic"} <= metrics
        assert detail["handoff"] is None
        assert client.get(f"/api/v1/incidents/{STROKE}/bundle", headers=headers).status_code == 404

        trauma = client.get(f"/api/v1/incidents/{TRAUMA}", headers=headers).json()
        assert trauma["handoff"]["receipt_status"] == "accepted"
        bundle = client.get(f"/api/v1/incidents/{TRAUMA}/bundle", headers=headers)
        assert bundle.status_code == 200
        assert bundle.headers["content-type"].startswith("application/fhir+json")
        assert bundle.json()["resourceType"] == "Bundle"
        assert client.get("/api/v1/incidents/nope", headers=headers).status_code == 404


def test_acknowledge_fills_the_notifications_once_and_is_audited(
    database_url: str, tmp_path: Path
) -> None:
    seeded = seed_incidents(database_url, datetime.now(UTC))
    url = f"/api/v1/incidents/{STROKE}/activations/{seeded.stroke_activation}/ack"
    with api_client(database_url, tmp_path) as client:
        first = client.post(url, json={"note": "stroke team ready, CT 2 free"},
                            headers=bearer(client, "er", "stroke-lead"))  # fmt: skip
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["changed"] is True
        assert body["activation"]["acknowledged_by"] == "er:stroke-lead"
        again = client.post(url, headers=bearer(client, "admin", "ops"))
        assert again.status_code == 200
        assert again.json()["changed"] is False
        assert again.json()["activation"]["acknowledged_by"] == "er:stroke-lead"

        unsent = f"/api/v1/incidents/{STROKE}/activations/{seeded.unsent_activation}/ack"
        assert client.post(unsent, headers=bearer(client, "er", "x")).status_code == 409
        wrong = f"/api/v1/incidents/{TRAUMA}/activations/{seeded.stroke_activation}/ack"
        assert client.post(wrong, headers=bearer(client, "er", "x")).status_code == 404
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT acknowledged_at IS NOT NULL, acknowledged_by FROM pathway_notifications"
            " WHERE activation_id = %s",
            (seeded.stroke_activation,),
        ).fetchone()
    assert row == (True, "er:stroke-lead")
    acks = [r for r in audit_rows(database_url) if r[1] == "activation_acknowledged"]
    assert len(acks) == 1
    actor, _, resource, detail = acks[0]
    assert actor == "er:stroke-lead"
    assert resource == f"incident/{STROKE}/activation/{seeded.stroke_activation}"
    assert detail["subject"] == STROKE_SUBJECT and detail["team"] == "stroke_team"
    assert detail["note"] == "stroke team ready, CT 2 free" and detail["via"] == "api"


@pytest.mark.parametrize(
    ("role", "claims", "read", "ack"),
    [
        ("er", {}, 200, 200),
        ("admin", {}, 200, 200),
        ("doctor", {}, 200, 403),
        ("doctor", {"subjects": ["pgamma"]}, 403, 403),
        ("patient", {"subject": STROKE_SUBJECT}, 403, 403),
        ("service", {}, 403, 403),
    ],
)
def test_roles(
    role: str,
    claims: dict[str, object],
    read: int,
    ack: int,
    database_url: str,
    tmp_path: Path,
) -> None:
    seeded = seed_incidents(database_url, datetime.now(UTC))
    with api_client(database_url, tmp_path) as client:
        headers = bearer(client, role, "someone", **claims)
        assert client.get(f"/api/v1/incidents/{STROKE}", headers=headers).status_code == read
        listed = client.get("/api/v1/incidents", headers=headers)
        if role in {"patient", "service"}:
            assert listed.status_code == 403
        else:
            ids = [i["id"] for i in listed.json()["incidents"]]
            assert ids == ([] if claims else [STROKE, TRAUMA])
        url = f"/api/v1/incidents/{STROKE}/activations/{seeded.stroke_activation}/ack"
        assert client.post(url, headers=headers).status_code == ack
        assert client.get("/api/v1/incidents").status_code == 401
    actions = {r[1] for r in audit_rows(database_url) if r[0] == f"{role}:someone"}
    if read == 403:
        assert "read_denied" in actions
    if ack == 403:
        assert "write_denied" in actions


OLD_STARTUP_DDL = """
CREATE TABLE IF NOT EXISTS incidents (
    incident text PRIMARY KEY, gateway text NOT NULL, subject text NOT NULL, pathway text,
    state jsonb NOT NULL, opened_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
    handed_over_at timestamptz);
CREATE INDEX IF NOT EXISTS incidents_open ON incidents (updated_at) WHERE handed_over_at IS NULL;
CREATE TABLE IF NOT EXISTS incident_events (
    event_id text PRIMARY KEY, incident text NOT NULL, gateway text NOT NULL, kind text NOT NULL,
    time timestamptz NOT NULL, received_at timestamptz NOT NULL, payload jsonb NOT NULL);
CREATE INDEX IF NOT EXISTS incident_events_incident ON incident_events (incident, time);
CREATE TABLE IF NOT EXISTS pathway_activations (
    id bigserial PRIMARY KEY, incident text NOT NULL REFERENCES incidents, pathway text NOT NULL,
    team text NOT NULL, reasons text[] NOT NULL, missing text[] NOT NULL DEFAULT '{}',
    advice text[] NOT NULL DEFAULT '{}', guideline text NOT NULL, deadline timestamptz,
    finding_received_at timestamptz NOT NULL, activated_at timestamptz NOT NULL,
    UNIQUE (incident, pathway));
CREATE TABLE IF NOT EXISTS pathway_notifications (
    id bigserial PRIMARY KEY, activation_id bigint NOT NULL REFERENCES pathway_activations,
    channel text NOT NULL, target text NOT NULL, status text NOT NULL, detail text,
    notified_at timestamptz NOT NULL, activation_to_notification_ms double precision NOT NULL,
    acknowledged_at timestamptz, acknowledged_by text);
CREATE INDEX IF NOT EXISTS pathway_notifications_activation
    ON pathway_notifications (activation_id);
CREATE TABLE IF NOT EXISTS handoffs (
    incident text PRIMARY KEY REFERENCES incidents, bundle_id text NOT NULL,
    bundle jsonb NOT NULL, created_at timestamptz NOT NULL, receipt jsonb,
    received_at timestamptz);
"""


def test_migration_8_keeps_tables_the_old_startup_ddl_created(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database the handoff service ran on before migration 8: migrations 1-7 applied and
    the handoff tables made by its own start-up DDL, with an incident in them."""
    with psycopg.connect(database_url) as conn:
        monkeypatch.setattr(schema, "MIGRATIONS", tuple(m for m in schema.MIGRATIONS if m[0] < 8))
        migrate(conn)
        monkeypatch.undo()
        conn.execute(OLD_STARTUP_DDL.encode())
        conn.execute(
            "INSERT INTO incidents VALUES ('inc-1', 'amb-1', 'tmp-1', NULL, '{}', now(), now())"
        )
        conn.commit()
        migrate(conn)
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        kept = conn.execute("SELECT count(*) FROM incidents").fetchone()
    assert 8 in versions
    assert kept == (1,)


def test_migration_8_creates_the_handoff_tables_on_a_fresh_database(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        tables = {
            str(r[0])
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert {
        "incidents",
        "incident_events",
        "pathway_activations",
        "pathway_notifications",
        "handoffs",
    } <= tables
