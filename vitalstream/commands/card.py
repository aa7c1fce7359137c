"""``vitalstream card``: electronic health cards (issue, resolve, revoke) as QR codes.

Thin shell around ``ingest_service.health_card``. The token never carries the ID number nor
the subject: only a random card id, the expiry and an HMAC-SM3 tag.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import psycopg
import typer

from ingest_service.health_card import (
    DEFAULT_TTL,
    MAX_TTL,
    HealthCardError,
    HealthCardSettings,
    issue,
    key_ring,
    render_qr,
    resolve_card,
    revoke,
)
from ingest_service.identity import KeyStoreError
from ingest_service.schema import migrate
from vitalstream.output import EXIT_FAILURE, console, emit_json, reject
from vitalstream.settings import CliSettings

card_app = typer.Typer(
    help="Electronic health cards: a signed, expiring, opaque token (QR code) that looks a "
    "subject up at the bedside without typing an ID number.",
    no_args_is_help=True,
)

_DATABASE_HELP = (
    "PostgreSQL URL (default: VITALSTREAM_DATABASE_URL, else "
    "postgresql://postgres@127.0.0.1:5432/vitalstream)."
)
_KEY_DIR_HELP = (
    "Card key directory (default: VITALSTREAM_HEALTH_CARD_KEY_DIR or "
    "<data dir>/health-card-keys; the first key is generated on first use)."
)

DatabaseOption = Annotated[
    str | None, typer.Option("--database-url", help=_DATABASE_HELP, show_default=False)
]
KeyDirOption = Annotated[
    Path | None, typer.Option("--key-dir", help=_KEY_DIR_HELP, show_default=False)
]
ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor", help="Who, for the audit log (default: cli:<OS user>).", show_default=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _settings(key_dir: Path | None) -> HealthCardSettings:
    return (
        HealthCardSettings() if key_dir is None else HealthCardSettings(health_card_key_dir=key_dir)
    )


def _fail(what: str, error: Exception) -> typer.Exit:
    console.print(f"[red]{what}[/red]: {str(error).strip()}")
    return typer.Exit(EXIT_FAILURE)


_ISSUE_HELP = "\n\n".join(
    (
        "Issue a health card for a subject and write its QR code (.png or .svg).",
        "Example: vitalstream card issue --subject pabcdefghijklmnopqrstuvwxyz --out card.png "
        "--json",
        'prints {"card_id", "subject", "expires_at", "token", "out"}. The token holds a random '
        "card id, the expiry and an HMAC-SM3 tag (GM/T 0004-2012); the card id -> subject "
        "mapping stays in the database (health_cards), so `card revoke` takes effect at once.",
        "A subject that is neither enrolled nor stored exits 3 (unknown_subject).",
    )
)


@card_app.command("issue", help=_ISSUE_HELP)
def issue_command(
    subject: Annotated[
        str, typer.Option("--subject", help="The subject (pseudonym).", show_default=False)
    ],
    out: Annotated[
        Path, typer.Option("--out", help="QR code file, .png or .svg.", show_default=False)
    ],
    ttl_days: Annotated[
        float,
        typer.Option(
            "--ttl", min=0.001, max=MAX_TTL.days, help="Lifetime in days (at most 5 years)."
        ),
    ] = DEFAULT_TTL.days,
    as_json: JsonOption = False,
    actor: ActorOption = None,
    database_url: DatabaseOption = None,
    key_dir: KeyDirOption = None,
) -> None:
    """Issue a health card."""
    if out.suffix.lower() not in {".png", ".svg"}:
        raise typer.BadParameter("write the QR code as .png or .svg", param_hint="--out")
    url = database_url or CliSettings().database_url
    who = actor or f"cli:{getpass.getuser()}"
    try:
        key = key_ring(_settings(key_dir)).current()
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            card = issue(
                conn,
                subject,
                key=key,
                actor=who,
                now=datetime.now(UTC),
                ttl=timedelta(days=ttl_days),
            )
    except HealthCardError as error:
        reject(error)
    except KeyStoreError as error:
        raise _fail("card key store", error) from None
    except psycopg.Error as error:
        raise _fail("database error", error) from None
    render_qr(card.token, out)
    if as_json:
        emit_json(
            {
                "card_id": card.card_id,
                "subject": card.subject,
                "expires_at": card.expires_at.isoformat(),
                "token": card.token,
                "out": str(out),
            }
        )
    else:
        typer.echo(
            f"card {card.card_id} for {card.subject} until {card.expires_at:%Y-%m-%d}: {out}"
        )


@card_app.command("resolve")
def resolve_command(
    token: Annotated[str, typer.Argument(help="The token as scanned from the QR code.")],
    as_json: JsonOption = False,
    actor: ActorOption = None,
    database_url: DatabaseOption = None,
    key_dir: KeyDirOption = None,
) -> None:
    """Print the subject a card stands for (audited). Exit 3 with error.kind card_invalid,
    card_expired, card_revoked or card_unknown when it does not resolve."""
    url = database_url or CliSettings().database_url
    who = actor or f"cli:{getpass.getuser()}"
    try:
        keys = key_ring(_settings(key_dir)).all()
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            card = resolve_card(conn, token, keys=keys, actor=who, now=datetime.now(UTC))
    except HealthCardError as error:
        reject(error)
    except KeyStoreError as error:
        raise _fail("card key store", error) from None
    except psycopg.Error as error:
        raise _fail("database error", error) from None
    if as_json:
        emit_json(
            {
                "subject": card.subject,
                "card_id": card.card_id,
                "expires_at": card.expires_at.isoformat(),
            }
        )
    else:
        typer.echo(card.subject)


@card_app.command("revoke")
def revoke_command(
    card_id: Annotated[str, typer.Argument(help="The card id (from `card issue`).")],
    as_json: JsonOption = False,
    actor: ActorOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Revoke a card at once (audited); exit 3 card_unknown when no active card has that id."""
    url = database_url or CliSettings().database_url
    who = actor or f"cli:{getpass.getuser()}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            done = revoke(conn, card_id, actor=who, now=datetime.now(UTC))
    except psycopg.Error as error:
        raise _fail("database error", error) from None
    if not done:
        reject(HealthCardError("no active card with this id", kind="card_unknown"))
    if as_json:
        emit_json({"card_id": card_id, "revoked": True})
    else:
        typer.echo(f"card {card_id} revoked")
