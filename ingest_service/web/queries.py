"""The SQL the pages run (the shell around :mod:`attention` and :mod:`trends`).

Like the API's, the queries lean on ``readings (subject, metric, time DESC)``: distinct
subjects and metrics by skip scans, the newest reading per metric by a LIMIT 1 per pair, and
long ranges from the rollups (``readings_5min`` / ``readings_1h``) instead of raw rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql

from ingest_service.api.db import Connection
from ingest_service.api.resolution import ROLLUP_TABLES, WIDTHS, Resolution, choose_resolution
from ingest_service.web.attention import PatientStatus

#: Open alerts (the ``alerts_one_open`` states, migration 9): snoozed and shelved ones too.
OPEN_STATES = ("active", "acknowledged", "snoozed", "shelved")
#: The panel shows at most this many patients (a family doctor contracts a few hundred).
PANEL_LIMIT = 1000

_ALL_SUBJECTS = """
WITH RECURSIVE s AS (
    (SELECT subject FROM readings ORDER BY subject LIMIT 1)
    UNION ALL
    SELECT (SELECT r.subject FROM readings r WHERE r.subject > s.subject
            ORDER BY r.subject LIMIT 1)
    FROM s WHERE s.subject IS NOT NULL
)
SELECT subject FROM s WHERE subject IS NOT NULL LIMIT %(limit)s
"""

_LAST_READING = """
WITH RECURSIVE pairs AS (
    (SELECT subject, metric FROM readings WHERE subject = ANY(%(subjects)s)
     ORDER BY subject, metric LIMIT 1)
    UNION ALL
    SELECT nxt.subject, nxt.metric FROM pairs CROSS JOIN LATERAL (
        SELECT r.subject, r.metric FROM readings r
        WHERE r.subject = ANY(%(subjects)s)
          AND (r.subject, r.metric) > (pairs.subject, pairs.metric)
        ORDER BY r.subject, r.metric LIMIT 1) nxt
)
SELECT p.subject, max(newest.time) FROM pairs p CROSS JOIN LATERAL (
    SELECT r.time FROM readings r WHERE r.subject = p.subject AND r.metric = p.metric
    ORDER BY r.time DESC LIMIT 1) newest
GROUP BY p.subject
"""

_LATEST = """
WITH RECURSIVE m AS (
    (SELECT metric FROM readings WHERE subject = %(subject)s ORDER BY metric LIMIT 1)
    UNION ALL
    SELECT (SELECT r.metric FROM readings r WHERE r.subject = %(subject)s AND r.metric > m.metric
            ORDER BY r.metric LIMIT 1)
    FROM m WHERE m.metric IS NOT NULL
)
SELECT newest.metric, newest.time, newest.value, newest.unit, newest.no_value, newest.device
FROM m CROSS JOIN LATERAL (
    SELECT r.metric, r.time, r.value, r.unit, r.no_value, r.device FROM readings r
    WHERE r.subject = %(subject)s AND r.metric = m.metric ORDER BY r.time DESC LIMIT 1) newest
WHERE m.metric IS NOT NULL
ORDER BY newest.metric
"""

_ALERT_COLUMNS = (
    "id, subject, rule, severity, time, message, metric, value, state, occurrences,"
    " condition_cleared_at, last_seen_at, coalesce(snoozed_until, shelved_until),"
    " escalation_level"
)

_HANDLED = """
SELECT DISTINCT ON (resource) resource, actor, action, time, detail->>'note'
FROM audit_log WHERE resource = ANY(%(resources)s)
  AND action IN ('alert_acknowledged', 'alert_resolved', 'alert_snoozed', 'alert_shelved',
                 'alert_escalated')
ORDER BY resource, id DESC
"""


@dataclass(frozen=True)
class AlertRow:
    """An alert as the inbox shows it, with who last acted on it (from the audit log)."""

    id: int
    subject: str
    rule: str
    severity: str
    time: datetime
    message: str
    metric: str | None
    value: float | None
    state: str
    occurrences: int
    condition_cleared_at: datetime | None
    last_seen_at: datetime | None
    until: datetime | None = None  # snoozed / shelved until
    escalation_level: int = 0
    handled_by: str | None = None
    handled_action: str | None = None
    handled_at: datetime | None = None
    note: str | None = None

    @property
    def is_open(self) -> bool:
        """Active, acknowledged, snoozed or shelved (the ``alerts_one_open`` states)."""
        return self.state in OPEN_STATES


@dataclass(frozen=True)
class LatestRow:
    """The newest reading of one metric."""

    metric: str
    time: datetime
    value: float | None
    unit: str
    no_value: str | None
    device: str


@dataclass(frozen=True)
class Series:
    """One metric's points in a range at the resolution chosen for it."""

    metric: str
    resolution: Resolution
    points: list[tuple[datetime, float | None]]


@dataclass(frozen=True)
class RuleSettings:
    """A ``subject_rules`` row."""

    packs: tuple[str, ...] | None
    parameters: dict[str, float]
    disabled_rules: tuple[str, ...]
    updated_at: datetime
    updated_by: str
    reason: str


def panel(conn: Connection, allowed: tuple[str, ...] | None) -> list[PatientStatus]:
    """Every visible patient with last reading time and open alerts (unranked)."""
    if allowed is None:
        subjects = {
            str(r[0]) for r in conn.execute(_ALL_SUBJECTS, {"limit": PANEL_LIMIT}).fetchall()
        }
        subjects |= {
            str(r[0])
            for r in conn.execute(
                "SELECT DISTINCT subject FROM alerts WHERE state = ANY(%s) LIMIT %s",
                (list(OPEN_STATES), PANEL_LIMIT),
            ).fetchall()
        }
    else:
        subjects = set(allowed)
    chosen = sorted(subjects)[:PANEL_LIMIT]
    if not chosen:
        return []
    last = {str(s): t for s, t in conn.execute(_LAST_READING, {"subjects": chosen}).fetchall()}
    active: dict[str, dict[str, int]] = {}
    acknowledged: dict[str, dict[str, int]] = {}
    newest: dict[str, tuple[datetime, str]] = {}
    for subject, state, severity, count in conn.execute(
        "SELECT subject, state, severity, count(*) FROM alerts"
        " WHERE state = ANY(%s) AND subject = ANY(%s) GROUP BY 1, 2, 3",
        (list(OPEN_STATES), chosen),
    ).fetchall():
        into = active if state == "active" else acknowledged
        into.setdefault(str(subject), {})[str(severity)] = int(count)
    for subject, time, message in conn.execute(
        "SELECT DISTINCT ON (subject) subject, time, message FROM alerts"
        " WHERE state = ANY(%s) AND subject = ANY(%s) ORDER BY subject, time DESC",
        (list(OPEN_STATES), chosen),
    ).fetchall():
        newest[str(subject)] = (time, str(message))
    return [
        PatientStatus(
            subject=s,
            last_reading_at=last.get(s),
            active=active.get(s, {}),
            acknowledged=acknowledged.get(s, {}),
            newest_alert_at=newest[s][0] if s in newest else None,
            newest_alert_message=newest[s][1] if s in newest else None,
        )
        for s in chosen
    ]


def _alert(row: tuple[Any, ...]) -> AlertRow:
    return AlertRow(
        id=int(row[0]),
        subject=str(row[1]),
        rule=str(row[2]),
        severity=str(row[3]),
        time=row[4],
        message=str(row[5]),
        metric=row[6],
        value=row[7],
        state=str(row[8]),
        occurrences=int(row[9]),
        condition_cleared_at=row[10],
        last_seen_at=row[11],
        until=row[12],
        escalation_level=int(row[13]),
    )


def with_handling(conn: Connection, alerts: list[AlertRow]) -> list[AlertRow]:
    """The alerts with who acknowledged or resolved them last, and the note (audit log)."""
    if not alerts:
        return alerts
    handled = {
        str(resource): (str(actor), str(action), time, note)
        for resource, actor, action, time, note in conn.execute(
            _HANDLED, {"resources": [f"alert/{a.id}" for a in alerts]}
        ).fetchall()
    }
    out: list[AlertRow] = []
    for alert in alerts:
        found = handled.get(f"alert/{alert.id}")
        if found is None:
            out.append(alert)
            continue
        actor, action, time, note = found
        out.append(
            AlertRow(
                **{
                    **alert.__dict__,
                    "handled_by": actor,
                    "handled_action": action,
                    "handled_at": time,
                    "note": note,
                }
            )
        )
    return out


def alerts(
    conn: Connection,
    allowed: tuple[str, ...] | None,
    *,
    subject: str | None = None,
    open_only: bool = True,
    limit: int = 200,
) -> list[AlertRow]:
    """Alerts the viewer may see: open ones by severity then newest, else newest first."""
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    params: dict[str, Any] = {"limit": limit}
    if subject is not None:
        conditions.append(sql.SQL("subject = %(subject)s"))
        params["subject"] = subject
    if allowed is not None:
        conditions.append(sql.SQL("subject = ANY(%(allowed)s)"))
        params["allowed"] = list(allowed)
    if open_only:
        conditions.append(sql.SQL("state = ANY(%(open)s)"))
        params["open"] = list(OPEN_STATES)
        order = sql.SQL(
            "state <> 'active', CASE severity WHEN 'critical' THEN 5 WHEN 'high' THEN 4"
            " WHEN 'medium' THEN 3 WHEN 'low' THEN 2 ELSE 1 END DESC, time DESC, id DESC"
        )
    else:
        order = sql.SQL("time DESC, id DESC")
    query = sql.SQL("SELECT {} FROM alerts WHERE {} ORDER BY {} LIMIT %(limit)s").format(
        sql.SQL(_ALERT_COLUMNS), sql.SQL(" AND ").join(conditions), order
    )
    rows = [_alert(r) for r in conn.execute(query, params).fetchall()]
    return with_handling(conn, rows)


def alert_by_id(conn: Connection, alert_id: int, *, lock: bool = False) -> AlertRow | None:
    """One alert (row-locked for an update when ``lock``)."""
    query = sql.SQL("SELECT {} FROM alerts WHERE id = %s{}").format(
        sql.SQL(_ALERT_COLUMNS), sql.SQL(" FOR UPDATE") if lock else sql.SQL("")
    )
    row = conn.execute(query, (alert_id,)).fetchone()
    return _alert(row) if row is not None else None


def latest(conn: Connection, subject: str) -> list[LatestRow]:
    """The newest reading of each of the subject's metrics."""
    return [
        LatestRow(metric=m, time=t, value=v, unit=u, no_value=nv, device=d)
        for m, t, v, u, nv, d in conn.execute(_LATEST, {"subject": subject}).fetchall()
    ]


def series(
    conn: Connection, subject: str, metric: str, start: datetime, end: datetime, cap: int
) -> Series:
    """A metric's points in ``[start, end)``: raw when at most ``cap``, else bucket means.

    The same choice as the API's ``resolution=auto`` (ingest_service.api.resolution).
    """
    params = {"subject": subject, "metric": metric, "start": start, "end": end}
    row = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM readings WHERE subject = %(subject)s"
        " AND metric = %(metric)s AND time >= %(start)s AND time < %(end)s"
        " AND value IS NOT NULL LIMIT %(cap)s) capped",
        {**params, "cap": cap + 1},
    ).fetchone()
    raw_count = int(row[0]) if row else 0
    resolution = choose_resolution(raw_count, end - start, 1, cap)
    if resolution == "raw":
        rows = conn.execute(
            "SELECT time, value FROM readings WHERE subject = %(subject)s"
            " AND metric = %(metric)s AND time >= %(start)s AND time < %(end)s"
            " AND value IS NOT NULL ORDER BY time",
            params,
        ).fetchall()
    else:
        query = sql.SQL(
            "SELECT bucket, sum / NULLIF(n, 0) FROM {} WHERE subject = %(subject)s"
            " AND metric = %(metric)s AND bucket > %(start)s - %(width)s AND bucket < %(end)s"
            " ORDER BY bucket"
        ).format(sql.Identifier(ROLLUP_TABLES[resolution]))
        rows = conn.execute(query, {**params, "width": WIDTHS[resolution]}).fetchall()
    return Series(metric, resolution, [(t, v) for t, v in rows])


def raw_values(
    conn: Connection, subject: str, metric: str, since: datetime, until: datetime
) -> list[tuple[datetime, float]]:
    """Raw values of one metric (for means that must not be bucket means)."""
    return [
        (t, float(v))
        for t, v in conn.execute(
            "SELECT time, value FROM readings WHERE subject = %s AND metric = %s"
            " AND time >= %s AND time < %s AND value IS NOT NULL ORDER BY time LIMIT 5000",
            (subject, metric, since, until),
        ).fetchall()
    ]


def rule_settings(conn: Connection, subject: str) -> RuleSettings | None:
    """The doctor's settings for one patient, if any."""
    row = conn.execute(
        "SELECT packs, parameters, disabled_rules, updated_at, updated_by, reason"
        " FROM subject_rules WHERE subject = %s",
        (subject,),
    ).fetchone()
    if row is None:
        return None
    packs, parameters, disabled, updated_at, updated_by, reason = row
    return RuleSettings(
        packs=tuple(packs) if packs is not None else None,
        parameters={str(k): float(v) for k, v in dict(parameters or {}).items()},
        disabled_rules=tuple(disabled or ()),
        updated_at=updated_at,
        updated_by=str(updated_by),
        reason=str(reason),
    )
