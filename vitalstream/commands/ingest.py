"""``vitalstream ingest``: run the ingest service."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from ingest_service import IngestService, IngestSettings
from ingest_service.service import tune_garbage_collector
from vitalstream.ingest_workers import follow_supervisor, supervise
from vitalstream.output import configure_logging, console

ingest_app = typer.Typer(
    help="The ingest service: MQTT -> validation -> PostgreSQL/TimescaleDB -> rules.",
    no_args_is_help=True,
)


@ingest_app.command("run")
def run_command(
    database_url: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL URL (default from VITALSTREAM_DATABASE_URL or "
            "postgresql://postgres@127.0.0.1:5432/vitalstream)."
        ),
    ] = None,
    broker_url: Annotated[
        str | None, typer.Option(help="MQTT broker URL, e.g. mqtt://127.0.0.1:1883.")
    ] = None,
    topic_prefix: Annotated[
        str | None, typer.Option(help="First topic level (default vs).")
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            help="MQTT client id; keep it stable so the broker keeps unacknowledged messages "
            "for this worker across restarts."
        ),
    ] = None,
    ready_file: Annotated[
        Path | None,
        typer.Option(
            help="Create this file once subscribed (lets a supervisor wait for readiness)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes sharing the stream through an MQTT shared subscription "
            "(group VITALSTREAM_SHARED_GROUP, default 'ingest'); about one per CPU core. Each "
            "gets the client id <client-id>-<n>. One rules consumer judges for all of them.",
        ),
    ] = 1,
) -> None:
    """Consume readings until SIGTERM/SIGINT; every message is acked only after its commit.

    Example: ``VITALSTREAM_DATABASE_URL=postgresql://postgres@127.0.0.1/vitalstream
    vitalstream ingest run --workers 2``
    """
    configure_logging(log_level)
    overrides = {
        key: value
        for key, value in {
            "database_url": database_url,
            "broker_url": broker_url,
            "topic_prefix": topic_prefix,
            "ingest_client_id": client_id,
        }.items()
        if value is not None
    }
    settings = IngestSettings(**overrides)  # type: ignore[arg-type]
    stop = threading.Event()

    def _graceful(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _graceful)
    signal.signal(signal.SIGINT, _graceful)
    if workers > 1:
        tune_garbage_collector()  # the rules consumer runs here, with the engine's state
        supervise(settings, workers, ready_file, log_level, stop)
        return
    follow_supervisor(stop)
    with IngestService(settings) as service:
        if not service.wait_ready(30):
            console.print(
                f"[red]no MQTT broker answered at {settings.broker_url}[/red]: start "
                "one (e.g. `mosquitto -d`) or set VITALSTREAM_BROKER_URL"
            )
            raise typer.Exit(1)
        if ready_file is not None:
            ready_file.touch()
        tune_garbage_collector()
        service.run_until(stop)
