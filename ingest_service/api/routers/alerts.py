"""``/api/v1/alerts``: the rules engine's alerts, filtered by subject and state.

Alerts are patient data: a patient sees their own, a doctor with contracted subjects only
theirs, and every page is audited. Acknowledge/snooze/escalate (CONTRACTS.md) are writes and
belong to the alert lifecycle work, not to this read API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from ingest_service.api.access import PATIENT_DATA_ROLES
from ingest_service.api.deps import (
    ConnectionDep,
    PrincipalDep,
    readable_subjects,
    record,
    require_role,
    require_subject,
    scoped,
)
from ingest_service.api.models import AlertOut, AlertPage
from ingest_service.api.paging import newest_first
from vitals.models import IDENTIFIER_PATTERN

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get("", response_model=AlertPage, summary="Alerts, newest first", **scoped("alerts:read"))
def list_alerts(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    subject: Annotated[str | None, Query(pattern=IDENTIFIER_PATTERN)] = None,
    state: Annotated[
        str | None, Query(max_length=32, description="active, acknowledged, resolved ...")
    ] = None,
    since: Annotated[datetime | None, Query(description="Alert time at or after this.")] = None,
    before: Annotated[int | None, Query(ge=1, description="Page on: ids below this.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertPage:
    """Alerts the caller may see; ``subject`` narrows to one (403 if not theirs)."""
    resource = f"subject/{subject}/alerts" if subject is not None else "alerts"
    if subject is not None:
        require_subject(conn, request, who, subject, resource)
    else:
        require_role(conn, request, who, PATIENT_DATA_ROLES, resource)
    with conn.transaction():
        allowed = None if subject is not None else readable_subjects(conn, who)
        rows, more = newest_first(
            conn,
            "SELECT id, subject, rule, severity, time, message, metric, value, state, created_at"
            " FROM alerts",
            [
                ("subject = %s", subject),
                ("subject = ANY(%s)", list(allowed) if allowed is not None else None),
                ("state = %s", state),
                ("time >= %s", since),
            ],
            before,
            limit,
        )
        record(
            conn,
            request,
            who,
            resource,
            {
                "subject": subject,
                "query": {
                    "state": state,
                    "since": since.isoformat() if since else None,
                    "before": before,
                    "limit": limit,
                },
                "subjects": sorted({str(r[1]) for r in rows}),
                "returned": len(rows),
            },
        )
    alerts = [
        AlertOut(
            id=r[0],
            subject=r[1],
            rule=r[2],
            severity=r[3],
            time=r[4],
            message=r[5],
            metric=r[6],
            value=r[7],
            state=r[8],
            created_at=r[9],
        )
        for r in rows
    ]
    return AlertPage(alerts=alerts, next_before=alerts[-1].id if more else None)
