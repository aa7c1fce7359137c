"""The CGM pages: the doctor's ambulatory glucose profile and the patient's daily report.

- ``/doctor/subjects/{subject}/cgm``: the AGP of the last 14 days (percentile bands,
  :mod:`ingest_service.web.agp`), TIR/TBR/TAR/GMI/CV over the period against the Battelino
  2019 targets (met / not met), and the metrics day by day (:mod:`alert_rules.cgm`).
- ``/me/cgm``: one local day of the patient's own sensor in plain words and large type,
  Chinese or English, with the last 7 days' time in range.

Same rules as the other pages: doctor pages need the ``doctor`` role and a contracted
subject, ``/me/cgm`` only ever reads the token's own subject; every page is an audited read.
"CGM" here means the ``glucose`` metric (capillary and sensor readings share it; the
catalogue does not tell them apart), so a fingerstick-only patient shows a low coverage.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from alert_rules.cgm import TIR_HIGH, TIR_LOW, CgmDay, Population, daily_metrics
from ingest_service.api.db import Connection
from ingest_service.api.deps import ConnectionDep, record
from ingest_service.web import agp
from ingest_service.web.doctor import SubjectPath, _doctor, _subject
from ingest_service.web.i18n import Lang, choose_lang, translate
from ingest_service.web.patient import _patient, lang_of
from ingest_service.web.render import page, web_settings
from ingest_service.web.session import LANG_COOKIE, PageRoute, ViewerDep

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: Most glucose rows one page reads: 14 days of a 1-minute sensor.
MAX_ROWS = 14 * 24 * 60
#: Days the patient's report lists under the chosen day.
WEEK = 7
#: The order the doctor's page lists the metrics in (catalogue keys ``cgm_m_<name>``).
METRICS = ("tir", "tbr", "tbr_level2", "tar", "tar_level2", "cv")


def glucose(
    conn: Connection, subject: str, start: datetime, end: datetime
) -> list[tuple[datetime, float | None]]:
    """The subject's raw glucose readings in ``[start, end)``, oldest first."""
    rows = conn.execute(
        "SELECT time, value FROM readings WHERE subject = %s AND metric = 'glucose'"
        " AND time >= %s AND time < %s AND value IS NOT NULL ORDER BY time LIMIT %s",
        (subject, start, end, MAX_ROWS),
    ).fetchall()
    return [(t, float(v)) for t, v in rows]


def _doctor_lang(request: Request, query: str | None) -> Lang:
    return choose_lang(
        query,
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
        default="en",
    )


def _remember(response: HTMLResponse, query: str | None, chosen: Lang) -> HTMLResponse:
    if query is not None:
        response.set_cookie(
            LANG_COOKIE, chosen, max_age=365 * 86400, samesite="strict", httponly=True
        )
    return response


def _labels(lang: Lang, keys: tuple[str, ...]) -> list[str]:
    return [translate(lang, key) for key in keys]


def _range_lines(lang: Lang) -> list[dict[str, Any]]:
    """The time-in-range bounds as dashed reference lines (charts draw them, cgm.js)."""
    return [
        {"label": translate(lang, "cgm_range_low"), "value": TIR_LOW},
        {"label": translate(lang, "cgm_range_high"), "value": TIR_HIGH},
    ]


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


@router.get("/doctor/subjects/{subject}/cgm", response_class=HTMLResponse)
def doctor_cgm(
    request: Request,
    seen: ViewerDep,
    conn: ConnectionDep,
    subject: SubjectPath,
    population: Annotated[Population, Query()] = "standard",
    lang: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    """The AGP of the last 14 days, the period's metrics against the targets, day by day."""
    chosen = _doctor_lang(request, lang)
    resource = f"web/subject/{subject}/cgm"
    who = _doctor(conn, request, seen, resource)
    _subject(conn, request, who, subject, resource)
    settings = web_settings(request)
    zone = settings.zone
    now = datetime.now(UTC)
    start = now - timedelta(days=agp.AGP_DAYS)
    with conn.transaction():
        samples = glucose(conn, subject, start, now)
        record(
            conn,
            request,
            who,
            resource,
            {
                "subject": subject,
                "query": {"days": agp.AGP_DAYS, "population": population},
                "returned": len(samples),
            },
        )
    profile = agp.profile(samples, end=now, zone=zone)
    summary = agp.summary(samples, end=now, population=population)
    today = now.astimezone(zone).date()
    days = [
        daily_metrics(samples, today - timedelta(days=back), zone=zone, population=population)
        for back in range(agp.AGP_DAYS)
    ]
    medians = [s.p50 for s in profile.slots if s.p50 is not None]
    context: dict[str, Any] = {
        "subject": subject,
        "population": population,
        "populations": ("standard", "older_high_risk"),
        "profile": profile,
        "summary": summary,
        "metrics": METRICS,
        "checks": {c.metric: c for c in summary.checks},
        "days": [d for d in days if d.samples],
        "median_low": min(medians) if medians else None,
        "median_high": max(medians) if medians else None,
        "agp_config": {
            "kind": "agp",
            "unit": "mmol/L",
            "data": profile.uplot_data(),
            "labels": _labels(chosen, ("cgm_p5", "cgm_p25", "cgm_median", "cgm_p75", "cgm_p95")),
            "lines": _range_lines(chosen),
            "time_label": translate(chosen, "legend_time"),
        },
    }
    response = page(request, "cgm_doctor.html", context, lang=chosen)
    return _remember(response, lang, chosen)


def _report_day(text: str | None, today: date) -> date:
    if not text:
        return today
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return today
    return min(day, today)


@router.get("/me/cgm", response_class=HTMLResponse)
def me_cgm(
    request: Request,
    seen: ViewerDep,
    conn: ConnectionDep,
    day: Annotated[str | None, Query(max_length=10)] = None,
    lang: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    """My sensor's day (default today, local time) in plain words, and the last 7 days."""
    chosen = lang_of(request, lang)
    who = _patient(conn, request, seen, "web/me/cgm")
    subject = who.subject
    assert subject is not None
    zone = web_settings(request).zone
    now = datetime.now(UTC)
    shown = _report_day(day, now.astimezone(zone).date())
    first = shown - timedelta(days=WEEK - 1)
    with conn.transaction():
        samples = glucose(
            conn, subject, _day_start(first, zone), _day_start(shown + timedelta(days=1), zone)
        )
        record(
            conn,
            request,
            who,
            "web/me/cgm",
            {"subject": subject, "query": {"day": shown.isoformat()}, "returned": len(samples)},
        )
    report = daily_metrics(samples, shown, zone=zone)
    week: list[CgmDay] = [
        daily_metrics(samples, shown - timedelta(days=back), zone=zone) for back in range(WEEK)
    ]
    day_start = _day_start(shown, zone)
    day_values = [(t, v) for t, v in samples if t >= day_start and v is not None]
    context: dict[str, Any] = {
        "day": shown,
        "previous": shown - timedelta(days=1),
        "next": shown + timedelta(days=1) if shown < now.astimezone(zone).date() else None,
        "report": report,
        "goals": agp.checks({name: getattr(report, name) for name in METRICS}, "standard"),
        "week": week,
        "readings": len(day_values),
        "low": min((v for _, v in day_values), default=None),
        "high": max((v for _, v in day_values), default=None),
        "day_config": {
            "kind": "day",
            "unit": "mmol/L",
            "zone": web_settings(request).web_timezone,
            "start": day_start.timestamp(),
            "end": (day_start + timedelta(days=1)).timestamp(),
            "data": [[t.timestamp() for t, _ in day_values], [v for _, v in day_values]],
            "labels": _labels(chosen, ("metric_glucose",)),
            "lines": _range_lines(chosen),
            "time_label": translate(chosen, "legend_time"),
        },
    }
    response = page(request, "cgm_me.html", context, lang=chosen)
    return _remember(response, lang, chosen)
