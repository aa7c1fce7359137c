"""``vitalstream incident``: ambulance incidents from the handoff tables (issue 9).

The same queries as ``/api/v1/incidents`` and the ER board
(:mod:`ingest_service.api.routers.incidents`), for an operator with database access:
``list``, ``show ID`` and ``ack ID ACTIVATION --by WHO``. An acknowledgement is written to
the audit log (actor ``cli:<who>``) in the same transaction, like one from the board.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from ingest_service import audit
from ingest_service.api.routers import incidents
from vitals import is_identifier
from vitalstream.commands.deadletters import DatabaseOption, connect
from vitalstream.output import EXIT_FAILURE, EXIT_USAGE, console, emit_json

incident_app = typer.Typer(
    help="Ambulance incidents as the ER sees them: pathway pre-alerts, acknowledgements, "
    "timeline, latest vitals, the FHIR handoff.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")]


def _check(incident: str) -> None:
    if not is_identifier(incident):
        console.print("[red]an incident id may not contain '/', '+', '#' or spaces[/red]")
        raise typer.Exit(EXIT_USAGE)


def _teams(item: incidents.IncidentSummary) -> str:
    parts = []
    for act in item.activations:
        state = (
            "acknowledged"
            if act.acknowledged_at
            else "NOT acknowledged"
            if act.notifications
            else "not sent"
        )
        parts.append(f"{act.team} ({state})")
    return ", ".join(parts) or "-"


@incident_app.command("list")
def list_command(
    open_only: Annotated[
        bool, typer.Option("--open", help="Only incidents not handed over yet.")
    ] = False,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Open incidents first (soonest ETA first), then the handovers of the last 24 h.
    Example: ``vitalstream incident list --open``."""
    now = datetime.now(UTC)
    with connect(database_url) as conn, conn.transaction():
        found = incidents.list_incidents(conn, None, now, open_only=open_only)
    if json_output:
        emit_json({"incidents": [i.model_dump(mode="json") for i in found], "now": now})
        return
    if not found:
        typer.echo("no incidents")
    for item in found:
        eta = item.eta.strftime("%H:%M") if item.eta else "-"
        last = (
            f"{int((now - item.last_data_at).total_seconds())} s ago"
            if item.last_data_at
            else "no data"
        )
        typer.echo(
            f"{item.id}  {item.status:<11}  {item.suspected_pathway or '-':<8}  ETA {eta}  "
            f"last data {last}  teams: {_teams(item)}"
        )


@incident_app.command("show")
def show_command(
    incident: Annotated[str, typer.Argument(help="The incident id.")],
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """One incident: timeline, pre-alerts and their notifications, latest vitals, handoff.
    Example: ``vitalstream incident show sim-inc-1 --json``."""
    _check(incident)
    now = datetime.now(UTC)
    with connect(database_url) as conn, conn.transaction():
        detail = incidents.incident_detail(conn, incident, now)
    if detail is None:
        console.print(f"[red]no incident {incident}[/red]")
        raise typer.Exit(EXIT_FAILURE)
    if json_output:
        emit_json(detail.model_dump(mode="json"))
        return
    typer.echo(
        f"{detail.id} ({detail.status}) ambulance {detail.gateway}, patient {detail.subject}"
    )
    typer.echo(f"complaint: {detail.chief_complaint or '-'}; pathway (crew): "
               f"{detail.suspected_pathway or '-'}")  # fmt: skip
    for step, moment in detail.timeline.model_dump().items():
        if moment is not None:
            typer.echo(f"  {step:<9} {moment.isoformat()}")
    for act in detail.activations:
        ack = (
            f"acknowledged by {act.acknowledged_by}" if act.acknowledged_at else "not acknowledged"
        )
        typer.echo(f"activation {act.id}: {act.pathway} -> {act.team}, {ack}")
        for reason in act.reasons:
            typer.echo(f"    - {reason}")
    for vital in detail.latest:
        value = f"{vital.value:g} {vital.unit}" if vital.value is not None else vital.no_value
        typer.echo(f"  {vital.metric:<18} {value}  ({vital.time.isoformat()})")
    if detail.handoff is not None:
        typer.echo(f"handoff bundle {detail.handoff.bundle_id}: {detail.handoff.receipt_status}")


@incident_app.command("ack")
def ack_command(
    incident: Annotated[str, typer.Argument(help="The incident id.")],
    activation: Annotated[int, typer.Argument(min=1, help="The activation id (see `show`).")],
    by: Annotated[
        str | None, typer.Option("--by", help="Who acknowledges (default cli:<login>).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="A note for the audit log.")] = None,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """The team acknowledges a pre-alert (first acknowledgement wins; audited).
    Example: ``vitalstream incident ack sim-inc-1 3 --by stroke-lead``."""
    _check(incident)
    actor = f"cli:{by or getpass.getuser()}"
    if note is not None and len(note) > incidents.MAX_NOTE:
        console.print(f"[red]the note is longer than {incidents.MAX_NOTE} characters[/red]")
        raise typer.Exit(EXIT_USAGE)
    now = datetime.now(UTC)
    try:
        with connect(database_url) as conn, conn.transaction():
            done = incidents.acknowledge(conn, incident, activation, actor, now)
            if done is not None and done.changed:
                audit.append(
                    conn,
                    audit.AuditEntry(
                        time=now,
                        actor=actor,
                        action="activation_acknowledged",
                        resource=f"incident/{incident}/activation/{activation}",
                        detail=incidents.ack_detail(done, incident, note, "cli"),
                    ),
                )
    except incidents.NothingToAcknowledgeError:
        console.print("[red]this activation was never sent to the ER: nothing to acknowledge[/red]")
        raise typer.Exit(EXIT_FAILURE) from None
    if done is None:
        console.print(f"[red]incident {incident} has no activation {activation}[/red]")
        raise typer.Exit(EXIT_FAILURE)
    result: dict[str, Any] = {
        "incident": incident,
        "activation": done.activation.model_dump(mode="json"),
        "changed": done.changed,
    }
    if json_output:
        emit_json(result)
        return
    state = "acknowledged" if done.changed else "was acknowledged already"
    typer.echo(f"{done.activation.team} pre-alert {state} by {done.activation.acknowledged_by}")


if __name__ == "__main__":  # `python -m vitalstream.commands.incident ...` until cli.py wires it
    incident_app()
