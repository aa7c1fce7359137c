"""``POST /api/v1/alerts/{id}/ack|resolve|snooze|shelve|escalate``: the alert lifecycle's writes.

Each action goes through :func:`ingest_service.alert_lifecycle.act`: the row is locked, the
pure lifecycle decides, and every transition is written to ``alert_transitions`` and to the
audit log in the same transaction as the new state. Acknowledging or resolving twice is no
change (``changed: false``).

Who may act: ``doctor`` (their contracted subjects; all when the token has no ``subjects``)
and ``er`` (all subjects; an ER account of one hospital only the subjects of the incidents
routed there). Other roles, and a doctor acting on another doctor's patient, get 403 with a
``write_denied`` audit row that stays. Client tokens need the ``alerts:write`` scope.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Self

from fastapi import APIRouter, Body, HTTPException, Path, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from ingest_service import alert_lifecycle
from ingest_service.alert_lifecycle import Action, ActionError, StoredAlert
from ingest_service.api.db import Connection
from ingest_service.api.deps import ConnectionDep, PrincipalDep, readable_subjects, record, scoped
from ingest_service.api.tokens import Principal, Role

router = APIRouter(prefix="/alerts", tags=["alerts"])

#: Roles that may act on alerts (a patient, an auditor or a service may not).
ACTION_ROLES: frozenset[Role] = frozenset({"doctor", "er"})

AlertId = Annotated[int, Path(ge=1, le=2**62, description="The alert's id.")]
_STATUS = {"not_found": 404, "closed": 409, "invalid": 422}


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NoteIn(_In):
    """An optional note (acknowledge, escalate) or a required one (resolve)."""

    note: str = Field("", max_length=alert_lifecycle.MAX_NOTE)


class SnoozeIn(_In):
    """Snooze for ``minutes`` or until ``until`` (one of them; at most 4 h)."""

    minutes: int | None = Field(None, ge=1, le=24 * 60)
    until: AwareDatetime | None = None
    note: str = Field("", max_length=alert_lifecycle.MAX_NOTE)

    @model_validator(mode="after")
    def _one_expiry(self) -> Self:
        if (self.minutes is None) == (self.until is None):
            raise ValueError("give exactly one of minutes and until")
        return self


class ShelveIn(_In):
    """Shelve for ``hours`` or until ``until`` (one of them; at most 7 days); a reason."""

    reason: str = Field(min_length=1, max_length=alert_lifecycle.MAX_NOTE)
    hours: int | None = Field(None, ge=1, le=24 * 31)
    until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_expiry(self) -> Self:
        if (self.hours is None) == (self.until is None):
            raise ValueError("give exactly one of hours and until")
        return self


class TransitionOut(BaseModel):
    """One transition the action made."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    from_state: str | None
    to_state: str
    at: datetime
    by: str
    why: str


class AlertActionOut(BaseModel):
    """The alert after the action."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    subject: str
    rule: str
    severity: str
    state: str
    changed: bool
    snoozed_until: datetime | None
    shelved_until: datetime | None
    escalation_level: int
    contact: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    transitions: list[TransitionOut]


def request_context(request: Request, who: Principal, via: str) -> dict[str, Any]:
    """What every audit row of an action carries about the request (as ``deps.record``)."""
    purpose = request.headers.get("x-purpose")
    return {
        "role": who.role,
        "token": who.token_id,
        "from": request.client.host if request.client is not None else None,
        "purpose": purpose[:200] if purpose else None,
        "via": via,
    }


def _out(alert: StoredAlert, outcome: alert_lifecycle.ActionOutcome) -> AlertActionOut:
    contacts = alert_lifecycle.DEFAULT_POLICY.contacts
    return AlertActionOut(
        id=alert.id,
        subject=alert.subject,
        rule=alert.rule,
        severity=alert.severity,
        state=alert.state,
        changed=outcome.changed,
        snoozed_until=alert.snoozed_until,
        shelved_until=alert.shelved_until,
        escalation_level=alert.escalation_level,
        contact=contacts[min(alert.escalation_level, len(contacts) - 1)],
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=alert.acknowledged_by,
        resolved_at=alert.resolved_at,
        resolved_by=alert.resolved_by,
        transitions=[
            TransitionOut(
                from_state=t.from_status, to_state=t.to_status, at=t.at, by=t.by, why=t.why
            )
            for t in outcome.transitions
        ],
    )


def _run(
    conn: Connection,
    request: Request,
    who: Principal,
    alert_id: int,
    action: Action,
    *,
    note: str = "",
    until: datetime | None = None,
    now: datetime | None = None,
) -> AlertActionOut:
    resource = f"alert/{alert_id}"
    if who.role not in ACTION_ROLES:
        with conn.transaction():
            record(conn, request, who, resource, {"reason": "role", "want": action}, "write_denied")
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"role {who.role} may not act")
    with conn.transaction():
        allowed = readable_subjects(conn, who)
    try:
        outcome = alert_lifecycle.act(
            conn,
            alert_id,
            action,
            who.actor,
            now or datetime.now(UTC),
            note=note,
            until=until,
            may_act=frozenset(allowed) if allowed is not None else None,
            context=request_context(request, who, "api"),
        )
    except ActionError as error:
        raise HTTPException(_STATUS[error.kind], detail=error.detail) from None
    if outcome.denied:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="not permitted for this subject")
    return _out(outcome.alert, outcome)


@router.post(
    "/{alert_id}/ack",
    response_model=AlertActionOut,
    **scoped("alerts:write"),
    summary="Acknowledge an alert",
)
def acknowledge(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    alert_id: AlertId,
    body: Annotated[NoteIn | None, Body()] = None,
) -> AlertActionOut:
    """active / snoozed / shelved -> acknowledged (again: no change)."""
    return _run(conn, request, who, alert_id, "acknowledge", note=body.note if body else "")


@router.post(
    "/{alert_id}/resolve",
    response_model=AlertActionOut,
    **scoped("alerts:write"),
    summary="Resolve an alert",
)
def resolve(
    request: Request, who: PrincipalDep, conn: ConnectionDep, alert_id: AlertId, body: NoteIn
) -> AlertActionOut:
    """-> resolved; a note is required (422 without). Resolving twice is no change."""
    return _run(conn, request, who, alert_id, "resolve", note=body.note)


@router.post(
    "/{alert_id}/snooze",
    response_model=AlertActionOut,
    **scoped("alerts:write"),
    summary="Snooze an alert",
)
def snooze(
    request: Request, who: PrincipalDep, conn: ConnectionDep, alert_id: AlertId, body: SnoozeIn
) -> AlertActionOut:
    """Silence an open alert for a while (at most 4 h); it comes back active, re-notified."""
    now = datetime.now(UTC)
    until = body.until or now + timedelta(minutes=body.minutes or 0)
    return _run(conn, request, who, alert_id, "snooze", note=body.note, until=until, now=now)


@router.post(
    "/{alert_id}/shelve",
    response_model=AlertActionOut,
    **scoped("alerts:write"),
    summary="Shelve an alert",
)
def shelve(
    request: Request, who: PrincipalDep, conn: ConnectionDep, alert_id: AlertId, body: ShelveIn
) -> AlertActionOut:
    """Shelve an open alert (a known condition) until an expiry (at most 7 days), with a reason."""
    now = datetime.now(UTC)
    until = body.until or now + timedelta(hours=body.hours or 0)
    return _run(conn, request, who, alert_id, "shelve", note=body.reason, until=until, now=now)


@router.post(
    "/{alert_id}/escalate",
    response_model=AlertActionOut,
    **scoped("alerts:write"),
    summary="Escalate an alert",
)
def escalate(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    alert_id: AlertId,
    body: Annotated[NoteIn | None, Body()] = None,
) -> AlertActionOut:
    """Hand the alert to the next contact now (the ingest service's tick notifies them)."""
    return _run(conn, request, who, alert_id, "escalate", note=body.note if body else "")
