"""``/api/v1/audit``: the hash-chained audit log, for admins (supervision, R14).

Reading the log is itself audited: the log names subjects and who read them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from psycopg import sql

from ingest_service.api.access import AUDIT_ROLES
from ingest_service.api.deps import ConnectionDep, PrincipalDep, record, require_role
from ingest_service.api.models import AuditPage, AuditRowOut

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=AuditPage, summary="Audit log rows, newest first (admin)")
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
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    params: dict[str, Any] = {"limit": limit + 1}
    if actor is not None:
        conditions.append(sql.SQL("actor = %(actor)s"))
        params["actor"] = actor
    if resource is not None:
        conditions.append(sql.SQL("starts_with(resource, %(resource)s)"))
        params["resource"] = resource
    if action is not None:
        conditions.append(sql.SQL("action = %(action)s"))
        params["action"] = action
    if since is not None:
        conditions.append(sql.SQL("time >= %(since)s"))
        params["since"] = since
    if before is not None:
        conditions.append(sql.SQL("id < %(before)s"))
        params["before"] = before
    query = sql.SQL(
        "SELECT id, time, actor, action, resource, detail, algorithm, prev_hash, hash"
        " FROM audit_log WHERE {} ORDER BY id DESC LIMIT %(limit)s"
    ).format(sql.SQL(" AND ").join(conditions))
    with conn.transaction():
        rows = conn.execute(query, params).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
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
