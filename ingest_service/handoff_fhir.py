"""The handoff packet: a FHIR document Bundle of one ambulance incident (pure builder).

What the receiving emergency department gets at handover (issue 9, item 4):

- ``Composition`` (first entry, as a document Bundle requires; LOINC 18761-7 "Transfer
  summary note") with one section per ATMIST letter, an SBAR section and a pathways section.
- ``Patient`` with a pseudonymous identifier only (system ``urn:vitalstream:subject``; ``use``
  = ``temp`` for a ``tmp-…`` subject of an unidentified patient). Never a name, never the
  national ID: identity is resolved inside the hospital through the master patient index.
- ``Encounter``: class ``EMER`` (HL7 v3 ActCode), period from call (or first contact) to
  handover, the ambulance as a ``Location`` of physical type ``ve`` (vehicle).
- ``Observation`` per latest vital: LOINC and IEEE 11073-10101 (MDC, system
  ``urn:iso:std:iso:11073:10101``) codes and the UCUM unit from the catalogue; a reading with
  no value becomes an Observation with ``dataAbsentReason``.
- ``Condition`` (verification ``provisional``) per activated pathway, SNOMED CT coded where
  the concept is unambiguous, else text.

FHIR version: ``fhir.resources`` 8 ships R5 as its default package and R4B (4.3.0) as
``fhir.resources.R4B``; there is no separate R4 (4.0.1) model set for pydantic 2. The resources
used here (Bundle, Composition, Patient, Encounter, Location, Observation, Condition) did not
change between R4 and R4B, so a Bundle validated by the R4B models is a valid R4 Bundle.

Every free-text field the crew typed passes :func:`scrub`, which removes anything shaped like
an 18-character resident ID (GB 11643) before it reaches the Bundle; names cannot be found
that way, so the crew's tools must not ask for them.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from vitals import NoValue, Reading, metric
from vitals.incident import Incident, Pathway, PathwayActivation

FHIR_VERSION: Final = "4.3.0 (R4B models, R4-compatible resources)"
SUBJECT_SYSTEM: Final = "urn:vitalstream:subject"
INCIDENT_SYSTEM: Final = "urn:vitalstream:incident"
GATEWAY_SYSTEM: Final = "urn:vitalstream:gateway"
DEVICE_SYSTEM: Final = "urn:vitalstream:device"
MDC_SYSTEM: Final = "urn:iso:std:iso:11073:10101"
LOINC_SYSTEM: Final = "http://loinc.org"
UCUM_SYSTEM: Final = "http://unitsofmeasure.org"
SNOMED_SYSTEM: Final = "http://snomed.info/sct"
ACT_CODE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
LOCATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/location-physical-type"

#: Deterministic resource ids: uuid5 in this namespace of (incident, resource key), so the same
#: incident always yields the same Bundle (idempotent re-sends, comparable in tests).
_NAMESPACE: Final = uuid.UUID("5b0f3d1e-6a52-4c55-9b3e-1f6c2a9d7e41")

#: IEEE 11073-20601 special values and monitor sentinels -> FHIR data-absent-reason (R4
#: value set http://hl7.org/fhir/ValueSet/data-absent-reason).
DATA_ABSENT_REASON: Final[dict[NoValue, tuple[str, str]]] = {
    "NaN": ("not-a-number", "Not a Number (NaN)"),
    "+INF": ("positive-infinity", "Positive Infinity (PINF)"),
    "-INF": ("negative-infinity", "Negative Infinity (NINF)"),
    "NRes": ("error", "Error"),  # "not at this resolution": the device could not represent it
    "reserved": ("error", "Error"),
    "not_measured": ("not-performed", "Not Performed"),
    "sensor_off": ("error", "Error"),  # probe off: a workflow/device fault, not a physiology
}

#: Suspected condition per pathway. SNOMED CT codes (International Edition concept ids):
#: 230690007 |Cerebrovascular accident (disorder)|, 401303003 |Acute ST segment elevation
#: myocardial infarction (disorder)|, 417746004 |Traumatic injury (disorder)|, 91302008
#: |Sepsis (disorder)|. Maternal activations cover several conditions (severe hypertension,
#: eclampsia, haemorrhage): text only, 15938005 |Eclampsia (disorder)| when a seizure was seen.
CONDITION_CODES: Final[dict[Pathway, tuple[str, str] | None]] = {
    "stroke": ("230690007", "Cerebrovascular accident"),
    "stemi": ("401303003", "Acute ST segment elevation myocardial infarction"),
    "trauma": ("417746004", "Traumatic injury"),
    "maternal": None,
    "sepsis": ("91302008", "Sepsis"),
}
ECLAMPSIA: Final = ("15938005", "Eclampsia")

#: A GB 11643 resident ID: 17 digits and a check digit or X, not part of a longer number.
NATIONAL_ID_PATTERN: Final = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")


def scrub(text: str) -> str:
    """Free text with every resident-ID-shaped number replaced (defence in depth)."""
    return NATIONAL_ID_PATTERN.sub("[id removed]", text)


def _uuid(incident: str, key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{incident}/{key}"))


def _ref(resource_id: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource_id}"}


def _narrative(lines: Sequence[str]) -> dict[str, str]:
    body = "".join(f"<p>{html.escape(scrub(line))}</p>" for line in lines) or "<p>-</p>"
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _patient(incident: Incident, pid: str) -> dict[str, Any]:
    temporary = incident.subject.startswith("tmp-")
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {
                "use": "temp" if temporary else "official",
                "system": SUBJECT_SYSTEM,
                "value": incident.subject,
            }
        ],
    }


def _location(incident: Incident, lid: str) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": lid,
        "identifier": [{"system": GATEWAY_SYSTEM, "value": incident.gateway}],
        "name": f"Ambulance {incident.gateway}",
        "mode": "instance",
        "physicalType": {"coding": [{"system": LOCATION_TYPE, "code": "ve", "display": "Vehicle"}]},
    }


def _encounter(incident: Incident, eid: str, pid: str, lid: str) -> dict[str, Any]:
    timeline = incident.timeline
    start = timeline.call or timeline.on_scene or incident.opened_at
    period: dict[str, str] = {"start": _iso(start)}
    if timeline.handover is not None:
        period["end"] = _iso(timeline.handover)
    return {
        "resourceType": "Encounter",
        "id": eid,
        "identifier": [{"system": INCIDENT_SYSTEM, "value": incident.id}],
        "status": "finished" if timeline.handover is not None else "in-progress",
        "class": {"system": ACT_CODE_SYSTEM, "code": "EMER", "display": "emergency"},
        "subject": _ref(pid),
        "period": period,
        "location": [{"location": _ref(lid), "status": "completed"}],
        **(
            {"reasonCode": [{"text": scrub(incident.chief_complaint)}]}
            if incident.chief_complaint
            else {}
        ),
    }


def _observation(reading: Reading, oid: str, pid: str, eid: str) -> dict[str, Any]:
    spec = metric(reading.metric)
    codings: list[dict[str, str]] = []
    if spec.loinc is not None:
        codings.append({"system": LOINC_SYSTEM, "code": spec.loinc, "display": spec.description})
    if spec.mdc_code is not None:
        codings.append(
            {
                "system": MDC_SYSTEM,
                "code": str(spec.mdc_code),
                "display": spec.mdc_reference or spec.description,
            }
        )
    code: dict[str, Any] = {"text": spec.description}
    if codings:
        code["coding"] = codings
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": OBSERVATION_CATEGORY,
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ]
            }
        ],
        "code": code,
        "subject": _ref(pid),
        "encounter": _ref(eid),
        "effectiveDateTime": _iso(reading.time),
        "device": {"identifier": {"system": DEVICE_SYSTEM, "value": reading.device}},
    }
    if reading.value is None:
        absent = DATA_ABSENT_REASON[reading.no_value or "NaN"]
        resource["dataAbsentReason"] = {
            "coding": [{"system": DATA_ABSENT_SYSTEM, "code": absent[0], "display": absent[1]}],
            "text": f"device reported {reading.no_value}",
        }
    elif spec.unit == "{bool}":
        resource["valueBoolean"] = reading.value >= 0.5
    else:
        resource["valueQuantity"] = {
            "value": reading.value,
            "unit": spec.unit,
            "system": UCUM_SYSTEM,
            "code": spec.unit,
        }
    return resource


def _condition(
    incident: Incident, activation: PathwayActivation, cid: str, pid: str, eid: str
) -> dict[str, Any]:
    coded = CONDITION_CODES[activation.pathway]
    if activation.pathway == "maternal" and incident.findings.seizure:
        coded = ECLAMPSIA
    text = f"Suspected ({activation.pathway} pathway): " + "; ".join(activation.reasons)
    code: dict[str, Any] = {"text": scrub(text)}
    if coded is not None:
        code["coding"] = [{"system": SNOMED_SYSTEM, "code": coded[0], "display": coded[1]}]
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
        "verificationStatus": {
            "coding": [{"system": CONDITION_VERIFICATION, "code": "provisional"}]
        },
        "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}],
        "code": code,
        "subject": _ref(pid),
        "encounter": _ref(eid),
        "recordedDate": _iso(activation.time),
        "note": [{"text": scrub(f"Team: {activation.team}. Guideline: {activation.guideline}")}],
    }


def _vital_line(reading: Reading) -> str:
    spec = metric(reading.metric)
    shown = f"{reading.value:g} {spec.unit}" if reading.value is not None else reading.no_value
    return f"{spec.description}: {shown} at {reading.time:%H:%M:%S} UTC"


def _atmist_sections(
    incident: Incident, vitals: Sequence[Reading], observation_ids: Sequence[str]
) -> list[dict[str, Any]]:
    atmist = incident.atmist
    age = (atmist.age_years if atmist else None) or incident.findings.age_years
    onset = (atmist.time_of_onset if atmist else None) or incident.findings.last_known_well
    mechanism = (atmist.mechanism if atmist else None) or incident.chief_complaint
    signs = [_vital_line(r) for r in vitals]
    if atmist and atmist.signs:
        signs.insert(0, atmist.signs)
    letters: list[tuple[str, list[str]]] = [
        ("A - Age", [f"{age} years" if age is not None else "unknown"]),
        ("T - Time of onset", [f"{onset:%Y-%m-%d %H:%M} UTC" if onset else "unknown"]),
        ("M - Mechanism / medical complaint", [mechanism or "not recorded"]),
        ("I - Injuries / information", [(atmist.injuries if atmist else None) or "none recorded"]),
        ("S - Signs", signs or ["no vitals recorded"]),
        ("T - Treatment", [(atmist.treatment if atmist else None) or "none recorded"]),
    ]
    sections: list[dict[str, Any]] = []
    for title, lines in letters:
        section: dict[str, Any] = {"title": title, "text": _narrative(lines)}
        if title == "S - Signs" and observation_ids:
            section["entry"] = [_ref(oid) for oid in observation_ids]
        sections.append(section)
    return sections


def _sbar_section(incident: Incident) -> dict[str, Any]:
    sbar = incident.sbar
    lines = (
        [
            f"Situation: {sbar.situation or '-'}",
            f"Background: {sbar.background or '-'}",
            f"Assessment: {sbar.assessment or '-'}",
            f"Recommendation: {sbar.recommendation or '-'}",
        ]
        if sbar
        else ["no SBAR recorded"]
    )
    return {"title": "SBAR", "text": _narrative(lines)}


def _timeline_lines(incident: Incident) -> list[str]:
    steps = incident.timeline.model_dump(exclude_none=True)
    return [f"{name}: {moment:%Y-%m-%d %H:%M:%S} UTC" for name, moment in steps.items()]


def build_handoff_bundle(
    incident: Incident,
    vitals: Sequence[Reading],
    activations: Sequence[PathwayActivation],
    *,
    now: datetime,
) -> Bundle:
    """The validated FHIR document Bundle of ``incident`` (pure; ``now`` stamps it).

    ``vitals`` are the latest reading per metric (waveform channels are skipped: they travel
    as ECG snippets, not as Observations). Raises pydantic's ``ValidationError`` if a resource
    does not validate: a Bundle that leaves here has been checked by the FHIR models.
    """
    key = incident.id
    pid, eid, lid, comp_id = (_uuid(key, k) for k in ("patient", "encounter", "ambulance", "doc"))
    numerics = sorted((r for r in vitals if not metric(r.metric).waveform), key=lambda r: r.metric)
    observations = [_observation(r, _uuid(key, f"obs/{r.metric}"), pid, eid) for r in numerics]
    conditions = [
        _condition(incident, a, _uuid(key, f"condition/{a.pathway}"), pid, eid) for a in activations
    ]
    pathway_lines = [
        f"{a.pathway}: {a.team} activated at {a.time:%H:%M:%S} UTC - {'; '.join(a.reasons)}"
        + (f" (deadline {a.deadline:%H:%M} UTC)" if a.deadline else "")
        for a in activations
    ]
    composition: dict[str, Any] = {
        "resourceType": "Composition",
        "id": comp_id,
        "status": "final",
        "type": {
            "coding": [
                {"system": LOINC_SYSTEM, "code": "18761-7", "display": "Transfer summary note"}
            ],
            "text": "Pre-hospital handover (ATMIST)",
        },
        "subject": _ref(pid),
        "encounter": _ref(eid),
        "date": _iso(now),
        "author": [{"display": scrub(f"Ambulance crew, gateway {incident.gateway}")}],
        "title": "Pre-hospital handover (ATMIST)",
        "section": [
            *_atmist_sections(incident, numerics, [o["id"] for o in observations]),
            _sbar_section(incident),
            {
                "title": "Pathway activations",
                "text": _narrative(pathway_lines or ["no pathway activated"]),
                **({"entry": [_ref(c["id"]) for c in conditions]} if conditions else {}),
            },
            {"title": "Timeline", "text": _narrative(_timeline_lines(incident))},
        ],
    }
    resources: list[tuple[type[Any], dict[str, Any]]] = [
        (Composition, composition),
        (Patient, _patient(incident, pid)),
        (Encounter, _encounter(incident, eid, pid, lid)),
        (Location, _location(incident, lid)),
        *((Observation, o) for o in observations),
        *((Condition, c) for c in conditions),
    ]
    entries = []
    for model, resource in resources:
        model.model_validate(resource)  # each resource against its own model first
        entries.append({"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource})
    bundle = {
        "resourceType": "Bundle",
        "id": _uuid(key, "bundle"),
        "identifier": {"system": INCIDENT_SYSTEM, "value": f"{incident.id}-handoff"},
        "type": "document",
        "timestamp": _iso(now),
        "entry": entries,
    }
    return Bundle.model_validate(bundle)


def bundle_json(bundle: Bundle) -> str:
    """The Bundle as FHIR JSON text (what is written to ``bundle.json`` and sent)."""
    text: str = bundle.model_dump_json(exclude_none=True)
    return text
