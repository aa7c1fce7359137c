"""The FHIR handoff Bundle: valid R4(B), coded, pseudonymous, no national ID."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from fhir.resources.R4B.bundle import Bundle

from alert_rules.pathways import activations
from ingest_service.handoff_fhir import (
    MDC_SYSTEM,
    SUBJECT_SYSTEM,
    build_handoff_bundle,
    bundle_json,
    scrub,
)
from vitals import Reading
from vitals.incident import Atmist, Findings, Incident, IncidentEvent, Sbar, Timeline

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SUBJECT = "tmp-abcdefghijklmnopqrstuvwxyz"
#: A syntactically valid GB 11643 ID (check digit correct), as a crew might type it by mistake.
NATIONAL_ID = "11010519491231002X"
ID_PATTERN = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


def _incident() -> Incident:
    opened = IncidentEvent(
        event_id="e1",
        kind="open",
        incident="sim-inc-1",
        gateway="sim-amb-1",
        time=T0,
        subject=SUBJECT,
        chief_complaint=f"arm weakness, ID {NATIONAL_ID}",
        timeline=Timeline(call=T0 - timedelta(minutes=20)),
        findings=Findings(
            age_years=72, befast_positive=True, last_known_well=T0 - timedelta(hours=1)
        ),
    )
    return Incident.open(opened).apply(
        IncidentEvent(
            event_id="e2",
            kind="handover",
            incident="sim-inc-1",
            gateway="sim-amb-1",
            time=T0 + timedelta(minutes=25),
            atmist=Atmist(age_years=72, treatment=f"IV access; patient ID {NATIONAL_ID}"),
            sbar=Sbar(situation="suspected stroke"),
        )
    )


def _vitals() -> list[Reading]:
    def reading(metric: str, value: float | None, unit: str) -> Reading:
        return Reading(
            subject=SUBJECT,
            device="sim-amb-1-monitor",
            metric=metric,
            value=value,
            no_value=None if value is not None else "sensor_off",
            unit=unit,
            time=T0,
            source="sim",
            incident="sim-inc-1",
        )

    return [
        reading("heart_rate", 88, "/min"),
        reading("glucose", 6.4, "mmol/L"),
        reading("spo2", None, "%"),
        reading("gcs", 14, "{score}"),
    ]


def _bundle() -> dict[str, object]:
    incident = _incident()
    acts = activations(incident.id, {"glucose": 6.4}, incident.findings, T0)
    text = bundle_json(build_handoff_bundle(incident, _vitals(), acts, now=T0))
    return dict(json.loads(text))


def _resources(bundle: dict[str, object], kind: str) -> list[dict[str, object]]:
    entries = bundle["entry"]
    assert isinstance(entries, list)
    return [e["resource"] for e in entries if e["resource"]["resourceType"] == kind]


def test_bundle_is_a_document_that_fhir_resources_re_parses() -> None:
    bundle = _bundle()
    parsed = Bundle.model_validate_json(json.dumps(bundle))
    assert parsed.type == "document"
    first = bundle["entry"][0]["resource"]  # type: ignore[index]
    assert first["resourceType"] == "Composition"
    titles = [s["title"] for s in first["section"]]
    assert titles[:6] == [
        "A - Age",
        "T - Time of onset",
        "M - Mechanism / medical complaint",
        "I - Injuries / information",
        "S - Signs",
        "T - Treatment",
    ]
    assert "SBAR" in titles


def test_patient_has_only_a_pseudonymous_temporary_identifier() -> None:
    (patient,) = _resources(_bundle(), "Patient")
    assert set(patient) == {"resourceType", "id", "identifier"}
    assert patient["identifier"] == [{"use": "temp", "system": SUBJECT_SYSTEM, "value": SUBJECT}]


def test_no_national_id_pattern_anywhere_in_the_serialised_bundle() -> None:
    text = json.dumps(_bundle())
    assert NATIONAL_ID not in text
    assert not ID_PATTERN.search(text)
    assert scrub(f"x {NATIONAL_ID} y") == "x [id removed] y"


def test_observations_carry_loinc_mdc_ucum_and_data_absent_reason() -> None:
    observations = {o["code"]["text"]: o for o in _resources(_bundle(), "Observation")}  # type: ignore[index]
    hr = next(o for name, o in observations.items() if name.startswith("Heart rate"))
    systems = {c["system"]: c["code"] for c in hr["code"]["coding"]}  # type: ignore[index]
    assert systems == {"http://loinc.org": "8867-4", MDC_SYSTEM: "147842"}
    assert hr["valueQuantity"] == {
        "value": 88.0,
        "unit": "/min",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    }
    spo2 = next(o for name, o in observations.items() if "oxygen saturation" in name)
    assert "valueQuantity" not in spo2
    assert spo2["dataAbsentReason"]["coding"][0]["code"] == "error"  # type: ignore[index]


def test_encounter_is_emergency_class_with_period_and_the_ambulance() -> None:
    bundle = _bundle()
    (encounter,) = _resources(bundle, "Encounter")
    assert encounter["class"]["code"] == "EMER"  # type: ignore[index]
    assert encounter["period"] == {
        "start": "2026-11-25T08:40:00Z",
        "end": "2026-11-25T09:25:00Z",
    }
    (location,) = _resources(bundle, "Location")
    assert location["physicalType"]["coding"][0]["code"] == "ve"  # type: ignore[index]


def test_suspected_condition_per_activation_is_snomed_coded_and_provisional() -> None:
    (condition,) = _resources(_bundle(), "Condition")
    assert condition["code"]["coding"][0] == {  # type: ignore[index]
        "system": "http://snomed.info/sct",
        "code": "230690007",
        "display": "Cerebrovascular accident",
    }
    assert condition["verificationStatus"]["coding"][0]["code"] == "provisional"  # type: ignore[index]


def test_the_same_incident_gives_the_same_bundle() -> None:
    assert _bundle() == _bundle()
