"""``/api/v1/incidents``: ambulance incidents as the receiving hospital sees them (issue 9).

Reads the handoff service's tables (migration 8: ``incidents``, ``incident_events``,
``pathway_activations``, ``pathway_notifications``, ``handoffs``) and the incident's readings.
The query functions below are plain functions over a connection so that the ER board
(``ingest_service.web.er``) and ``vitalstream incident`` show exactly what the API returns.

Roles: ``er`` and ``admin`` read and acknowledge; ``doctor`` reads only, within the token's
``subjects`` claim like every other patient read (an ambulance's ``tmp-…`` subject is usually
contracted to nobody, so a restricted doctor sees none). Every read appends an audit row in
the same transaction; every acknowledgement appends ``activation_acknowledged``.

Acknowledging: the team confirms it has the pre-alert. It fills
``pathway_notifications.acknowledged_at/by`` on every notification of the activation not yet
acknowledged (the first acknowledgement wins; a repeat changes nothing and is not audited as
a change). An activation with no notification row (the handoff service had no ER channel
configured) cannot be acknowledged: 409, because there is no pre-alert to confirm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ingest_service.api.access import visible_subjects
from ingest_service.api.db import Connection
from ingest_service.api.deps import ConnectionDep, PrincipalDep, record, require_role
from ingest_service.api.tokens import Principal, Role
from vitals.incident import Atmist, Findings, Sbar, Timeline
from vitals.models import IDENTIFIER_PATTERN

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
) -> list[IncidentSummary]:
    """Open incidents (soonest ETA first), then those handed over in the last 24 h.

    ``allowed``: the subjects the viewer may read (None = all). Run inside a transaction.
    """
    rows = conn.execute(
        "SELECT i.incident, i.gateway, i.subject, i.pathway, i.state, i.opened_at, i.updated_at,"
        " i.handed_over_at FROM incidents i"
        " WHERE (i.handed_over_at IS NULL"
        " OR (NOT %(open_only)s AND i.handed_over_at >= %(since)s))"
        " AND (%(all)s OR i.subject = ANY(%(allowed)s))"
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
        " i.handed_over_at FROM incidents i WHERE i.incident = %s",
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


def _deny(conn: Connection, request: Request, who: Principal, resource: str, subject: str) -> None:
    with conn.transaction():
        record(
            conn,
            request,
            who,
            resource,
            {"subject": subject, "reason": "not permitted"},
            action="read_denied",
        )
    raise HTTPException(status.HTTP_403_FORBIDDEN, detail="not permitted to read this incident")


@router.get("", response_model=IncidentList, summary="Incidents, open ones first")
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
            conn, visible_subjects(who), now, open_only=state == "open", limit=limit
        )
        record(
            conn,
            request,
            who,
            "incidents",
            {
                "query": {"state": state, "limit": limit},
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
    with conn.transaction():
        subject = incident_subject(conn, incident)
    if subject is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such incident")
    if not _may_read(who, subject):
        _deny(conn, request, who, resource, subject)
    return subject


@router.get("/{incident}", response_model=IncidentDetail, summary="One incident")
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
