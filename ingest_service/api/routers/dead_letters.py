"""``/api/v1/dead-letters``: what was not stored and why, with the raw bytes (base64).

The payload may hold readings (patient data), so only admin and service tokens read it and
every page is audited (ids, not contents). The bytes are never decoded here: a payload that
broke the validator must not reach a log or a parser through the API.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query, Request

from ingest_service.api.access import DEAD_LETTER_ROLES
from ingest_service.api.deps import ConnectionDep, PrincipalDep, record, require_role, scoped
from ingest_service.api.models import DeadLetter, DeadLetterPage
from ingest_service.api.paging import newest_first

router = APIRouter(prefix="/dead-letters", tags=["dead letters"])


@router.get(
    "",
    response_model=DeadLetterPage,
    summary="Dead letters, newest first",
    **scoped("dead-letters:read"),
)
def list_dead_letters(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    before: Annotated[int | None, Query(ge=1, description="Page on: ids below this.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    reason: Annotated[str | None, Query(max_length=64, description="reason_kind")] = None,
    gateway: Annotated[str | None, Query(max_length=128)] = None,
    replayed: Annotated[bool | None, Query(description="Only (not) replayed ones.")] = None,
) -> DeadLetterPage:
    """One page of dead letters (keyset paging on ``id``, newest first)."""
    require_role(conn, request, who, DEAD_LETTER_ROLES, "dead-letters")
    with conn.transaction():
        rows, more = newest_first(
            conn,
            "SELECT id, received_at, topic, gateway, batch_id, reason_kind, reason_detail,"
            " payload, device, metric, time, replayed_at FROM dead_letters",
            [
                ("reason_kind = %s", reason),
                ("gateway = %s", gateway),
                (
                    "replayed_at IS NOT NULL" if replayed else "replayed_at IS NULL",
                    None if replayed is None else True,
                ),
            ],
            before,
            limit,
        )
        record(
            conn,
            request,
            who,
            "dead-letters",
            {
                "query": {
                    "before": before,
                    "limit": limit,
                    "reason": reason,
                    "gateway": gateway,
                    "replayed": replayed,
                },
                "ids": [int(r[0]) for r in rows],
            },
        )
    page = [
        DeadLetter(
            id=r[0],
            received_at=r[1],
            topic=r[2],
            gateway=r[3],
            batch_id=r[4],
            reason_kind=r[5],
            reason_detail=r[6],
            payload_base64=base64.b64encode(bytes(r[7])).decode("ascii"),
            payload_bytes=len(r[7]),
            device=r[8],
            metric=r[9],
            time=r[10],
            replayed_at=r[11],
        )
        for r in rows
    ]
    return DeadLetterPage(dead_letters=page, next_before=page[-1].id if more else None)
