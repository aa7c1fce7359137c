"""``vitalstream demo``: the whole pipeline, end to end, in one command."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from vitals import VitalsError
from vitalstream.demo import DemoOptions, run_demo
from vitalstream.output import (
    EXIT_FAILURE,
    configure_logging,
    console,
    emit_json,
    pipeline_progress,
)
from vitalstream.services import ServiceError
from vitalstream.settings import cli_settings


def demo_command(
    duration: Annotated[
        float,
        typer.Option(
            "--duration",
            min=2,
            help="Seconds to run the simulation (home patients live 24 "
            "simulated hours per minute; the ambulance transport spans the whole run).",
        ),
    ] = 20.0,
    patients: Annotated[
        int,
        typer.Option(
            "--patients", min=1, max=200, help="Simulated home patients (plus one ambulance)."
        ),
    ] = 5,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL URL to use (default: VITALSTREAM_DATABASE_URL, else local; an "
            "embedded PostgreSQL starts when nothing answers)."
        ),
    ] = None,
    broker_url: Annotated[
        str | None,
        typer.Option(
            help="MQTT broker URL (default: VITALSTREAM_BROKER_URL, else mqtt://127.0.0.1:1883; "
            "mosquitto or a Python broker starts when nothing answers)."
        ),
    ] = None,
) -> None:
    """Run simulated home patients and one ambulance through the real pipeline.

    Simulated wearables -> edge agents (disk outbox) -> MQTT -> ingest service -> PostgreSQL
    -> rules -> alerts. Starts whatever is missing, stops what it started, and prints what
    happened: published, stored, duplicates dropped, dead-lettered, lost (must be 0), alerts
    per rule and publish-to-commit latency.

    Try: ``vitalstream demo --duration 20 --json``. Kill the broker or the ingest service
    while it runs: the summary still says ``lost: 0``.
    """
    configure_logging("WARNING")
    settings = cli_settings(database_url=database_url, broker_url=broker_url)
    options = DemoOptions(
        duration_s=duration,
        patients=patients,
        database_url=settings.database_url,
        broker_url=settings.broker_url,
        topic_prefix=settings.topic_prefix,
        data_dir=settings.data_dir,
        embedded_broker=settings.embedded_broker,
    )
    with pipeline_progress("demo") as progress:
        try:
            summary = run_demo(options, progress)
        except (ServiceError, VitalsError) as exc:
            console.print(f"[red]demo failed:[/red] {exc}")
            raise typer.Exit(EXIT_FAILURE) from None
    if json_output:
        emit_json(summary)
    else:
        _print_summary(summary)
    if summary["lost"]:
        raise typer.Exit(EXIT_FAILURE)


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title="vitalstream demo", show_header=False)
    for key in (
        "published",
        "stored",
        "duplicates_dropped",
        "dead_lettered",
        "lost",
        "handoffs",
        "database",
        "broker",
    ):
        table.add_row(key, str(summary[key]))
    table.add_row("alerts", ", ".join(f"{k}={v}" for k, v in summary["alerts"].items()) or "0")
    table.add_row(
        "latency p50/p95", f"{summary['latency_ms']['p50']} / {summary['latency_ms']['p95']} ms"
    )
    console.print(table)
    # The plain lines on stdout are what scripts (and the README) look for.
    for key in ("published", "stored", "duplicates_dropped", "dead_lettered", "lost"):
        typer.echo(f"{key}: {summary[key]}")
