"""ECG reading (R7): the queue of unreported snippets and one snippet on ECG paper with a report.

- ``/ecg``: snippets of the ``waveforms`` table (migration 11) without a report, newest first,
  from ambulances (a snippet with an ``incident``) and from home; below, the latest reports.
- ``/ecg/{id}``: the snippet on standard paper (:mod:`ingest_service.web.ecg_paper`, SVG built
  here, no script), the beats found in it and the AF detector's finding
  (:func:`alert_rules.af.detect_af`), and the report form (rhythm, findings, free text).
- ``POST /ecg/{id}/report``: saves one ``ecg_reports`` row (migration 12) and its audit row in
  one transaction; a snippet with a report is *read* and leaves the queue. A second report is
  refused (409): there is no amendment yet.

Roles ``doctor`` (only the subjects of the token's ``subjects`` claim, as on the other doctor
pages) and ``er`` (every subject; an ``er`` account of one hospital only the patients of the
incidents routed to it), decided by the API's own functions
(:func:`ingest_service.api.deps.readable_subjects`, :func:`~ingest_service.api.deps.may_read`).
Reads and denials are audited like the other pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from psycopg.types.json import Jsonb

from alert_rules.af import MIN_BEATS, BeatTimesError, detect_af
from ingest_service.api.db import Connection
from ingest_service.api.deps import ConnectionDep, may_read, readable_subjects, record
from ingest_service.api.tokens import Principal, Role
from ingest_service.web.ecg_paper import (
    MM_PER_MV,
    MM_PER_S,
    FloatArray,
    detect_r_peaks,
    ecg_paper,
)
from ingest_service.web.i18n import CATALOGUE, Lang, translate
from ingest_service.web.render import clinician_lang, clinician_page
from ingest_service.web.session import (
    FormDep,
    PageError,
    PageRoute,
    Viewer,
    ViewerDep,
    check_csrf,
    field,
)

router = APIRouter(prefix="/ecg", route_class=PageRoute, include_in_schema=False)

READER_ROLES: frozenset[Role] = frozenset({"doctor", "er"})

SnippetPath = Annotated[int, Path(ge=1, le=2**62)]

#: Most snippets the queue lists, and most recent reports shown under it.
QUEUE_LIMIT = 200
RECENT_LIMIT = 20
#: Longest free-text note, characters.
MAX_NOTE = 4000

#: Rhythms the form offers (value, label).
RHYTHMS: tuple[tuple[str, str], ...] = (
    ("sinus", "Sinus rhythm"),
    ("sinus_bradycardia", "Sinus bradycardia"),
    ("sinus_tachycardia", "Sinus tachycardia"),
    ("af", "Atrial fibrillation"),
    ("flutter", "Atrial flutter"),
    ("svt", "Other supraventricular tachycardia"),
    ("vt", "Ventricular tachycardia"),
    ("paced", "Paced rhythm"),
    ("other", "Other (describe below)"),
    ("uninterpretable", "Not interpretable (noise, lead off)"),
)
#: Findings the form offers (value, label); any number of them.
FINDINGS: tuple[tuple[str, str], ...] = (
    ("pvc", "Ventricular ectopics"),
    ("pac", "Supraventricular ectopics"),
    ("av_block", "AV block"),
    ("bundle_branch_block", "Bundle branch block"),
    ("st_elevation", "ST elevation"),
    ("st_depression", "ST depression"),
    ("t_inversion", "T-wave inversion"),
    ("long_qt", "Long QT"),
    ("pause", "Pause"),
    ("artefact", "Artefact"),
)
RHYTHM_NAMES: Mapping[str, str] = dict(RHYTHMS)
FINDING_NAMES: Mapping[str, str] = dict(FINDINGS)


def rhythm_name(code: str, lang: Lang = "en") -> str:
    """A stored rhythm code as the reader's page names it (an unknown code shows itself)."""
    key = f"ecg_rhythm_{code}"
    return translate(lang, key) if key in CATALOGUE else code


def finding_name(code: str, lang: Lang = "en") -> str:
    """A stored finding code as the reader's page names it (an unknown code shows itself)."""
    key = f"ecg_finding_{code}"
    return translate(lang, key) if key in CATALOGUE else code


_COLUMNS = (
    "w.id, w.subject, w.device, w.channel, w.start_time, w.sample_rate_hz, w.n_samples,"
    " w.source, w.incident, w.received_at, w.quality"
)


@dataclass(frozen=True, slots=True)
class Snippet:
    """One row of ``waveforms`` without its samples."""

    id: int
    subject: str
    device: str
    channel: str
    start: datetime
    sample_rate_hz: float
    n_samples: int
    source: str
    incident: str | None
    received_at: datetime
    quality: tuple[str, ...]

    @property
    def seconds(self) -> float:
        """Length of the snippet, seconds."""
        return self.n_samples / self.sample_rate_hz

    @property
    def origin(self) -> str:
        """``ambulance`` (sent during an incident) or ``home``."""
        return "ambulance" if self.incident else "home"

    @property
    def lead(self) -> str:
        """The lead as printed: ``ecg_ii`` -> ``II``."""
        return self.channel.removeprefix("ecg_").upper()


def _snippet(row: tuple[Any, ...]) -> Snippet:
    return Snippet(
        id=int(row[0]),
        subject=str(row[1]),
        device=str(row[2]),
        channel=str(row[3]),
        start=row[4],
        sample_rate_hz=float(row[5]),
        n_samples=int(row[6]),
        source=str(row[7]),
        incident=None if row[8] is None else str(row[8]),
        received_at=row[9],
        quality=tuple(str(q) for q in row[10] or ()),
    )


def samples_mv(raw: bytes, scale: float) -> FloatArray:
    """The stored int16 little-endian counts as millivolts (``value = count * scale``)."""
    counts = np.frombuffer(raw, dtype="<i2")
    return counts.astype(np.float64) * float(scale)


def af_finding(beats: FloatArray, seconds: float) -> dict[str, Any]:
    """What the page says about rhythm: beats, mean heart rate and the AF detector's result.

    ``status`` is ``not_enough_data`` (fewer than the detector's :data:`MIN_BEATS` beats, or
    nothing analysable), ``af`` (an AF episode in the strip) or ``no_af``.
    """
    out: dict[str, Any] = {
        "beat_source": "detected (simplified Pan-Tompkins 1985)",
        "beats": int(beats.size),
        "seconds": round(seconds, 2),
        "heart_rate_bpm": None,
        "status": "not_enough_data",
        "af_burden": None,
        "analysed_s": None,
        "detector": "Petrenas 2015 + COSEn + RR serial correlation (alert_rules.af)",
    }
    if beats.size >= 2:
        out["heart_rate_bpm"] = round(60.0 / float(np.median(np.diff(beats))), 0)
    if beats.size < MIN_BEATS:
        return out
    try:
        result = detect_af(beats)
    except BeatTimesError:
        return out
    if result.analysed_s <= 0:
        return out
    out["af_burden"] = round(result.af_burden, 3)
    out["analysed_s"] = round(result.analysed_s, 1)
    out["status"] = "af" if result.episodes else "no_af"
    return out


def _reader(conn: Connection, request: Request, seen: Viewer, resource: str) -> Principal:
    """The doctor or ER user, or a 403 page with an audited ``read_denied`` row."""
    who = seen.principal
    if who.role in READER_ROLES:
        return who
    with conn.transaction():
        record(conn, request, who, resource, {"reason": "role"}, action="read_denied")
    raise PageError(403, "wrong_role")


def _subject(
    conn: Connection,
    request: Request,
    who: Principal,
    subject: str,
    resource: str,
    action: str = "read_denied",
) -> None:
    """A 403 page (and an audited denial) unless ``who`` may read ``subject``."""
    with conn.transaction():
        allowed = may_read(conn, who, subject)
    if allowed:
        return
    with conn.transaction():
        record(
            conn, request, who, resource, {"subject": subject, "reason": "not permitted"}, action
        )
    raise PageError(403, "not_permitted")


# ------------------------------------------------------------------------------ the queue


@router.get("", response_class=HTMLResponse)
def queue(request: Request, seen: ViewerDep, conn: ConnectionDep) -> HTMLResponse:
    """Snippets awaiting a report (newest first) and the latest reports."""
    who = _reader(conn, request, seen, "web/ecg/queue")
    lang = clinician_lang(request)
    with conn.transaction():
        allowed = readable_subjects(conn, who)
        where = "" if allowed is None else " AND w.subject = ANY(%(subjects)s)"
        params: dict[str, Any] = {"subjects": list(allowed or ()), "limit": QUEUE_LIMIT}
        waiting = [
            _snippet(r)
            for r in conn.execute(
                f"SELECT {_COLUMNS} FROM waveforms w WHERE w.id IS NOT NULL"  # noqa: S608
                " AND NOT EXISTS (SELECT 1 FROM ecg_reports r WHERE r.waveform_id = w.id)"
                f"{where} ORDER BY w.start_time DESC, w.id DESC LIMIT %(limit)s",
                params,
            ).fetchall()
        ]
        recent = conn.execute(
            f"SELECT {_COLUMNS}, r.rhythm, r.reader, r.reported_at"  # noqa: S608
            " FROM ecg_reports r JOIN waveforms w ON w.id = r.waveform_id"
            f" WHERE true{where} ORDER BY r.reported_at DESC LIMIT %(recent)s",
            {**params, "recent": RECENT_LIMIT},
        ).fetchall()
        reported = [
            (_snippet(r[:11]), rhythm_name(str(r[11]), lang), str(r[12]), r[13]) for r in recent
        ]
        record(
            conn,
            request,
            who,
            "web/ecg/queue",
            {
                "snippets": [s.id for s in waiting],
                "subjects": sorted(
                    {s.subject for s in waiting} | {s.subject for s, *_ in reported}
                ),
                "returned": len(waiting),
                "reports_shown": len(reported),
            },
        )
    return clinician_page(
        request,
        "ecg_queue.html",
        {"waiting": waiting, "reported": reported, "limit": QUEUE_LIMIT},
    )


# ------------------------------------------------------------------------- one snippet


def _load(conn: Connection, snippet_id: int) -> tuple[Snippet, FloatArray]:
    row = conn.execute(
        f"SELECT {_COLUMNS}, w.samples, w.scale FROM waveforms w WHERE w.id = %s",  # noqa: S608
        (snippet_id,),
    ).fetchone()
    if row is None:
        raise PageError(404, "not_found")
    return _snippet(row[:11]), samples_mv(bytes(row[11]), float(row[12]))


def _report(conn: Connection, snippet_id: int, lang: Lang = "en") -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT id, rhythm, findings, note, reader, reader_role, reported_at, af_finding"
        " FROM ecg_reports WHERE waveform_id = %s",
        (snippet_id,),
    ).fetchone()
    if row is None:
        return None
    return {
        "id": int(row[0]),
        "rhythm": rhythm_name(str(row[1]), lang),
        "findings": [finding_name(str(f), lang) for f in row[2] or ()],
        "note": str(row[3]),
        "reader": str(row[4]),
        "reader_role": str(row[5]),
        "reported_at": row[6],
        "af_finding": row[7],
    }


def _context(snippet: Snippet, values: FloatArray, lang: Lang = "en") -> dict[str, Any]:
    beats = detect_r_peaks(values, snippet.sample_rate_hz)
    return {
        "snippet": snippet,
        "paper": ecg_paper(values, snippet.sample_rate_hz),
        "finding": af_finding(beats, snippet.seconds),
        "mm_per_s": MM_PER_S,
        "mm_per_mv": MM_PER_MV,
        "rhythms": tuple((code, rhythm_name(code, lang)) for code, _ in RHYTHMS),
        "findings": tuple((code, finding_name(code, lang)) for code, _ in FINDINGS),
        "min_beats": MIN_BEATS,
    }


def reports_for_subject(
    conn: Connection, subject: str, limit: int = RECENT_LIMIT, lang: Lang = "en"
) -> list[dict[str, Any]]:
    """The reports on a patient's snippets, newest first: how a report comes back to the team
    that asked for it (the family doctor's patient page; the ER's incident page shows its own
    snippet's report)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS}, r.id, r.rhythm, r.findings, r.note, r.reader,"  # noqa: S608
        " r.reported_at FROM ecg_reports r JOIN waveforms w ON w.id = r.waveform_id"
        " WHERE r.subject = %s ORDER BY r.reported_at DESC, r.id DESC LIMIT %s",
        (subject, limit),
    ).fetchall()
    return [
        {
            "snippet": _snippet(row[:11]),
            "id": int(row[11]),
            "rhythm": rhythm_name(str(row[12]), lang),
            "findings": [finding_name(str(f), lang) for f in row[13] or ()],
            "note": str(row[14]),
            "reader": str(row[15]),
            "reported_at": row[16],
        }
        for row in rows
    ]


def latest_for_incident(
    conn: Connection, incident: str, lang: Lang = "en"
) -> dict[str, Any] | None:
    """The newest ECG snippet sent during an incident, drawn on paper, with its report once
    a reader has filed one (for the ER's incident page)."""
    row = conn.execute(
        "SELECT id FROM waveforms WHERE incident = %s ORDER BY start_time DESC LIMIT 1",
        (incident,),
    ).fetchone()
    if row is None:
        return None
    snippet, values = _load(conn, int(row[0]))
    return {
        "snippet": snippet,
        "paper": ecg_paper(values, snippet.sample_rate_hz),
        "mm_per_s": MM_PER_S,
        "mm_per_mv": MM_PER_MV,
        "report": _report(conn, snippet.id, lang),
    }


def _snippet_page(
    request: Request,
    context: Mapping[str, Any],
    *,
    form: Mapping[str, Any] | None = None,
    problems: tuple[str, ...] = (),
    status_code: int = 200,
) -> HTMLResponse:
    chosen = form or {"rhythm": "", "findings": (), "note": ""}
    return clinician_page(
        request,
        "ecg_snippet.html",
        {**context, "form": chosen, "problems": problems},
        status_code=status_code,
    )


@router.get("/{snippet_id}", response_class=HTMLResponse)
def snippet_page(
    request: Request, snippet_id: SnippetPath, seen: ViewerDep, conn: ConnectionDep
) -> HTMLResponse:
    """One snippet on ECG paper with the AF finding and the report (form or filed report)."""
    resource = f"web/ecg/{snippet_id}"
    who = _reader(conn, request, seen, resource)
    with conn.transaction():
        snippet, values = _load(conn, snippet_id)
    _subject(conn, request, who, snippet.subject, resource)
    lang = clinician_lang(request)
    context = _context(snippet, values, lang)
    with conn.transaction():
        report = _report(conn, snippet_id, lang)
        record(
            conn,
            request,
            who,
            resource,
            {
                "subject": snippet.subject,
                "device": snippet.device,
                "channel": snippet.channel,
                "start": snippet.start.isoformat(),
                "reported": report is not None,
            },
        )
    return _snippet_page(request, {**context, "report": report})


def _problems(rhythm: str, findings: list[str], note: str, lang: Lang = "en") -> tuple[str, ...]:
    out: list[str] = []
    if rhythm not in RHYTHM_NAMES:
        out.append(translate(lang, "ecg_problem_rhythm"))
    if any(f not in FINDING_NAMES for f in findings):
        out.append(translate(lang, "ecg_problem_finding"))
    if rhythm == "other" and not note:
        out.append(translate(lang, "ecg_problem_other"))
    if len(note) > MAX_NOTE:
        out.append(translate(lang, "ecg_problem_long", n=MAX_NOTE))
    return tuple(out)


@router.post("/{snippet_id}/report", response_model=None)
def file_report(
    request: Request,
    snippet_id: SnippetPath,
    seen: ViewerDep,
    conn: ConnectionDep,
    form: FormDep,
) -> Response:
    """Save the reader's report (one per snippet), audited; back to the queue (303)."""
    check_csrf(request, seen, form)
    resource = f"ecg/{snippet_id}"
    who = seen.principal
    if who.role not in READER_ROLES:
        with conn.transaction():
            record(conn, request, who, resource, {"reason": "role"}, action="write_denied")
        raise PageError(403, "wrong_role")
    with conn.transaction():
        snippet, values = _load(conn, snippet_id)
    _subject(conn, request, who, snippet.subject, resource, action="write_denied")
    rhythm = field(form, "rhythm")
    findings = sorted({f.strip() for f in form.get("findings", []) if f.strip()})
    note = field(form, "note")
    lang = clinician_lang(request)
    context = _context(snippet, values, lang)
    problems = _problems(rhythm, findings, note, lang)
    if problems:
        return _snippet_page(
            request,
            {**context, "report": None},
            form={"rhythm": rhythm, "findings": findings, "note": note},
            problems=problems,
            status_code=422,
        )
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO ecg_reports (waveform_id, subject, rhythm, findings, note, af_finding,"
            " reader, reader_role) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (waveform_id) DO NOTHING RETURNING id",
            (
                snippet_id,
                snippet.subject,
                rhythm,
                findings,
                note,
                Jsonb(context["finding"]),
                who.actor,
                who.role,
            ),
        ).fetchone()
        if row is None:
            raise PageError(409, "conflict")
        record(
            conn,
            request,
            who,
            resource,
            {
                "report": int(row[0]),
                "subject": snippet.subject,
                "device": snippet.device,
                "channel": snippet.channel,
                "start": snippet.start.isoformat(),
                "rhythm": rhythm,
                "findings": findings,
                "af_status": context["finding"]["status"],
                "via": "web",
            },
            action="ecg_reported",
        )
    return RedirectResponse(f"/ecg?reported={snippet_id}", status_code=303)
