"""The patient's self-view (``/me``) and the export of their own data (``/me/export.csv``).

Only a ``patient`` token reaches these pages, and only the token's own ``subject`` is ever
queried (no subject in the URL to tamper with). Plain language, large type, Chinese and
English (:mod:`ingest_service.web.i18n`). Both pages are audited.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from psycopg_pool import ConnectionPool

from ingest_service.api.db import Connection
from ingest_service.api.deps import ConnectionDep, record
from ingest_service.api.tokens import Principal
from ingest_service.web import queries, trends
from ingest_service.web.attention import ago
from ingest_service.web.i18n import CATALOGUE, Lang, choose_lang
from ingest_service.web.render import SECURITY_HEADERS, display_unit, page
from ingest_service.web.session import (
    LANG_COOKIE,
    PATIENT_ROLES,
    PageError,
    PageRoute,
    Viewer,
    ViewerDep,
)

router = APIRouter(prefix="/me", route_class=PageRoute, include_in_schema=False)

#: The order the self-view lists metrics in; others follow alphabetically.
ORDER = ("bp", "glucose", "spo2", "heart_rate", "pulse_rate", "weight", "body_temperature")
EXPORT_COLUMNS = ("time", "metric", "value", "unit", "no_value", "device", "source", "quality")


@dataclass(frozen=True)
class PlainReading:
    """One line of the self-view: 'Blood pressure 128/82 mmHg, in the usual range'."""

    key: str
    label_key: str | None
    metric: str
    value: str
    unit: str
    band: str
    time: datetime


def lang_of(request: Request, query: str | None) -> Lang:
    """The page language (query, cookie, browser)."""
    return choose_lang(
        query, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
    )


def _patient(conn: Connection, request: Request, seen: Viewer, resource: str) -> Principal:
    who = seen.principal
    if who.role in PATIENT_ROLES and who.subject is not None:
        return who
    with conn.transaction():
        record(conn, request, who, resource, {"reason": "role"}, action="read_denied")
    raise PageError(403, "wrong_role")


def plain_readings(latest: list[queries.LatestRow]) -> list[PlainReading]:
    """The newest readings in the self-view's words: one BP line, one line per other metric."""
    by_metric = {row.metric: row for row in latest}
    lines: list[PlainReading] = []
    systolic, diastolic = by_metric.get("bp_systolic"), by_metric.get("bp_diastolic")
    if systolic is not None and diastolic is not None:
        worst = max(
            (
                trends.band("bp_systolic", systolic.value),
                trends.band("bp_diastolic", diastolic.value),
            ),
            key=("band_none", "band_ok", "band_low", "band_high").index,
        )
        lines.append(
            PlainReading(
                key="bp",
                label_key="metric_bp",
                metric="bp",
                value=f"{_fmt(systolic.value)}/{_fmt(diastolic.value)}",
                unit="mmHg",
                band=worst,
                time=max(systolic.time, diastolic.time),
            )
        )
    for row in latest:
        if row.metric.startswith(("bp_", "ecg_", "rr_interval")):
            continue
        label = f"metric_{row.metric}"
        lines.append(
            PlainReading(
                key=row.metric,
                label_key=label if label in CATALOGUE else None,
                metric=row.metric,
                value=_fmt(row.value, 1 if row.metric in ("glucose", "weight") else 0),
                unit=display_unit(row.unit),
                band="no_value" if row.value is None else trends.band(row.metric, row.value),
                time=row.time,
            )
        )
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(lines, key=lambda r: (rank.get(r.key, len(ORDER)), r.key))


def _fmt(value: float | None, digits: int = 0) -> str:
    return "\u2013" if value is None else f"{value:.{digits}f}"


@router.get("", response_class=HTMLResponse)
def me(
    request: Request,
    seen: ViewerDep,
    conn: ConnectionDep,
    lang: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    """My latest readings and alerts in plain language."""
    chosen = lang_of(request, lang)
    who = _patient(conn, request, seen, "web/me")
    subject = who.subject
    assert subject is not None
    now = datetime.now(UTC)
    with conn.transaction():
        latest = queries.latest(conn, subject)
        alerts = queries.alerts(conn, (subject,), subject=subject, open_only=False, limit=10)
        record(
            conn,
            request,
            who,
            "web/me",
            {"subject": subject, "returned": {"latest": len(latest), "alerts": len(alerts)}},
        )
    context: dict[str, Any] = {
        "readings": plain_readings(latest),
        "alerts": alerts,
        "open_alerts": [a for a in alerts if a.is_open],
        "ago": lambda then: ago(now, then),
    }
    response = page(request, "me.html", context, lang=chosen)
    if lang is not None:
        response.set_cookie(
            LANG_COOKIE, chosen, max_age=365 * 86400, samesite="strict", httponly=True
        )
    return response


def _export_rows(pool: ConnectionPool[Connection], subject: str) -> Iterator[str]:
    """The CSV text, streamed from a server-side cursor (constant memory for years of data)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    yield buffer.getvalue()
    with pool.connection() as conn, conn.transaction():
        cursor = conn.cursor(name="me_export")
        cursor.itersize = 2000
        cursor.execute(
            "SELECT time, metric, value, unit, no_value, device, source, quality"
            " FROM readings WHERE subject = %s ORDER BY time, metric",
            (subject,),
        )
        for time, metric, value, unit, no_value, device, source, quality in cursor:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(
                (
                    time.astimezone(UTC).isoformat(),
                    metric,
                    "" if value is None else repr(float(value)),
                    unit,
                    no_value or "",
                    device,
                    source,
                    ";".join(quality or ()),
                )
            )
            yield buffer.getvalue()
        cursor.close()


@router.get("/export.csv")
def export(request: Request, seen: ViewerDep) -> StreamingResponse:
    """All my readings as CSV (UTC times, canonical units); the export itself is audited.

    The audit row commits before the first byte; the rows then stream on a connection of
    their own (not a request-scoped one, which could be held until the stream ends).
    """
    pool: ConnectionPool[Connection] = request.app.state.pool
    with pool.connection() as conn:
        who = _patient(conn, request, seen, "web/me/export")
        subject = who.subject
        assert subject is not None
        with conn.transaction():
            record(conn, request, who, "web/me/export", {"subject": subject, "format": "csv"})
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="vitalstream-{stamp}.csv"',
    }
    return StreamingResponse(
        _export_rows(pool, subject), media_type="text/csv; charset=utf-8", headers=headers
    )
