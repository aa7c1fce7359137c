"""``/api/v1/incidents``: ambulance incidents as the receiving hospital sees them (issue 9).

Reads the handoff service's tables (migration 8: ``incidents``, ``incident_events``,
``pathway_activations``, ``pathway_notifications``, ``handoffs``) and the incident's readings.
The query functions below are plain functions over a connection so that the ER board
(``ingest_service.web.er``) and ``vitalstream incident`` show exactly what the API returns.

Roles: ``er`` and ``admin`` read and acknowledge; ``doctor`` reads only, within the token's
``subjects`` claim like every other patient read (an ambulance's ``tmp-…`` subject is usually
contracted to nobody, so a restricted doctor sees none). Every read appends an audit row in
the same transaction; every acknowledgement appends ``activation_acknowledged``.

Hospitals (issue 10, migration 13): each incident is routed to a destination hospital
(``incidents.hospital``: set when it is opened through the API, else from the ambulance
gateway's default route ``gateway_routes``, or later with ``PUT .../hospital``; null = not
routed yet). An ``er`` token with a ``hospital`` claim lists only the incidents routed to its
hospital and gets 403 (audited) for any other incident, unrouted ones included. Client
tokens need ``incidents:read`` / ``incidents:write``.

Acknowledging: the team confirms it has the pre-alert. It fills
``pathway_notifications.acknowledged_at/by`` on every notification of the activation not yet
acknowledged (the first acknowledgement wins; a repeat changes nothing and is not audited as
a change). An activation with no notification row (the handoff service had no ER channel
configured) cannot be acknowledged: 409, because there is no pre-alert to confirm.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, status
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from ingest_service.api.access import hospital_scope, may_see_hospital, visible_subjects
from ingest_service.api.db import Connection
from ingest_service.api.deps import ConnectionDep, PrincipalDep, record, require_role, scoped
from ingest_service.api.tokens import Principal, Role
from ingest_service.handoff import latest_vitals as handoff_vitals
from ingest_service.handoff import load_activations, record_event
from ingest_service.handoff_fhir import build_handoff_bundle, bundle_json, scrub
from ingest_service.identity import is_temporary_subject, temporary_subject
from vitals.incident import (
    Atmist,
    Findings,
    Incident,
    IncidentEvent,
    Pathway,
    Sbar,
    ShortText,
    Timeline,
)
from vitals.models import IDENTIFIER_PATTERN, Identifier

router = APIRouter(prefix="/incidents", tags=["incidents"])

#: Who may read incidents, and who may acknowledge a pre-alert.
READ_ROLES: frozenset[Role] = frozenset({"er", "admin", "doctor"})
ACK_ROLES: frozenset[Role] = frozenset({"er", "admin"})

#: Readings older than this before the incident opened are not the incident's (the handoff
#: service's ``handoff_lookback_h`` default).
LOOKBACK = timedelta(hours=6)
#: Handed-over incidents stay on the list this long.
RECENT_HANDOVERS = timedelta(hours=24)
MAX_NOTE = 1000

IncidentPath = Annotated[str, Path(pattern=IDENTIFIER_PATTERN)]
ActivationPath = Annotated[int, Path(ge=1, le=2**62)]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NotificationOut(_Out):
    """One ER notification of an activation (a channel) and whether the team acknowledged it."""

    id: int
    channel: str
    target: str
    status: str
    detail: str | None
    notified_at: datetime
    activation_to_notification_ms: float
    acknowledged_at: datetime | None
    acknowledged_by: str | None


class ActivationOut(_Out):
    """A pathway the rules activated, the team pre-alerted, and the team's acknowledgement."""

    id: int
    pathway: str
    team: str
    reasons: list[str]
    missing: list[str]
    advice: list[str]
    guideline: str
    deadline: datetime | None
    finding_received_at: datetime
    activated_at: datetime
    notifications: list[NotificationOut]
    #: The first acknowledgement of any of its notifications (None: not acknowledged yet).
    acknowledged_at: datetime | None
    acknowledged_by: str | None

    @property
    def notified(self) -> bool:
        """At least one channel delivered the pre-alert."""
        return any(n.status == "delivered" for n in self.notifications)


class VitalOut(_Out):
    """The newest reading of one metric of the incident."""

    metric: str
    value: float | None
    no_value: str | None
    unit: str
    time: datetime
    received_at: datetime


class HandoffOut(_Out):
    """The FHIR handoff Bundle (``GET .../bundle``) and the hospital's receipt."""

    bundle_id: str
    created_at: datetime
    receipt_status: str | None
    received_by: str | None
    received_at: datetime | None


class EventOut(_Out):
    """One crew event as received (the audit trail of what the crew sent, and when)."""

    event_id: str
    kind: str
    time: datetime
    received_at: datetime


class IncidentSummary(_Out):
    """One incident on the list: who is coming, why, when, and which teams are alerted."""

    id: str
    gateway: str
    subject: str
    #: The destination hospital (null: not routed yet).
    hospital: str | None
    status: Literal["open", "handed_over"]
    chief_complaint: str | None
    suspected_pathway: str | None
    opened_at: datetime
    updated_at: datetime
    eta: datetime | None
    arrival: datetime | None
    handover: datetime | None
    #: Measurement time of the incident's newest reading ("last data N s ago").
    last_data_at: datetime | None
    activations: list[ActivationOut]


class IncidentList(_Out):
    """Open incidents first (soonest ETA first), then recent handovers (newest first)."""

    incidents: list[IncidentSummary]
    now: datetime


class IncidentDetail(IncidentSummary):
    """Everything the ER board shows about one incident."""

    timeline: Timeline
    findings: Findings
    atmist: Atmist | None
    sbar: Sbar | None
    latest: list[VitalOut]
    events: list[EventOut]
    handoff: HandoffOut | None
    now: datetime


class AckIn(BaseModel):
    """An optional note with the acknowledgement (kept in the audit log)."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=MAX_NOTE)


class AckOut(_Out):
    """The activation after the acknowledgement; ``changed`` False for a repeat."""

    incident: str
    activation: ActivationOut
    changed: bool


# ------------------------------------------------------------------------------- queries


def _activations(conn: Connection, incidents: list[str]) -> dict[str, list[ActivationOut]]:
    if not incidents:
        return {}
    notes: dict[int, list[NotificationOut]] = {}
    for row in conn.execute(
        "SELECT n.activation_id, n.id, n.channel, n.target, n.status, n.detail, n.notified_at,"
        " n.activation_to_notification_ms, n.acknowledged_at, n.acknowledged_by"
        " FROM pathway_notifications n JOIN pathway_activations a ON a.id = n.activation_id"
        " WHERE a.incident = ANY(%s) ORDER BY n.id",
        (incidents,),
    ).fetchall():
        notes.setdefault(int(row[0]), []).append(
            NotificationOut(
                id=row[1],
                channel=row[2],
                target=row[3],
                status=row[4],
                detail=row[5],
                notified_at=row[6],
                activation_to_notification_ms=row[7],
                acknowledged_at=row[8],
                acknowledged_by=row[9],
            )
        )
    out: dict[str, list[ActivationOut]] = {}
    for row in conn.execute(
        "SELECT id, incident, pathway, team, reasons, missing, advice, guideline, deadline,"
        " finding_received_at, activated_at FROM pathway_activations"
        " WHERE incident = ANY(%s) ORDER BY activated_at, id",
        (incidents,),
    ).fetchall():
        sent = notes.get(int(row[0]), [])
        acked = sorted(
            (n for n in sent if n.acknowledged_at is not None),
            key=lambda n: (n.acknowledged_at, n.id),
        )
        out.setdefault(str(row[1]), []).append(
            ActivationOut(
                id=row[0],
                pathway=row[2],
                team=row[3],
                reasons=list(row[4]),
                missing=list(row[5]),
                advice=list(row[6]),
                guideline=row[7],
                deadline=row[8],
                finding_received_at=row[9],
                activated_at=row[10],
                notifications=sent,
                acknowledged_at=acked[0].acknowledged_at if acked else None,
                acknowledged_by=acked[0].acknowledged_by if acked else None,
            )
        )
    return out


def _last_data(conn: Connection, incidents: list[str]) -> dict[str, datetime]:
    if not incidents:
        return {}
    rows = conn.execute(
        "SELECT incident, max(time) FROM readings WHERE incident = ANY(%s) GROUP BY incident",
        (incidents,),
    ).fetchall()
    return {str(r[0]): r[1] for r in rows if r[1] is not None}


def _summary_fields(
    row: tuple[Any, ...], activations: list[ActivationOut], last_data_at: datetime | None
) -> dict[str, Any]:
    state: dict[str, Any] = row[4]
    timeline = Timeline.model_validate(state.get("timeline") or {})
    return {
        "id": row[0],
        "gateway": row[1],
        "subject": row[2],
        "status": "open" if row[7] is None else "handed_over",
        "chief_complaint": state.get("chief_complaint"),
        "suspected_pathway": row[3],
        "opened_at": row[5],
        "updated_at": row[6],
        "eta": timeline.eta,
        "arrival": timeline.arrival,
        "handover": row[7],
        "hospital": row[8],
        "last_data_at": last_data_at,
        "activations": activations,
    }


def list_incidents(
    conn: Connection,
    allowed: tuple[str, ...] | None,
    now: datetime,
    *,
    open_only: bool = False,
    limit: int = 100,
    hospital: str | None = None,
) -> list[IncidentSummary]:
    """Open incidents (soonest ETA first), then those handed over in the last 24 h.

    ``allowed``: the subjects the viewer may read (None = all); ``hospital``: only the
    incidents routed to it (None = every incident, routed or not). Run inside a transaction.
    """
    rows = conn.execute(
        "SELECT i.incident, i.gateway, i.subject, i.pathway, i.state, i.opened_at, i.updated_at,"
        " i.handed_over_at, i.hospital FROM incidents i"
        " WHERE (i.handed_over_at IS NULL"
        " OR (NOT %(open_only)s AND i.handed_over_at >= %(since)s))"
        " AND (%(all)s OR i.subject = ANY(%(allowed)s))"
        " AND (%(hospital)s::text IS NULL OR i.hospital = %(hospital)s)"
        " ORDER BY i.handed_over_at IS NOT NULL,"
        " CASE WHEN i.handed_over_at IS NULL"
        " THEN (i.state->'timeline'->>'eta')::timestamptz END NULLS LAST,"
        " i.handed_over_at DESC, i.opened_at DESC"
        " LIMIT %(limit)s",
        {
            "open_only": open_only,
            "since": now - RECENT_HANDOVERS,
            "all": allowed is None,
            "allowed": list(allowed or ()),
            "hospital": hospital,
            "limit": limit,
        },
    ).fetchall()
    ids = [str(r[0]) for r in rows]
    activations = _activations(conn, ids)
    last = _last_data(conn, ids)
    return [
        IncidentSummary(**_summary_fields(r, activations.get(str(r[0]), []), last.get(str(r[0]))))
        for r in rows
    ]


def incident_subject(conn: Connection, incident: str) -> str | None:
    """The incident's subject, or None when there is no such incident."""
    row = conn.execute("SELECT subject FROM incidents WHERE incident = %s", (incident,)).fetchone()
    return None if row is None else str(row[0])


@dataclass(frozen=True)
class Route:
    """Whose incident it is: its subject and destination hospital (None: not routed)."""

    subject: str
    hospital: str | None


def incident_route(conn: Connection, incident: str) -> Route | None:
    """The incident's subject and hospital, or None when there is no such incident."""
    row = conn.execute(
        "SELECT subject, hospital FROM incidents WHERE incident = %s", (incident,)
    ).fetchone()
    return None if row is None else Route(str(row[0]), None if row[1] is None else str(row[1]))


def latest_vitals(conn: Connection, incident: str, opened_at: datetime) -> list[VitalOut]:
    """The newest reading of each metric of the incident (waveforms excluded)."""
    rows = conn.execute(
        "SELECT DISTINCT ON (metric) metric, value, no_value, unit, time, received_at"
        " FROM readings WHERE incident = %s AND time >= %s AND metric NOT LIKE 'ecg\\_%%'"
        " ORDER BY metric, time DESC",
        (incident, opened_at - LOOKBACK),
    ).fetchall()
    return [
        VitalOut(metric=r[0], value=r[1], no_value=r[2], unit=r[3], time=r[4], received_at=r[5])
        for r in rows
    ]


def incident_detail(conn: Connection, incident: str, now: datetime) -> IncidentDetail | None:
    """One incident with its timeline, activations, latest vitals, events and handoff."""
    row = conn.execute(
        "SELECT i.incident, i.gateway, i.subject, i.pathway, i.state, i.opened_at, i.updated_at,"
        " i.handed_over_at, i.hospital FROM incidents i WHERE i.incident = %s",
        (incident,),
    ).fetchone()
    if row is None:
        return None
    state: dict[str, Any] = row[4]
    activations = _activations(conn, [incident]).get(incident, [])
    last = _last_data(conn, [incident]).get(incident)
    events = [
        EventOut(event_id=r[0], kind=r[1], time=r[2], received_at=r[3])
        for r in conn.execute(
            "SELECT event_id, kind, time, received_at FROM incident_events"
            " WHERE incident = %s ORDER BY time, received_at",
            (incident,),
        ).fetchall()
    ]
    handoff_row = conn.execute(
        "SELECT bundle_id, created_at, receipt->>'status', receipt->>'received_by', received_at"
        " FROM handoffs WHERE incident = %s",
        (incident,),
    ).fetchone()
    handoff = (
        None
        if handoff_row is None
        else HandoffOut(
            bundle_id=handoff_row[0],
            created_at=handoff_row[1],
            receipt_status=handoff_row[2],
            received_by=handoff_row[3],
            received_at=handoff_row[4],
        )
    )
    return IncidentDetail(
        **_summary_fields(row, activations, last),
        timeline=Timeline.model_validate(state.get("timeline") or {}),
        findings=Findings.model_validate(state.get("findings") or {}),
        atmist=Atmist.model_validate(state["atmist"]) if state.get("atmist") else None,
        sbar=Sbar.model_validate(state["sbar"]) if state.get("sbar") else None,
        latest=latest_vitals(conn, incident, row[5]),
        events=events,
        handoff=handoff,
        now=now,
    )


def handoff_bundle(conn: Connection, incident: str) -> str | None:
    """The stored FHIR Bundle JSON of the incident, or None before the handover."""
    row = conn.execute(
        "SELECT bundle::text FROM handoffs WHERE incident = %s", (incident,)
    ).fetchone()
    return None if row is None else str(row[0])


class NothingToAcknowledgeError(LookupError):
    """The activation was never sent to the ER (no notification row): nothing to confirm."""


@dataclass(frozen=True)
class Acknowledgement:
    """What :func:`acknowledge` did."""

    activation: ActivationOut
    subject: str
    changed: bool


def acknowledge(
    conn: Connection, incident: str, activation_id: int, by: str, now: datetime
) -> Acknowledgement | None:
    """Record that ``by`` acknowledged the pre-alert (run inside the caller's transaction,
    with the audit row); None when the activation is not one of ``incident``'s.

    The activation row is locked so two acknowledgements at once record one "first".
    """
    row = conn.execute(
        "SELECT a.id, i.subject FROM pathway_activations a JOIN incidents i"
        " ON i.incident = a.incident WHERE a.id = %s AND a.incident = %s FOR UPDATE OF a",
        (activation_id, incident),
    ).fetchone()
    if row is None:
        return None
    sent = conn.execute(
        "SELECT count(*), count(acknowledged_at) FROM pathway_notifications"
        " WHERE activation_id = %s",
        (activation_id,),
    ).fetchone()
    assert sent is not None
    if int(sent[0]) == 0:
        raise NothingToAcknowledgeError(activation_id)
    changed = False
    if int(sent[1]) == 0:
        conn.execute(
            "UPDATE pathway_notifications SET acknowledged_at = %s, acknowledged_by = %s"
            " WHERE activation_id = %s AND acknowledged_at IS NULL",
            (now, by, activation_id),
        )
        changed = True
    (after,) = (a for a in _activations(conn, [incident])[incident] if a.id == activation_id)
    return Acknowledgement(activation=after, subject=str(row[1]), changed=changed)


def ack_detail(ack: Acknowledgement, incident: str, note: str | None, via: str) -> dict[str, Any]:
    """The audit detail of an acknowledgement (shared by the API, the board and the CLI)."""
    return {
        "subject": ack.subject,
        "incident": incident,
        "activation": ack.activation.id,
        "pathway": ack.activation.pathway,
        "team": ack.activation.team,
        "acknowledged_at": (
            ack.activation.acknowledged_at.isoformat() if ack.activation.acknowledged_at else None
        ),
        "note": note or None,
        "via": via,
    }


# ------------------------------------------------------------------------------ endpoints


def _may_read(who: Principal, subject: str) -> bool:
    allowed = visible_subjects(who)
    return allowed is None or subject in allowed


def audit_denial(
    conn: Connection,
    request: Request,
    who: Principal,
    resource: str,
    route: Route,
    *,
    reason: str,
    action: str,
) -> None:
    """The audit row of a refused incident access (API and web pages write the same one)."""
    with conn.transaction():
        record(
            conn,
            request,
            who,
            resource,
            {"subject": route.subject, "hospital": route.hospital, "reason": reason},
            action=action,
        )


def _deny(
    conn: Connection,
    request: Request,
    who: Principal,
    resource: str,
    route: Route,
    *,
    reason: str = "not permitted",
    action: str = "read_denied",
) -> None:
    audit_denial(conn, request, who, resource, route, reason=reason, action=action)
    raise HTTPException(
        status.HTTP_403_FORBIDDEN,
        detail="this incident is routed to another hospital"
        if reason == "other hospital"
        else "not permitted to read this incident",
    )


def _routed(
    conn: Connection, request: Request, who: Principal, incident: str, resource: str, action: str
) -> Route:
    """The incident's route; 404 when there is none, 403 (audited with ``action``) when it is
    routed to another hospital than the token's."""
    with conn.transaction():
        route = incident_route(conn, incident)
    if route is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such incident")
    if not may_see_hospital(who, route.hospital):
        _deny(conn, request, who, resource, route, reason="other hospital", action=action)
    return route


@router.get(
    "",
    response_model=IncidentList,
    summary="Incidents, open ones first",
    **scoped("incidents:read"),
)
def get_incidents(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    state: Annotated[
        Literal["open", "all"], Query(description="open, or all (+ handed over in the last 24 h)")
    ] = "all",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> IncidentList:
    """Incoming ambulances: pathway, activated teams and their acknowledgement, ETA."""
    require_role(conn, request, who, READ_ROLES, "incidents")
    now = datetime.now(UTC)
    with conn.transaction():
        found = list_incidents(
            conn,
            visible_subjects(who) if hospital_scope(who) is None else None,
            now,
            open_only=state == "open",
            limit=limit,
            hospital=hospital_scope(who),
        )
        record(
            conn,
            request,
            who,
            "incidents",
            {
                "query": {"state": state, "limit": limit},
                "hospital": hospital_scope(who),
                "incidents": [i.id for i in found],
                "subjects": sorted({i.subject for i in found}),
                "returned": len(found),
            },
        )
    return IncidentList(incidents=found, now=now)


def _readable_incident(
    conn: Connection, request: Request, who: Principal, incident: str, resource: str
) -> str:
    require_role(conn, request, who, READ_ROLES, resource)
    route = _routed(conn, request, who, incident, resource, "read_denied")
    # The incident is routed to the token's hospital: its patient is the ER's to read.
    if hospital_scope(who) is None and not _may_read(who, route.subject):
        _deny(conn, request, who, resource, route)
    return route.subject


@router.get(
    "/{incident}",
    response_model=IncidentDetail,
    summary="One incident",
    **scoped("incidents:read"),
)
def get_incident(
    request: Request, who: PrincipalDep, conn: ConnectionDep, incident: IncidentPath
) -> IncidentDetail:
    """Timeline, pathway, activations with their notifications, latest vitals, handoff."""
    resource = f"incident/{incident}"
    subject = _readable_incident(conn, request, who, incident, resource)
    now = datetime.now(UTC)
    with conn.transaction():
        detail = incident_detail(conn, incident, now)
        assert detail is not None
        record(
            conn,
            request,
            who,
            resource,
            {"subject": subject, "incident": incident, "returned": len(detail.latest)},
        )
    return detail


@router.get(
    "/{incident}/bundle",
    summary="The FHIR R4 handoff Bundle",
    response_class=Response,
    responses={200: {"content": {"application/fhir+json": {}}}},
    **scoped("incidents:read"),
)
def get_bundle(
    request: Request, who: PrincipalDep, conn: ConnectionDep, incident: IncidentPath
) -> Response:
    """The document Bundle built at handover (404 before the handover)."""
    resource = f"incident/{incident}/bundle"
    subject = _readable_incident(conn, request, who, incident, resource)
    with conn.transaction():
        text = handoff_bundle(conn, incident)
        if text is not None:
            record(conn, request, who, resource, {"subject": subject, "incident": incident})
    if text is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="not handed over yet")
    return Response(text, media_type="application/fhir+json")


@router.post(
    "/{incident}/activations/{activation_id}/ack",
    response_model=AckOut,
    summary="The team acknowledges a pre-alert",
    **scoped("incidents:write"),
)
def ack_activation(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    incident: IncidentPath,
    activation_id: ActivationPath,
    body: Annotated[AckIn | None, Body()] = None,
) -> AckOut:
    """Fill ``acknowledged_at/by`` of the activation's notifications (first one wins)."""
    resource = f"incident/{incident}/activation/{activation_id}"
    if who.role not in ACK_ROLES:
        with conn.transaction():
            record(conn, request, who, resource, {"reason": "role"}, action="write_denied")
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail=f"role {who.role} may not acknowledge pre-alerts"
        )
    _routed(conn, request, who, incident, resource, "write_denied")
    note = body.note if body is not None else None
    now = datetime.now(UTC)
    try:
        with conn.transaction():
            done = acknowledge(conn, incident, activation_id, who.actor, now)
            if done is not None and done.changed:
                record(
                    conn,
                    request,
                    who,
                    resource,
                    ack_detail(done, incident, note, "api"),
                    action="activation_acknowledged",
                )
    except NothingToAcknowledgeError:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="this activation was never sent to the ER (no notification): nothing to "
            "acknowledge",
        ) from None
    if done is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such activation")
    return AckOut(incident=incident, activation=done.activation, changed=done.changed)


# ------------------------------------------------------------------ crew/ER input (writes)
#
# ``POST /incidents`` opens, ``PATCH /incidents/{id}`` updates, ``POST /incidents/{id}/handoff``
# hands over. Each write is an :class:`IncidentEvent` stored and folded by the handoff
# service's own ``record_event`` (``Incident.apply``), so an incident changes one way whether
# the crew publishes on ``.../events`` or a user writes here; the event row, the incident and
# the audit row commit together. The handover builds the Bundle with the handoff service's
# builder (``build_handoff_bundle`` over its ``latest_vitals`` and ``load_activations``).
#
# Pathway rules are not run here: the handoff service keeps them private to its running
# instance (``HandoffService._evaluate``, with its ER channels). The running service
# re-evaluates an open incident when new readings of it are stored (its poll), and it reads the
# incident's findings from ``incidents`` then, so findings written here take effect at the
# incident's next stored reading.

#: Who may open, update and hand over an incident.
WRITE_ROLES: frozenset[Role] = ACK_ROLES


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentFields(_In):
    """What the crew or the ER records; every field optional, a later entry replaces one
    before it, and a field left out is kept (``Incident.apply``)."""

    chief_complaint: ShortText | None = None
    pathway: Pathway | None = None
    timeline: Timeline | None = None
    findings: Findings | None = None
    atmist: Atmist | None = None
    sbar: Sbar | None = None
    #: When the crew recorded it (default: now).
    time: AwareDatetime | None = None

    @model_validator(mode="after")
    def _handover_has_its_own_request(self) -> Self:
        if self.timeline is not None and self.timeline.handover is not None:
            raise ValueError("timeline.handover is set by POST /incidents/{id}/handoff")
        return self


class OpenIn(IncidentFields):
    """A new incident: the ambulance (gateway), and the patient's subject if known; without
    one the patient gets a temporary ``tmp-…`` subject. ``incident`` defaults to a new id.
    ``hospital``: where the ambulance takes the patient (default: the gateway's route; an ER
    account of one hospital opens incidents for its own hospital only)."""

    gateway: Identifier
    incident: Identifier | None = None
    subject: Identifier | None = None
    hospital: Identifier | None = None

    @model_validator(mode="after")
    def _subject_is_pseudonymous(self) -> Self:
        if self.subject is not None and scrub(self.subject) != self.subject:
            raise ValueError("subject looks like a national ID: send the pseudonymous subject")
        return self


class UpdateIn(IncidentFields):
    """Timeline steps, findings, ATMIST/SBAR drafts, complaint or pathway (at least one)."""

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.model_dump(exclude_none=True, exclude={"time"}):
            raise ValueError("nothing to update")
        return self


class HandoffIn(_In):
    """The handover: the final ATMIST/SBAR may come with it; ``time`` defaults to now."""

    atmist: Atmist | None = None
    sbar: Sbar | None = None
    time: AwareDatetime | None = None


class WriteOut(_Out):
    """The stored event, the incident after it and its destination hospital."""

    event_id: str
    kind: str
    incident: Incident
    hospital: str | None = None


class RouteIn(_In):
    """The incident's destination hospital (null: not routed), and why (kept in the audit
    log)."""

    hospital: Identifier | None
    reason: str = Field("", max_length=500)


class RouteOut(_Out):
    """The incident's hospital now and before."""

    incident: str
    hospital: str | None
    previous: str | None


class IncidentExistsError(ValueError):
    """``open`` for an incident id that is taken (409)."""


class AlreadyHandedOverError(ValueError):
    """A second handover (409): the Bundle was built at the first."""


@dataclass(frozen=True)
class Written:
    """What a write stored: the event, the incident after it, and at handover the Bundle."""

    event: IncidentEvent
    incident: Incident
    bundle_id: str | None = None
    bundle: str | None = None
    hospital: str | None = None


def new_event_id(via: str) -> str:
    """A unique event id for an event written through the API (``api-…``) or CLI (``cli-…``)."""
    return f"{via}-{uuid.uuid4().hex}"


def _event(
    kind: Literal["open", "update", "findings", "handover"],
    incident: str,
    gateway: str,
    fields: _In,
    event_id: str,
    now: datetime,
    **extra: object,
) -> IncidentEvent:
    data = fields.model_dump(
        exclude_none=True, exclude={"incident", "gateway", "subject", "hospital"}
    )
    data["time"] = data.get("time") or now
    return IncidentEvent.model_validate(
        {
            "event_id": event_id,
            "kind": kind,
            "incident": incident,
            "gateway": gateway,
            **data,
            **extra,
        }
    )


def _stored(conn: Connection, event: IncidentEvent, now: datetime) -> Incident:
    incident = record_event(conn, event, now)
    if incident is None:  # a fresh uuid event id and a checked incident: cannot happen
        raise RuntimeError(f"event {event.event_id} was not applied")
    return incident


def open_incident(conn: Connection, fields: OpenIn, event_id: str, now: datetime) -> Written:
    """Open an incident (run inside the caller's transaction, with the audit row)."""
    incident_id = fields.incident or f"inc-{uuid.uuid4().hex[:16]}"
    subject = fields.subject or temporary_subject(secrets.token_bytes(16))
    # Two opens of one client-chosen id at once: the second waits, then sees the first.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"incident:{incident_id}",))
    if incident_subject(conn, incident_id) is not None:
        raise IncidentExistsError(incident_id)
    event = _event("open", incident_id, fields.gateway, fields, event_id, now, subject=subject)
    stored = _stored(conn, event, now)
    if fields.hospital is not None:  # else the gateway's route, set by the insert trigger
        conn.execute(
            "UPDATE incidents SET hospital = %s WHERE incident = %s", (fields.hospital, incident_id)
        )
    return Written(event=event, incident=stored, hospital=_hospital_of(conn, incident_id))


def _hospital_of(conn: Connection, incident: str) -> str | None:
    route = incident_route(conn, incident)
    return None if route is None else route.hospital


def _locked(conn: Connection, incident: str) -> tuple[str, datetime | None] | None:
    row = conn.execute(
        "SELECT gateway, handed_over_at FROM incidents WHERE incident = %s FOR UPDATE",
        (incident,),
    ).fetchone()
    return None if row is None else (str(row[0]), row[1])


def update_incident(
    conn: Connection, incident: str, fields: UpdateIn, event_id: str, now: datetime
) -> Written | None:
    """Fold an ``update`` (or ``findings`` when only findings come) event into the incident;
    None when there is no such incident."""
    found = _locked(conn, incident)
    if found is None:
        return None
    written = set(fields.model_dump(exclude_none=True, exclude={"time"}))
    kind: Literal["update", "findings"] = "findings" if written == {"findings"} else "update"
    event = _event(kind, incident, found[0], fields, event_id, now)
    stored = _stored(conn, event, now)
    return Written(event=event, incident=stored, hospital=_hospital_of(conn, incident))


def hand_over(
    conn: Connection, incident: str, fields: HandoffIn, event_id: str, now: datetime
) -> Written | None:
    """Mark the incident handed over, build its FHIR Bundle the way the handoff service does
    and store it in ``handoffs``; None when there is no such incident."""
    found = _locked(conn, incident)
    if found is None:
        return None
    if found[1] is not None:
        raise AlreadyHandedOverError(incident)
    event = _event("handover", incident, found[0], fields, event_id, now)
    after = _stored(conn, event, now)
    bundle = build_handoff_bundle(
        after, handoff_vitals(conn, after, LOOKBACK), load_activations(conn, incident), now=now
    )
    text = bundle_json(bundle)
    conn.execute(
        "INSERT INTO handoffs (incident, bundle_id, bundle, created_at)"
        " VALUES (%s, %s, %s::jsonb, %s) ON CONFLICT (incident) DO UPDATE"
        " SET bundle_id = excluded.bundle_id, bundle = excluded.bundle,"
        " created_at = excluded.created_at",
        (incident, str(bundle.id), text, now),
    )
    return Written(
        event=event,
        incident=after,
        bundle_id=str(bundle.id),
        bundle=text,
        hospital=_hospital_of(conn, incident),
    )


#: The audit action of each write.
WRITE_ACTIONS: dict[str, str] = {
    "open": "incident_opened",
    "update": "incident_updated",
    "findings": "incident_updated",
    "handover": "incident_handed_over",
}


def write_detail(done: Written, via: str) -> dict[str, Any]:
    """The audit detail of a write (shared by the API and the CLI): ids and the names of the
    fields written, never their free text."""
    fields = sorted(
        k
        for k in done.event.model_dump(exclude_none=True)
        if k not in {"schema_version", "event_id", "kind", "incident", "gateway", "time"}
    )
    detail: dict[str, Any] = {
        "subject": done.incident.subject,
        "temporary_subject": is_temporary_subject(done.incident.subject),
        "incident": done.incident.id,
        "gateway": done.incident.gateway,
        "event_id": done.event.event_id,
        "kind": done.event.kind,
        "fields": fields,
        "via": via,
    }
    if done.bundle_id is not None:
        detail["bundle_id"] = done.bundle_id
    if done.hospital is not None:
        detail["hospital"] = done.hospital
    return detail


def _may_write(conn: Connection, request: Request, who: Principal, resource: str) -> None:
    if who.role in WRITE_ROLES:
        return
    with conn.transaction():
        record(conn, request, who, resource, {"reason": "role"}, action="write_denied")
    raise HTTPException(
        status.HTTP_403_FORBIDDEN, detail=f"role {who.role} may not write incidents"
    )


def _audit_write(
    conn: Connection, request: Request, who: Principal, resource: str, done: Written
) -> None:
    record(
        conn,
        request,
        who,
        resource,
        write_detail(done, "api"),
        action=WRITE_ACTIONS[done.event.kind],
    )


def _write_out(done: Written) -> WriteOut:
    return WriteOut(
        event_id=done.event.event_id,
        kind=done.event.kind,
        incident=done.incident,
        hospital=done.hospital,
    )


@router.post(
    "",
    response_model=WriteOut,
    status_code=status.HTTP_201_CREATED,
    summary="Open an incident (crew or ER)",
    **scoped("incidents:write"),
)
def post_incident(
    request: Request, who: PrincipalDep, conn: ConnectionDep, body: OpenIn
) -> WriteOut:
    """A new incident; without ``subject`` the patient gets a temporary ``tmp-…`` subject.
    409 when ``incident`` is taken. An ER account of one hospital opens for its hospital
    (the default); naming another is 403."""
    _may_write(conn, request, who, "incidents")
    own = hospital_scope(who)
    if own is not None:
        if body.hospital not in {None, own}:
            with conn.transaction():
                record(
                    conn,
                    request,
                    who,
                    "incidents",
                    {"reason": "other hospital", "hospital": body.hospital},
                    action="write_denied",
                )
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail="an ER account opens incidents for its hospital"
            )
        body = body.model_copy(update={"hospital": own})
    now = datetime.now(UTC)
    try:
        with conn.transaction():
            done = open_incident(conn, body, new_event_id("api"), now)
            _audit_write(conn, request, who, f"incident/{done.incident.id}", done)
    except IncidentExistsError:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="incident id taken") from None
    return _write_out(done)


@router.patch(
    "/{incident}",
    response_model=WriteOut,
    summary="Update an incident",
    **scoped("incidents:write"),
)
def patch_incident(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    incident: IncidentPath,
    body: UpdateIn,
) -> WriteOut:
    """Timeline steps, findings, ATMIST/SBAR, complaint, pathway: stored as a crew event and
    folded into the incident (a field left out is kept)."""
    resource = f"incident/{incident}"
    _may_write(conn, request, who, resource)
    _routed(conn, request, who, incident, resource, "write_denied")
    now = datetime.now(UTC)
    with conn.transaction():
        done = update_incident(conn, incident, body, new_event_id("api"), now)
        if done is not None:
            _audit_write(conn, request, who, resource, done)
    if done is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such incident")
    return _write_out(done)


def route_incident(
    conn: Connection, incident: str, hospital: str | None, expected: str | None
) -> Route | None:
    """Set the incident's hospital when it is still ``expected`` (run inside the caller's
    transaction); the route before, or None when there is no such incident."""
    row = conn.execute(
        "SELECT subject, hospital FROM incidents WHERE incident = %s FOR UPDATE", (incident,)
    ).fetchone()
    if row is None:
        return None
    before = Route(str(row[0]), None if row[1] is None else str(row[1]))
    if before.hospital == expected:
        conn.execute("UPDATE incidents SET hospital = %s WHERE incident = %s", (hospital, incident))
    return before


@router.put(
    "/{incident}/hospital",
    response_model=RouteOut,
    summary="Route (or divert) an incident to a hospital",
    **scoped("incidents:write"),
)
def put_hospital(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    incident: IncidentPath,
    body: RouteIn,
) -> RouteOut:
    """Set the destination hospital: an admin or an ER account of no particular hospital routes
    any incident; an ER account of one hospital diverts an incident routed to it elsewhere
    (and no longer sees it). Audited as ``incident_routed``; 409 when the route changed
    meanwhile."""
    resource = f"incident/{incident}/hospital"
    _may_write(conn, request, who, resource)
    current = _routed(conn, request, who, incident, resource, "write_denied")
    with conn.transaction():
        before = route_incident(conn, incident, body.hospital, current.hospital)
        if before is not None and before.hospital == current.hospital:
            record(
                conn,
                request,
                who,
                resource,
                {
                    "subject": before.subject,
                    "incident": incident,
                    "hospital": body.hospital,
                    "previous": before.hospital,
                    "reason": body.reason,
                },
                action="incident_routed",
            )
    if before is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such incident")
    if before.hospital != current.hospital:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="the route changed meanwhile")
    return RouteOut(incident=incident, hospital=body.hospital, previous=before.hospital)


@router.post(
    "/{incident}/handoff",
    summary="Hand the patient over: the FHIR R4 Bundle",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    responses={201: {"content": {"application/fhir+json": {}}}},
    **scoped("incidents:write"),
)
def post_handoff(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    incident: IncidentPath,
    body: Annotated[HandoffIn | None, Body()] = None,
) -> Response:
    """Mark the incident handed over, build and store its document Bundle and answer it
    (``Location``: ``GET .../bundle``). 409 when it was handed over already."""
    resource = f"incident/{incident}/handoff"
    _may_write(conn, request, who, resource)
    _routed(conn, request, who, incident, resource, "write_denied")
    now = datetime.now(UTC)
    try:
        with conn.transaction():
            done = hand_over(conn, incident, body or HandoffIn(), new_event_id("api"), now)
            if done is not None:
                _audit_write(conn, request, who, resource, done)
    except AlreadyHandedOverError:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="handed over already") from None
    if done is None or done.bundle is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such incident")
    return Response(
        done.bundle,
        status_code=status.HTTP_201_CREATED,
        media_type="application/fhir+json",
        headers={"Location": f"{request.url.path.removesuffix('/handoff')}/bundle"},
    )
