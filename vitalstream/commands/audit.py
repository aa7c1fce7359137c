"""``vitalstream audit``: check the tamper-evident audit log (CONTRACTS.md, ``audit verify``).

Thin shell: reads ``audit_log`` in chain order and hands it to the pure
``ingest_service.audit.verify``. Read-only: it never migrates or writes the database.
"""

from __future__ import annotations

from typing import Annotated

import psycopg
import typer

from ingest_service.audit import Verification, audit_log_exists, iter_rows, verify
from vitalstream.output import EXIT_FAILURE, console, emit_json
from vitalstream.settings import CliSettings

audit_app = typer.Typer(
    help="The tamper-evident audit log: every read and write of patient data, hash-chained "
    "(SM3, GM/T 0004-2012) so that an altered or deleted row shows.",
    no_args_is_help=True,
)

_VERIFY_HELP = "\n\n".join(
    (
        "Recompute the audit log's hash chain and report the first row that does not fit.",
        "Each row's hash is SM3 (or SHA-256) over the previous row's hash and the row's "
        "canonical JSON (time, actor, action, resource, detail). A row whose content was "
        "altered fails its own hash; a deleted row makes the row after it fail.",
        "Example: vitalstream audit verify --json",
        'prints {"rows": 1532, "ok": true, "first_bad_row": null}; after tampering, e.g. '
        '{"rows": 1532, "ok": false, "first_bad_row": 17} where 17 is audit_log.id of the '
        "first altered row (or of the row after a deleted one).",
        "Exit 0 whatever the verdict (read `ok`); with --check, exit 1 when the chain is "
        "broken, for cron and monitoring. A database that cannot be reached exits 1.",
        "Cutting off the newest rows cannot be seen from the chain alone: compare the row "
        "count and last hash with a copy kept elsewhere (docs/security.md).",
    )
)


def _payload(result: Verification) -> dict[str, object]:
    return {"rows": result.rows, "ok": result.ok, "first_bad_row": result.first_bad_row}


@audit_app.command("verify", help=_VERIFY_HELP)
def verify_command(
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Print {"rows", "ok", "first_bad_row"} on stdout.'),
    ] = False,
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
        bool, typer.Option("--check", help="Exit 1 when the chain is broken.")
    ] = False,
) -> None:
    """Verify the audit log's hash chain."""
    url = database_url or CliSettings().database_url
    try:
        with psycopg.connect(url) as conn:
            conn.read_only = True  # BEGIN READ ONLY: verifying never writes
            result = verify(iter_rows(conn)) if audit_log_exists(conn) else verify([])
    except psycopg.Error as error:
        console.print(f"[red]cannot read the audit log[/red]: {str(error).strip()}")
        raise typer.Exit(EXIT_FAILURE) from None
    if as_json:
        emit_json(_payload(result))
    elif result.ok:
        typer.echo(f"audit log intact: {result.rows} rows, chain verified")
    else:
        typer.echo(
            f"audit log BROKEN: first bad row is id {result.first_bad_row} "
            f"({result.rows} rows read)"
        )
    if check and not result.ok:
        raise typer.Exit(EXIT_FAILURE)
