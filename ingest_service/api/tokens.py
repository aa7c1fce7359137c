"""Bearer tokens of the HTTP API: HS256 JWTs (RFC 7519, RFC 7518 §3.2) minted and checked here.

Pure core: :func:`mint_token` and :func:`decode_token` take the key and ``now`` as inputs.
File shell: :func:`load_signing_key` reads (or, on first use, creates) the key file.

Why HS256 and one shared key: the API is the only verifier and the only issuers are the API's
own login (``/api/v1/auth/token``) and ``vitalstream token`` (run by an operator on the same
host), so an asymmetric pair would add key handling without adding a party that may verify
but not sign. Tokens are short-lived (15 min default); a leaked one is ended sooner through
the revocation list (``revoked_tokens``, checked by ``ingest_service.api.deps.principal``),
which names tokens by their ``jti``.

Claims: ``sub`` (the user), ``role`` (one of :data:`ROLES`), ``iat``/``exp``/``nbf``, ``iss`` =
``vitalstream``, ``aud`` = ``vitalstream-api``, ``jti`` (so an audit row names one token), and

- ``subject``: a patient's own pseudonym (required for patients and only for them);
- ``subjects``: a doctor's contracted pseudonyms (absent = not restricted);
- ``hospital``: an ``er`` account's hospital (only ``er``; absent = every hospital);
- ``gateway``: a ``device`` client's own gateway id (required for devices and only for them);
- ``scope``: the space-separated scopes of a client-credentials token (RFC 9068 §2.2.3;
  :mod:`ingest_service.api.scopes`). Absent = not scope-restricted (people's tokens, whose
  role alone decides); present = each route needs its scope, even when the list is empty.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

import jwt

from vitals import VitalsError
from vitals.models import IDENTIFIER_PATTERN

Role = Literal["patient", "doctor", "er", "admin", "service", "device"]
ROLES: tuple[Role, ...] = get_args(Role)

ISSUER = "vitalstream"
AUDIENCE = "vitalstream-api"
ALGORITHM = "HS256"
#: 64 bytes = SHA-256's block size: longer keys are hashed first (RFC 2104 §2), shorter ones
#: weaken HMAC; RFC 7518 §3.2 asks for at least 32.
KEY_BYTES = 64
#: Issuer and API on one host: a little skew tolerance for clocks that are stepped.
LEEWAY_S = 5
#: A scope claim longer than this is not one of ours.
MAX_SCOPE_CLAIM = 2048

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


class TokenError(VitalsError):
    """A token that cannot be minted as asked (bad role/claims) or fails verification."""

    kind = "invalid_token"


class KeyFileError(VitalsError):
    """The signing-key file is missing, unreadable, too open, or malformed."""

    kind = "key_file"


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for.

    ``subjects`` None = not restricted to a list; ``hospital`` None = an ``er`` account of no
    particular hospital; ``scopes`` None = not scope-restricted (not a client token).
    """

    user: str
    role: Role
    subject: str | None = None
    subjects: tuple[str, ...] | None = None
    token_id: str | None = None
    expires_at: datetime | None = None
    hospital: str | None = None
    gateway: str | None = None
    scopes: frozenset[str] | None = None

    @property
    def actor(self) -> str:
        """The audit log's ``actor``: role and user, e.g. ``doctor:dr-li``."""
        return f"{self.role}:{self.user}"

    def has_scope(self, scope: str) -> bool:
        """Whether the token may use a route that needs ``scope``."""
        return self.scopes is None or scope in self.scopes


@dataclass(frozen=True)
class Claims:
    """The checked identity claims of a token (what :func:`check_claims` returns)."""

    role: Role
    user: str
    subject: str | None = None
    subjects: tuple[str, ...] | None = None
    hospital: str | None = None
    gateway: str | None = None
    scopes: frozenset[str] | None = None


def _role(value: object) -> Role:
    for role in ROLES:
        if value == role:
            return role
    raise TokenError(f"role must be one of {', '.join(ROLES)}")


def _identifier(value: object, what: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise TokenError(f"{what} must be an identifier ({IDENTIFIER_PATTERN})")
    return value


def check_claims(
    role: object,
    user: object,
    subject: object,
    subjects: object,
    *,
    hospital: object = None,
    gateway: object = None,
    scope: object = None,
) -> Claims:
    """Validate the identity claims (when minting and again when verifying).

    Verifying re-checks them because a token is only as good as the code that minted it: a
    patient token without ``subject`` would otherwise mean "no restriction", a device token
    without ``gateway`` could speak for any gateway.
    """
    checked_role = _role(role)
    checked_user = _identifier(user, "sub (the user)")
    checked_subject = None if subject is None else _identifier(subject, "subject")
    if checked_role == "patient" and checked_subject is None:
        raise TokenError("a patient token needs the patient's own subject")
    if checked_role != "patient" and checked_subject is not None:
        raise TokenError("only a patient token carries `subject`; doctors use `subjects`")
    checked_subjects: tuple[str, ...] | None = None
    if subjects is not None:
        if checked_role != "doctor":
            raise TokenError("only a doctor token carries `subjects` (contracted patients)")
        if not isinstance(subjects, list | tuple):
            raise TokenError("subjects must be a list")
        checked_subjects = tuple(_identifier(s, "each contracted subject") for s in subjects)
    checked_hospital = None if hospital is None else _identifier(hospital, "hospital")
    if checked_hospital is not None and checked_role != "er":
        raise TokenError("only an er token carries `hospital`")
    checked_gateway = None if gateway is None else _identifier(gateway, "gateway")
    if (checked_role == "device") != (checked_gateway is not None):
        raise TokenError("a device token carries its own `gateway`, and only a device token")
    return Claims(
        role=checked_role,
        user=checked_user,
        subject=checked_subject,
        subjects=checked_subjects,
        hospital=checked_hospital,
        gateway=checked_gateway,
        scopes=_scopes(scope),
    )


def _scopes(value: object) -> frozenset[str] | None:
    """The ``scope`` claim (RFC 9068 §2.2.3: space-separated) as a set; None when absent."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_SCOPE_CLAIM:
        raise TokenError("scope must be a space-separated string")
    return frozenset(value.split())


def mint_token(
    key: bytes,
    *,
    user: str,
    role: str,
    now: datetime,
    ttl_s: int = 900,
    subject: str | None = None,
    subjects: list[str] | tuple[str, ...] | None = None,
    hospital: str | None = None,
    gateway: str | None = None,
    scopes: Iterable[str] | None = None,
) -> str:
    """A signed token for ``user`` in ``role``, valid from ``now`` for ``ttl_s`` seconds.

    ``scopes`` (client-credentials tokens) restricts the token to routes needing one of them;
    None leaves the ``scope`` claim out (the role alone decides).
    """
    if ttl_s <= 0:
        raise TokenError("ttl must be positive")
    checked = check_claims(
        role,
        user,
        subject,
        None if subjects is None else list(subjects),
        hospital=hospital,
        gateway=gateway,
        scope=None if scopes is None else " ".join(sorted(set(scopes))),
    )
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": checked.user,
        "role": checked.role,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if checked.subject is not None:
        claims["subject"] = checked.subject
    if checked.subjects is not None:
        claims["subjects"] = list(checked.subjects)
    if checked.hospital is not None:
        claims["hospital"] = checked.hospital
    if checked.gateway is not None:
        claims["gateway"] = checked.gateway
    if checked.scopes is not None:
        claims["scope"] = " ".join(sorted(checked.scopes))
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def decode_token(key: bytes, token: str) -> Principal:
    """Verify signature, algorithm, issuer, audience and times; return who it speaks for.

    Only HS256 is accepted (no ``alg: none``, no algorithm confusion). Any failure raises
    :class:`TokenError` with a reason that does not echo the token.
    """
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired", kind="expired_token") from None
    except jwt.PyJWTError as error:
        raise TokenError(f"token rejected: {type(error).__name__}") from None
    checked = check_claims(
        claims.get("role"),
        claims.get("sub"),
        claims.get("subject"),
        claims.get("subjects"),
        hospital=claims.get("hospital"),
        gateway=claims.get("gateway"),
        scope=claims.get("scope"),
    )
    return Principal(
        user=checked.user,
        role=checked.role,
        subject=checked.subject,
        subjects=checked.subjects,
        token_id=str(claims["jti"]) if "jti" in claims else None,
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        hospital=checked.hospital,
        gateway=checked.gateway,
        scopes=checked.scopes,
    )


def load_signing_key(path: Path, *, create: bool = True) -> bytes:
    """The signing key in ``path``; generated (mode 0600, atomically) when absent and allowed.

    A key readable by group or others is refused, as the enrolment keys are: whoever reads it
    can mint an admin token.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        if not create:
            raise KeyFileError(f"no API signing key at {path}") from None
        return _create_key(path)
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path} is readable by group or others; run `chmod 600 {path}` "
            "(anyone who reads it can mint tokens)"
        )
    key = path.read_bytes()
    if len(key) < KEY_BYTES // 2:
        raise KeyFileError(f"{path} holds {len(key)} bytes; at least {KEY_BYTES // 2} needed")
    return key


def _create_key(path: Path) -> bytes:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    key = secrets.token_bytes(KEY_BYTES)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # fails if another process made the key first
        except FileExistsError:
            return load_signing_key(path, create=False)
    finally:
        temporary.unlink(missing_ok=True)
    return key
