"""``vitalstream token``: mint a short-lived API bearer token (testing and operations).

Thin shell around ``ingest_service.api.tokens``: the signing key is read from
``VITALSTREAM_API_KEY_FILE`` (default ``<data dir>/api-token.key``, generated on first use,
mode 0600). Whoever can run this with that key can act as any role: it is an operator tool,
not a login. A login flow (password/KDF, rate limits) is later work (issue 10 item 3).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from ingest_service.api.settings import ApiSettings
from ingest_service.api.tokens import ROLES, KeyFileError, TokenError, load_signing_key, mint_token
from vitalstream.output import EXIT_FAILURE, console, emit_json, reject

TOKEN_HELP = "\n\n".join(
    (
        "Mint a signed API bearer token (HS256 JWT) and print it as JSON.",
        f"Roles: {', '.join(ROLES)}. A patient token needs --subject (the patient's own "
        "pseudonym); a doctor token may take --subject several times (the contracted "
        "patients; without it the doctor is not restricted). Other roles take no --subject. "
        "An er token may take --hospital (it then sees that hospital's incidents only); a "
        "device token needs --gateway (its own gateway id).",
        "Example: vitalstream token --role doctor --user dr-li --subject p... --ttl 900",
        'prints {"token": "eyJ...", "token_type": "bearer", "expires_at": "..."}; use it as '
        "`Authorization: Bearer <token>`.",
        "The signing key is VITALSTREAM_API_KEY_FILE (default <data dir>/api-token.key), "
        "generated on first use with mode 0600. Bad arguments exit 3 with "
        '{"error": {"kind": "invalid_token", ...}}.',
    )
)


def token_command(
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(ROLES)}.")],
    user: Annotated[str, typer.Option("--user", help="The token's `sub`: who acts (e.g. dr-li).")],
    subject: Annotated[
        list[str] | None,
        typer.Option(
            "--subject",
            help="Patient: their own subject (once). Doctor: a contracted subject (repeat).",
            show_default=False,
        ),
    ] = None,
    hospital: Annotated[
        str | None,
        typer.Option("--hospital", help="er: the hospital whose incidents it sees (default: all)."),
    ] = None,
    gateway: Annotated[
        str | None, typer.Option("--gateway", help="device: its own gateway id (required).")
    ] = None,
    ttl: Annotated[
        int | None,
        typer.Option(
            "--ttl",
            min=1,
            help="Lifetime in seconds (default VITALSTREAM_API_TOKEN_TTL_S, 900).",
            show_default=False,
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="Signing key (default VITALSTREAM_API_KEY_FILE or <data dir>/api-token.key).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Mint an API token."""
    settings = ApiSettings() if key_file is None else ApiSettings(api_key_file=key_file)
    lifetime = ttl if ttl is not None else settings.api_token_ttl_s
    if lifetime > settings.api_token_max_ttl_s:
        reject(
            TokenError(
                f"--ttl {lifetime} exceeds the maximum of {settings.api_token_max_ttl_s} s "
                "(VITALSTREAM_API_TOKEN_MAX_TTL_S)"
            )
        )
    subjects = list(subject or [])
    if role == "patient" and len(subjects) != 1:
        reject(TokenError("a patient token needs exactly one --subject (their own)"))
    now = datetime.now(UTC)
    try:
        key = load_signing_key(settings.key_file)
        token = mint_token(
            key,
            user=user,
            role=role,
            now=now,
            ttl_s=lifetime,
            subject=subjects[0] if role == "patient" else None,
            subjects=subjects if role != "patient" and subjects else None,
            hospital=hospital,
            gateway=gateway,
        )
    except KeyFileError as error:
        console.print(f"[red]signing key[/red]: {error.detail}")
        raise typer.Exit(EXIT_FAILURE) from None
    except TokenError as error:
        reject(error)
    emit_json(
        {
            "token": token,
            "token_type": "bearer",
            "expires_at": (now + timedelta(seconds=lifetime)).isoformat(),
        }
    )


token_command.__doc__ = TOKEN_HELP
