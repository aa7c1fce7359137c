"""``vitalstream bench``: speed and memory measured against a ceiling taken in the same run."""

from __future__ import annotations

from typing import Annotated

import typer

from vitalstream.bench_ingest import run_bench_ingest
from vitalstream.commands.bench_decode import bench_decode_command
from vitalstream.commands.bench_edge import bench_edge_command
from vitalstream.commands.bench_rules import bench_rules_command
from vitalstream.output import EXIT_FAILURE, configure_logging, console, emit_json
from vitalstream.services import ServiceError
from vitalstream.settings import CliSettings

bench_app = typer.Typer(
    help="Benchmarks (CONTRACTS.md). Each prints what it measured; --json gives one object. "
    "Results with machine and date belong in docs/benchmarks.md.",
    no_args_is_help=True,
)
bench_app.command("decode")(bench_decode_command)
bench_app.command("edge")(bench_edge_command)
bench_app.command("rules")(bench_rules_command)


@bench_app.command("ingest")
def bench_ingest_command(
    readings: Annotated[
        int, typer.Option(min=1000, help="Readings for the throughput run.")
    ] = 200_000,
    batch_size: Annotated[
        int, typer.Option(min=1, max=2000, help="Readings per MQTT message.")
    ] = 500,
    rate: Annotated[float, typer.Option(help="Readings/s for the latency run.")] = 10_000.0,
    latency_seconds: Annotated[float, typer.Option(help="Length of the latency run.")] = 10.0,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=16,
            help="Ingest worker processes (`ingest run --workers`; a shared subscription splits "
            "the stream). Default: one per CPU core (the deployment docs/ingest.md recommends) on "
            "a broker with shared subscriptions (Mosquitto, EMQX), else 1.",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Full ingest path (MQTT -> validate -> dedup -> commit) vs a binary-COPY ceiling.

    Uses the configured PostgreSQL and broker (embedded ones when none answer), in a fresh
    database dropped afterwards. Example: ``vitalstream bench ingest --json`` ->
    {"readings_per_s", "ceiling_readings_per_s", "ratio", "latency_ms": {"p50", "p95", "p99"},
    "readings"}. Record results in docs/benchmarks.md with the machine and date.
    """
    configure_logging("WARNING")
    settings = CliSettings()
    try:
        with console.status("benchmarking ingest") as status:
            result = run_bench_ingest(
                settings.database_url,
                settings.broker_url,
                settings.data_dir,
                readings=readings,
                batch_size=batch_size,
                rate=rate,
                latency_seconds=latency_seconds,
                workers=workers,
                progress=status.update,
            )
    except ServiceError as exc:
        console.print(f"[red]bench failed:[/red] {exc}")
        raise typer.Exit(EXIT_FAILURE) from None
    if json_output:
        emit_json(result)
        return
    for key, value in result.items():
        typer.echo(f"{key}: {value}")
