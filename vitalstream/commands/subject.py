"""``vitalstream subject``: the master patient index (merge a temporary subject, resolve one).

Thin shell around ``ingest_service.mpi``. ``merge`` writes (readings, alerts, rollups,
``subject_merges`` and one audit row, in one transaction); ``resolve`` only reads.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated

import psycopg
import typer

from ingest_service.mpi import SubjectError, merge, resolve
from ingest_service.schema import migrate
from vitalstream.output import EXIT_FAILURE, console, emit_json, reject
from vitalstream.settings import CliSettings

subject_app = typer.Typer(
    help="The master patient index: merge an unidentified patient's temporary subject into "
    "the real one (audited), resolve any pseudonym to its canonical subject.",
    no_args_is_help=True,
)

_DATABASE_HELP = (
    "PostgreSQL URL (default: VITALSTREAM_DATABASE_URL, else "
    "postgresql://postgres@127.0.0.1:5432/vitalstream)."
)

_MERGE_HELP = "\n\n".join(
    (
        "Merge a temporary (ambulance) subject into the real one once the patient is identified.",
        "In one transaction: the temporary subject's readings, alerts and rollups are re-keyed "
        "to the real subject (resolved through the index first, so any of the resident's "
        "pseudonyms works); where both have an open alert for the same rule the newer stays "
        "open; the merge is recorded in subject_merges and in the hash-chained audit log "
        "(action subject_merge, with actor and reason).",
        "Example: vitalstream subject merge --temporary tmp-abcdefghijklmnopqrstuvwxyz "
        "--into pabcdefghijklmnopqrstuvwxyz --reason 'identified by relative at ER triage' --json",
        'prints {"temporary", "subject", "readings", "alerts", "alerts_closed", "rollup_rows", '
        '"merged_at", "audit_id", "repeat"}.',
        "Running it again with the same subjects re-keys readings that arrived under the "
        'temporary subject since ("repeat": true). Refusals exit 3 with error.kind '
        "invalid_subject (not a tmp- subject, or merging into a temporary one), "
        "unknown_subject (nothing stored under it), merge_conflict (already merged into "
        "another subject) or invalid_reason (empty, too long, or holding an ID number: the "
        "reason is audited and must never carry one).",
    )
)


@subject_app.command("merge", help=_MERGE_HELP)
def merge_command(
    temporary: Annotated[
        str,
        typer.Option("--temporary", help="The temporary subject (tmp-...).", show_default=False),
    ],
    into: Annotated[
        str,
        typer.Option("--into", help="The real subject to merge into.", show_default=False),
    ],
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="Why (audited; never an ID number), e.g. 'identified at triage'.",
            show_default=False,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            help="Who merges, for the audit log (default: cli:<OS user>).",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help=_DATABASE_HELP, show_default=False)
    ] = None,
) -> None:
    """Merge a temporary subject into the real one."""
    url = database_url or CliSettings().database_url
    who = actor or f"cli:{getpass.getuser()}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            result = merge(conn, temporary, into, who, reason, now=datetime.now(UTC))
    except SubjectError as error:
        reject(error)
    except psycopg.Error as error:
        console.print(f"[red]database error[/red]: {str(error).strip()}")
        raise typer.Exit(EXIT_FAILURE) from None
    if as_json:
        emit_json(result.as_dict())
    else:
        again = " (repeat: stragglers swept)" if result.repeat else ""
        typer.echo(
            f"merged {result.temporary} into {result.subject}{again}: {result.readings} "
            f"readings, {result.alerts} alerts ({len(result.alerts_closed)} duplicate open "
            f"alerts resolved), audit row {result.audit_id}"
        )


@subject_app.command("resolve")
def resolve_command(
    pseudonym: Annotated[str, typer.Argument(help="Any pseudonym or merged temporary subject.")],
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"pseudonym", "subject"} as JSON.')
    ] = False,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help=_DATABASE_HELP, show_default=False)
    ] = None,
) -> None:
    """Print the canonical subject of a pseudonym (exit 3 unknown_subject when unknown)."""
    url = database_url or CliSettings().database_url
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            subject = resolve(conn, pseudonym)
    except SubjectError as error:
        reject(error)
    except psycopg.Error as error:
        console.print(f"[red]database error[/red]: {str(error).strip()}")
        raise typer.Exit(EXIT_FAILURE) from None
    if as_json:
        emit_json({"pseudonym": pseudonym, "subject": subject})
    else:
        typer.echo(subject)
