"""The ER board (issue 9): incoming ambulances, their pathway pre-alerts, live vitals.

- ``/er``: every open incident (soonest ETA first) and the recent handovers: pathway, the
  teams pre-alerted and whether they acknowledged, ETA, "last data N s ago".
- ``/er/incidents/{id}``: one incoming patient: timeline, ATMIST/SBAR, the activations with
  an *Acknowledge* button per team, latest values, trend charts (uPlot) that grow live from
  a server-sent event stream, and the FHIR handoff Bundle once handed over.

Data comes from the same functions as ``/api/v1/incidents``
(:mod:`ingest_service.api.routers.incidents`). Roles ``er`` and ``admin``. Every page and
fragment showing patient data appends an audit row in the same transaction as its queries;
the incident's vitals stream is audited once when it opens (it carries readings). The
board's stream carries only change stamps and the time of each incident's newest reading
(no values), like the doctor's panel stream, so it is not audited.

**Hospitals** (issue 10, migration 13): the same policy as the API, through the same
functions (:func:`ingest_service.api.access.hospital_scope`, :func:`~ingest_service.api.access.
may_see_hospital`, :func:`ingest_service.api.routers.incidents.incident_route`,
:func:`ingest_service.api.deps.may_read`). An ``er`` account of one hospital sees on the board
(and in its stream) only the incidents routed to that hospital; the incident page, its
fragments, its stream, the acknowledgement and the Bundle of an incident routed elsewhere (or
not routed yet) answer the 403 page and append a ``read_denied`` row (``write_denied`` for the
acknowledgement) with ``reason: other hospital``. An open vitals stream ends as soon as its
incident is routed to another hospital. An ``er`` account of no hospital, and ``admin``, see
every incident.

**Dead zone** ("last data N s ago"): the monitor sends every 15 s (``simulate_ambulance``;
real monitors 1-5 s) and the edge outbox holds readings while the ambulance has no coverage.
The indicator turns amber after :data:`STALE_AMBER_S` (two sends missed: a gap worth a
glance) and red after :data:`STALE_RED_S` (the ER is looking at numbers two minutes old and
should not trust them as current). The page ticks the age every second by itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from ingest_service.api.access import hospital_scope, may_see_hospital, visible_subjects
from ingest_service.api.db import Connection
from ingest_service.api.deps import ConnectionDep, may_read, record
from ingest_service.api.routers import incidents
from ingest_service.api.tokens import Principal, Role
from ingest_service.web.ecg import latest_for_incident
from ingest_service.web.i18n import CATALOGUE, Lang, translate
from ingest_service.web.render import (
    SECURITY_HEADERS,
    clinician_lang,
    clinician_page,
    display_unit,
    web_settings,
)
from ingest_service.web.session import (
    FormDep,
    PageError,
    PageRoute,
    Viewer,
    ViewerDep,
    check_csrf,
    field,
)
from vitals.models import IDENTIFIER_PATTERN

router = APIRouter(prefix="/er", route_class=PageRoute, include_in_schema=False)

ER_ROLES: frozenset[Role] = frozenset({"er", "admin"})

IncidentPath = Annotated[str, Path(pattern=IDENTIFIER_PATTERN)]

STALE_AMBER_S = 30
STALE_RED_S = 120
#: The streams end after this (the browser reconnects), so restarts are not held up.
MAX_STREAM = timedelta(minutes=10)
#: Most points per metric drawn (a 4-hour transport at one reading per 15 s is ~1000).
MAX_POINTS = 2000

#: The incident's charts: id, title, metrics drawn, unit shown.
CHARTS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("heart_rate", "Heart rate", ("heart_rate",), "/min"),
    ("spo2", "SpO2", ("spo2",), "%"),
    ("bp", "Blood pressure (NIBP)", ("bp_systolic", "bp_diastolic"), "mmHg"),
    ("respiratory_rate", "Respiratory rate", ("respiratory_rate",), "/min"),
    ("etco2", "EtCO2", ("etco2",), "mmHg"),
)
CHART_METRICS: tuple[str, ...] = tuple(m for _, _, metrics, _ in CHARTS for m in metrics)

#: How the board names things.
TEAM_NAMES: Mapping[str, str] = {
    "stroke_team": "Stroke team",
    "cath_lab": "Cath lab",
    "trauma_team": "Trauma team",
    "obstetric_team": "Obstetric team",
    "sepsis_team": "Sepsis team",
}
PATHWAY_NAMES: Mapping[str, str] = {
    "stroke": "Stroke",
    "stemi": "STEMI / chest pain",
    "trauma": "Trauma",
    "maternal": "Maternal",
    "sepsis": "Sepsis",
}
TIMELINE_STEPS: tuple[tuple[str, str], ...] = (
    ("call", "Call"),
    ("on_scene", "On scene"),
    ("depart", "Departed scene"),
    ("eta", "ETA"),
    ("arrival", "Arrived"),
    ("handover", "Handed over"),
)


def staleness(age_s: float | None) -> str:
    """The dead-zone class of a data age: ``fresh``, ``amber``, ``red`` or ``none``."""
    if age_s is None:
        return "none"
    if age_s >= STALE_RED_S:
        return "red"
    if age_s >= STALE_AMBER_S:
        return "amber"
    return "fresh"


def age_text(age_s: float | None, lang: Lang = "en") -> str:
    """'last data 12 s ago' in words a glance reads (seconds, then minutes, then hours)."""
    if age_s is None:
        return translate(lang, "er_no_data_yet")
    seconds = max(int(age_s), 0)
    if seconds < 120:
        return translate(lang, "er_last_data_s", n=seconds)
    if seconds < 7200:
        return translate(lang, "er_last_data_min", n=seconds // 60)
    return translate(lang, "er_last_data_h", n=seconds // 3600)


def _named(lang: Lang, prefix: str, code: str, english: Mapping[str, str]) -> str:
    """``code`` named from the catalogue (``prefix + code``), else the English table, else
    itself."""
    key = f"{prefix}{code}"
    return translate(lang, key) if key in CATALOGUE else english.get(code, code)


def team_name(team: str, lang: Lang = "en") -> str:
    """A team as the board names it."""
    return _named(lang, "er_team_", team, TEAM_NAMES)


def pathway_name(pathway: str | None, lang: Lang = "en") -> str:
    """A pathway as the board names it (an en dash when none)."""
    return _named(lang, "er_pathway_", pathway, PATHWAY_NAMES) if pathway else "\u2013"


def metric_label(metric: str, lang: Lang = "en") -> str:
    """A vital's name on the incident page ("heart rate")."""
    key = f"er_metric_{metric}"
    if lang == "en" or key not in CATALOGUE:
        return metric.replace("_", " ")
    return translate(lang, key)


def _er(conn: Connection, request: Request, seen: Viewer, resource: str) -> Principal:
    """The ER user, or a 403 page with an audited ``read_denied`` row."""
    who = seen.principal
    if who.role in ER_ROLES:
        return who
    with conn.transaction():
        record(conn, request, who, resource, {"reason": "role"}, action="read_denied")
    raise PageError(403, "wrong_role")


def _routed(
    conn: Connection,
    request: Request,
    who: Principal,
    incident: str,
    resource: str,
    action: str = "read_denied",
) -> incidents.Route:
    """The incident's route; a 404 page when there is no such incident, a 403 page (audited
    with ``action``) when it is routed to another hospital than the viewer's, or its patient is
    not the viewer's to read (the API's ``_routed`` and ``_readable_incident``)."""
    with conn.transaction():
        route = incidents.incident_route(conn, incident)
        readable = route is not None and may_read(conn, who, route.subject)
    if route is None:
        raise PageError(404, "not_found")
    if not may_see_hospital(who, route.hospital):
        reason = "other hospital"
    elif not readable:
        reason = "not permitted"
    else:
        return route
    incidents.audit_denial(conn, request, who, resource, route, reason=reason, action=action)
    raise PageError(403, "other_hospital" if reason == "other hospital" else "not_permitted")


def _common(now: datetime, lang: Lang = "en") -> dict[str, Any]:
    def age(moment: datetime | None) -> float | None:
        return None if moment is None else max((now - moment).total_seconds(), 0.0)

    return {
        "now": now,
        "age": age,
        "staleness": staleness,
        "age_text": lambda age_s: age_text(age_s, lang),
        "team_name": lambda team: team_name(team, lang),
        "pathway_name": lambda p: pathway_name(p, lang),
        "metric_label": lambda metric: metric_label(metric, lang),
        "amber_s": STALE_AMBER_S,
        "red_s": STALE_RED_S,
        "minutes_until": lambda moment: round((moment - now).total_seconds() / 60),
        "steps": tuple(
            (step, _named(lang, "er_step_", step, dict(TIMELINE_STEPS)))
            for step, _ in TIMELINE_STEPS
        ),
    }


# ------------------------------------------------------------------------------ the board


def _board_context(conn: Connection, request: Request, who: Principal) -> dict[str, Any]:
    now = datetime.now(UTC)
    hospital = hospital_scope(who)
    with conn.transaction():
        # As GET /api/v1/incidents: a hospital's ER gets its hospital's incidents.
        allowed = visible_subjects(who) if hospital is None else None
        found = incidents.list_incidents(conn, allowed, now, hospital=hospital)
        record(
            conn,
            request,
            who,
            "web/er/board",
            {
                "hospital": hospital,
                "incidents": [i.id for i in found],
                "subjects": sorted({i.subject for i in found}),
                "returned": len(found),
            },
        )
    return {**_common(now, clinician_lang(request)), "incidents": found}


@router.get("", response_class=HTMLResponse)
def board(
    request: Request,
    seen: ViewerDep,
    conn: ConnectionDep,
    live: Annotated[bool, Query(description="Live updates by SSE (off: reload by hand).")] = True,
) -> HTMLResponse:
    """Incoming ambulances, soonest first."""
    who = _er(conn, request, seen, "web/er/board")
    context = _board_context(conn, request, who)
    return clinician_page(request, "er_board.html", {**context, "live": live})


@router.get("/rows", response_class=HTMLResponse)
def board_rows(request: Request, seen: ViewerDep, conn: ConnectionDep) -> HTMLResponse:
    """The board's table body alone (what its live stream reloads)."""
    who = _er(conn, request, seen, "web/er/board")
    return clinician_page(request, "er_rows.html", _board_context(conn, request, who))


#: The incidents a board shows: all of them, or those routed to one hospital.
_ON_BOARD = "(%(hospital)s::text IS NULL OR i.hospital = %(hospital)s)"


def _board_stamp(
    pool: ConnectionPool[Connection], hospital: str | None
) -> tuple[str, dict[str, float]]:
    """(a stamp that changes with the board's incidents, activations, acknowledgements and
    handovers; each open incident's newest reading time, POSIX s), for the incidents routed
    to ``hospital`` (None: every incident)."""
    scope = {"hospital": hospital}
    with pool.connection() as conn, conn.transaction():
        row = conn.execute(
            f"SELECT (SELECT count(*) FROM incidents i WHERE {_ON_BOARD}),"  # noqa: S608
            f" (SELECT max(updated_at) FROM incidents i WHERE {_ON_BOARD}),"
            " (SELECT count(*) FROM pathway_activations a JOIN incidents i"
            f"  ON i.incident = a.incident WHERE {_ON_BOARD}),"
            " (SELECT count(n.acknowledged_at) FROM pathway_notifications n"
            "  JOIN pathway_activations a ON a.id = n.activation_id"
            f"  JOIN incidents i ON i.incident = a.incident WHERE {_ON_BOARD}),"
            " (SELECT count(*) FROM handoffs h JOIN incidents i ON i.incident = h.incident"
            f"  WHERE {_ON_BOARD})",
            scope,
        ).fetchone()
        last = conn.execute(
            "SELECT r.incident, max(r.time) FROM readings r JOIN incidents i"  # noqa: S608
            f" ON i.incident = r.incident WHERE i.handed_over_at IS NULL AND {_ON_BOARD}"
            " GROUP BY r.incident",
            scope,
        ).fetchall()
    return json.dumps([str(v) for v in row or ()]), {str(i): t.timestamp() for i, t in last}


def _stream_end(who: Principal) -> datetime:
    ends = datetime.now(UTC) + MAX_STREAM
    return min(ends, who.expires_at) if who.expires_at is not None else ends


@router.get("/events")
async def board_events(request: Request, seen: ViewerDep) -> StreamingResponse:
    """Server-sent events: ``incidents`` when the board's rows change, ``lastdata`` with each
    open incident's newest reading time (the page's dead-zone indicators)."""
    if seen.principal.role not in ER_ROLES:
        raise PageError(403, "wrong_role")
    settings = web_settings(request)
    pool: ConnectionPool[Connection] = request.app.state.pool
    ends = _stream_end(seen.principal)
    hospital = hospital_scope(seen.principal)

    async def stream() -> AsyncIterator[str]:
        stamp: str | None = None
        last: dict[str, float] | None = None
        yield "retry: 10000\n\n"
        while datetime.now(UTC) < ends and not await request.is_disconnected():
            now_stamp, now_last = await run_in_threadpool(_board_stamp, pool, hospital)
            if stamp is not None and now_stamp != stamp:
                yield f"event: incidents\ndata: {now_stamp}\n\n"
            if now_last != last:
                yield f"event: lastdata\ndata: {json.dumps(now_last)}\n\n"
            if now_stamp == stamp and now_last == last:
                yield ": keep-alive\n\n"
            stamp, last = now_stamp, now_last
            await asyncio.sleep(settings.web_sse_interval_s)

    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


# -------------------------------------------------------------------------- one incident


def _series_label(metric: str, lang: Lang) -> str:
    """A chart series' legend: the page's words, or what er.js showed before ("systolic")."""
    key = f"er_series_{metric.removeprefix('bp_')}"
    if key in CATALOGUE:
        return translate(lang, key)
    return metric.replace("bp_", "") if lang == "en" else metric_label(metric, lang)


def _series(
    conn: Connection, incident: str, since: datetime
) -> dict[str, list[tuple[datetime, float | None]]]:
    rows = conn.execute(
        "SELECT metric, time, value FROM ("
        " SELECT metric, time, value, row_number() OVER (PARTITION BY metric ORDER BY time DESC)"
        " AS n FROM readings WHERE incident = %s AND time >= %s AND metric = ANY(%s)"
        " AND value IS NOT NULL) newest WHERE n <= %s ORDER BY time",
        (incident, since, list(CHART_METRICS), MAX_POINTS),
    ).fetchall()
    out: dict[str, list[tuple[datetime, float | None]]] = {}
    for metric, time, value in rows:
        out.setdefault(str(metric), []).append((time, value))
    return out


def _aligned(
    series: Mapping[str, list[tuple[datetime, float | None]]], names: tuple[str, ...]
) -> list[list[float | None]]:
    times = sorted({t for name in names for t, _ in series.get(name, ())})
    index = {t: i for i, t in enumerate(times)}
    columns: list[list[float | None]] = [[t.timestamp() for t in times]]
    for name in names:
        ys: list[float | None] = [None] * len(times)
        for moment, value in series.get(name, ()):
            ys[index[moment]] = value
        columns.append(ys)
    return columns


def _incident_context(
    conn: Connection, request: Request, who: Principal, incident: str, resource: str
) -> dict[str, Any]:
    settings = web_settings(request)
    lang = clinician_lang(request)
    now = datetime.now(UTC)
    with conn.transaction():
        detail = incidents.incident_detail(conn, incident, now)
        if detail is None:
            raise PageError(404, "not_found")
        since = detail.opened_at - incidents.LOOKBACK
        series = _series(conn, incident, since)
        ecg = latest_for_incident(conn, incident, lang)
        record(
            conn,
            request,
            who,
            resource,
            {
                "subject": detail.subject,
                "incident": incident,
                "returned": {m: len(p) for m, p in series.items()},
            },
        )
    first = min((p[0][0] for p in series.values() if p), default=detail.opened_at)
    start = min(first, detail.opened_at)
    charts = []
    for chart_id, title, metrics, unit in CHARTS:
        values = [v for m in metrics for _, v in series.get(m, ()) if v is not None]
        charts.append(
            {
                "id": chart_id,
                "title": _named(lang, "er_chart_", chart_id, {chart_id: title}),
                "labels": [_series_label(m, lang) for m in metrics],
                "unit": unit,
                "metrics": list(metrics),
                "points": len(values),
                "min": min(values) if values else None,
                "max": max(values) if values else None,
                "data": _aligned(series, metrics),
            }
        )
    chart_config = {
        "zone": settings.web_timezone,
        "start": start.timestamp(),
        "now": now.timestamp(),
        "charts": [
            {k: c[k] for k in ("id", "title", "unit", "metrics", "labels", "data")} for c in charts
        ],
        "timeLabel": translate(lang, "legend_time"),
        "lastData": detail.last_data_at.timestamp() if detail.last_data_at else None,
        "amber": STALE_AMBER_S,
        "red": STALE_RED_S,
    }
    # The order an ER reads a monitor in (HR, SpO2, BP, RR, EtCO2), then the rest.
    order = {m: i for i, m in enumerate(CHART_METRICS)}
    latest = sorted(detail.latest, key=lambda v: (order.get(v.metric, len(order)), v.metric))
    return {
        **_common(now, lang),
        "incident": detail,
        "latest": latest,
        "charts": charts,
        "chart_config": chart_config,
        "unit": display_unit,
        "ecg": ecg,
    }


@router.get("/incidents/{incident}", response_class=HTMLResponse)
def incident_page(
    request: Request,
    seen: ViewerDep,
    conn: ConnectionDep,
    incident: IncidentPath,
    live: Annotated[bool, Query(description="Live vitals by SSE (off: reload by hand).")] = True,
) -> HTMLResponse:
    """One incoming patient: pre-alerts, timeline, handover notes, live vitals."""
    resource = f"web/er/incident/{incident}"
    who = _er(conn, request, seen, resource)
    _routed(conn, request, who, incident, resource)
    context = _incident_context(conn, request, who, incident, resource)
    return clinician_page(request, "er_incident.html", {**context, "live": live})


@router.get("/incidents/{incident}/activations", response_class=HTMLResponse)
def activations_fragment(
    request: Request, seen: ViewerDep, conn: ConnectionDep, incident: IncidentPath
) -> HTMLResponse:
    """The incident's pre-alerts and timeline alone (what the live stream reloads)."""
    resource = f"web/er/incident/{incident}"
    who = _er(conn, request, seen, resource)
    _routed(conn, request, who, incident, resource)
    now = datetime.now(UTC)
    with conn.transaction():
        detail = incidents.incident_detail(conn, incident, now)
        if detail is None:
            raise PageError(404, "not_found")
        record(
            conn,
            request,
            who,
            resource,
            {"subject": detail.subject, "incident": incident, "part": "activations"},
        )
    return clinician_page(
        request,
        "er_activations.html",
        {**_common(now, clinician_lang(request)), "incident": detail},
    )


def _incident_stamp(pool: ConnectionPool[Connection], incident: str) -> str:
    with pool.connection() as conn, conn.transaction():
        row = conn.execute(
            "SELECT (SELECT updated_at FROM incidents WHERE incident = %(i)s),"
            " (SELECT count(*) FROM pathway_activations WHERE incident = %(i)s),"
            " (SELECT count(n.acknowledged_at) FROM pathway_notifications n"
            "  JOIN pathway_activations a ON a.id = n.activation_id WHERE a.incident = %(i)s),"
            " (SELECT count(*) FROM handoffs WHERE incident = %(i)s)",
            {"i": incident},
        ).fetchone()
    return json.dumps([str(v) for v in row or ()])


def _still_routed(pool: ConnectionPool[Connection], who: Principal, incident: str) -> bool:
    """Whether ``incident`` is still the viewer's to watch (not routed away meanwhile)."""
    with pool.connection() as conn, conn.transaction():
        route = incidents.incident_route(conn, incident)
    return route is not None and may_see_hospital(who, route.hospital)


def _new_readings(
    pool: ConnectionPool[Connection], incident: str, after: datetime
) -> tuple[list[tuple[float, str, float | None, str | None]], datetime, datetime | None]:
    """Readings of ``incident`` stored after ``after`` (by ``received_at``): (points as
    (time, metric, value, no_value), the new cursor, the newest measurement time)."""
    with pool.connection() as conn, conn.transaction():
        rows = conn.execute(
            "SELECT time, metric, value, no_value, received_at FROM readings"
            " WHERE incident = %s AND received_at > %s AND metric NOT LIKE 'ecg\\_%%'"
            " ORDER BY received_at, time LIMIT 5000",
            (incident, after),
        ).fetchall()
        newest = conn.execute(
            "SELECT max(time) FROM readings WHERE incident = %s", (incident,)
        ).fetchone()
    cursor = max((r[4] for r in rows), default=after)
    points = [(r[0].timestamp(), str(r[1]), r[2], r[3]) for r in rows]
    return points, cursor, newest[0] if newest else None


@router.get("/incidents/{incident}/events")
async def incident_events(
    request: Request, seen: ViewerDep, conn: ConnectionDep, incident: IncidentPath
) -> StreamingResponse:
    """Server-sent events of one incident: ``vitals`` (new readings, as they are stored) and
    ``incident`` (pre-alerts, acknowledgements, timeline or handover changed).

    The stream carries readings, so opening it appends one audit row (``stream``); it ends
    when the incident is routed to another hospital than the viewer's."""
    resource = f"web/er/incident/{incident}"
    who = _er(conn, request, seen, resource)
    subject = _routed(conn, request, who, incident, resource).subject
    with conn.transaction():
        row = conn.execute(
            "SELECT coalesce(max(received_at), now()) FROM readings WHERE incident = %s",
            (incident,),
        ).fetchone()
        record(
            conn,
            request,
            who,
            resource,
            {"subject": subject, "incident": incident, "part": "stream"},
        )
    start_after: datetime = row[0] if row else datetime.now(UTC)
    settings = web_settings(request)
    pool: ConnectionPool[Connection] = request.app.state.pool
    ends = _stream_end(who)

    async def stream() -> AsyncIterator[str]:
        after = start_after
        stamp: str | None = None
        yield "retry: 10000\n\n"
        while datetime.now(UTC) < ends and not await request.is_disconnected():
            if not await run_in_threadpool(_still_routed, pool, who, incident):
                return  # diverted: reconnecting gets the 403
            points, after, newest = await run_in_threadpool(_new_readings, pool, incident, after)
            now_stamp = await run_in_threadpool(_incident_stamp, pool, incident)
            sent = False
            if points:
                data = {
                    "points": points,
                    "lastData": newest.timestamp() if newest else None,
                    "now": datetime.now(UTC).timestamp(),
                }
                yield f"event: vitals\ndata: {json.dumps(data)}\n\n"
                sent = True
            if stamp is not None and now_stamp != stamp:
                yield f"event: incident\ndata: {now_stamp}\n\n"
                sent = True
            if not sent:
                yield ": keep-alive\n\n"
            stamp = now_stamp
            await asyncio.sleep(settings.web_sse_interval_s)

    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.post("/incidents/{incident}/activations/{activation_id}/ack")
def acknowledge(
    request: Request,
    seen: ViewerDep,
    conn: ConnectionDep,
    form: FormDep,
    incident: IncidentPath,
    activation_id: Annotated[int, Path(ge=1, le=2**62)],
) -> Response:
    """The team acknowledges the pre-alert; htmx gets the new activation card."""
    resource = f"incident/{incident}/activation/{activation_id}"
    who = seen.principal
    if who.role not in ER_ROLES:
        with conn.transaction():
            record(conn, request, who, resource, {"reason": "role"}, action="write_denied")
        raise PageError(403, "wrong_role")
    check_csrf(request, seen, form)
    _routed(conn, request, who, incident, resource, "write_denied")
    note = field(form, "note")
    if len(note) > incidents.MAX_NOTE:
        raise PageError(422, "invalid_input")
    now = datetime.now(UTC)
    try:
        with conn.transaction():
            done = incidents.acknowledge(conn, incident, activation_id, who.actor, now)
            if done is not None and done.changed:
                record(
                    conn,
                    request,
                    who,
                    resource,
                    incidents.ack_detail(done, incident, note, "web"),
                    action="activation_acknowledged",
                )
    except incidents.NothingToAcknowledgeError:
        raise PageError(409, "conflict") from None
    if done is None:
        raise PageError(404, "not_found")
    if request.headers.get("hx-request") != "true":
        return RedirectResponse(f"/er/incidents/{incident}", status_code=303)
    lang = clinician_lang(request)
    team = team_name(done.activation.team, lang)
    message = translate(lang, "er_ack_done" if done.changed else "er_ack_no_change", team=team)
    response = clinician_page(
        request,
        "er_activation.html",
        {**_common(now, lang), "incident_id": incident, "activation": done.activation},
    )
    response.headers["HX-Trigger"] = json.dumps({"vs-status": message})
    return response


@router.get("/incidents/{incident}/bundle.json")
def bundle(
    request: Request, seen: ViewerDep, conn: ConnectionDep, incident: IncidentPath
) -> Response:
    """The FHIR R4 document Bundle of the handover (404 before it)."""
    resource = f"web/er/incident/{incident}/bundle"
    who = _er(conn, request, seen, resource)
    subject = _routed(conn, request, who, incident, resource).subject
    with conn.transaction():
        text = incidents.handoff_bundle(conn, incident)
        if text is not None:
            record(conn, request, who, resource, {"subject": subject, "incident": incident})
    if text is None:
        raise PageError(404, "not_found")
    return Response(text, media_type="application/fhir+json", headers=dict(SECURITY_HEADERS))
