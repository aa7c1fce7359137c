"""``/api/v1/gateways``: each gateway's last status, whether it went silent, its registered
devices and the hospital its incidents are routed to by default; a gateway's own status
written over HTTP by its ``device`` client.

Not patient data (a gateway id and its device list), so reads are not audited; patients may
not list gateways (it would show who else is monitored where). A ``device`` token (a
gateway's client) sees and writes its own gateway only: anything else is 403 with an audit
row, like the broker's ACL refuses it another gateway's topics.

Readings are not written here: they travel on MQTT, where the ingest service stores them and
runs the rules engine in the same transaction. A readings batch stored through the API would
be stored without being judged (no alert for a falling SpO2), so the API has no such path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from ingest_service.api.access import DEVICE_ROLES, GATEWAY_ROLES
from ingest_service.api.db import Connection
from ingest_service.api.deps import (
    ConnectionDep,
    PrincipalDep,
    SettingsDep,
    record,
    require_role,
    scoped,
)
from ingest_service.api.models import Gateway, GatewayDetail, GatewayList, RegisteredDevice
from ingest_service.api.tokens import Principal, Role
from ingest_service.storage import upsert_gateway_status
from vitals import GatewayStatus
from vitals.models import IDENTIFIER_PATTERN, Identifier

router = APIRouter(prefix="/gateways", tags=["gateways"])

GatewayPath = Annotated[str, Path(pattern=IDENTIFIER_PATTERN, description="The gateway id.")]

#: Who may set a gateway's default incident route.
ROUTE_ROLES: frozenset[Role] = frozenset({"admin"})


def is_silent(last_seen: datetime, now: datetime, cadence_s: float, factor: float) -> bool:
    """A gateway is silent when its last status is older than ``factor`` times its cadence.

    One missed status is normal (a reconnect, a busy broker); ``factor`` (default 3) says how
    many in a row make it worth a look.
    """
    return now - last_seen > timedelta(seconds=cadence_s * factor)


def _gateway(row: tuple[Any, ...], now: datetime, cadence: float, factor: float) -> Gateway:
    gateway, state, last_seen, stored = row
    return Gateway(
        gateway=gateway,
        state=state,
        last_seen=last_seen,
        silent=is_silent(last_seen, now, cadence, factor),
        silent_for_s=max((now - last_seen).total_seconds(), 0.0),
        status=stored,
    )


@router.get(
    "",
    response_model=GatewayList,
    summary="Gateways, last seen, silent ones",
    **scoped("gateways:read"),
)
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
    gateways = [_gateway(row[:4], row[4], cadence, factor) for row in rows]
    if silent_only:
        gateways = [g for g in gateways if g.silent]
    return GatewayList(cadence_s=cadence, silent_factor=factor, gateways=gateways)


def _own_gateway(
    conn: Connection,
    request: Request,
    who: Principal,
    gateway: str,
    resource: str,
    roles: frozenset[Role],
    action: str,
) -> None:
    """403 with an audit row unless ``who`` is in ``roles`` or is the gateway's own device."""
    if who.role in DEVICE_ROLES and who.gateway == gateway:
        return
    if who.role in roles and who.role not in DEVICE_ROLES:
        return
    reason = "other gateway" if who.role in DEVICE_ROLES else "role"
    with conn.transaction():
        record(conn, request, who, resource, {"reason": reason, "gateway": gateway}, action=action)
    raise HTTPException(
        status.HTTP_403_FORBIDDEN,
        detail="a device speaks for its own gateway only"
        if who.role in DEVICE_ROLES
        else f"role {who.role} may not do this",
    )


@router.get(
    "/{gateway}",
    response_model=GatewayDetail,
    summary="One gateway: status, registered devices, default incident route",
    **scoped("gateways:read"),
)
def get_gateway(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    settings: SettingsDep,
    gateway: GatewayPath,
) -> GatewayDetail:
    """The gateway's last status (null before its first), the devices registered under it and
    the hospital its incidents go to by default. A device token reads its own gateway only."""
    resource = f"gateway/{gateway}"
    _own_gateway(conn, request, who, gateway, resource, GATEWAY_ROLES, "read_denied")
    with conn.transaction():
        row = conn.execute(
            "SELECT gateway, state, last_seen, status, now() FROM gateways WHERE gateway = %s",
            (gateway,),
        ).fetchone()
        devices = conn.execute(
            "SELECT device, registered_by, registered_at, last_seen FROM devices"
            " WHERE gateway = %s ORDER BY device",
            (gateway,),
        ).fetchall()
        route = conn.execute(
            "SELECT hospital FROM gateway_routes WHERE gateway = %s", (gateway,)
        ).fetchone()
    if row is None and not devices and route is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such gateway")
    return GatewayDetail(
        gateway=gateway,
        status=None
        if row is None
        else _gateway(row[:4], row[4], settings.gateway_cadence_s, settings.gateway_silent_factor),
        hospital=None if route is None else str(route[0]),
        devices=[
            RegisteredDevice(device=d, registered_by=by, registered_at=at, last_seen=seen)
            for d, by, at, seen in devices
        ],
    )


@router.put(
    "/{gateway}/status",
    response_model=Gateway,
    summary="A gateway's own status, over HTTP (device clients)",
    **scoped("gateways:write"),
)
def put_status(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    settings: SettingsDep,
    gateway: GatewayPath,
    body: GatewayStatus,
) -> Gateway:
    """What the gateway would publish retained on ``.../status`` (``vitals.GatewayStatus``),
    for a gateway whose MQTT link is down or blocked. Only the gateway's own ``device``
    token may write it (403 and a ``write_denied`` row otherwise); ``gateway`` in the body
    must be the path's (422)."""
    resource = f"gateway/{gateway}/status"
    _own_gateway(conn, request, who, gateway, resource, frozenset(), "write_denied")
    if body.gateway != gateway:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="the status names another gateway"
        )
    with conn.transaction():
        upsert_gateway_status(conn, body)
        row = conn.execute(
            "SELECT gateway, state, last_seen, status, now() FROM gateways WHERE gateway = %s",
            (gateway,),
        ).fetchone()
    assert row is not None
    return _gateway(row[:4], row[4], settings.gateway_cadence_s, settings.gateway_silent_factor)


class RouteIn(BaseModel):
    """The hospital a gateway's new incidents go to (null: none), and why."""

    model_config = ConfigDict(extra="forbid")

    hospital: Identifier | None
    reason: str = Field("", max_length=500, description="Why (kept in the audit log).")


class RouteOut(BaseModel):
    """The route now in force and the one before it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gateway: str
    hospital: str | None
    previous: str | None


@router.put(
    "/{gateway}/route",
    response_model=RouteOut,
    summary="Route a gateway's new incidents to a hospital (admin)",
    **scoped("gateways:write"),
)
def put_route(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    gateway: GatewayPath,
    body: RouteIn,
) -> RouteOut:
    """Incidents this gateway (an ambulance) opens from now on are routed to ``hospital``
    unless they are opened with one; incidents already open keep theirs (re-route one with
    ``PUT /incidents/{id}/hospital``). Audited as ``gateway_routed``."""
    resource = f"gateway/{gateway}/route"
    if who.role not in ROUTE_ROLES:
        with conn.transaction():
            record(conn, request, who, resource, {"reason": "role"}, action="write_denied")
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"role {who.role} may not route")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"route:{gateway}",))
        before = conn.execute(
            "SELECT hospital FROM gateway_routes WHERE gateway = %s", (gateway,)
        ).fetchone()
        if body.hospital is None:
            conn.execute("DELETE FROM gateway_routes WHERE gateway = %s", (gateway,))
        else:
            conn.execute(
                "INSERT INTO gateway_routes (gateway, hospital, set_by, set_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (gateway) DO UPDATE"
                " SET hospital = excluded.hospital, set_by = excluded.set_by,"
                " set_at = excluded.set_at",
                (gateway, body.hospital, who.actor, datetime.now(UTC)),
            )
        previous = None if before is None else str(before[0])
        record(
            conn,
            request,
            who,
            resource,
            {
                "gateway": gateway,
                "hospital": body.hospital,
                "previous": previous,
                "reason": body.reason,
            },
            action="gateway_routed",
        )
    return RouteOut(gateway=gateway, hospital=body.hospital, previous=previous)
