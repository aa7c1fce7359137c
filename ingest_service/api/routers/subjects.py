"""``/api/v1/subjects``: who has readings, range queries with downsampling, latest values.

Every answer is patient data, so every request appends an audit row in the same transaction
as the query: if the row cannot be written, nothing is returned.

The SQL relies on the index ``readings (subject, metric, time DESC)`` that both storage paths
have: distinct subjects and metrics are found by "skip scans" (recursive CTEs that jump from
one key to the next in the index) instead of scanning every reading of a subject.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from psycopg import sql

from ingest_service.api.access import PATIENT_DATA_ROLES
from ingest_service.api.db import Connection
from ingest_service.api.deps import (
    ConnectionDep,
    PrincipalDep,
    SettingsDep,
    readable_subjects,
    record,
    require_role,
    require_subject,
    scoped,
)
from ingest_service.api.models import (
    Latest,
    LatestValue,
    Point,
    Readings,
    SubjectList,
    SubjectSummary,
)
from ingest_service.api.resolution import (
    ROLLUP_TABLES,
    WIDTHS,
    RequestedResolution,
    Resolution,
    choose_resolution,
)
from vitals.models import IDENTIFIER_PATTERN

router = APIRouter(prefix="/subjects", tags=["subjects"])

SubjectPath = Annotated[
    str, Path(pattern=IDENTIFIER_PATTERN, description="The subject's pseudonym.")
]

_SUBJECT_PAGE = sql.SQL("""
WITH RECURSIVE s AS (
    (SELECT subject FROM readings WHERE subject > %(after)s {allowed}
     ORDER BY subject LIMIT 1)
    UNION ALL
    SELECT (SELECT r.subject FROM readings r WHERE r.subject > s.subject {allowed_r}
            ORDER BY r.subject LIMIT 1)
    FROM s WHERE s.subject IS NOT NULL
)
SELECT subject FROM s WHERE subject IS NOT NULL LIMIT %(limit)s
""")

_SUBJECT_METRICS = sql.SQL("""
WITH RECURSIVE pairs AS (
    (SELECT subject, metric FROM readings WHERE subject = ANY(%(page)s)
     ORDER BY subject, metric LIMIT 1)
    UNION ALL
    SELECT nxt.subject, nxt.metric FROM pairs CROSS JOIN LATERAL (
        SELECT r.subject, r.metric FROM readings r
        WHERE r.subject = ANY(%(page)s) AND (r.subject, r.metric) > (pairs.subject, pairs.metric)
        ORDER BY r.subject, r.metric LIMIT 1) nxt
)
SELECT p.subject, p.metric, newest.time FROM pairs p CROSS JOIN LATERAL (
    SELECT r.time FROM readings r WHERE r.subject = p.subject AND r.metric = p.metric
    ORDER BY r.time DESC LIMIT 1) newest
ORDER BY p.subject, p.metric
""")

_LATEST = sql.SQL("""
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
""")


@router.get(
    "", response_model=SubjectList, summary="Subjects that have readings", **scoped("readings:read")
)
def list_subjects(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    after: Annotated[
        str, Query(max_length=128, description="Page on: subjects after this one.")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SubjectList:
    """Subjects with at least one reading, each with its metrics and newest reading time.

    A patient sees only themself; a doctor with contracted subjects only those; an ER
    account of one hospital the subjects of the incidents routed there.
    """
    require_role(conn, request, who, PATIENT_DATA_ROLES, "subjects")
    with conn.transaction():
        allowed = readable_subjects(conn, who)
        params: dict[str, Any] = {"after": after, "limit": limit + 1, "allowed": allowed}
        if allowed is None:
            query = _SUBJECT_PAGE.format(allowed=sql.SQL(""), allowed_r=sql.SQL(""))
        else:
            query = _SUBJECT_PAGE.format(
                allowed=sql.SQL("AND subject = ANY(%(allowed)s)"),
                allowed_r=sql.SQL("AND r.subject = ANY(%(allowed)s)"),
            )
            params["allowed"] = list(allowed)
        page = [str(row[0]) for row in conn.execute(query, params).fetchall()]
        more = len(page) > limit
        page = page[:limit]
        summaries: dict[str, tuple[list[str], datetime]] = {}
        if page:
            for subject, metric, newest in conn.execute(
                _SUBJECT_METRICS, {"page": page}
            ).fetchall():
                metrics, last = summaries.get(subject, ([], newest))
                metrics.append(metric)
                summaries[subject] = (metrics, max(last, newest))
        record(
            conn,
            request,
            who,
            "subjects",
            {"query": {"after": after, "limit": limit}, "returned": len(page)},
        )
    return SubjectList(
        subjects=[
            SubjectSummary(subject=s, metrics=summaries[s][0], last_reading_at=summaries[s][1])
            for s in page
            if s in summaries
        ],
        next_after=page[-1] if more else None,
    )


#: Times outside this window are refused (422): they cannot be readings, and arithmetic on
#: them (start - 1 h) would overflow Python's datetime near year 1 and 9999.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.utcoffset() is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"{name} needs a UTC offset (e.g. 2026-11-25T08:00:00Z)",
        )
    if not EARLIEST <= value < LATEST:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"{name} must be between {EARLIEST.year} and {LATEST.year}",
        )
    return value


def _filters(subject: str, metric: str | None) -> tuple[sql.Composable, dict[str, Any]]:
    clause: sql.Composable = sql.SQL("subject = %(subject)s")
    params: dict[str, Any] = {"subject": subject}
    if metric is not None:
        clause = sql.SQL("{} AND metric = %(metric)s").format(clause)
        params["metric"] = metric
    return clause, params


def _raw_count(conn: Connection, where: sql.Composable, params: dict[str, Any], cap: int) -> int:
    query = sql.SQL(
        "SELECT count(*) FROM (SELECT 1 FROM readings WHERE {} AND time >= %(start)s"
        " AND time < %(end)s LIMIT %(cap)s) capped"
    ).format(where)
    row = conn.execute(query, {**params, "cap": cap}).fetchone()
    return int(row[0]) if row else 0


def _series(conn: Connection, subject: str, start: datetime, end: datetime) -> int:
    """How many metrics the subject has in the range (from the small hourly rollup)."""
    row = conn.execute(
        "SELECT count(DISTINCT metric) FROM readings_1h WHERE subject = %s"
        " AND bucket > %s AND bucket < %s",
        (subject, start - WIDTHS["1h"], end),
    ).fetchone()
    return int(row[0]) if row else 1


def _raw_points(conn: Connection, where: sql.Composable, params: dict[str, Any]) -> list[Point]:
    query = sql.SQL(
        "SELECT time, metric, value, unit, no_value, quality FROM readings WHERE {}"
        " AND time >= %(start)s AND time < %(end)s ORDER BY time, metric LIMIT %(limit)s"
    ).format(where)
    return [
        Point(time=t, metric=m, value=v, unit=u, no_value=nv, quality=list(q))
        for t, m, v, u, nv, q in conn.execute(query, params).fetchall()
    ]


def _rollup_points(
    conn: Connection, where: sql.Composable, params: dict[str, Any], resolution: Resolution
) -> list[Point]:
    # Buckets that overlap [start, end): one starting up to a width before `start` counts.
    query = sql.SQL(
        "SELECT bucket, metric, sum / NULLIF(n, 0), min, max, n FROM {table} WHERE {where}"
        " AND bucket > %(start)s - %(width)s AND bucket < %(end)s"
        " ORDER BY bucket, metric LIMIT %(limit)s"
    ).format(table=sql.Identifier(ROLLUP_TABLES[resolution]), where=where)
    rows = conn.execute(query, {**params, "width": WIDTHS[resolution]}).fetchall()
    return [
        Point(time=b, metric=m, value=mean, min=lo, max=hi, n=int(n))
        for b, m, mean, lo, hi, n in rows
    ]


@router.get(
    "/{subject}/readings",
    response_model=Readings,
    summary="Readings of a subject in a range",
    **scoped("readings:read"),
)
def readings(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    settings: SettingsDep,
    subject: SubjectPath,
    metric: Annotated[
        str | None,
        Query(pattern=IDENTIFIER_PATTERN, description="One metric (default: all metrics)."),
    ] = None,
    start: Annotated[
        datetime | None, Query(description="Inclusive; default end - 24 h. ISO 8601 with offset.")
    ] = None,
    end: Annotated[datetime | None, Query(description="Exclusive; default now.")] = None,
    resolution: Annotated[
        RequestedResolution,
        Query(description="raw, 5min or 1h; auto keeps the answer under ~2000 points."),
    ] = "auto",
    limit: Annotated[int, Query(ge=1, le=100_000, description="Hard cap on points.")] = 10_000,
) -> Readings:
    """Raw readings, or 5-min / 1-h rollups (mean, min, max, n per bucket)."""
    end = _aware(end, "end") or datetime.now(UTC)
    start = _aware(start, "start") or end - timedelta(hours=24)
    if start >= end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="start must be < end")
    resource = f"subject/{subject}/readings"
    require_subject(conn, request, who, subject, resource)
    where, params = _filters(subject, metric)
    params.update(start=start, end=end, limit=limit + 1)
    with conn.transaction():
        chosen: Resolution
        if resolution == "auto":
            cap = settings.api_max_points
            raw_points = _raw_count(conn, where, params, cap + 1)
            series = 1 if metric is not None else _series(conn, subject, start, end)
            chosen = choose_resolution(raw_points, end - start, series, cap)
        else:
            chosen = resolution
        if chosen == "raw":
            points = _raw_points(conn, where, params)
        else:
            points = _rollup_points(conn, where, params, chosen)
        truncated = len(points) > limit
        points = points[:limit]
        record(
            conn,
            request,
            who,
            resource,
            {
                "subject": subject,
                "query": {
                    "metric": metric,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "resolution": resolution,
                    "limit": limit,
                },
                "resolution": chosen,
                "returned": len(points),
            },
        )
    return Readings(
        subject=subject,
        metric=metric,
        start=start,
        end=end,
        resolution=chosen,
        points=points,
        truncated=truncated,
    )


@router.get(
    "/{subject}/latest",
    response_model=Latest,
    summary="Newest reading per metric",
    **scoped("readings:read"),
)
def latest(
    request: Request, who: PrincipalDep, conn: ConnectionDep, subject: SubjectPath
) -> Latest:
    """The newest reading of each metric of the subject (a no-value reading included)."""
    resource = f"subject/{subject}/latest"
    require_subject(conn, request, who, subject, resource)
    with conn.transaction():
        rows = conn.execute(_LATEST, {"subject": subject}).fetchall()
        record(conn, request, who, resource, {"subject": subject, "returned": len(rows)})
    return Latest(
        subject=subject,
        latest=[
            LatestValue(metric=m, time=t, value=v, unit=u, no_value=nv, device=d)
            for m, t, v, u, nv, d in rows
        ],
    )
