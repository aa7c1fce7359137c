"""``vitalstream handoff``: the pre-hospital handoff (issue 9; CONTRACTS.md)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from vitals import VitalsError
from vitalstream.handoff_demo import HandoffDemoError, HandoffDemoOptions, run_handoff_demo
from vitalstream.output import EXIT_FAILURE, configure_logging, console, emit_json
from vitalstream.services import ServiceError
from vitalstream.settings import cli_settings

handoff_app = typer.Typer(
    help="Pre-hospital handoff: ambulance incident -> pathway pre-alert -> FHIR Bundle to the ER.",
    no_args_is_help=True,
)


@handoff_app.callback()
def _handoff_group() -> None:
    """Pre-hospital handoff: ambulance incident -> pathway pre-alert -> FHIR Bundle to the ER."""


class DemoPathwayChoice(StrEnum):
    """The scripted incidents of ``handoff demo``."""

    stroke = "stroke"
    stemi = "stemi"
    trauma = "trauma"
    maternal = "maternal"


@handoff_app.command("demo")
def demo_command(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for bundle.json (created if missing).")
    ],
    pathway: Annotated[
        DemoPathwayChoice, typer.Option("--pathway", help="Which scripted incident to run.")
    ] = DemoPathwayChoice.stroke,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(help="PostgreSQL URL (default: VITALSTREAM_DATABASE_URL; embedded fallback)."),
    ] = None,
    broker_url: Annotated[
        str | None,
        typer.Option(help="MQTT broker URL (default: VITALSTREAM_BROKER_URL; embedded fallback)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=5, help="Seconds to wait for the ER.")
    ] = 90.0,
) -> None:
    """Run one SYNTHETIC ambulance incident through the real pipeline.

    Simulated monitor + crew events -> edge agent (disk outbox) -> MQTT -> ingest service ->
    PostgreSQL; handoff service -> pathway rules -> ER pre-alert -> handover -> FHIR R4
    document Bundle in OUT/bundle.json. Prints the team(s) activated and
    activation_to_notification_ms (finding received -> ER notified).

    Try: ``vitalstream handoff demo --pathway stemi --out /tmp/handoff --json``.
    """
    configure_logging("WARNING")
    settings = cli_settings(database_url=database_url, broker_url=broker_url)
    options = HandoffDemoOptions(
        pathway=pathway.value,
        out_dir=out,
        database_url=settings.database_url,
        broker_url=settings.broker_url,
        topic_prefix=settings.topic_prefix,
        data_dir=settings.data_dir,
        embedded_broker=settings.embedded_broker,
        timeout_s=timeout,
    )
    try:
        with console.status(f"handoff demo: {pathway.value} incident"):
            summary = run_handoff_demo(options)
    except (ServiceError, VitalsError, HandoffDemoError, ValidationError) as exc:
        console.print(f"[red]handoff demo failed:[/red] {exc}")
        raise typer.Exit(EXIT_FAILURE) from None
    if json_output:
        emit_json(summary)
        return
    typer.echo(f"incident: {summary['incident_id']} ({summary['pathway']}, SYNTHETIC)")
    typer.echo(f"activated: {', '.join(summary['activated'])}")
    typer.echo(f"activation_to_notification_ms: {summary['activation_to_notification_ms']}")
    typer.echo(f"bundle: {summary['bundle']}")


if (
    __name__ == "__main__"
):  # `python -m vitalstream.commands.handoff demo ...` until cli.py wires it
    handoff_app()
