"""``vitalstream user`` and ``vitalstream client``: accounts that log in to the API.

Thin shell around ``ingest_service.users``. Passwords are read from a hidden prompt (asked
twice) or, with ``--password-stdin``, from the first line of standard input, never from an
argument (argument lists are visible to every local user and land in shell history). Client
secrets are generated here and printed once. Every change is written to the audit log.
"""

from __future__ import annotations

import getpass
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
import typer

from ingest_service import audit, users
from ingest_service.schema import migrate
from vitals import VitalsError
from vitalstream.output import EXIT_FAILURE, console, emit_json, reject
from vitalstream.settings import CliSettings

user_app = typer.Typer(
    help="People who log in to the API and the web pages with a password (OAuth2 password "
    "grant): patients, doctors, ER staff, admins.",
    no_args_is_help=True,
)
client_app = typer.Typer(
    help="Services that log in as themselves (OAuth2 client-credentials grant), e.g. a "
    "regional platform.",
    no_args_is_help=True,
)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL URL (default: VITALSTREAM_DATABASE_URL).",
        show_default=False,
    ),
]
ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor", help="Who, for the audit log (default: cli:<OS user>).", show_default=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input."
    ),
]
NameOption = Annotated[
    str, typer.Option("--username", help="The login name (the token's `sub`).", show_default=False)
]


class UnknownAccountError(VitalsError):
    """No user or client of that name."""

    kind = "unknown_account"


@contextmanager
def _connect(database_url: str | None) -> Iterator[psycopg.Connection[Any]]:
    url = database_url or CliSettings().database_url
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            migrate(conn)
            yield conn
    except psycopg.OperationalError as error:
        console.print(f"[red]database error[/red]: {str(error).strip()}")
        raise typer.Exit(EXIT_FAILURE) from None


def _audit(
    conn: psycopg.Connection[Any], actor: str | None, action: str, resource: str, **detail: Any
) -> None:
    audit.append(
        conn,
        audit.AuditEntry(
            time=datetime.now(UTC),
            actor=actor or f"cli:{getpass.getuser()}",
            action=action,
            resource=resource,
            detail=detail,
        ),
    )


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat it: ") != first:
        reject(users.AccountError("the two passwords differ"))
    return first


@user_app.command("add")
def add_command(
    username: NameOption,
    role: Annotated[
        str, typer.Option("--role", help="patient, doctor, er or admin.", show_default=False)
    ],
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="A patient's own subject (required for patients)."),
    ] = None,
    contract: Annotated[
        list[str] | None,
        typer.Option("--contract", help="A doctor's contracted subject (repeat)."),
    ] = None,
    hospital: Annotated[
        str | None,
        typer.Option("--hospital", help="An er user's hospital (sees its incidents only)."),
    ] = None,
    password_stdin: PasswordStdinOption = False,
    actor: ActorOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a user. Example: ``vitalstream user add --username dr-li --role doctor --contract
    p3x... --contract p7q...`` (asks for the password; at least 12 characters). A doctor with
    no --contract may read no patient."""
    contracted = list(contract or [])
    try:
        users.validate_user(username, role, subject, contracted, hospital)
    except users.AccountError as error:
        reject(error)
    password = _password(password_stdin)
    with _connect(database_url) as conn:
        try:
            with conn.transaction():
                user = users.add_user(
                    conn,
                    users.SecretHasher(),
                    username=username,
                    role=role,
                    password=password,
                    now=datetime.now(UTC),
                    subject=subject,
                    contracted=contracted,
                    hospital=hospital,
                )
                _audit(
                    conn,
                    actor,
                    "user_add",
                    f"users/{username}",
                    role=user.role,
                    subject=user.subject,
                    contracted=len(user.contracted_subjects),
                    hospital=user.hospital,
                )
        except users.AccountError as error:
            reject(error)
    result = {
        "username": user.username,
        "role": user.role,
        "subject": user.subject,
        "contracted_subjects": list(user.contracted_subjects),
        "hospital": user.hospital,
    }
    if as_json:
        emit_json(result)
    else:
        typer.echo(f"user {user.username} ({user.role}) added")


def _set_disabled(
    name: str, disabled: bool, reason: str, actor: str | None, database_url: str | None
) -> None:
    with _connect(database_url) as conn, conn.transaction():
        if not users.set_disabled(conn, name, disabled):
            reject(UnknownAccountError(f"no user or client {name!r}"))
        _audit(
            conn,
            actor,
            "account_disable" if disabled else "account_enable",
            f"users/{name}",
            reason=reason,
        )


@user_app.command("disable")
def disable_command(
    username: NameOption,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    actor: ActorOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Disable a user (or client): no more logins, and the API refuses their tokens within
    seconds. Example: ``vitalstream user disable --username dr-li --reason "left the clinic"``."""
    _set_disabled(username, True, reason, actor, database_url)
    typer.echo(f"{username} disabled")


@user_app.command("enable")
def enable_command(
    username: NameOption,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    actor: ActorOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Enable a disabled user (or client) again."""
    _set_disabled(username, False, reason, actor, database_url)
    typer.echo(f"{username} enabled")


@user_app.command("passwd")
def passwd_command(
    username: NameOption,
    password_stdin: PasswordStdinOption = False,
    actor: ActorOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Set a user's password (asked twice, or --password-stdin). Tokens already issued stay
    valid until they expire; `user disable` ends them at once."""
    password = _password(password_stdin)
    with _connect(database_url) as conn:
        try:
            with conn.transaction():
                if not users.set_password(conn, users.SecretHasher(), username, password):
                    reject(UnknownAccountError(f"no user {username!r}"))
                _audit(conn, actor, "user_passwd", f"users/{username}")
        except users.AccountError as error:
            reject(error)
    typer.echo(f"password of {username} changed")


@client_app.command("add")
def client_add_command(
    client_id: Annotated[
        str, typer.Option("--client-id", help="The client's id (its token's `sub`).")
    ],
    role: Annotated[str, typer.Option("--role", help="service, er, admin or device.")] = "service",
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="A scope the client may ask for (repeat; docs/api.md)."),
    ] = None,
    hospital: Annotated[
        str | None, typer.Option("--hospital", help="An er client's hospital.")
    ] = None,
    gateway: Annotated[
        str | None, typer.Option("--gateway", help="A device client's gateway (required).")
    ] = None,
    actor: ActorOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Register a service client and print its generated secret once, as JSON:
    ``{"client_id", "client_secret", "role", "scopes", "hospital", "gateway"}``. Example:
    ``vitalstream client add --client-id regional-platform --scope readings:read``. Keep the
    secret like a password: only its argon2id hash is stored."""
    secret = secrets.token_urlsafe(32)
    with _connect(database_url) as conn:
        try:
            with conn.transaction():
                client = users.add_client(
                    conn,
                    users.SecretHasher(),
                    client_id=client_id,
                    role=role,
                    secret=secret,
                    now=datetime.now(UTC),
                    scopes=scope or (),
                    hospital=hospital,
                    gateway=gateway,
                )
                _audit(
                    conn,
                    actor,
                    "client_add",
                    f"clients/{client_id}",
                    role=client.role,
                    scopes=list(client.scopes),
                    hospital=client.hospital,
                    gateway=client.gateway,
                )
        except users.AccountError as error:
            reject(error)
    emit_json(
        {
            "client_id": client.client_id,
            "client_secret": secret,
            "role": client.role,
            "scopes": list(client.scopes),
            "hospital": client.hospital,
            "gateway": client.gateway,
        }
    )


@client_app.command("disable")
def client_disable_command(
    client_id: Annotated[str, typer.Option("--client-id", help="The client's id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    actor: ActorOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Disable a client: no more logins, its tokens are refused within seconds."""
    _set_disabled(client_id, True, reason, actor, database_url)
    typer.echo(f"{client_id} disabled")
