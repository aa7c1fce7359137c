"""The patient's FHIR export (/me/export.json) against a real PostgreSQL: a collection Bundle
of their own readings of a period, re-parsed with fhir.resources, audited, refused to others."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from test_api_support import api_client, audit_rows
from test_web_support import GAMMA, OTHER, log_in, seed, token

from ingest_service.web.fhir_export import build_bundle
from vitals import Reading

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_patient_exports_a_period_as_a_fhir_collection(database_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    seed(database_url, now)
    today = now.astimezone(SHANGHAI).date()
    first = today - timedelta(days=2)
    with api_client(database_url, tmp_path) as client:
        log_in(client, "patient", "u-gamma", subject=GAMMA)
        response = client.get(
            "/me/export.json", params={"from": first.isoformat(), "to": today.isoformat()}
        )
        backwards = client.get(
            "/me/export.json", params={"from": today.isoformat(), "to": first.isoformat()}
        )
        me = client.get("/me", params={"lang": "en"})
        doctor = {"Authorization": f"Bearer {token(client, 'doctor', 'dr-li')}"}
        refused = client.get("/me/export.json", headers=doctor)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert "attachment" in response.headers["content-disposition"]
    bundle = Bundle.model_validate_json(response.text)  # re-parsed by the FHIR models
    assert bundle.type == "collection" and bundle.entry
    resources = [e.resource for e in bundle.entry]
    patients = [r for r in resources if r is not None and r.get_resource_type() == "Patient"]
    assert len(patients) == 1
    raw = json.loads(response.text)
    patient = raw["entry"][0]["resource"]
    assert patient["identifier"] == [
        {"use": "official", "system": "urn:vitalstream:subject", "value": GAMMA}
    ]
    assert "name" not in patient and OTHER not in response.text
    observations = [r for r in resources if isinstance(r, Observation)]
    since = datetime.combine(first, datetime.min.time(), tzinfo=SHANGHAI)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM readings WHERE subject = %s AND time >= %s",
            (GAMMA, since),
        ).fetchone()
    assert row is not None and len(observations) == row[0] > 100
    glucose = [o for o in observations if o.code.coding and o.code.coding[0].code == "15074-8"]
    assert glucose and glucose[0].valueQuantity is not None
    assert glucose[0].valueQuantity.system == "http://unitsofmeasure.org"
    assert glucose[0].valueQuantity.code == "mmol/L"
    assert all(o.subject is not None and o.subject.reference for o in observations)
    assert backwards.status_code == 422
    assert refused.status_code == 403
    assert 'action="/me/export.json"' in me.text
    exports = [r for r in audit_rows(database_url) if r[2] == "web/me/export"]
    reads = [r for r in exports if r[1] == "read"]
    assert len(reads) == 1 and reads[0][0] == "patient:u-gamma"
    assert reads[0][3]["format"] == "fhir" and reads[0][3]["returned"] == len(observations)
    assert reads[0][3]["query"] == {"from": first.isoformat(), "to": today.isoformat()}
    assert [r[1] for r in exports if r[0] == "doctor:dr-li"] == ["read_denied"]


def test_a_reading_without_a_value_becomes_a_data_absent_observation() -> None:
    moment = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    readings = [
        Reading(subject=GAMMA, device="oxi-1", metric="spo2", no_value="sensor_off", unit="%",
                time=moment, source="sim"),
        Reading(subject=GAMMA, device="oxi-1", metric="spo2", value=97.0, unit="%",
                time=moment + timedelta(minutes=1), source="sim"),
    ]  # fmt: skip
    bundle = build_bundle(GAMMA, readings, moment)
    assert bundle.entry is not None
    absent, present = (e.resource for e in bundle.entry[1:])
    assert isinstance(absent, Observation) and isinstance(present, Observation)
    assert absent.dataAbsentReason is not None and absent.dataAbsentReason.coding
    assert absent.dataAbsentReason.coding[0].code == "error" and absent.valueQuantity is None
    assert present.valueQuantity is not None and present.valueQuantity.value == 97.0
    again = build_bundle(GAMMA, readings, moment)
    assert again.entry is not None
    assert [e.fullUrl for e in again.entry] == [e.fullUrl for e in bundle.entry]  # stable ids
