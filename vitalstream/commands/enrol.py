"""``vitalstream enrol``: resident ID number -> pseudonymous subject (CONTRACTS.md).

Thin shell around ``ingest_service.identity``: validates the ID, takes the newest key from the
key directory (generating the first one on first use) and prints the subject. The clear ID is
never printed, logged or written anywhere: rejections say which check failed, not the ID.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from ingest_service.identity import (
    ALGORITHMS,
    EnrolmentSettings,
    KeyRing,
    KeyStoreError,
    PseudonymKey,
    check_character,
    pseudonym,
    validate_resident_id,
)
from vitals import VitalsError
from vitalstream.output import console, emit_json, reject

#: A SYNTHETIC example for the help text: region 110101, born 2000-01-01, sequence 002, with
#: its check character computed here, so no real-looking ID is written down in this file.
_SYNTHETIC_BODY = "110101" + "20000101" + "002"
SYNTHETIC_EXAMPLE_ID = _SYNTHETIC_BODY + check_character(_SYNTHETIC_BODY)

ENROL_HELP = "\n\n".join(
    (
        "Validate a resident ID number and print its pseudonymous subject.",
        "The ID must be a PRC resident identity number (GB 11643-1999): 18 characters, 17 "
        "digits and a check character (0-9 or X, ISO 7064 MOD 11-2), with a real birth date "
        "(YYYYMMDD, 1900 to today) in positions 7-14 and a region code starting with 1-8. "
        "Surrounding spaces and a lower-case x are accepted.",
        "The subject is a keyed HMAC of the ID (HMAC-SM3 by default, GM/T 0004-2012; or "
        "HMAC-SHA256): the same ID and key always give the same subject, and the subject "
        "reveals nothing about the ID without the key. The keys live in "
        "VITALSTREAM_ENROLMENT_KEY_DIR (default: <data dir>/keys, e.g. "
        "/var/lib/vitalstream/keys as root); the first one is generated on first use "
        "(32 random bytes, mode 0600). Back that directory up: without it no resident can be "
        "matched to their subject again.",
        f"Example (a SYNTHETIC ID made up for this help, valid check digit): vitalstream enrol "
        f"--national-id {SYNTHETIC_EXAMPLE_ID} --json",
        'prints {"subject": "p...", "algorithm": "hmac-sm3", "key_version": 1}.',
        "Key rotation: --rotate-key makes the next key version and uses it; --key-version N "
        "computes the subject under an older version (to find a resident's earlier subject).",
        'A bad ID exits 3 with {"error": {"kind": "invalid_id", "detail": ...}} on stdout; the '
        "detail names the failed check and never repeats the ID. Pass the ID with care: it "
        "may stay in your shell history.",
    )
)


def _key(ring: KeyRing, key_version: int | None, rotate: bool) -> PseudonymKey:
    before = ring.versions()
    if rotate:
        key = ring.rotate()
    elif key_version is not None:
        key = ring.get(key_version)
    else:
        key = ring.current()
    if key.version not in before:
        console.print(f"generated pseudonym key version {key.version} in {ring.directory}")
    return key


def enrol_command(
    national_id: Annotated[
        str,
        typer.Option(
            "--national-id",
            help="The resident ID number (18 characters). Never printed or logged.",
            show_default=False,
        ),
    ],
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='Print {"subject", "algorithm", "key_version"} as one JSON object.'
        ),
    ] = False,
    algorithm: Annotated[
        str | None,
        typer.Option(
            "--algorithm",
            help=f"Pseudonym MAC: {' or '.join(ALGORITHMS)} (default: the "
            "VITALSTREAM_ENROLMENT_ALGORITHM setting, else hmac-sm3).",
            show_default=False,
        ),
    ] = None,
    key_dir: Annotated[
        Path | None,
        typer.Option(
            "--key-dir",
            help="Key directory (default: VITALSTREAM_ENROLMENT_KEY_DIR or <data dir>/keys).",
            show_default=False,
        ),
    ] = None,
    key_version: Annotated[
        int | None,
        typer.Option(
            "--key-version", min=1, help="Use this (older) key version instead of the newest."
        ),
    ] = None,
    rotate_key: Annotated[
        bool,
        typer.Option("--rotate-key", help="Generate the next key version first and use it."),
    ] = False,
) -> None:
    """Resident ID number -> pseudonymous subject."""
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise typer.BadParameter(f"choose one of {', '.join(ALGORITHMS)}", param_hint="--algorithm")
    if rotate_key and key_version is not None:
        raise typer.BadParameter("use either --rotate-key or --key-version", param_hint="--key")
    settings = (
        EnrolmentSettings() if key_dir is None else EnrolmentSettings(enrolment_key_dir=key_dir)
    )
    chosen = settings.enrolment_algorithm if algorithm is None else algorithm
    try:
        resident = validate_resident_id(national_id, today=date.today())
        key = _key(KeyRing(settings.key_dir), key_version, rotate_key)
    except KeyStoreError as error:
        if error.kind == "unknown_key_version":
            reject(error)
        console.print(f"[red]key store[/red]: {error.detail}")
        raise typer.Exit(1) from None
    except VitalsError as error:
        reject(error)
    result = pseudonym(resident, key, chosen)
    payload = {
        "subject": result.subject,
        "algorithm": result.algorithm,
        "key_version": result.key_version,
    }
    if as_json:
        emit_json(payload)
    else:
        typer.echo(
            f"subject {result.subject} ({result.algorithm}, key version {result.key_version})"
        )


enrol_command.__doc__ = ENROL_HELP
