"""``vitalstream device``: the platform's device registry (see ingest_service.devices)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from ingest_service.devices import register
from vitals import is_identifier, now_utc
from vitalstream.commands.deadletters import DatabaseOption, connect
from vitalstream.output import EXIT_USAGE, console, emit_json

device_app = typer.Typer(
    help="Devices allowed to send readings, and when each was last heard. With "
    "VITALSTREAM_DEVICE_POLICY=quarantine, unregistered devices' readings wait in the dead "
    "letters until registered here.",
    no_args_is_help=True,
)


@device_app.command("register")
def register_command(
    device: Annotated[str, typer.Option(help="Device id as the gateway sends it.")],
    gateway: Annotated[str, typer.Option(help="The gateway it belongs to.")],
    actor: Annotated[str, typer.Option(help="Who registers it (kept in the registry).")] = "cli",
    database_url: DatabaseOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Register a device. Example: ``vitalstream device register --device oxi-7 --gateway gw-3``
    then ``vitalstream deadletters replay --kind unknown_device``."""
    if not (is_identifier(device) and is_identifier(gateway)):
        console.print("[red]device and gateway ids may not contain '/', '+', '#' or spaces[/red]")
        raise typer.Exit(EXIT_USAGE)
    with connect(database_url) as conn:
        created = register(conn, device, gateway, actor, now_utc())
        conn.commit()
    if json_output:
        emit_json({"device": device, "gateway": gateway, "registered": created})
    else:
        typer.echo(f"{device}: {'registered' if created else 'was registered already'}")


@device_app.command("list")
def list_command(
    silent_hours: Annotated[
        float | None,
        typer.Option(help="Only devices not heard for this many hours (who went silent)."),
    ] = None,
    database_url: DatabaseOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """List registered devices, newest silence first. Example: ``vitalstream device list
    --silent-hours 24``."""
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT device, gateway, registered_by, last_seen FROM devices "
            "WHERE %s::float8 IS NULL OR last_seen IS NULL "
            "OR last_seen < now() - make_interval(secs => %s::float8 * 3600) "
            "ORDER BY last_seen NULLS FIRST, device",
            (silent_hours, silent_hours),
        ).fetchall()
    devices = [
        {
            "device": str(d),
            "gateway": str(g),
            "registered_by": str(r),
            "last_seen": seen.isoformat() if isinstance(seen, datetime) else None,
        }
        for d, g, r, seen in rows
    ]
    if json_output:
        emit_json({"devices": devices})
        return
    for item in devices:
        typer.echo(f"{item['device']:<40} {item['gateway']:<30} {item['last_seen']}")
