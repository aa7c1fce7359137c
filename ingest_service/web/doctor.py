"""The doctor's pages: the panel, the alert inbox (acknowledge / resolve), a patient's trends
and rule settings, and the panel's live stream (SSE).

Every page that shows patient data appends an audit row with the API's helper
(``ingest_service.api.deps.record``) in the same transaction as its queries; a refused
subject appends a ``read_denied`` row that stays. Writes are audited by their own modules.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from ingest_service.api.db import Connection
from ingest_service.api.deps import ConnectionDep, may_read, readable_subjects, record
from ingest_service.api.tokens import Principal
from ingest_service.web import alert_actions, ecg, queries, rule_settings, trends
from ingest_service.web.attention import SEVERITY_RANK, ago, rank_patients
from ingest_service.web.i18n import Lang, translate
from ingest_service.web.render import (
    SECURITY_HEADERS,
    clinician_lang,
    clinician_page,
    web_settings,
)
from ingest_service.web.session import (
    DOCTOR_ROLES,
    FormDep,
    PageError,
    PageRoute,
    Viewer,
    ViewerDep,
    check_csrf,
    field,
)
from vitals.models import IDENTIFIER_PATTERN

router = APIRouter(prefix="/doctor", route_class=PageRoute, include_in_schema=False)

SubjectPath = Annotated[str, Path(pattern=IDENTIFIER_PATTERN)]

#: The live stream ends after this (the browser reconnects), so restarts are not held up.
MAX_STREAM = timedelta(minutes=10)

#: Ranges the per-patient page offers (days).
RANGES: tuple[int, ...] = (1, 7, 30, 90)

#: The per-patient charts: id, title (catalogue key), metrics drawn, unit.
CHARTS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("bp", "chart_bp", ("bp_systolic", "bp_diastolic"), "mmHg"),
    ("glucose", "chart_glucose", ("glucose",), "mmol/L"),
    ("weight", "chart_weight", ("weight",), "kg"),
    ("spo2", "chart_spo2", ("spo2",), "%"),
    ("heart_rate", "chart_heart_rate", ("heart_rate",), "/min"),
)


def _lang(request: Request) -> Lang:
    """The page language as the patient pages choose it (``?lang=``, cookie, browser); the
    fallback stays English, the clinician pages' language before the catalogue covered them."""
    return clinician_lang(request)


def _page(
    request: Request, template: str, context: Mapping[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """:func:`page` in the viewer's language; a ``?lang=`` choice is remembered in a cookie."""
    return clinician_page(request, template, context, status_code=status_code)


def _doctor(conn: Connection, request: Request, seen: Viewer, resource: str) -> Principal:
    """The doctor, or a 403 page with an audited ``read_denied`` row for any other role."""
    who = seen.principal
    if who.role in DOCTOR_ROLES:
        return who
    with conn.transaction():
        record(conn, request, who, resource, {"reason": "role"}, action="read_denied")
    raise PageError(403, "wrong_role")


def _subject(
    conn: Connection, request: Request, who: Principal, subject: str, resource: str
) -> None:
    """403 page (and an audited denial) unless the doctor may read ``subject`` (the API's
    :func:`ingest_service.api.deps.may_read`)."""
    with conn.transaction():
        allowed = may_read(conn, who, subject)
    if allowed:
        return
    with conn.transaction():
        record(
            conn,
            request,
            who,
            resource,
            {"subject": subject, "reason": "not permitted"},
            action="read_denied",
        )
    raise PageError(403, "not_permitted")


# ----------------------------------------------------------------------------- the panel


def _panel_context(conn: Connection, request: Request, who: Principal) -> dict[str, Any]:
    settings = web_settings(request)
    now = datetime.now(UTC)
    with conn.transaction():
        statuses = queries.panel(conn, readable_subjects(conn, who))
        ranked = rank_patients(statuses, now, timedelta(hours=settings.web_silent_after_h))
        record(
            conn,
            request,
            who,
            "web/doctor/panel",
            {"subjects": [r.status.subject for r in ranked], "returned": len(ranked)},
        )
    return {
        "rows": ranked,
        "now": now,
        "ago": lambda then: ago(now, then),
        "severities": sorted(SEVERITY_RANK, key=SEVERITY_RANK.__getitem__, reverse=True),
        "silent_after_h": settings.web_silent_after_h,
    }


@router.get("", response_class=HTMLResponse)
def panel(
    request: Request,
    seen: ViewerDep,
    conn: ConnectionDep,
    live: Annotated[bool, Query(description="Live updates by SSE (off: reload by hand).")] = True,
) -> HTMLResponse:
    """My patients, most in need of attention first."""
    who = _doctor(conn, request, seen, "web/doctor/panel")
    context = _panel_context(conn, request, who)
    return _page(request, "doctor_panel.html", {**context, "live": live})


@router.get("/panel-rows", response_class=HTMLResponse)
def panel_rows(request: Request, seen: ViewerDep, conn: ConnectionDep) -> HTMLResponse:
    """The panel's table body alone (what the live stream reloads)."""
    who = _doctor(conn, request, seen, "web/doctor/panel")
    return _page(request, "_panel_rows.html", _panel_context(conn, request, who))


def _alert_stamp(pool: ConnectionPool[Connection], who: Principal) -> str:
    with pool.connection() as conn, conn.transaction():
        allowed: Sequence[str] | None = readable_subjects(conn, who)
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE state = 'active'),"
            " count(*) FILTER (WHERE state = 'acknowledged'), coalesce(max(id), 0),"
            " max(last_seen_at) FROM alerts"
            " WHERE state IN ('active', 'acknowledged')"
            " AND (%(all)s OR subject = ANY(%(allowed)s))",
            {"all": allowed is None, "allowed": list(allowed or ())},
        ).fetchone()
    return json.dumps([str(v) for v in row or ()])


@router.get("/events")
async def events(request: Request, seen: ViewerDep) -> StreamingResponse:
    """Server-sent events: ``alerts`` whenever the open alerts of my patients change.

    Carries no patient data (a change stamp only), so it is not audited; the panel rows the
    page then fetches are. The stream ends when the token expires (the browser reconnects
    and gets a 401) and after ``MAX_STREAM`` so servers can restart cleanly.
    """
    who = seen.principal
    if who.role not in DOCTOR_ROLES:
        raise PageError(403, "wrong_role")
    settings = web_settings(request)
    pool: ConnectionPool[Connection] = request.app.state.pool
    stream_ends = datetime.now(UTC) + MAX_STREAM
    if who.expires_at is not None:
        stream_ends = min(stream_ends, who.expires_at)

    async def stream() -> AsyncIterator[str]:
        last: str | None = None
        yield "retry: 10000\n\n"
        while datetime.now(UTC) < stream_ends and not await request.is_disconnected():
            stamp = await run_in_threadpool(_alert_stamp, pool, who)
            if stamp != last:
                if last is not None:
                    yield f"event: alerts\ndata: {stamp}\n\n"
                last = stamp
            else:
                yield ": keep-alive\n\n"
            await asyncio.sleep(settings.web_sse_interval_s)

    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


# ------------------------------------------------------------------------------ the inbox


@router.get("/alerts", response_class=HTMLResponse)
def inbox(
    request: Request,
    seen: ViewerDep,
    conn: ConnectionDep,
    show: Annotated[str, Query(pattern="^(open|all)$")] = "open",
) -> HTMLResponse:
    """Open alerts of my patients (unacknowledged first, by severity, newest first)."""
    who = _doctor(conn, request, seen, "web/doctor/alerts")
    with conn.transaction():
        rows = queries.alerts(conn, readable_subjects(conn, who), open_only=show == "open")
        record(
            conn,
            request,
            who,
            "web/doctor/alerts",
            {
                "query": {"show": show},
                "subjects": sorted({a.subject for a in rows}),
                "returned": len(rows),
            },
        )
    return _page(request, "doctor_alerts.html", {"alerts": rows, "show": show})


def _back_to(form: Mapping[str, list[str]]) -> str:
    """Where a plain (non-htmx) form post returns: one of our doctor pages, never elsewhere."""
    target = field(form, "next")
    if target.startswith("/doctor") and not target.startswith("//") and "\\" not in target:
        return target
    return "/doctor/alerts"


#: Choices the inbox offers: snooze minutes (lifecycle maximum 4 h), shelf hours (7 days).
SNOOZE_MINUTES: tuple[int, ...] = (15, 30, 60, 120, 240)
SHELVE_HOURS: tuple[int, ...] = (8, 24, 72, 168)
#: Catalogue keys of the problem an action's 422 row shows.
_PROBLEMS: Mapping[str, str] = {
    "resolve": "problem_resolve",
    "shelve": "problem_shelve",
    "snooze": "problem_snooze",
}


def _expiry(form: Mapping[str, list[str]], name: str, choices: tuple[int, ...]) -> int | None:
    value = field(form, name)
    return int(value) if value.isdigit() and int(value) in choices else None


def _act(
    request: Request,
    seen: Viewer,
    conn: Connection,
    form: Mapping[str, list[str]],
    alert_id: int,
    action: alert_actions.Action,
) -> Response:
    who = _doctor(conn, request, seen, f"alert/{alert_id}")
    check_csrf(request, seen, form)
    note = field(form, "note")
    htmx = request.headers.get("hx-request") == "true"
    now = datetime.now(UTC)
    until: datetime | None = None
    if action == "snooze" and (minutes := _expiry(form, "minutes", SNOOZE_MINUTES)):
        until = now + timedelta(minutes=minutes)
    elif action == "shelve" and (hours := _expiry(form, "hours", SHELVE_HOURS)):
        until = now + timedelta(hours=hours)
    try:
        outcome = alert_actions.apply(conn, request, who, alert_id, action, note, now, until)
    except PageError as error:
        if not (htmx and error.status == 422):
            raise
        with conn.transaction():
            current = queries.alert_by_id(conn, alert_id)
        if current is None:
            raise PageError(404, "not_found") from None
        problem = translate(_lang(request), _PROBLEMS.get(action, "invalid_input"))
        return _page(
            request,
            "_alert_row.html",
            {"alert": current, "problem": problem},
            status_code=422,
        )
    if not htmx:
        return RedirectResponse(_back_to(form), status_code=303)
    key = f"status_done_{action}" if outcome.changed else "status_no_change"
    message = translate(_lang(request), key, id=alert_id)
    response = _page(request, "_alert_row.html", {"alert": outcome.alert, "problem": None})
    # htmx raises this event; app.js puts the text in the page's live status region.
    response.headers["HX-Trigger"] = json.dumps({"vs-status": message})
    return response


@router.post("/alerts/{alert_id}/{action}")
def act(
    request: Request,
    seen: ViewerDep,
    conn: ConnectionDep,
    form: FormDep,
    alert_id: Annotated[int, Path(ge=1, le=2**62)],
    action: alert_actions.Action,
) -> Response:
    """One lifecycle action on one alert; answers the new table row for htmx.

    ``acknowledge`` (note optional), ``resolve`` (a note is required), ``snooze`` for
    ``minutes`` (one of :data:`SNOOZE_MINUTES`), ``shelve`` for ``hours`` (one of
    :data:`SHELVE_HOURS`; a reason is required), ``escalate`` to the next contact now.
    """
    return _act(request, seen, conn, form, alert_id, action)


# ------------------------------------------------------------------ the per-patient page


def _subject_context(
    conn: Connection,
    request: Request,
    who: Principal,
    subject: str,
    days: int,
    resource: str,
) -> dict[str, Any]:
    settings = web_settings(request)
    now = datetime.now(UTC)
    start = now - timedelta(days=days)
    with conn.transaction():
        latest = queries.latest(conn, subject)
        stored = queries.rule_settings(conn, subject)
        view = rule_settings.describe(stored)
        targets = trends.bp_targets(stored.parameters if stored is not None else {})
        since = now - trends.HOME_BP_WINDOW
        home = trends.home_bp(
            queries.raw_values(conn, subject, "bp_systolic", since, now),
            queries.raw_values(conn, subject, "bp_diastolic", since, now),
            targets,
            settings.zone,
        )
        resolutions: dict[str, str] = {}
        charts: list[dict[str, Any]] = []
        for chart_id, title, metrics, unit in CHARTS:
            found = {
                m: queries.series(conn, subject, m, start, now, settings.web_chart_points)
                for m in metrics
            }
            resolutions.update({m: s.resolution for m, s in found.items()})
            points = sum(len(s.points) for s in found.values())
            values = [v for s in found.values() for _, v in s.points if v is not None]
            charts.append(
                {
                    "id": chart_id,
                    "title": translate(_lang(request), title),
                    "unit": unit,
                    "metrics": list(metrics),
                    "resolution": ", ".join(sorted({s.resolution for s in found.values()})),
                    "points": points,
                    "min": min(values) if values else None,
                    "max": max(values) if values else None,
                    "data": trends.aligned({m: s.points for m, s in found.items()}, metrics),
                }
            )
        recent = queries.alerts(conn, (subject,), subject=subject, open_only=False, limit=20)
        ecg_reports = ecg.reports_for_subject(conn, subject, lang=_lang(request))
        record(
            conn,
            request,
            who,
            resource,
            {
                "subject": subject,
                "query": {"days": days},
                "resolution": resolutions,
                "returned": {c["id"]: c["points"] for c in charts},
                "ecg_reports": [r["id"] for r in ecg_reports],
            },
        )
    spo2_low = (
        float(stored.parameters.get("spo2_target_low", 0) if stored is not None else 0) or None
    )
    lang = _lang(request)
    chart_config = {
        "zone": settings.web_timezone,
        "start": start.timestamp(),
        "end": now.timestamp(),
        "time_label": translate(lang, "legend_time"),
        "charts": [
            {
                **{k: c[k] for k in ("id", "title", "unit", "metrics", "data")},
                "labels": [translate(lang, f"legend_{m}") for m in c["metrics"]],
            }
            for c in charts
        ],
        "bands": {
            "bp": {"lines": _bp_lines(targets, home, since, lang)},
            "glucose": {
                "lines": [
                    {"label": translate(lang, "cgm_range_low"), "value": trends.GLUCOSE_RANGE[0]},
                    {"label": translate(lang, "cgm_range_high"), "value": trends.GLUCOSE_RANGE[1]},
                ]
            },
            "spo2": {
                "lines": [
                    {
                        "label": translate(lang, "line_spo2_target_low", v=f"{spo2_low:g}"),
                        "value": spo2_low,
                    }
                ]
                if spo2_low
                else []
            },
        },
    }
    return {
        "subject": subject,
        "days": days,
        "ranges": RANGES,
        "latest": latest,
        "home": home,
        "charts": charts,
        "chart_config": chart_config,
        "alerts": recent,
        "ecg_reports": ecg_reports,
        "settings": view,
        "problems": [],
        "saved": False,
        "now": now,
        "ago": lambda then: ago(now, then),
    }


def _bp_lines(
    targets: tuple[float, float], home: trends.HomeBp, since: datetime, lang: Lang = "en"
) -> list[dict[str, Any]]:
    """The BP chart's reference lines: the targets, and the 7-day means over their week."""
    lines: list[dict[str, Any]] = [
        {
            "label": translate(lang, "line_target_systolic", v=f"{targets[0]:g}"),
            "value": targets[0],
        },
        {
            "label": translate(lang, "line_target_diastolic", v=f"{targets[1]:g}"),
            "value": targets[1],
        },
    ]
    for key, mean, colour in (
        ("line_mean_systolic", home.systolic, "#a3001b"),
        ("line_mean_diastolic", home.diastolic, "#0b4f8a"),
    ):
        if mean is not None:
            lines.append(
                {
                    "label": translate(lang, key, v=f"{mean:.0f}"),
                    "value": round(mean, 1),
                    "from": since.timestamp(),
                    "colour": colour,
                }
            )
    return lines


@router.get("/subjects/{subject}", response_class=HTMLResponse)
def subject_page(
    request: Request,
    seen: ViewerDep,
    conn: ConnectionDep,
    subject: SubjectPath,
    days: Annotated[int, Query(ge=1, le=90)] = 7,
    saved: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    """Trends at a glance, open alerts and the rule settings of one patient."""
    resource = f"web/subject/{subject}"
    who = _doctor(conn, request, seen, resource)
    _subject(conn, request, who, subject, resource)
    context = _subject_context(conn, request, who, subject, days, resource)
    context["saved"] = saved
    return _page(request, "subject.html", context)


@router.post("/subjects/{subject}/rules", response_model=None)
def edit_rules(
    request: Request,
    seen: ViewerDep,
    conn: ConnectionDep,
    form: FormDep,
    subject: SubjectPath,
) -> Response:
    """Save the patient's packs, targets and disabled rules with a mandatory reason."""
    resource = f"subject/{subject}/rules"
    who = _doctor(conn, request, seen, resource)
    _subject(conn, request, who, subject, resource)
    check_csrf(request, seen, form)
    edit, problems = rule_settings.parse_edit(subject, form, _lang(request))
    if edit is not None:
        rule_settings.store(
            conn, request, who, subject, edit, field(form, "version"), datetime.now(UTC)
        )
        return RedirectResponse(f"/doctor/subjects/{subject}?saved=true#rules", status_code=303)
    context = _subject_context(conn, request, who, subject, 7, f"web/subject/{subject}")
    context["problems"] = problems
    return _page(request, "subject.html", context, status_code=422)
