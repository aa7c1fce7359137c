"""``vitalstream chaos``: prove "nothing lost, nothing stored twice" under SIGKILLs."""

from __future__ import annotations

from typing import Annotated

import typer

from vitals import VitalsError
from vitalstream.chaos import run_chaos
from vitalstream.demo import DemoOptions
from vitalstream.output import (
    EXIT_FAILURE,
    configure_logging,
    console,
    emit_json,
    pipeline_progress,
)
from vitalstream.services import ServiceError
from vitalstream.settings import CliSettings


def chaos_command(
    broker_kills: Annotated[
        int,
        typer.Option("--broker-kills", min=0, max=20, help="How many times to SIGKILL the broker."),
    ] = 3,
    ingest_kills: Annotated[
        int,
        typer.Option(
            "--ingest-kills", min=0, max=20, help="How many times to SIGKILL the ingest service."
        ),
    ] = 3,
    duration: Annotated[
        float,
        typer.Option(
            "--duration", min=5, help="Seconds of publishing; kills are spread evenly over it."
        ),
    ] = 40.0,
    patients: Annotated[
        int,
        typer.Option(
            "--patients", min=1, max=200, help="Simulated home patients (plus one ambulance)."
        ),
    ] = 5,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Publish simulated readings while killing the broker and the ingest service (SIGKILL).

    Runs its own embedded broker (so it may kill it) and the configured database. Each dead
    process is restarted by a supervisor; edge outboxes re-send what was not confirmed. The
    verdict is read from the database: ``lost`` and ``duplicates_stored`` must both be 0
    (exit 1 otherwise).

    Example: ``vitalstream chaos --broker-kills 3 --ingest-kills 3 --json``
    """
    configure_logging("WARNING")
    settings = CliSettings()
    options = DemoOptions(
        duration_s=duration,
        patients=patients,
        database_url=settings.database_url,
        broker_url=settings.broker_url,
        topic_prefix=settings.topic_prefix,
        data_dir=settings.data_dir,
        embedded_broker=settings.embedded_broker,
    )
    with pipeline_progress("chaos") as progress:
        try:
            summary = run_chaos(options, broker_kills, ingest_kills, progress)
        except (ServiceError, VitalsError) as exc:
            console.print(f"[red]chaos failed:[/red] {exc}")
            raise typer.Exit(EXIT_FAILURE) from None
    if json_output:
        emit_json(summary)
    else:
        for key, value in summary.items():
            typer.echo(f"{key}: {value}")
    if summary["lost"] or summary["duplicates_stored"]:
        raise typer.Exit(EXIT_FAILURE)
