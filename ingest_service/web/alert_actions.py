"""Acknowledge and resolve an alert from the inbox, through the pure lifecycle, audited.

The stored alert is turned into the lifecycle's ``TrackedAlert``; ``alert_rules.lifecycle``
decides the transition (idempotent: acknowledging an acknowledged alert, or resolving a
resolved one, changes nothing); this shell writes the new ``alerts.state`` and one audit row
per transition (who, role, token, from where, why) in the same transaction, with the alert
row locked so two doctors clicking at once cannot both "acknowledge" it.

Snooze, shelve and escalate go the same way (:mod:`ingest_service.alert_lifecycle`, which
also writes ``alert_transitions``); ``decide`` below is the acknowledge/resolve decision alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Literal

from fastapi import Request

from alert_rules import lifecycle
from ingest_service import alert_lifecycle
from ingest_service.api.db import Connection
from ingest_service.api.deps import readable_subjects
from ingest_service.api.routers.alert_actions import request_context
from ingest_service.api.tokens import Principal
from ingest_service.web import queries
from ingest_service.web.queries import AlertRow
from ingest_service.web.session import PageError
from vitals import Severity

Action = alert_lifecycle.Action
ACTIONS: tuple[Action, ...] = alert_lifecycle.ACTIONS
MAX_NOTE = alert_lifecycle.MAX_NOTE
_SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Outcome:
    """The alert after the action, and whether anything changed."""

    alert: AlertRow
    changed: bool


def _severity(value: str) -> Severity:
    for severity in _SEVERITIES:
        if value == severity:
            return severity
    return "medium"


def tracked(alert: AlertRow) -> lifecycle.TrackedAlert | None:
    """The stored alert as the lifecycle sees it; None when it is no longer open."""
    status: lifecycle.Status
    if alert.state == "active":
        status = "active"
    elif alert.state == "acknowledged":
        status = "acknowledged"
    else:
        return None
    return lifecycle.TrackedAlert(
        alert_id=str(alert.id),
        subject=alert.subject,
        rule=alert.rule,
        severity=_severity(alert.severity),
        message=alert.message,
        raised_at=alert.time,
        status=status,
        condition_cleared=alert.condition_cleared_at is not None,
    )


def decide(
    alert: AlertRow, action: Literal["acknowledge", "resolve"], by: str, now: datetime, note: str
) -> list[lifecycle.Transition]:
    """The lifecycle's transitions for ``action`` on the stored alert (pure)."""
    current = tracked(alert)
    if current is None:
        return []
    state = lifecycle.LifecycleState(
        MappingProxyType({f"{alert.subject}|{alert.rule}": current}), next_id=alert.id + 1
    )
    why = note or ("acknowledged" if action == "acknowledge" else "resolved")
    if action == "acknowledge":
        _, transitions, _ = lifecycle.acknowledge(state, str(alert.id), by, now, why)
    else:
        _, transitions, _ = lifecycle.resolve(state, str(alert.id), by, now, why)
    return transitions


def apply(
    conn: Connection,
    request: Request,
    who: Principal,
    alert_id: int,
    action: Action,
    note: str,
    now: datetime,
    until: datetime | None = None,
) -> Outcome:
    """Run ``action`` on the alert as ``who``; 404 / 403 / 409 / 422 pages when it cannot be.

    The work is :func:`ingest_service.alert_lifecycle.act`: state, ``alert_transitions`` and
    audit rows in one transaction (a refusal for another doctor's patient is audited too).
    """
    with conn.transaction():
        allowed = readable_subjects(conn, who)
    try:
        outcome = alert_lifecycle.act(
            conn,
            alert_id,
            action,
            who.actor,
            now,
            note=note,
            until=until,
            may_act=frozenset(allowed) if allowed is not None else None,
            context=request_context(request, who, "web"),
        )
    except alert_lifecycle.ActionError as error:
        code = {"not_found": 404, "closed": 409, "invalid": 422}[error.kind]
        message = {"not_found": "not_found", "closed": "conflict", "invalid": "invalid_input"}
        raise PageError(code, message[error.kind]) from None
    if outcome.denied:
        raise PageError(403, "not_permitted")
    with conn.transaction():
        after = queries.alert_by_id(conn, alert_id)
        assert after is not None
        (shown,) = queries.with_handling(conn, [after])
    return Outcome(alert=shown, changed=outcome.changed)
