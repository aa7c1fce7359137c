"""Crew/ER input through ``/api/v1/incidents`` against a real fresh database: open (with a
temporary subject), update (folded by ``Incident.apply``, one ``incident_events`` row per
write), handoff (the FHIR Bundle stored and answered), roles and the audit rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle
from test_api_support import api_client, audit_rows, bearer
from test_incident_support import STROKE, STROKE_SUBJECT, seed_incidents


def _events(database_url: str, incident: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT kind, event_id FROM incident_events WHERE incident = %s"
            " ORDER BY received_at, time",
            (incident,),
        ).fetchall()
    return [(str(k), str(e)) for k, e in rows]


def test_open_gives_an_unidentified_patient_a_temporary_subject(
    database_url: str, tmp_path: Path
) -> None:
    with api_client(database_url, tmp_path) as client:
        headers = bearer(client, "er", "er-nurse")
        answer = client.post(
            "/api/v1/incidents",
            json={"gateway": "amb-7", "chief_complaint": "Chest pain, sweating",
                  "pathway": "stemi"},
            headers=headers,
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["kind"] == "open" and body["event_id"].startswith("api-")
        opened = body["incident"]
        assert opened["subject"].startswith("tmp-") and opened["gateway"] == "amb-7"
        assert opened["pathway"] == "stemi"
        incident = opened["id"]

        shown = client.get(f"/api/v1/incidents/{incident}", headers=headers).json()
        assert shown["status"] == "open"
        assert shown["chief_complaint"] == "Chest pain, sweating"
        assert [e["kind"] for e in shown["events"]] == ["open"]

        named = client.post(
            "/api/v1/incidents",
            json={"gateway": "amb-7", "incident": "inc-42", "subject": "pknown"},
            headers=headers,
        )
        assert named.status_code == 201 and named.json()["incident"]["subject"] == "pknown"
        taken = client.post(
            "/api/v1/incidents", json={"gateway": "amb-8", "incident": "inc-42"}, headers=headers
        )
        assert taken.status_code == 409
        national_id = client.post(
            "/api/v1/incidents",
            json={"gateway": "amb-7", "subject": "11010519491231002X"},
            headers=headers,
        )
        assert national_id.status_code == 422
        handover_early = client.post(
            "/api/v1/incidents",
            json={"gateway": "amb-7", "timeline": {"handover": datetime.now(UTC).isoformat()}},
            headers=headers,
        )
        assert handover_early.status_code == 422
    assert _events(database_url, incident) == [("open", body["event_id"])]
    opens = [r for r in audit_rows(database_url) if r[1] == "incident_opened"]
    assert [r[2] for r in opens] == [f"incident/{incident}", "incident/inc-42"]
    actor, _, _, detail = opens[0]
    assert actor == "er:er-nurse" and detail["via"] == "api"
    assert detail["subject"] == opened["subject"] and detail["temporary_subject"] is True
    assert detail["fields"] == ["chief_complaint", "pathway", "subject"]
    assert "Chest pain" not in str(detail), "the audit names fields, not their free text"


def test_update_folds_an_event_into_the_incident(database_url: str, tmp_path: Path) -> None:
    seed_incidents(database_url, datetime.now(UTC))
    eta = datetime.now(UTC) + timedelta(minutes=4)
    with api_client(database_url, tmp_path) as client:
        headers = bearer(client, "admin", "ops")
        url = f"/api/v1/incidents/{STROKE}"
        timeline = client.patch(url, json={"timeline": {"eta": eta.isoformat()}}, headers=headers)
        assert timeline.status_code == 200, timeline.text
        assert timeline.json()["kind"] == "update"
        findings = client.patch(
            url, json={"findings": {"st_elevation": False, "gcs_motor": 6}}, headers=headers
        )
        assert findings.json()["kind"] == "findings"
        after = findings.json()["incident"]
        # A field an update leaves out is kept (Incident.apply).
        assert after["findings"]["befast_positive"] is True
        assert after["findings"]["gcs_motor"] == 6
        assert after["timeline"]["on_scene"] is not None
        sbar = client.patch(
            url, json={"sbar": {"situation": "Stroke, FAST+, 80 min"}}, headers=headers
        )
        assert sbar.json()["incident"]["sbar"] == {
            "situation": "Stroke, FAST+, 80 min", "background": None, "assessment": None,
            "recommendation": None,
        }  # fmt: skip

        shown = client.get(url, headers=headers).json()
        assert datetime.fromisoformat(shown["eta"]) == eta
        assert [e["kind"] for e in shown["events"]][-3:] == ["update", "findings", "update"]

        assert client.patch(url, json={}, headers=headers).status_code == 422
        assert client.patch(url, json={"sbar": None}, headers=headers).status_code == 422
        assert client.patch(url, json={"nope": 1}, headers=headers).status_code == 422
        handover = {"timeline": {"handover": datetime.now(UTC).isoformat()}}
        assert client.patch(url, json=handover, headers=headers).status_code == 422
        missing = client.patch("/api/v1/incidents/nope", json={"pathway": "stroke"},
                               headers=headers)  # fmt: skip
        assert missing.status_code == 404
    assert [k for k, _ in _events(database_url, STROKE)][-3:] == ["update", "findings", "update"]
    updates = [r for r in audit_rows(database_url) if r[1] == "incident_updated"]
    assert [r[3]["fields"] for r in updates] == [["timeline"], ["findings"], ["sbar"]]
    assert {r[3]["subject"] for r in updates} == {STROKE_SUBJECT}
    assert {r[2] for r in updates} == {f"incident/{STROKE}"}


def test_handoff_stores_and_answers_the_fhir_bundle(database_url: str, tmp_path: Path) -> None:
    seed_incidents(database_url, datetime.now(UTC))
    with api_client(database_url, tmp_path) as client:
        headers = bearer(client, "er", "er-lead")
        url = f"/api/v1/incidents/{STROKE}/handoff"
        answer = client.post(url, json={"sbar": {"recommendation": "CT now"}}, headers=headers)
        assert answer.status_code == 201, answer.text
        assert answer.headers["content-type"].startswith("application/fhir+json")
        assert answer.headers["location"] == f"/api/v1/incidents/{STROKE}/bundle"
        bundle = Bundle.model_validate_json(answer.content)
        assert bundle.type == "document"
        kinds = [e["resource"]["resourceType"] for e in answer.json()["entry"]]
        assert kinds[:4] == ["Composition", "Patient", "Encounter", "Location"]
        assert "Observation" in kinds and "Condition" in kinds  # vitals + the stroke activation
        assert "CT now" in answer.text

        stored = client.get(f"/api/v1/incidents/{STROKE}/bundle", headers=headers)
        assert stored.json() == answer.json()
        shown = client.get(f"/api/v1/incidents/{STROKE}", headers=headers).json()
        assert shown["status"] == "handed_over" and shown["handover"] is not None
        assert shown["handoff"]["bundle_id"] == bundle.id
        assert shown["events"][-1]["kind"] == "handover"

        assert client.post(url, headers=headers).status_code == 409
        missing = client.post("/api/v1/incidents/nope/handoff", headers=headers)
        assert missing.status_code == 404
    handed = [r for r in audit_rows(database_url) if r[1] == "incident_handed_over"]
    assert len(handed) == 1
    actor, _, resource, detail = handed[0]
    assert actor == "er:er-lead" and resource == f"incident/{STROKE}/handoff"
    assert detail["bundle_id"] == bundle.id and detail["fields"] == ["sbar"]


@pytest.mark.parametrize(
    ("role", "claims"),
    [("doctor", {}), ("patient", {"subject": STROKE_SUBJECT}), ("service", {})],
)
def test_only_er_and_admin_write(
    role: str, claims: dict[str, object], database_url: str, tmp_path: Path
) -> None:
    seed_incidents(database_url, datetime.now(UTC))
    with api_client(database_url, tmp_path) as client:
        headers = bearer(client, role, "someone", **claims)
        opened = client.post("/api/v1/incidents", json={"gateway": "amb-1"}, headers=headers)
        assert opened.status_code == 403
        patched = client.patch(
            f"/api/v1/incidents/{STROKE}", json={"pathway": "sepsis"}, headers=headers
        )
        assert patched.status_code == 403
        handed = client.post(f"/api/v1/incidents/{STROKE}/handoff", headers=headers)
        assert handed.status_code == 403
        assert client.post("/api/v1/incidents", json={"gateway": "amb-1"}).status_code == 401
    denied = [r for r in audit_rows(database_url) if r[0] == f"{role}:someone"]
    assert [(r[1], r[2]) for r in denied] == [
        ("write_denied", "incidents"),
        ("write_denied", f"incident/{STROKE}"),
        ("write_denied", f"incident/{STROKE}/handoff"),
    ]
    with psycopg.connect(database_url) as conn:
        count = conn.execute("SELECT count(*) FROM incidents").fetchone()
        handoffs = conn.execute("SELECT count(*) FROM handoffs").fetchone()
    assert count == (2,) and handoffs == (1,)  # the seeded two; TRAUMA's handoff only
