"""``/api/v1/gateways``: each gateway's last status and whether it went silent.

Not patient data (a gateway id and its device list), so reads are not audited; patients may
not list gateways (it would show who else is monitored where).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from ingest_service.api.access import GATEWAY_ROLES
from ingest_service.api.deps import ConnectionDep, PrincipalDep, SettingsDep, require_role
from ingest_service.api.models import Gateway, GatewayList

router = APIRouter(prefix="/gateways", tags=["gateways"])


def is_silent(last_seen: datetime, now: datetime, cadence_s: float, factor: float) -> bool:
    """A gateway is silent when its last status is older than ``factor`` times its cadence.

    One missed status is normal (a reconnect, a busy broker); ``factor`` (default 3) says how
    many in a row make it worth a look.
    """
    return now - last_seen > timedelta(seconds=cadence_s * factor)


@router.get("", response_model=GatewayList, summary="Gateways, last seen, silent ones")
def list_gateways(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    settings: SettingsDep,
    cadence_s: Annotated[
        float | None,
        Query(gt=0, le=86_400, description="Expected status interval (default: setting, 5 s)."),
    ] = None,
    silent_factor: Annotated[
        float | None,
        Query(gt=0, le=10_000, description="Silent after this many cadences (default 3)."),
    ] = None,
    silent_only: Annotated[bool, Query(description="Only the silent gateways.")] = False,
) -> GatewayList:
    """Every gateway's state, last status time and ``silent`` flag."""
    require_role(conn, request, who, GATEWAY_ROLES, "gateways")
    cadence = cadence_s if cadence_s is not None else settings.gateway_cadence_s
    factor = silent_factor if silent_factor is not None else settings.gateway_silent_factor
    with conn.transaction():
        rows = conn.execute(
            "SELECT gateway, state, last_seen, status, now() FROM gateways ORDER BY gateway"
        ).fetchall()
    gateways = []
    for gateway, state, last_seen, status, now in rows:
        silent = is_silent(last_seen, now, cadence, factor)
        if silent_only and not silent:
            continue
        gateways.append(
            Gateway(
                gateway=gateway,
                state=state,
                last_seen=last_seen,
                silent=silent,
                silent_for_s=max((now - last_seen).total_seconds(), 0.0),
                status=status,
            )
        )
    return GatewayList(cadence_s=cadence, silent_factor=factor, gateways=gateways)
