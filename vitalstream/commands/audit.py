"""``vitalstream audit``: check the tamper-evident audit log (CONTRACTS.md, ``audit verify``)
and export a time window of it for the supervisor (``audit export``).

Thin shell: reads ``audit_log`` in chain order and hands it to the pure
``ingest_service.audit.verify``. ``verify`` is read-only; ``export`` writes one audit row
(the export is itself an access to the log) and never migrates the database.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer

from ingest_service.audit import (
    AuditEntry,
    AuditRow,
    Verification,
    append,
    audit_log_exists,
    iter_rows,
    verify,
)
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


# --------------------------------------------------------------------------- export

_EXPORT_HELP = "\n\n".join(
    (
        "Write the audit rows of a time window to a CSV or JSON Lines file, for the supervisor.",
        "Rows with since <= time < until, in chain (id) order. Columns: id, time (UTC, ISO "
        "8601), actor, action, resource, detail (compact JSON), algorithm, prev_hash and hash "
        "(hex), so the supervisor can re-check the chain of the window: each row's prev_hash "
        "is the hash of the row before it (the first one links to the row before the window).",
        "The format follows the file name: .csv (RFC 4180, UTF-8, a header row) or .jsonl "
        "(one JSON object per line). The file is written atomically with mode 0600: it says "
        "who read which (pseudonymous) subject. The export appends its own audit row (action "
        "export) so that bulk exports show in `vitalstream security report`.",
        "Example: vitalstream audit export --since 2026-11-01 --until 2026-12-01 "
        "--out audit-2026-11.csv",
        'prints e.g. "exported 1532 audit rows to audit-2026-11.csv"; with --json '
        '{"rows": 1532, "out": "audit-2026-11.csv", "format": "csv"}. A date without a time '
        "means midnight UTC; a time without an offset is UTC.",
    )
)

EXPORT_COLUMNS = (
    "id", "time", "actor", "action", "resource", "detail", "algorithm", "prev_hash", "hash"
)  # fmt: skip
_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _moment(text: str, option: str) -> datetime:
    try:
        return _utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise typer.BadParameter(
            "an ISO 8601 date or time, e.g. 2026-11-01 or 2026-11-01T08:00:00+08:00",
            param_hint=option,
        ) from None


def export_record(row: AuditRow) -> dict[str, Any]:
    """One exported row: JSON values only (times in UTC, hashes in hex)."""
    return {
        "id": row.id,
        "time": _utc(row.entry.time).isoformat(timespec="microseconds"),
        "actor": row.entry.actor,
        "action": row.entry.action,
        "resource": row.entry.resource,
        "detail": row.entry.detail,
        "algorithm": row.algorithm,
        "prev_hash": row.prev_hash.hex(),
        "hash": row.hash.hex(),
    }


def render_export(rows: list[AuditRow], fmt: str) -> str:
    """The file's text: CSV with a header row, or one JSON object per line."""
    records = [export_record(row) for row in rows]
    if fmt == "jsonl":
        return "".join(
            json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records
        )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for record in records:
        detail = json.dumps(record["detail"], ensure_ascii=False, separators=(",", ":"))
        writer.writerow(record | {"detail": detail})
    return buffer.getvalue()


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file + rename), mode 0600."""
    temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


_SELECT_WINDOW = (
    "SELECT id, time, actor, action, resource, detail, algorithm, prev_hash, hash"
    " FROM audit_log WHERE time >= %s AND time < %s ORDER BY id"
)


@audit_app.command("export", help=_EXPORT_HELP)
def export_command(
    since: Annotated[
        str,
        typer.Option(
            "--since",
            help="First moment included (ISO 8601 date or time; UTC if no offset).",
            show_default=False,
        ),
    ],
    until: Annotated[
        str,
        typer.Option(
            "--until",
            help="First moment excluded (ISO 8601 date or time; UTC if no offset).",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Output file: *.csv or *.jsonl.", dir_okay=False)
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"rows", "out", "format"} on stdout.')
    ] = False,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            help="Who exports, for the audit row (default: cli:<OS user>).",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL URL (default: VITALSTREAM_DATABASE_URL, else "
            "postgresql://postgres@127.0.0.1:5432/vitalstream).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Export the audit rows of a time window."""
    fmt = _FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise typer.BadParameter("the file name must end in .csv or .jsonl", param_hint="--out")
    start, end = _moment(since, "--since"), _moment(until, "--until")
    if end <= start:
        raise typer.BadParameter("--until must be after --since", param_hint="--until")
    if not out.parent.is_dir():
        raise typer.BadParameter(f"no directory {out.parent}", param_hint="--out")
    url = database_url or CliSettings().database_url
    try:
        with psycopg.connect(url) as conn:
            if not audit_log_exists(conn):
                console.print("[red]no audit log in this database[/red] (never migrated?)")
                raise typer.Exit(EXIT_FAILURE)
            rows = [_row_of(r) for r in conn.execute(_SELECT_WINDOW, (start, end)).fetchall()]
            _write_private(out, render_export(rows, fmt))
            append(
                conn,
                AuditEntry(
                    time=datetime.now(UTC),
                    actor=actor or f"cli:{getpass.getuser()}",
                    action="export",
                    resource="audit_log/export",
                    detail={
                        "format": fmt,
                        "since": start.isoformat(),
                        "until": end.isoformat(),
                        "rows": len(rows),
                        "purpose": "supervision",
                    },
                ),
            )
            conn.commit()
    except psycopg.Error as error:
        console.print(f"[red]cannot export the audit log[/red]: {str(error).strip()}")
        raise typer.Exit(EXIT_FAILURE) from None
    if as_json:
        emit_json({"rows": len(rows), "out": str(out), "format": fmt})
    else:
        typer.echo(f"exported {len(rows)} audit rows to {out}")


def _row_of(values: tuple[Any, ...]) -> AuditRow:
    return AuditRow(
        id=int(values[0]),
        entry=AuditEntry(
            time=values[1],
            actor=str(values[2]),
            action=str(values[3]),
            resource=str(values[4]),
            detail=values[5],
        ),
        algorithm=str(values[6]),
        prev_hash=bytes(values[7]),
        hash=bytes(values[8]),
    )
