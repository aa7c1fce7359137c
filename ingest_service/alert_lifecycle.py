"""The alert lifecycle in the database: actions, the periodic tick, transitions and audit.

:mod:`alert_rules.lifecycle` decides (pure); this shell loads the ``alerts`` row, turns it
into the lifecycle's ``TrackedAlert``, writes the new state back and records every transition
twice, in the same transaction: a row in ``alert_transitions`` (alert, from, to, when, who,
why) and a row in the hash-chained ``audit_log``.

- **Actions** (:func:`act`): acknowledge, resolve (a note is required), snooze (until a time,
  at most ``max_snooze``), shelve (until a time, at most ``max_shelve``, a reason is required),
  escalate (to the next contact in ``policy.contacts``). The row is locked (``FOR UPDATE``), so
  two people acting at once are applied one after the other; acknowledging or resolving twice
  changes nothing (the lifecycle is idempotent).
- **Tick** (:func:`tick`): snooze and shelf expiries (the alert is active again and its
  contact is told), escalation of an alert nobody acknowledged in time, re-notification, and
  the notices actions asked for (``pending_notice``: a manual escalation made in the web or API
  process, which has no notifier). Call it from the ingest service's maintenance timer and
  hand :attr:`TickResult.notices` to ``Notifier.submit_lifecycle`` after it returns (it
  commits its own transaction).
- **Escalation clock**: ``alerts.active_since``, when the alert last began waiting for a human
  (raised, or woken from a snooze or shelf). Waking restarts it, so a four-hour snooze does not
  escalate straight to the last contact a second after it expires.
- **Open alerts**: active, acknowledged, snoozed and shelved; the ``alerts_one_open`` index
  (migration 9) and ``rules_runner.write_alerts`` fold a recurrence into any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, get_args

import psycopg
from psycopg import sql

from alert_rules import lifecycle
from alert_rules.lifecycle import LifecyclePolicy, Notification, TrackedAlert, Transition
from ingest_service import audit
from vitals import Severity

Connection = psycopg.Connection[Any]

Action = Literal["acknowledge", "resolve", "snooze", "shelve", "escalate"]
ACTIONS: tuple[Action, ...] = get_args(Action)
#: What ``alert_transitions.action`` records for changes the tick makes.
TickKind = Literal["snooze_expired", "shelve_expired", "escalate"]
NoticeReason = Literal["new", "renotify", "escalation", "snooze_expired", "shelve_expired"]

OPEN_STATES: tuple[str, ...] = ("active", "acknowledged", "snoozed", "shelved")
SYSTEM_ACTOR = "system:lifecycle"
MAX_NOTE = 1000

#: Who is told, in escalation order: the contracted family doctor, the clinic's duty doctor,
#: the clinic desk (which phones). Delays and counts are the lifecycle's defaults (15 min,
#: 5 min for critical alerts; re-notify every 5 min, at most 3 times per contact).
DEFAULT_POLICY = LifecyclePolicy(contacts=("family_doctor", "duty_doctor", "clinic_desk"))

#: The audit log's ``action`` per transition kind (``alert_acknowledged`` and
#: ``alert_resolved`` are the names the inbox has used from the start).
AUDIT_ACTIONS: Mapping[str, str] = MappingProxyType(
    {
        "acknowledge": "alert_acknowledged",
        "resolve": "alert_resolved",
        "snooze": "alert_snoozed",
        "shelve": "alert_shelved",
        "escalate": "alert_escalated",
        "snooze_expired": "alert_snooze_expired",
        "shelve_expired": "alert_shelve_expired",
    }
)

_SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")
_STATUSES: tuple[lifecycle.Status, ...] = ("active", "acknowledged", "snoozed", "shelved")

_COLUMNS = (
    "id, subject, rule, severity, time, message, state, created_at, active_since,"
    " snoozed_until, shelved_until, escalation_level, notified_at, renotified,"
    " condition_cleared_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by,"
    " pending_notice"
)


class ActionError(ValueError):
    """An action that cannot be done: ``not_found`` (404), ``closed`` (409), ``invalid`` (422)."""

    def __init__(self, kind: Literal["not_found", "closed", "invalid"], detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class StoredAlert:
    """An ``alerts`` row with its lifecycle columns."""

    id: int
    subject: str
    rule: str
    severity: str
    time: datetime
    message: str
    state: str
    created_at: datetime
    active_since: datetime
    snoozed_until: datetime | None = None
    shelved_until: datetime | None = None
    escalation_level: int = 0
    notified_at: datetime | None = None
    renotified: int = 0
    condition_cleared_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    pending_notice: str | None = None

    @property
    def until(self) -> datetime | None:
        """The snooze or shelf expiry, when parked."""
        return self.snoozed_until if self.state == "snoozed" else self.shelved_until

    def tracked(self) -> TrackedAlert | None:
        """The row as the lifecycle sees it; None once resolved (or in an unknown state).

        ``raised_at`` is the escalation clock (``active_since``), not the reading's time: a
        delayed reading must not count as time a doctor left the alert waiting.
        """
        status = next((s for s in _STATUSES if s == self.state), None)
        if status is None:
            return None
        return TrackedAlert(
            alert_id=str(self.id),
            subject=self.subject,
            rule=self.rule,
            severity=next((s for s in _SEVERITIES if s == self.severity), "medium"),
            message=self.message,
            raised_at=self.active_since,
            status=status,
            escalation_level=self.escalation_level,
            notified_at=self.notified_at,
            renotified=self.renotified,
            until=self.until if status in ("snoozed", "shelved") else None,
            condition_cleared=self.condition_cleared_at is not None,
        )


@dataclass(frozen=True)
class Decision:
    """What an action does to one alert (pure): its new form and the transitions."""

    alert: StoredAlert
    transitions: tuple[Transition, ...]
    notice: str | None = None  # a notification the tick should send (manual escalation)


@dataclass(frozen=True)
class ActionOutcome:
    """The alert after an action; ``denied`` when the caller may not act on its subject."""

    alert: StoredAlert
    transitions: tuple[Transition, ...]
    denied: bool = False

    @property
    def changed(self) -> bool:
        """Whether the action changed anything (False for a repeated acknowledge/resolve)."""
        return bool(self.transitions)


@dataclass(frozen=True)
class TickResult:
    """What one tick changed, and the notifications to send (``Notifier.submit_lifecycle``)."""

    transitions: tuple[Transition, ...]
    notices: tuple[tuple[Notification, TrackedAlert], ...]


# -------------------------------------------------------------------------------- pure core


def _single(alert: TrackedAlert) -> lifecycle.LifecycleState:
    return lifecycle.LifecycleState(
        MappingProxyType({f"{alert.subject}|{alert.rule}": alert}), next_id=0
    )


def apply_tracked(
    row: StoredAlert, after: TrackedAlert | None, by: str, now: datetime
) -> StoredAlert:
    """The stored row after the lifecycle moved it to ``after`` (None = resolved)."""
    if after is None:
        return replace(
            row,
            state="resolved",
            snoozed_until=None,
            shelved_until=None,
            resolved_at=now,
            resolved_by=by,
            pending_notice=None,
        )
    woken = row.state in ("snoozed", "shelved") and after.status == "active"
    acknowledged = after.status == "acknowledged" and row.state != "acknowledged"
    return replace(
        row,
        state=after.status,
        snoozed_until=after.until if after.status == "snoozed" else None,
        shelved_until=after.until if after.status == "shelved" else None,
        escalation_level=after.escalation_level,
        notified_at=after.notified_at,
        renotified=after.renotified,
        active_since=now if woken else row.active_since,
        acknowledged_at=now if acknowledged else row.acknowledged_at,
        acknowledged_by=by if acknowledged else row.acknowledged_by,
    )


def escalate(
    alert: TrackedAlert, by: str, now: datetime, policy: LifecyclePolicy, why: str
) -> tuple[TrackedAlert, list[Transition]]:
    """Hand an open alert to the next contact now (a person's decision, not a timeout).

    The state stays what it was; at the last contact nothing changes.
    """
    if alert.escalation_level >= len(policy.contacts) - 1:
        return alert, []
    level = alert.escalation_level + 1
    contact = policy.contacts[level]
    moved = replace(alert, escalation_level=level, notified_at=now, renotified=0)
    step = Transition(
        alert.alert_id, alert.subject, alert.rule, alert.status, alert.status, now, by,
        f"escalated to {contact}: {why}",
    )  # fmt: skip
    return moved, [step]


def decide(
    row: StoredAlert,
    action: Action,
    by: str,
    now: datetime,
    policy: LifecyclePolicy = DEFAULT_POLICY,
    *,
    note: str = "",
    until: datetime | None = None,
) -> Decision:
    """What ``action`` by ``by`` at ``now`` does to the stored alert (pure).

    Raises :class:`ActionError`: ``invalid`` (a resolve or shelve without a note, a note over
    1000 characters, no expiry or one in the past), ``closed`` (snooze, shelve or escalate a
    resolved alert). Acknowledging or resolving a resolved alert is no change.
    """
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise ActionError("invalid", f"a note is at most {MAX_NOTE} characters")
    if action == "resolve" and not note:
        raise ActionError("invalid", "a note is required to resolve an alert")
    if action == "shelve" and not note:
        raise ActionError("invalid", "a reason is required to shelve an alert")
    if action in ("snooze", "shelve") and (until is None or until <= now):
        raise ActionError("invalid", f"{action} needs an expiry in the future")
    current = row.tracked()
    if current is None:
        if action in ("acknowledge", "resolve"):
            return Decision(row, ())
        raise ActionError("closed", f"alert {row.id} is {row.state}")
    state = _single(current)
    alert_id = current.alert_id
    notice: str | None = None
    if action == "acknowledge":
        state, steps, _ = lifecycle.acknowledge(state, alert_id, by, now, note or "acknowledged")
    elif action == "resolve":
        state, steps, _ = lifecycle.resolve(state, alert_id, by, now, note)
    elif action in ("snooze", "shelve"):
        assert until is not None
        park = lifecycle.snooze if action == "snooze" else lifecycle.shelve
        state, steps, _ = park(state, alert_id, by, now, until, policy, note or "snoozed")
    else:
        moved, steps = escalate(current, by, now, policy, note or "escalated by hand")
        state = _single(moved)
        notice = "escalation" if steps else None
    after = apply_tracked(row, state.find(alert_id), by, now) if steps else row
    if notice is not None:
        after = replace(after, pending_notice=notice)
    return Decision(after, tuple(steps), notice)


def tick_kind(step: Transition) -> TickKind:
    """What a transition of :func:`alert_rules.lifecycle.tick` was."""
    if step.from_status == "snoozed":
        return "snooze_expired"
    if step.from_status == "shelved":
        return "shelve_expired"
    return "escalate"


# -------------------------------------------------------------------------------- SQL shell


def _stored(row: tuple[Any, ...]) -> StoredAlert:
    return StoredAlert(
        id=int(row[0]),
        subject=str(row[1]),
        rule=str(row[2]),
        severity=str(row[3]),
        time=row[4],
        message=str(row[5]),
        state=str(row[6]),
        created_at=row[7],
        active_since=row[8],
        snoozed_until=row[9],
        shelved_until=row[10],
        escalation_level=int(row[11]),
        notified_at=row[12],
        renotified=int(row[13]),
        condition_cleared_at=row[14],
        acknowledged_at=row[15],
        acknowledged_by=row[16],
        resolved_at=row[17],
        resolved_by=row[18],
        pending_notice=row[19],
    )


def load(conn: Connection, alert_id: int, *, lock: bool = False) -> StoredAlert | None:
    """One alert with its lifecycle columns (row-locked when ``lock``)."""
    query = sql.SQL("SELECT {} FROM alerts WHERE id = %s{}").format(
        sql.SQL(_COLUMNS), sql.SQL(" FOR UPDATE") if lock else sql.SQL("")
    )
    row = conn.execute(query, (alert_id,)).fetchone()
    return _stored(row) if row is not None else None


def _save(conn: Connection, alert: StoredAlert) -> None:
    conn.execute(
        "UPDATE alerts SET state = %s, snoozed_until = %s, shelved_until = %s,"
        " escalation_level = %s, notified_at = %s, renotified = %s, active_since = %s,"
        " acknowledged_at = %s, acknowledged_by = %s, resolved_at = %s, resolved_by = %s,"
        " pending_notice = %s WHERE id = %s",
        (
            alert.state,
            alert.snoozed_until,
            alert.shelved_until,
            alert.escalation_level,
            alert.notified_at,
            alert.renotified,
            alert.active_since,
            alert.acknowledged_at,
            alert.acknowledged_by,
            alert.resolved_at,
            alert.resolved_by,
            alert.pending_notice,
            alert.id,
        ),
    )


def record_transition(
    conn: Connection,
    alert: StoredAlert,
    step: Transition,
    kind: str,
    actor: str,
    *,
    note: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> int:
    """Append the audit row and the ``alert_transitions`` row of one transition; the audit id.

    ``alert`` is the row after the transition (its expiry and contact level are recorded).
    """
    detail: dict[str, Any] = {
        **(context or {}),
        "subject": alert.subject,
        "rule": alert.rule,
        "severity": alert.severity,
        "from_state": step.from_status,
        "to_state": step.to_status,
        "note": note or None,
        "why": step.why,
        "until": alert.until.isoformat() if alert.until is not None else None,
        "escalation_level": alert.escalation_level,
    }
    stored = audit.append(
        conn,
        audit.AuditEntry(
            time=step.at,
            actor=actor,
            action=AUDIT_ACTIONS[kind],
            resource=f"alert/{alert.id}",
            detail=detail,
        ),
    )
    conn.execute(
        "INSERT INTO alert_transitions (alert_id, action, from_state, to_state, at, actor,"
        " reason, note, escalation_level, audit_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            alert.id,
            kind,
            step.from_status,
            step.to_status,
            step.at,
            actor,
            step.why,
            note or None,
            alert.escalation_level,
            stored.id,
        ),
    )
    return stored.id


def act(
    conn: Connection,
    alert_id: int,
    action: Action,
    actor: str,
    now: datetime,
    *,
    policy: LifecyclePolicy = DEFAULT_POLICY,
    note: str = "",
    until: datetime | None = None,
    may_act: frozenset[str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> ActionOutcome:
    """Do ``action`` as ``actor``; commits the new state with its transitions and audit rows.

    ``may_act`` is the subjects the actor may act on (None = all): for another subject a
    ``write_denied`` audit row is committed and the outcome says ``denied``. ``context`` goes
    into every audit row (role, token id, client address, channel). Raises
    :class:`ActionError` (nothing is written then).
    """
    with conn.transaction():
        row = load(conn, alert_id, lock=True)
        if row is None:
            raise ActionError("not_found", f"no alert {alert_id}")
        if may_act is not None and row.subject not in may_act:
            audit.append(
                conn,
                audit.AuditEntry(
                    time=now,
                    actor=actor,
                    action="write_denied",
                    resource=f"alert/{alert_id}",
                    detail={
                        **(context or {}),
                        "subject": row.subject,
                        "reason": "not permitted",
                        "want": action,
                    },
                ),
            )
            return ActionOutcome(row, (), denied=True)
        decision = decide(row, action, actor, now, policy, note=note, until=until)
        if decision.transitions:
            _save(conn, decision.alert)
        for step in decision.transitions:
            record_transition(
                conn, decision.alert, step, action, actor, note=note.strip(), context=context
            )
    return ActionOutcome(decision.alert, decision.transitions)


def tick(conn: Connection, now: datetime, policy: LifecyclePolicy = DEFAULT_POLICY) -> TickResult:
    """Expiries, escalations, re-notifications and pending notices due at ``now``; commits.

    Rows another worker is ticking are skipped (``FOR UPDATE SKIP LOCKED``), so several
    ingest workers may call this at once and each change happens once.
    """
    transitions: list[Transition] = []
    notices: list[tuple[Notification, TrackedAlert]] = []
    with conn.transaction():
        rows = [
            _stored(r)
            for r in conn.execute(
                sql.SQL(
                    "SELECT {} FROM alerts WHERE state <> 'resolved' AND (state = 'active'"
                    " OR (state = 'snoozed' AND snoozed_until <= %(now)s)"
                    " OR (state = 'shelved' AND shelved_until <= %(now)s)"
                    " OR pending_notice IS NOT NULL) ORDER BY id FOR UPDATE SKIP LOCKED"
                ).format(sql.SQL(_COLUMNS)),
                {"now": now},
            ).fetchall()
        ]
        by_id = {str(r.id): r for r in rows}
        changed: dict[str, StoredAlert] = {}
        for row in rows:
            tracked = row.tracked()
            if row.pending_notice is not None and tracked is not None:
                contact = policy.contacts[min(row.escalation_level, len(policy.contacts) - 1)]
                reason: NoticeReason = (
                    "escalation" if row.pending_notice == "escalation" else "renotify"
                )
                notices.append(
                    (Notification(str(row.id), contact, reason, now), _for_notice(tracked, row))
                )
            if row.pending_notice is not None:
                changed[str(row.id)] = replace(row, pending_notice=None)
        open_alerts = {
            f"{t.subject}|{t.rule}": t
            for t in (r.tracked() for r in rows if r.state in ("active", "snoozed", "shelved"))
            if t is not None
        }
        state = lifecycle.LifecycleState(MappingProxyType(open_alerts), next_id=0)
        state, steps, notifications = lifecycle.tick(state, now, policy)
        for key, after in state.open.items():
            if after == open_alerts[key]:
                continue
            row = changed.get(after.alert_id, by_id[after.alert_id])
            changed[after.alert_id] = apply_tracked(row, after, SYSTEM_ACTOR, now)
        for row in changed.values():
            _save(conn, row)
        for step in steps:
            record_transition(
                conn,
                changed[step.alert_id],
                step,
                tick_kind(step),
                SYSTEM_ACTOR,
                context={"via": "tick"},
            )
            transitions.append(step)
        for notification in notifications:
            row = changed.get(notification.alert_id, by_id[notification.alert_id])
            tracked = row.tracked()
            assert tracked is not None
            notices.append((notification, _for_notice(tracked, row)))
    return TickResult(tuple(transitions), tuple(notices))


def _for_notice(tracked: TrackedAlert, row: StoredAlert) -> TrackedAlert:
    """The alert as a notice shows it: with the reading's time, not the escalation clock."""
    return replace(tracked, raised_at=row.time)
