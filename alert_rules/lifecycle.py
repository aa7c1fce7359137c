"""The alert lifecycle: a pure state machine with an audit record for every transition.

::

    raise ──> active ──ack──> acknowledged ──resolve / condition cleared──> resolved
               │  ▲ └──snooze──> snoozed ──(expiry)──┘ (back to active, re-notified)
               │  └────shelve──> shelved ──(expiry)──┘
               └── not acknowledged within escalate_after: escalate to the next contact

- **Dedup**: one open alert per (subject, rule); the engine's alert for an open pair is
  recorded as a ``suppressed`` transition, not a second alert.
- **Re-notification**: an active alert nobody acknowledged is re-sent to the current contact
  every ``renotify_every`` (at most ``max_renotify`` times per contact level).
- **Escalation**: after ``escalate_after`` without acknowledgement, the next contact in the
  chain is notified (the level goes up; the last contact keeps being re-notified).
- **Resolution** is idempotent: resolving a resolved or unknown alert changes nothing.
- **Condition cleared** (engine ``Clearance``): an acknowledged alert resolves by itself
  (``auto_resolve_acknowledged``); an unacknowledged one stays active, marked cleared, so a
  human still sees that it happened (``auto_resolve_unacknowledged`` to change that).

Every function returns ``(new_state, transitions, notifications)``; the shell writes the
transitions to the audit table (who, when, why) and hands the notifications to the notifier.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

from vitals import Alert, Severity

Status = Literal["active", "acknowledged", "snoozed", "shelved", "resolved"]
OPEN_STATUSES: frozenset[Status] = frozenset({"active", "acknowledged", "snoozed", "shelved"})
SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """Who is told, when, and how often."""

    #: Contacts in escalation order (e.g. family doctor, duty doctor, emergency desk).
    contacts: tuple[str, ...] = ("primary",)
    escalate_after: timedelta = timedelta(minutes=15)
    #: Critical alerts escalate sooner.
    escalate_after_critical: timedelta = timedelta(minutes=5)
    renotify_every: timedelta = timedelta(minutes=5)
    max_renotify: int = 3
    max_snooze: timedelta = timedelta(hours=4)
    max_shelve: timedelta = timedelta(days=7)
    auto_resolve_acknowledged: bool = True
    auto_resolve_unacknowledged: bool = False

    def escalation_delay(self, severity: Severity) -> timedelta:
        """How long an alert of this severity may stay unacknowledged."""
        return self.escalate_after_critical if severity == "critical" else self.escalate_after


@dataclass(frozen=True, slots=True)
class TrackedAlert:
    """One alert as the lifecycle sees it."""

    alert_id: str
    subject: str
    rule: str
    severity: Severity
    message: str
    raised_at: datetime
    status: Status = "active"
    escalation_level: int = 0
    notified_at: datetime | None = None
    renotified: int = 0
    until: datetime | None = None  # snooze / shelve expiry
    condition_cleared: bool = False
    resolved_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (datetimes as ISO 8601)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True, slots=True)
class Transition:
    """One audited change: what, from, to, who, when, why."""

    alert_id: str
    subject: str
    rule: str
    from_status: Status | None
    to_status: Status
    at: datetime
    by: str
    why: str


@dataclass(frozen=True, slots=True)
class Notification:
    """A message the notifier should send (to one contact)."""

    alert_id: str
    contact: str
    reason: Literal["new", "renotify", "escalation", "snooze_expired", "shelve_expired"]
    at: datetime


@dataclass(frozen=True, slots=True)
class LifecycleState:
    """Open alerts keyed by ``"subject|rule"`` (dedup), plus the id counter."""

    open: Mapping[str, TrackedAlert] = field(default_factory=lambda: MappingProxyType({}))
    next_id: int = 1

    def find(self, alert_id: str) -> TrackedAlert | None:
        """An open alert by id."""
        return next((a for a in self.open.values() if a.alert_id == alert_id), None)

    def to_json(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "open": {key: a.to_json() for key, a in self.open.items()},
            "next_id": self.next_id,
        }


Result = tuple[LifecycleState, list[Transition], list[Notification]]
EMPTY_LIFECYCLE = LifecycleState()


def _key(subject: str, rule: str) -> str:
    return f"{subject}|{rule}"


def _with(
    state: LifecycleState, alert: TrackedAlert, *, next_id: int | None = None
) -> LifecycleState:
    alerts = dict(state.open)
    key = _key(alert.subject, alert.rule)
    if alert.status == "resolved":
        alerts.pop(key, None)
    else:
        alerts[key] = alert
    return LifecycleState(MappingProxyType(alerts), next_id or state.next_id)


def _transition(
    alert: TrackedAlert, to: Status, at: datetime, by: str, why: str, *, opened: bool = False
) -> Transition:
    was = None if opened else alert.status
    return Transition(alert.alert_id, alert.subject, alert.rule, was, to, at, by, why)


def raise_alerts(
    state: LifecycleState, alerts: Iterable[Alert], now: datetime, policy: LifecyclePolicy
) -> Result:
    """Open new alerts from the engine; an open (subject, rule) pair absorbs duplicates."""
    transitions: list[Transition] = []
    notifications: list[Notification] = []
    for alert in alerts:
        existing = state.open.get(_key(alert.subject, alert.rule))
        if existing is not None:
            transitions.append(
                _transition(
                    existing,
                    existing.status,
                    now,
                    SYSTEM,
                    f"suppressed duplicate: {alert.message}",
                )
            )
            continue
        tracked = TrackedAlert(
            alert_id=f"A{state.next_id}",
            subject=alert.subject,
            rule=alert.rule,
            severity=alert.severity,
            message=alert.message,
            raised_at=alert.time,
            notified_at=now,
        )
        state = _with(state, tracked, next_id=state.next_id + 1)
        transitions.append(_transition(tracked, "active", now, SYSTEM, alert.message, opened=True))
        notifications.append(Notification(tracked.alert_id, policy.contacts[0], "new", now))
    return state, transitions, notifications


def acknowledge(
    state: LifecycleState, alert_id: str, by: str, now: datetime, why: str = "acknowledged"
) -> Result:
    """active/snoozed/shelved -> acknowledged (idempotent for an acknowledged alert)."""
    alert = state.find(alert_id)
    if alert is None or alert.status == "acknowledged":
        return state, [], []
    done = replace(alert, status="acknowledged", until=None)
    return _with(state, done), [_transition(alert, "acknowledged", now, by, why)], []


def resolve(
    state: LifecycleState, alert_id: str, by: str, now: datetime, why: str = "resolved"
) -> Result:
    """-> resolved; resolving twice (or an unknown id) changes nothing: idempotent."""
    alert = state.find(alert_id)
    if alert is None:
        return state, [], []
    done = replace(alert, status="resolved", resolved_at=now, until=None)
    return _with(state, done), [_transition(alert, "resolved", now, by, why)], []


def snooze(
    state: LifecycleState,
    alert_id: str,
    by: str,
    now: datetime,
    until: datetime,
    policy: LifecyclePolicy,
    why: str = "snoozed",
) -> Result:
    """Silence an open alert until ``until`` (at most ``max_snooze``); it comes back active."""
    return _park(state, alert_id, by, now, until, "snoozed", policy.max_snooze, why)


def shelve(
    state: LifecycleState,
    alert_id: str,
    by: str,
    now: datetime,
    until: datetime,
    policy: LifecyclePolicy,
    why: str,
) -> Result:
    """Shelve (e.g. a known chronic condition) until ``until`` (at most ``max_shelve``)."""
    if not why.strip():
        raise ValueError("shelving needs a reason for the audit trail")
    return _park(state, alert_id, by, now, until, "shelved", policy.max_shelve, why)


def _park(
    state: LifecycleState,
    alert_id: str,
    by: str,
    now: datetime,
    until: datetime,
    status: Literal["snoozed", "shelved"],
    longest: timedelta,
    why: str,
) -> Result:
    alert = state.find(alert_id)
    if alert is None:
        return state, [], []
    if until <= now:
        raise ValueError(f"{status} needs an expiry in the future")
    until = min(until, now + longest)
    parked = replace(alert, status=status, until=until)
    transition = _transition(alert, status, now, by, f"{why} (until {until.isoformat()})")
    return _with(state, parked), [transition], []


def condition_cleared(
    state: LifecycleState, subject: str, rule: str, now: datetime, policy: LifecyclePolicy
) -> Result:
    """The engine saw the condition clear (past the hysteresis margin)."""
    alert = state.open.get(_key(subject, rule))
    if alert is None:
        return state, [], []
    unacknowledged = alert.status in ("active", "snoozed", "shelved")
    if (alert.status == "acknowledged" and policy.auto_resolve_acknowledged) or (
        unacknowledged and policy.auto_resolve_unacknowledged
    ):
        return resolve(state, alert.alert_id, SYSTEM, now, "condition cleared")
    marked = replace(alert, condition_cleared=True)
    transition = _transition(
        alert, alert.status, now, SYSTEM, "condition cleared; awaiting acknowledgement"
    )
    return _with(state, marked), [transition], []


def tick(state: LifecycleState, now: datetime, policy: LifecyclePolicy) -> Result:
    """Time passes: expiries, escalations and re-notifications due at ``now``."""
    transitions: list[Transition] = []
    notifications: list[Notification] = []
    for alert in list(state.open.values()):
        current = alert
        if current.status in ("snoozed", "shelved") and current.until and now >= current.until:
            reason: Literal["snooze_expired", "shelve_expired"] = (
                "snooze_expired" if current.status == "snoozed" else "shelve_expired"
            )
            woken = replace(current, status="active", until=None, notified_at=now, renotified=0)
            transitions.append(
                _transition(current, "active", now, SYSTEM, f"{current.status} expired")
            )
            notifications.append(
                Notification(
                    current.alert_id, policy.contacts[current.escalation_level], reason, now
                )
            )
            current = woken
        elif current.status == "active":
            current = _escalate_or_renotify(current, now, policy, transitions, notifications)
        if current is not alert:
            state = _with(state, current)
    return state, transitions, notifications


def _escalate_or_renotify(
    alert: TrackedAlert,
    now: datetime,
    policy: LifecyclePolicy,
    transitions: list[Transition],
    notifications: list[Notification],
) -> TrackedAlert:
    waited = now - alert.raised_at
    due_level = min(int(waited / policy.escalation_delay(alert.severity)), len(policy.contacts) - 1)
    if due_level > alert.escalation_level:
        contact = policy.contacts[due_level]
        minutes = int(waited.total_seconds() // 60)
        transitions.append(
            _transition(
                alert,
                "active",
                now,
                SYSTEM,
                f"escalated to {contact}: not acknowledged for {minutes} min",
            )
        )
        notifications.append(Notification(alert.alert_id, contact, "escalation", now))
        return replace(alert, escalation_level=due_level, notified_at=now, renotified=0)
    last = alert.notified_at or alert.raised_at
    if alert.renotified < policy.max_renotify and now - last >= policy.renotify_every:
        contact = policy.contacts[alert.escalation_level]
        notifications.append(Notification(alert.alert_id, contact, "renotify", now))
        return replace(alert, notified_at=now, renotified=alert.renotified + 1)
    return alert
