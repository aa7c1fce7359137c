"""Follow-up metrics (R4): ``/doctor/followup`` and ``/doctor/followup.csv``.

Per calendar month (in ``VITALSTREAM_WEB_TIMEZONE``), per doctor and for everyone together
(the clinic row: there is no doctor-to-clinic table yet, so "clinic" is every doctor acting on
the viewer's patients), over the alerts of the patients the viewer may see:

- **time to acknowledge**: from the alert's ``created_at`` (when it reached the system; a
  delayed reading is not the doctor's delay) to the first acknowledge or resolve by a person
  (``alert_transitions``; ``system:*`` actors do not count); median and 90th percentile
  (linear interpolation, Hyndman & Fan type 7) in minutes;
- **urgent in time**: high and critical alerts acted on within the lifecycle policy's
  escalation delay (15 min; 5 min for critical). A doctor's row counts the urgent alerts that
  doctor acted on first; the clinic row counts every urgent alert, an unanswered one as late
  once its delay has passed (one still inside its delay is left out);
- **follow-ups per contracted patient**: acknowledge/resolve transitions with a note, per
  contracted patient, in the month. Until a follow-up table exists a noted acknowledgement or
  resolution *is* the follow-up. Contracted patients: the doctor's ``contracted_subjects`` in
  the ``users`` table where that table exists, else unknown for other doctors; the clinic row
  uses the viewer's panel (the token's ``subjects``, or every patient with data);
- **alert burden**: alerts per patient-day (:func:`alert_rules.burden.alert_burden`): alerts
  created in the month over the observed time (first to last reading in the month) of the
  patients concerned; for a doctor, the patients whose alerts that doctor acted on.

The pure part (:func:`followup_rows`) has unit tests; the page and the CSV are audited reads.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from alert_rules.burden import alert_burden
from alert_rules.lifecycle import LifecyclePolicy
from ingest_service.alert_lifecycle import DEFAULT_POLICY
from ingest_service.api.db import Connection
from ingest_service.api.deps import ConnectionDep, readable_subjects, record
from ingest_service.web.doctor import _doctor, _page
from ingest_service.web.render import SECURITY_HEADERS, web_settings
from ingest_service.web.session import PageRoute, Viewer, ViewerDep
from vitals import Alert

router = APIRouter(prefix="/doctor", route_class=PageRoute, include_in_schema=False)

CLINIC = "all doctors"
URGENT = ("high", "critical")
CSV_COLUMNS = (
    "month", "scope", "alerts_acted_on", "tta_median_min", "tta_p90_min", "urgent",
    "urgent_in_time", "urgent_in_time_share", "follow_ups", "contracted_patients",
    "follow_ups_per_patient", "patient_days", "alerts", "alerts_per_patient_day",
)  # fmt: skip


@dataclass(frozen=True)
class AlertFact:
    """One alert and the first time a person acknowledged or resolved it."""

    alert_id: int
    subject: str
    rule: str
    severity: str
    time: datetime
    created_at: datetime
    acted_at: datetime | None = None
    acted_by: str | None = None


@dataclass(frozen=True)
class FollowUp:
    """An acknowledgement or resolution with a note (a follow-up until a table exists)."""

    alert_id: int
    subject: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class FollowupRow:
    """One month's metrics for one doctor, or for the clinic (``scope`` = :data:`CLINIC`)."""

    month: str
    scope: str
    acted: int
    tta_median_min: float | None
    tta_p90_min: float | None
    urgent: int
    urgent_in_time: int
    follow_ups: int
    contracted: int | None
    patient_days: float
    alerts: int
    alerts_per_patient_day: float | None

    @property
    def urgent_share(self) -> float | None:
        """Share of urgent alerts acted on in time (None without urgent alerts)."""
        return self.urgent_in_time / self.urgent if self.urgent else None

    @property
    def follow_ups_per_patient(self) -> float | None:
        """Follow-ups per contracted patient in the month."""
        return self.follow_ups / self.contracted if self.contracted else None

    def as_csv(self) -> tuple[str, ...]:
        """The row as CSV cells (empty when unknown)."""

        def num(value: float | None, digits: int = 2) -> str:
            return "" if value is None else f"{value:.{digits}f}"

        return (
            self.month, self.scope, str(self.acted), num(self.tta_median_min, 1),
            num(self.tta_p90_min, 1), str(self.urgent), str(self.urgent_in_time),
            num(self.urgent_share, 3), str(self.follow_ups),
            "" if self.contracted is None else str(self.contracted),
            num(self.follow_ups_per_patient, 3), num(self.patient_days, 2), str(self.alerts),
            num(self.alerts_per_patient_day, 3),
        )  # fmt: skip


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by linear interpolation (Hyndman & Fan type 7)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * p / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def month_of(moment: datetime, zone: ZoneInfo) -> str:
    """``YYYY-MM`` of a time in the display zone."""
    return moment.astimezone(zone).strftime("%Y-%m")


def month_start(now: datetime, zone: ZoneInfo, months: int) -> datetime:
    """The start (UTC) of the calendar month ``months - 1`` months before ``now``'s month."""
    local = now.astimezone(zone)
    year, month = local.year, local.month - (months - 1)
    while month < 1:
        month += 12
        year -= 1
    return datetime(year, month, 1, tzinfo=zone).astimezone(UTC)


def _row(
    month: str,
    scope: str,
    facts: Sequence[AlertFact],
    urgent: Sequence[AlertFact],
    follow_ups: int,
    contracted: int | None,
    observed: Mapping[str, tuple[datetime, datetime]],
    burden_alerts: Sequence[AlertFact],
    zone: ZoneInfo,
    policy: LifecyclePolicy,
) -> FollowupRow:
    minutes = [
        (f.acted_at - f.created_at).total_seconds() / 60.0 for f in facts if f.acted_at is not None
    ]
    in_time = sum(
        1
        for f in urgent
        if f.acted_at is not None
        and f.acted_at - f.created_at <= policy.escalation_delay(_severity(f.severity))
    )
    burden = alert_burden(
        (
            Alert(
                subject=f.subject,
                rule=f.rule,
                severity=_severity(f.severity),
                time=f.time,
                message="",
            )
            for f in burden_alerts
        ),
        observed,
        zone,
    )
    return FollowupRow(
        month=month,
        scope=scope,
        acted=len(minutes),
        tta_median_min=statistics.median(minutes) if minutes else None,
        tta_p90_min=percentile(minutes, 90) if minutes else None,
        urgent=len(urgent),
        urgent_in_time=in_time,
        follow_ups=follow_ups,
        contracted=contracted,
        patient_days=burden.patient_days,
        alerts=burden.alerts,
        alerts_per_patient_day=burden.per_patient_day,
    )


def _severity(value: str) -> Any:
    return value if value in ("info", "low", "medium", "high", "critical") else "medium"


def followup_rows(
    facts: Iterable[AlertFact],
    follow_ups: Iterable[FollowUp],
    observed: Mapping[str, Mapping[str, tuple[datetime, datetime]]],
    contracted: Mapping[str, int],
    panel_size: int,
    now: datetime,
    zone: ZoneInfo,
    policy: LifecyclePolicy = DEFAULT_POLICY,
) -> list[FollowupRow]:
    """The metrics per month (newest first): the clinic row, then one row per doctor.

    ``observed`` is month -> subject -> (first, last reading in the month); ``contracted`` is
    doctor (actor) -> contracted patients, where known; ``panel_size`` the viewer's patients.
    """
    by_month: dict[str, list[AlertFact]] = {}
    for fact in facts:
        by_month.setdefault(month_of(fact.created_at, zone), []).append(fact)
    notes: dict[str, list[FollowUp]] = {}
    for follow_up in follow_ups:
        notes.setdefault(month_of(follow_up.at, zone), []).append(follow_up)
    rows: list[FollowupRow] = []
    for month in sorted(set(by_month) | set(notes) | set(observed), reverse=True):
        month_facts = by_month.get(month, [])
        month_notes = notes.get(month, [])
        seen = observed.get(month, {})
        urgent = [
            f
            for f in month_facts
            if f.severity in URGENT
            and (
                f.acted_at is not None
                or now - f.created_at > policy.escalation_delay(_severity(f.severity))
            )
        ]
        rows.append(
            _row(month, CLINIC, month_facts, urgent, len(month_notes), panel_size or None,
                 seen, month_facts, zone, policy)
        )  # fmt: skip
        doctors = sorted(
            {f.acted_by for f in month_facts if f.acted_by} | {n.actor for n in month_notes}
        )
        for doctor in doctors:
            mine = [f for f in month_facts if f.acted_by == doctor]
            subjects = {f.subject for f in mine}
            rows.append(
                _row(
                    month,
                    doctor,
                    mine,
                    [f for f in mine if f.severity in URGENT],
                    sum(1 for n in month_notes if n.actor == doctor),
                    contracted.get(doctor),
                    {s: span for s, span in seen.items() if s in subjects},
                    [f for f in month_facts if f.subject in subjects],
                    zone,
                    policy,
                )
            )
    return rows


# -------------------------------------------------------------------------------- SQL shell


def load(
    conn: Connection, allowed: tuple[str, ...] | None, start: datetime, zone: ZoneInfo
) -> tuple[
    list[AlertFact], list[FollowUp], dict[str, dict[str, tuple[datetime, datetime]]],
    dict[str, int], int,
]:  # fmt: skip
    """Alerts, noted follow-ups, observed spans, contracts and panel size since ``start``."""
    scope = {"all": allowed is None, "allowed": list(allowed or ()), "start": start}
    facts = [
        AlertFact(int(i), str(s), str(r), str(sev), t, c, at, by)
        for i, s, r, sev, t, c, at, by in conn.execute(
            "SELECT a.id, a.subject, a.rule, a.severity, a.time, a.created_at, f.at, f.actor"
            " FROM alerts a LEFT JOIN LATERAL ("
            "  SELECT at, actor FROM alert_transitions t WHERE t.alert_id = a.id"
            "  AND t.action IN ('acknowledge', 'resolve') AND t.actor NOT LIKE 'system:%%'"
            "  ORDER BY t.at, t.id LIMIT 1) f ON TRUE"
            " WHERE a.created_at >= %(start)s AND (%(all)s OR a.subject = ANY(%(allowed)s))",
            scope,
        ).fetchall()
    ]
    follow_ups = [
        FollowUp(int(i), str(s), str(actor), at)
        for i, s, actor, at in conn.execute(
            "SELECT t.alert_id, a.subject, t.actor, t.at FROM alert_transitions t"
            " JOIN alerts a ON a.id = t.alert_id"
            " WHERE t.action IN ('acknowledge', 'resolve') AND t.note IS NOT NULL"
            " AND t.actor NOT LIKE 'system:%%' AND t.at >= %(start)s"
            " AND (%(all)s OR a.subject = ANY(%(allowed)s))",
            scope,
        ).fetchall()
    ]
    observed: dict[str, dict[str, tuple[datetime, datetime]]] = {}
    for subject, month, first, last in conn.execute(
        "SELECT subject, to_char(time AT TIME ZONE %(zone)s, 'YYYY-MM'), min(time), max(time)"
        " FROM readings WHERE time >= %(start)s AND value IS NOT NULL"
        " AND (%(all)s OR subject = ANY(%(allowed)s)) GROUP BY 1, 2",
        {**scope, "zone": str(zone)},
    ).fetchall():
        observed.setdefault(str(month), {})[str(subject)] = (first, last)
    contracted: dict[str, int] = {}
    if conn.execute("SELECT to_regclass('users') IS NOT NULL").fetchone() == (True,):
        contracted = {
            f"doctor:{name}": int(count)
            for name, count in conn.execute(
                "SELECT username, cardinality(contracted_subjects) FROM users"
                " WHERE role = 'doctor' AND cardinality(contracted_subjects) > 0"
            ).fetchall()
        }
    if allowed is not None:
        panel = len(set(allowed))
    else:
        subjects = {s for spans in observed.values() for s in spans} | {f.subject for f in facts}
        panel = len(subjects)
    return facts, follow_ups, observed, contracted, panel


def _metrics(
    conn: Connection, request: Request, seen: Viewer, months: int, resource: str
) -> tuple[list[FollowupRow], dict[str, Any]]:
    who = _doctor(conn, request, seen, resource)
    settings = web_settings(request)
    now = datetime.now(UTC)
    start = month_start(now, settings.zone, months)
    with conn.transaction():
        allowed = readable_subjects(conn, who)
        facts, follow_ups, observed, contracted, panel = load(conn, allowed, start, settings.zone)
        record(
            conn,
            request,
            who,
            resource,
            {
                "query": {"months": months},
                "subjects": sorted({f.subject for f in facts}),
                "returned": len(facts),
            },
        )
    rows = followup_rows(facts, follow_ups, observed, contracted, panel, now, settings.zone)
    return rows, {"months": months, "start": start, "panel": panel}


@router.get("/followup", response_class=HTMLResponse)
def followup_page(
    request: Request,
    seen: ViewerDep,
    conn: ConnectionDep,
    months: Annotated[int, Query(ge=1, le=12)] = 3,
) -> HTMLResponse:
    """Follow-up metrics per month, for the clinic and per doctor."""
    rows, context = _metrics(conn, request, seen, months, "web/doctor/followup")
    policy = DEFAULT_POLICY
    return _page(
        request,
        "followup.html",
        {
            **context,
            "rows": rows,
            "clinic": CLINIC,
            "delay_high": int(policy.escalate_after / timedelta(minutes=1)),
            "delay_critical": int(policy.escalate_after_critical / timedelta(minutes=1)),
        },
    )


@router.get("/followup.csv")
def followup_csv(
    request: Request,
    seen: ViewerDep,
    conn: ConnectionDep,
    months: Annotated[int, Query(ge=1, le=12)] = 3,
) -> Response:
    """The same metrics as CSV (one row per month and scope)."""
    rows, _ = _metrics(conn, request, seen, months, "web/doctor/followup.csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(row.as_csv() for row in rows)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="followup-{stamp}.csv"',
    }
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
