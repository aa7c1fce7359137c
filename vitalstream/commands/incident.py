"""``vitalstream incident``: ambulance incidents from the handoff tables (issue 9).

The same queries as ``/api/v1/incidents`` and the ER board
(:mod:`ingest_service.api.routers.incidents`), for an operator with database access:
``list``, ``show ID`` and ``ack ID ACTIVATION --by WHO``. An acknowledgement is written to
the audit log (actor ``cli:<who>``) in the same transaction, like one from the board.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from ingest_service import audit
from ingest_service.api.routers import incidents
from ingest_service.handoff import write_bundle
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


# ------------------------------------------------------------------ crew/ER input (writes)
# The same functions as POST/PATCH /api/v1/incidents (an IncidentEvent folded by the handoff
# service's record_event); each write is audited with actor cli:<who>, via "cli".

ByOption = Annotated[
    str | None, typer.Option("--by", help="Who writes (default cli:<login>; audited).")
]
ComplaintOption = Annotated[
    str | None, typer.Option("--complaint", help="Chief complaint (no names, no IDs).")
]
PathwayOption = Annotated[
    str | None,
    typer.Option(help="Suspected pathway: stroke, stemi, trauma, maternal or sepsis."),
]
FindingsOption = Annotated[
    str | None,
    typer.Option(help="Findings as a JSON object, e.g. '{\"befast_positive\": true}'."),
]
AtmistOption = Annotated[str | None, typer.Option(help="ATMIST as a JSON object.")]
SbarOption = Annotated[str | None, typer.Option(help="SBAR as a JSON object.")]
MomentOption = Annotated[str | None, typer.Option(help="ISO 8601 time with a UTC offset.")]
_M = TypeVar("_M", bound=BaseModel)


def _json_object(option: str, text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        console.print(f"[red]{option} is not JSON[/red] ({exc})")
        raise typer.Exit(EXIT_USAGE) from None
    if not isinstance(value, dict):
        console.print(f"[red]{option} must be a JSON object[/red]")
        raise typer.Exit(EXIT_USAGE)
    return value


def _input(model: type[_M], data: dict[str, Any]) -> _M:
    try:
        return model.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "input"
            console.print(f"[red]{where}[/red]: {error['msg']}")
        raise typer.Exit(EXIT_USAGE) from None


def _audited(conn: Any, actor: str, resource: str, done: incidents.Written) -> None:
    audit.append(
        conn,
        audit.AuditEntry(
            time=datetime.now(UTC),
            actor=actor,
            action=incidents.WRITE_ACTIONS[done.event.kind],
            resource=resource,
            detail=incidents.write_detail(done, "cli"),
        ),
    )


def _written(done: incidents.Written, json_output: bool) -> None:
    if json_output:
        emit_json(
            {
                "event_id": done.event.event_id,
                "kind": done.event.kind,
                "incident": done.incident.model_dump(mode="json"),
            }
        )
        return
    typer.echo(
        f"{done.incident.id}: {done.event.kind} recorded ({done.event.event_id}); "
        f"ambulance {done.incident.gateway}, patient {done.incident.subject}"
    )


@incident_app.command("open")
def open_command(
    gateway: Annotated[str, typer.Option("--gateway", help="The ambulance's gateway id.")],
    incident: Annotated[
        str | None, typer.Option("--incident", help="The incident id (default: a new one).")
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(help="The patient's pseudonymous subject (default: a temporary tmp-… one)."),
    ] = None,
    complaint: ComplaintOption = None,
    pathway: PathwayOption = None,
    findings: FindingsOption = None,
    by: ByOption = None,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Open an incident; an unidentified patient gets a temporary ``tmp-…`` subject.
    Example: ``vitalstream incident open --gateway amb-12 --complaint "Chest pain" --json``."""
    fields = _input(
        incidents.OpenIn,
        {
            "gateway": gateway,
            "incident": incident,
            "subject": subject,
            "chief_complaint": complaint,
            "pathway": pathway,
            "findings": _json_object("--findings", findings),
        },
    )
    actor = f"cli:{by or getpass.getuser()}"
    now = datetime.now(UTC)
    try:
        with connect(database_url) as conn, conn.transaction():
            done = incidents.open_incident(conn, fields, incidents.new_event_id("cli"), now)
            _audited(conn, actor, f"incident/{done.incident.id}", done)
    except incidents.IncidentExistsError:
        console.print(f"[red]incident {incident} exists already[/red]")
        raise typer.Exit(EXIT_FAILURE) from None
    _written(done, json_output)


@incident_app.command("update")
def update_command(
    incident: Annotated[str, typer.Argument(help="The incident id.")],
    complaint: ComplaintOption = None,
    pathway: PathwayOption = None,
    call: MomentOption = None,
    on_scene: MomentOption = None,
    depart: MomentOption = None,
    eta: MomentOption = None,
    arrival: MomentOption = None,
    findings: FindingsOption = None,
    atmist: AtmistOption = None,
    sbar: SbarOption = None,
    by: ByOption = None,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Record timeline steps, findings, ATMIST/SBAR, complaint or pathway (a later entry
    replaces an earlier one; what is left out is kept).
    Example: ``vitalstream incident update inc-1 --eta 2026-11-25T11:20:00+00:00``."""
    _check(incident)
    steps = {"call": call, "on_scene": on_scene, "depart": depart, "eta": eta, "arrival": arrival}
    timeline = {k: v for k, v in steps.items() if v is not None}
    fields = _input(
        incidents.UpdateIn,
        {
            "chief_complaint": complaint,
            "pathway": pathway,
            "timeline": timeline or None,
            "findings": _json_object("--findings", findings),
            "atmist": _json_object("--atmist", atmist),
            "sbar": _json_object("--sbar", sbar),
        },
    )
    actor = f"cli:{by or getpass.getuser()}"
    now = datetime.now(UTC)
    with connect(database_url) as conn, conn.transaction():
        done = incidents.update_incident(conn, incident, fields, incidents.new_event_id("cli"), now)
        if done is not None:
            _audited(conn, actor, f"incident/{incident}", done)
    if done is None:
        console.print(f"[red]no incident {incident}[/red]")
        raise typer.Exit(EXIT_FAILURE)
    _written(done, json_output)


@incident_app.command("handoff")
def handoff_command(
    incident: Annotated[str, typer.Argument(help="The incident id.")],
    atmist: AtmistOption = None,
    sbar: SbarOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the Bundle to this file.")
    ] = None,
    by: ByOption = None,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Hand the patient over: marks the incident, builds and stores the FHIR Bundle.
    Example: ``vitalstream incident handoff inc-1 --out /tmp/bundle.json --json``."""
    _check(incident)
    fields = _input(
        incidents.HandoffIn,
        {"atmist": _json_object("--atmist", atmist), "sbar": _json_object("--sbar", sbar)},
    )
    actor = f"cli:{by or getpass.getuser()}"
    now = datetime.now(UTC)
    try:
        with connect(database_url) as conn, conn.transaction():
            done = incidents.hand_over(conn, incident, fields, incidents.new_event_id("cli"), now)
            if done is not None:
                _audited(conn, actor, f"incident/{incident}/handoff", done)
    except incidents.AlreadyHandedOverError:
        console.print(f"[red]incident {incident} was handed over already[/red]")
        raise typer.Exit(EXIT_FAILURE) from None
    if done is None or done.bundle is None:
        console.print(f"[red]no incident {incident}[/red]")
        raise typer.Exit(EXIT_FAILURE)
    written = write_bundle(out, done.bundle) if out is not None else None
    if json_output:
        emit_json(
            {
                "event_id": done.event.event_id,
                "incident": incident,
                "bundle_id": done.bundle_id,
                "out": str(written) if written else None,
                "bundle": json.loads(done.bundle),
            }
        )
        return
    typer.echo(
        f"{incident} handed over; bundle {done.bundle_id}" + (f" -> {written}" if written else "")
    )


if __name__ == "__main__":  # `python -m vitalstream.commands.incident ...` until cli.py wires it
    incident_app()
