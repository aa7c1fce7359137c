"""Acknowledge and resolve an alert from the inbox, through the pure lifecycle, audited.

The stored alert is turned into the lifecycle's ``TrackedAlert``; ``alert_rules.lifecycle``
decides the transition (idempotent: acknowledging an acknowledged alert, or resolving a
resolved one, changes nothing); this shell writes the new ``alerts.state`` and one audit row
per transition (who, role, token, from where, why) in the same transaction, with the alert
row locked so two doctors clicking at once cannot both "acknowledge" it.

Only ``active`` / ``acknowledged`` / ``resolved`` exist in the ``alerts`` table (its
``alerts_one_open`` index counts the first two as open); snooze, shelve and escalation need a
column for their expiry and contact level and are not offered yet (docs/web.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Literal

from fastapi import Request

from alert_rules import lifecycle
from ingest_service.api.access import may_read_subject
from ingest_service.api.db import Connection
from ingest_service.api.deps import record
from ingest_service.api.tokens import Principal
from ingest_service.web import queries
from ingest_service.web.queries import AlertRow
from ingest_service.web.session import PageError
from vitals import Severity

Action = Literal["acknowledge", "resolve"]
ACTIONS: tuple[Action, ...] = ("acknowledge", "resolve")
MAX_NOTE = 1000
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
    alert: AlertRow, action: Action, by: str, now: datetime, note: str
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
) -> Outcome:
    """Run ``action`` on the alert as ``who``; 404 / 403 pages when it is not theirs."""
    if len(note) > MAX_NOTE:
        raise PageError(422, "invalid_input")
    if action == "resolve" and not note:
        raise PageError(422, "invalid_input")
    resource = f"alert/{alert_id}"
    with conn.transaction():
        alert = queries.alert_by_id(conn, alert_id, lock=True)
        if alert is None:
            raise PageError(404, "not_found")
        if not may_read_subject(who, alert.subject):
            record(
                conn,
                request,
                who,
                resource,
                {"subject": alert.subject, "reason": "not permitted", "want": action},
                action="write_denied",
            )
            denied = True
        else:
            denied = False
            transitions = decide(alert, action, who.actor, now, note)
            for step in transitions:
                conn.execute(
                    "UPDATE alerts SET state = %s WHERE id = %s", (step.to_status, alert.id)
                )
                record(
                    conn,
                    request,
                    who,
                    resource,
                    {
                        "subject": alert.subject,
                        "rule": alert.rule,
                        "severity": alert.severity,
                        "from_state": step.from_status,
                        "to_state": step.to_status,
                        "note": note or None,
                        "why": step.why,
                        "via": "web",
                    },
                    action=f"alert_{step.to_status}",
                )
    if denied:
        # The transaction above committed the denial row; now refuse.
        raise PageError(403, "not_permitted")
    with conn.transaction():
        after = queries.alert_by_id(conn, alert_id)
        assert after is not None
        (shown,) = queries.with_handling(conn, [after])
    return Outcome(alert=shown, changed=bool(transitions))
