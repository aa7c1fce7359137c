"""``vitalstream serve``: the HTTP API under uvicorn (CONTRACTS.md, docs/api.md).

Builds the app from ``ApiSettings`` (``VITALSTREAM_DATABASE_URL`` ...), which applies missing
migrations at start-up, and serves it; OpenAPI at ``/docs``. One worker process: endpoints are
synchronous and run in uvicorn's threadpool against a shared connection pool; run several
processes behind a proxy to scale (every one reads the same signing key file).
"""

from __future__ import annotations

from typing import Annotated

import typer

from ingest_service.api.app import create_app
from ingest_service.api.settings import ApiSettings
from ingest_service.api.tokens import KeyFileError, load_signing_key
from vitalstream.output import EXIT_FAILURE, configure_logging, console

SERVE_HELP = "\n\n".join(
    (
        "Serve the HTTP API (OpenAPI at /docs) against the configured database.",
        "Database: --database-url, else VITALSTREAM_DATABASE_URL, else "
        "postgresql://postgres@127.0.0.1:5432/vitalstream; missing migrations are applied "
        "at start-up. Every /api/v1 request needs a bearer token from `vitalstream token`; "
        "/healthz is open; /metrics is open unless VITALSTREAM_API_METRICS_TOKEN is set.",
        "Example: vitalstream serve --host 127.0.0.1 --port 8000",
        "Serve plain HTTP on loopback only; put TLS (a reverse proxy) in front of anything "
        "reachable from elsewhere: bearer tokens must not cross a network in clear.",
    )
)


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL URL (default: VITALSTREAM_DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="Log level.")] = "info",
) -> None:
    """Serve the HTTP API."""
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    configure_logging(log_level)
    settings = ApiSettings() if database_url is None else ApiSettings(database_url=database_url)
    try:
        load_signing_key(settings.key_file)  # fail here, readably, rather than in the lifespan
    except KeyFileError as error:
        console.print(f"[red]signing key[/red]: {error.detail}")
        raise typer.Exit(EXIT_FAILURE) from None
    app = create_app(settings)
    console.print(f"vitalstream API on http://{host}:{port} (OpenAPI at /docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower())


serve_command.__doc__ = SERVE_HELP
