"""``vitalstream deadletters``: look at and replay what ingest could not store."""

from __future__ import annotations

from typing import Annotated

import psycopg
import typer

from ingest_service import migrate
from ingest_service.replay import replay
from vitals import now_utc
from vitalstream.output import EXIT_FAILURE, console, emit_json
from vitalstream.settings import CliSettings

deadletters_app = typer.Typer(
    help="Dead letters: messages and readings the ingest service could not store, kept with "
    "their raw bytes and the reason.",
    no_args_is_help=True,
)

DatabaseOption = Annotated[
    str | None, typer.Option(help="PostgreSQL URL (default: VITALSTREAM_DATABASE_URL).")
]


def connect(database_url: str | None) -> psycopg.Connection[tuple[object, ...]]:
    url = database_url or CliSettings().database_url
    try:
        conn = psycopg.connect(url, connect_timeout=5)
    except psycopg.OperationalError as exc:
        console.print(
            f"[red]cannot reach the database[/red] ({exc}); set "
            "VITALSTREAM_DATABASE_URL or pass --database-url"
        )
        raise typer.Exit(EXIT_FAILURE) from None
    migrate(conn)
    return conn


@deadletters_app.command("list")
def list_command(
    database_url: DatabaseOption = None,
    pending: Annotated[bool, typer.Option(help="Only those not replayed yet.")] = True,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Count dead letters by reason. Example: ``vitalstream deadletters list --json``."""
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT reason_kind, count(*), min(received_at), max(received_at) FROM dead_letters "
            "WHERE replayed_at IS NULL OR NOT %s GROUP BY reason_kind ORDER BY 2 DESC",
            (pending,),
        ).fetchall()
    kinds = [
        {"kind": str(k), "count": int(str(n)), "first": f, "last": last} for k, n, f, last in rows
    ]
    if json_output:
        emit_json({"dead_letters": kinds})
        return
    for item in kinds:
        typer.echo(f"{item['kind']}: {item['count']} (first {item['first']}, last {item['last']})")


@deadletters_app.command("replay")
def replay_command(
    database_url: DatabaseOption = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help="Only this reason kind (repeatable), e.g. --kind implausible."),
    ] = None,
    ids: Annotated[list[int] | None, typer.Option("--id", help="Only this dead letter id.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Judge dead letters again with today's code and store what now passes.

    Use after a fix (a catalogue change, a registered device). A reading can never be stored
    twice: the writer's unique key holds for replays too. Example:
    ``vitalstream deadletters replay --kind schema --json``
    """
    with connect(database_url) as conn:
        outcome = replay(conn, now_utc(), kinds=kind or (), ids=ids or ())
    summary = {
        "examined": outcome.examined,
        "stored": outcome.stored,
        "duplicates": outcome.duplicates,
        "still_rejected": outcome.still_rejected,
    }
    if json_output:
        emit_json(summary)
        return
    typer.echo(
        f"examined {outcome.examined}, stored {outcome.stored}, duplicates "
        f"{outcome.duplicates}, still rejected {len(outcome.still_rejected)}"
    )
