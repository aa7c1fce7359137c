"""``vitalstream security report``: raised security alerts (CONTRACTS.md; issue 10, R11).

Thin shell around ``ingest_service.security_report.build_report``. Read-only: it never
migrates or writes the database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import psycopg
import typer

from ingest_service.security_report import (
    DEFAULT_BURST_THRESHOLD,
    DEFAULT_BURST_WINDOW,
    DEFAULT_LOOKBACK,
    SecurityReport,
    build_report,
)
from vitalstream.output import EXIT_FAILURE, console, emit_json
from vitalstream.settings import CliSettings

security_app = typer.Typer(
    help="Leak detection and response: security alerts over the audit log and stored data.",
    no_args_is_help=True,
)

_REPORT_HELP = "\n\n".join(
    (
        "List raised security alerts.",
        "audit_chain_broken (critical): the audit log's hash chain is broken (audit verify). "
        "clear_id_leak (critical): a string passing every GB 11643-1999 check of a resident ID "
        "number is stored in a dead letter, a reading, an alert or the audit log (the alert "
        "never repeats it). read_denied_burst (high): one actor was refused at least "
        "--burst-threshold reads within --burst-window-s. gateway_mismatch (high): a gateway "
        "published batches claiming another gateway's id.",
        "Example: vitalstream security report --json",
        'prints {"alerts": [{"kind", "severity", "detail", "count", "first_seen", '
        '"last_seen"}], "checked_at", "since"}; "alerts" is empty when nothing was found.',
        "The chain is verified whole; the other checks look at the last --since-hours. Exit 0 "
        "whatever was found; with --check, exit 1 when any alert is raised (for cron). A "
        "database that cannot be reached exits 1.",
    )
)


def _print(report: SecurityReport) -> None:
    if not report.alerts:
        typer.echo(f"no security alerts since {report.since.isoformat()}")
        return
    for alert in report.alerts:
        typer.echo(
            f"[{alert.severity}] {alert.kind} x{alert.count} "
            f"({alert.first_seen} .. {alert.last_seen}): {alert.detail}"
        )


@security_app.command("report", help=_REPORT_HELP)
def report_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    since_hours: Annotated[
        float,
        typer.Option("--since-hours", min=0.01, help="How far back the data checks look."),
    ] = DEFAULT_LOOKBACK.total_seconds() / 3600,
    burst_window_s: Annotated[
        float,
        typer.Option("--burst-window-s", min=1, help="Window of the read_denied burst rule."),
    ] = DEFAULT_BURST_WINDOW.total_seconds(),
    burst_threshold: Annotated[
        int,
        typer.Option("--burst-threshold", min=1, help="Denials per window that raise an alert."),
    ] = DEFAULT_BURST_THRESHOLD,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL URL (default: VITALSTREAM_DATABASE_URL, else "
            "postgresql://postgres@127.0.0.1:5432/vitalstream).",
            show_default=False,
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when any alert is raised.")
    ] = False,
) -> None:
    """List raised security alerts."""
    url = database_url or CliSettings().database_url
    try:
        with psycopg.connect(url) as conn:
            conn.read_only = True  # BEGIN READ ONLY: the report never writes
            report = build_report(
                conn,
                now=datetime.now(UTC),
                lookback=timedelta(hours=since_hours),
                burst_window=timedelta(seconds=burst_window_s),
                burst_threshold=burst_threshold,
            )
    except psycopg.Error as error:
        console.print(f"[red]cannot read the database[/red]: {str(error).strip()}")
        raise typer.Exit(EXIT_FAILURE) from None
    if as_json:
        emit_json(report.as_dict())
    else:
        _print(report)
    if check and report.alerts:
        raise typer.Exit(EXIT_FAILURE)
