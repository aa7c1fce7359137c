"""``/api/v1/audit``: the hash-chained audit log, for admins (supervision, R14).

Reading the log is itself audited: the log names subjects and who read them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from ingest_service.api.access import AUDIT_ROLES
from ingest_service.api.deps import ConnectionDep, PrincipalDep, record, require_role, scoped
from ingest_service.api.models import AuditPage, AuditRowOut
from ingest_service.api.paging import newest_first

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get(
    "",
    response_model=AuditPage,
    summary="Audit log rows, newest first (admin)",
    **scoped("audit:read"),
)
def list_audit(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    resource: Annotated[
        str | None, Query(max_length=300, description="Rows whose resource starts with this.")
    ] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query()] = None,
    before: Annotated[int | None, Query(ge=1, description="Page on: ids below this.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Audit rows with their chain links; `vitalstream audit verify` checks the chain."""
    require_role(conn, request, who, AUDIT_ROLES, "audit")
    with conn.transaction():
        rows, more = newest_first(
            conn,
            "SELECT id, time, actor, action, resource, detail, algorithm, prev_hash, hash"
            " FROM audit_log",
            [
                ("actor = %s", actor),
                ("starts_with(resource, %s)", resource),
                ("action = %s", action),
                ("time >= %s", since),
            ],
            before,
            limit,
        )
        record(
            conn,
            request,
            who,
            "audit",
            {
                "query": {
                    "actor": actor,
                    "resource": resource,
                    "action": action,
                    "since": since.isoformat() if since else None,
                    "before": before,
                    "limit": limit,
                },
                "returned": len(rows),
            },
        )
    out = [
        AuditRowOut(
            id=r[0],
            time=r[1],
            actor=r[2],
            action=r[3],
            resource=r[4],
            detail=r[5] if isinstance(r[5], dict) else {"value": r[5]},
            algorithm=r[6],
            prev_hash=bytes(r[7]).hex(),
            hash=bytes(r[8]).hex(),
        )
        for r in rows
    ]
    return AuditPage(rows=out, next_before=out[-1].id if more else None)
