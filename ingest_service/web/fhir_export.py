"""The patient's own readings of a period as a FHIR R4 ``collection`` Bundle (``/me/export.json``).

Who: a ``patient`` token, and only its own ``subject`` (no subject in the URL). What: one
``Patient`` with the pseudonymous identifier only (``urn:vitalstream:subject``; never a name,
never the national ID: the readings table holds neither) and one ``Observation`` per reading,
built by the handoff packet's Observation builder (:mod:`ingest_service.handoff_fhir`: LOINC +
IEEE 11073 MDC codes, UCUM units, ``dataAbsentReason`` for a reading with no value). Waveform
channels (ECG samples) are left out, as in the handoff. FHIR models: ``fhir.resources.R4B``
(R4-compatible resources, see handoff_fhir). The export is audited like the CSV export
(resource ``web/me/export``, ``format: fhir``), in the same transaction as its query.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from fhir.resources.R4B.bundle import Bundle

from ingest_service.api.deps import ConnectionDep, record
from ingest_service.handoff_fhir import SUBJECT_SYSTEM, bundle_json
from ingest_service.handoff_fhir import _observation as handoff_observation
from ingest_service.web.patient import _patient
from ingest_service.web.render import SECURITY_HEADERS, web_settings
from ingest_service.web.session import PageError, PageRoute, ViewerDep
from vitals import Reading, UnknownMetricError, metric

router = APIRouter(prefix="/me", route_class=PageRoute, include_in_schema=False)

#: Most readings in one file (a Bundle is built and validated in memory).
MAX_READINGS: Final = 20_000
#: Longest period one export covers.
MAX_PERIOD: Final = timedelta(days=366)
#: The period when none is given: the last 30 days.
DEFAULT_DAYS: Final = 30
#: uuid5 namespace of the export's resource ids: the same reading always gets the same id.
_NAMESPACE: Final = uuid.UUID("8d5c2b8e-2f1a-4c7e-9a43-6f0e1d2c3b4a")


def _id(key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, key))


def build_bundle(subject: str, readings: Sequence[Reading], now: datetime) -> Bundle:
    """The validated ``collection`` Bundle of ``readings`` of ``subject`` (pure).

    Observation ids are derived from the reading's idempotency key (device, metric, time).
    """
    pid = _id(f"{subject}/patient")
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"use": "official", "system": SUBJECT_SYSTEM, "value": subject}],
    }
    entries: list[dict[str, Any]] = [{"fullUrl": f"urn:uuid:{pid}", "resource": patient}]
    for reading in readings:
        oid = _id(f"{subject}/{reading.device}/{reading.metric}/{reading.time.isoformat()}")
        observation = handoff_observation(reading, oid, pid, "")
        del observation["encounter"]  # a home reading belongs to no encounter
        entries.append({"fullUrl": f"urn:uuid:{oid}", "resource": observation})
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": "collection",
            "timestamp": now.isoformat(),
            "entry": entries,
        }
    )


def _date(text: str | None, fallback: date) -> date:
    if not text:
        return fallback
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PageError(422, "export_bad_period") from None


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _reading(subject: str, row: tuple[Any, ...]) -> Reading | None:
    moment, name, value, unit, no_value, device, source, quality = row
    try:
        if metric(name).waveform:
            return None
    except UnknownMetricError:
        return None
    return Reading(
        subject=subject,
        device=device,
        metric=name,
        value=None if value is None else float(value),
        no_value=no_value,
        unit=unit,
        time=moment,
        source=source,
        quality=tuple(quality or ()),
    )


@router.get("/export.json")
def export_fhir(
    request: Request,
    seen: ViewerDep,
    conn: ConnectionDep,
    start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
) -> Response:
    """My readings from ``from`` to ``to`` (local dates, inclusive; default the last 30 days)
    as a FHIR Bundle of type ``collection``, downloaded as ``application/fhir+json``."""
    who = _patient(conn, request, seen, "web/me/export")
    subject = who.subject
    assert subject is not None
    zone = web_settings(request).zone
    now = datetime.now(UTC)
    today = now.astimezone(zone).date()
    last = _date(end, today)
    first = _date(start, last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last or last - first >= MAX_PERIOD:
        raise PageError(422, "export_bad_period")
    since, until = _local_midnight(first, zone), _local_midnight(last + timedelta(days=1), zone)
    with conn.transaction():
        rows = conn.execute(
            "SELECT time, metric, value, unit, no_value, device, source, quality FROM readings"
            " WHERE subject = %s AND time >= %s AND time < %s AND metric NOT LIKE 'ecg%%'"
            " ORDER BY time, metric LIMIT %s",
            (subject, since, until, MAX_READINGS + 1),
        ).fetchall()
        if len(rows) > MAX_READINGS:
            raise PageError(413, "export_too_many")
        readings = [r for row in rows if (r := _reading(subject, row)) is not None]
        record(
            conn,
            request,
            who,
            "web/me/export",
            {
                "subject": subject,
                "format": "fhir",
                "query": {"from": first.isoformat(), "to": last.isoformat()},
                "returned": len(readings),
            },
        )
    body = bundle_json(build_bundle(subject, readings, now))
    filename = f"vitalstream-{first:%Y%m%d}-{last:%Y%m%d}.fhir.json"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body, media_type="application/fhir+json", headers=headers)
