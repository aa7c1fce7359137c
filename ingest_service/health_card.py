"""Electronic health card: a signed, expiring, opaque token that looks a subject up (issue 10).

A patient carries it (printed or on a phone) as a QR code; a clinician at the bedside scans it
instead of typing an ID number. The token says nothing about the patient: it carries a random
card id, the expiry and a MAC. The card id -> subject mapping lives in ``health_cards``
(migration 4), so a lost card is revoked at once, and resolving is audited.

Token (version 1)::

    "VSC" + base32(body || tag), upper case, no padding (QR alphanumeric mode)
    body = 0x01 | key version (2 bytes, big-endian) | card id (16 random bytes)
           | expires (8 bytes, big-endian Unix seconds)
    tag  = HMAC-SM3(card key, "vitalstream-health-card/v1" || body)[:16]

Why HMAC-SM3 rather than Ed25519: the only verifier is the service that issued the card (it
must look the card id up in its own database anyway), so a public-key signature's one
advantage, verification by parties who cannot mint, buys nothing here; HMAC-SM3 (SM3 =
GM/T 0004-2012, HMAC = RFC 2104) keeps national cryptography end to end, and a 16-byte tag
instead of a 64-byte signature keeps the QR code small enough to scan from a worn card
(72 characters in QR alphanumeric mode: version 4 at error-correction level M). The tag
is compared in constant time.

Keys: a versioned :class:`ingest_service.identity.KeyRing` in ``<data dir>/health-card-keys``
(32 random bytes per version, mode 0600), so keys rotate without invalidating cards issued
under older versions until those are retired.
"""

from __future__ import annotations

import base64
import contextlib
import hmac as std_hmac
import secrets
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import segno
from cryptography.hazmat.primitives import hashes, hmac
from pydantic import Field

from ingest_service import audit, mpi
from ingest_service.identity import SUBJECT_PATTERN, KeyRing, PseudonymKey
from vitals import VitalsError
from vitals.settings import VitalstreamSettings, default_data_dir

Connection = psycopg.Connection[Any]

TOKEN_PREFIX = "VSC"  # noqa: S105 - a format marker, not a secret
TOKEN_VERSION = 0x01
CARD_ID_BYTES = 16
TAG_BYTES = 16
_BODY = struct.Struct(">BH16sq")
_DOMAIN = b"vitalstream-health-card/v1"
TOKEN_LENGTH = len(TOKEN_PREFIX) + (8 * (_BODY.size + TAG_BYTES) + 4) // 5

DEFAULT_TTL = timedelta(days=365)
MAX_TTL = timedelta(days=5 * 365)


class HealthCardError(VitalsError):
    """A token that is malformed, forged, expired, revoked or unknown (``kind`` says which)."""

    kind = "card_invalid"


class HealthCardSettings(VitalstreamSettings):
    """Where the card keys live."""

    data_dir: Path = Field(
        default_factory=default_data_dir, description="Where vitalstream keeps its files."
    )
    health_card_key_dir: Path | None = Field(
        None,
        description="Directory of the health-card MAC keys key-v<N>.bin (32 bytes, mode 0600; "
        "generated on first use); default <data dir>/health-card-keys.",
    )

    @property
    def key_dir(self) -> Path:
        """The key directory in force."""
        return self.health_card_key_dir or self.data_dir / "health-card-keys"


@dataclass(frozen=True)
class CardClaims:
    """What a verified token says: which card, under which key, until when."""

    card_id: str
    key_version: int
    expires_at: datetime


@dataclass(frozen=True)
class IssuedCard:
    """A card just issued (the ``vitalstream card issue`` output)."""

    token: str
    card_id: str
    subject: str
    expires_at: datetime


@dataclass(frozen=True)
class ResolvedCard:
    """A card looked up (the ``vitalstream card resolve`` output)."""

    card_id: str
    subject: str
    expires_at: datetime


# --------------------------------------------------------------------------- pure core


def _tag(key: PseudonymKey, body: bytes) -> bytes:
    mac = hmac.HMAC(key.secret, hashes.SM3())
    mac.update(_DOMAIN + body)
    return mac.finalize()[:TAG_BYTES]


def make_token(card_id: bytes, expires_at: datetime, key: PseudonymKey) -> str:
    """The token of one card (pure)."""
    if len(card_id) != CARD_ID_BYTES:
        raise ValueError(f"a card id has {CARD_ID_BYTES} bytes")
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    body = _BODY.pack(TOKEN_VERSION, key.version, card_id, int(expires_at.timestamp()))
    raw = body + _tag(key, body)
    return TOKEN_PREFIX + base64.b32encode(raw).decode("ascii").rstrip("=")


def parse_token(token: str, keys: Mapping[int, PseudonymKey], *, now: datetime) -> CardClaims:
    """Verify a token's MAC and expiry (pure); raise :class:`HealthCardError` otherwise.

    Kinds: ``card_invalid`` (not a token, wrong length, unknown key version, bad MAC) and
    ``card_expired``. Scanners may add spaces or lower-case it; both are tolerated.
    """
    text = "".join(token.split()).upper()
    if not text.startswith(TOKEN_PREFIX) or len(text) != TOKEN_LENGTH:
        raise HealthCardError("this is not a vitalstream health-card token")
    encoded = text[len(TOKEN_PREFIX) :]
    try:
        raw = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    except ValueError:
        raise HealthCardError("the token is not base32") from None
    if len(raw) != _BODY.size + TAG_BYTES:
        raise HealthCardError("the token has the wrong length")
    if base64.b32encode(raw).decode("ascii").rstrip("=") != encoded:
        # The last character carries unused bits: only the canonical spelling is accepted.
        raise HealthCardError("the token is not in canonical form")
    body, tag = raw[: _BODY.size], raw[_BODY.size :]
    version, key_version, card_id, expires = _BODY.unpack(body)
    if version != TOKEN_VERSION:
        raise HealthCardError(f"unknown health-card token version {version}")
    key = keys.get(key_version)
    if key is None:
        raise HealthCardError(f"the token was signed with key version {key_version}, not held")
    if not std_hmac.compare_digest(tag, _tag(key, body)):
        raise HealthCardError("the token's MAC does not match: altered or forged")
    try:
        expires_at = datetime.fromtimestamp(expires, UTC)
    except (OverflowError, OSError, ValueError):
        raise HealthCardError("the token's expiry is out of range") from None
    if now >= expires_at:
        raise HealthCardError(
            f"the card expired at {expires_at.isoformat()}; issue a new one", kind="card_expired"
        )
    return CardClaims(card_id=card_id.hex(), key_version=key_version, expires_at=expires_at)


def render_qr(token: str, path: Path, *, scale: int = 8) -> Path:
    """Write the token as a QR code (ISO/IEC 18004), PNG or SVG by ``path``'s suffix.

    Error-correction level M (15 %): a card survives some wear. segno picks the smallest
    version; a 4-module quiet zone as the standard asks.
    """
    suffix = path.suffix.lower()
    if suffix not in {".png", ".svg"}:
        raise ValueError("the QR code is written as .png or .svg")
    code = segno.make(token, error="m", micro=False)
    code.save(str(path), scale=scale, border=4)
    return path


# --------------------------------------------------------------------------- SQL shell


def issue(
    conn: Connection,
    subject: str,
    *,
    key: PseudonymKey,
    actor: str,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
) -> IssuedCard:
    """Issue a card for ``subject`` (resolved to its canonical subject), audited."""
    if not timedelta(minutes=1) <= ttl <= MAX_TTL:
        raise HealthCardError(f"the lifetime must be 1 minute to {MAX_TTL.days} days")
    if not SUBJECT_PATTERN.match(subject):
        raise HealthCardError(
            "a card is issued for an enrolled subject (p + 26 base32 characters)",
            kind="invalid_subject",
        )
    card_id = secrets.token_bytes(CARD_ID_BYTES)
    expires_at = now + ttl
    with conn.transaction():
        if not mpi.is_known(conn, subject):
            raise HealthCardError("no such subject is enrolled or stored", kind="unknown_subject")
        try:
            canonical = mpi.resolve(conn, subject)
        except mpi.SubjectError:
            canonical = subject
        conn.execute(
            "INSERT INTO health_cards (card_id, subject, issued_at, expires_at, issued_by)"
            " VALUES (%s, %s, %s, %s, %s)",
            (card_id.hex(), canonical, now, expires_at, actor),
        )
        audit.append(
            conn,
            audit.AuditEntry(
                time=now,
                actor=actor,
                action="card_issue",
                resource=f"subject/{canonical}",
                detail={"card_id": card_id.hex(), "expires_at": expires_at.isoformat()},
            ),
        )
    token = make_token(card_id, expires_at.replace(microsecond=0), key)
    return IssuedCard(token=token, card_id=card_id.hex(), subject=canonical, expires_at=expires_at)


def resolve_card(
    conn: Connection,
    token: str,
    *,
    keys: Mapping[int, PseudonymKey],
    actor: str,
    now: datetime,
) -> ResolvedCard:
    """The subject a card stands for; checks MAC, expiry, revocation; audits the look-up.

    A failed look-up of a well-formed token is audited too (``card_denied``): scanning many
    forged or revoked cards is what the security report looks for.
    """
    claims = parse_token(token, keys, now=now)
    with conn.transaction():
        row = conn.execute(
            "SELECT subject, revoked_at FROM health_cards WHERE card_id = %s", (claims.card_id,)
        ).fetchone()
        error: HealthCardError | None = None
        if row is None:
            error = HealthCardError("no such card was issued here", kind="card_unknown")
        elif row[1] is not None:
            error = HealthCardError("the card was revoked", kind="card_revoked")
        subject = str(row[0]) if row is not None else None
        if subject is not None and error is None:
            # A subject not in the index (enrolled before the MPI existed) stays as stored.
            with contextlib.suppress(mpi.SubjectError):
                subject = mpi.resolve(conn, subject)
        audit.append(
            conn,
            audit.AuditEntry(
                time=now,
                actor=actor,
                action="card_resolve" if error is None else "card_denied",
                resource=f"subject/{subject}" if subject and error is None else "health_cards",
                detail={"card_id": claims.card_id, **({"reason": error.kind} if error else {})},
            ),
        )
    if error is not None:
        raise error
    assert subject is not None
    return ResolvedCard(card_id=claims.card_id, subject=subject, expires_at=claims.expires_at)


def revoke(conn: Connection, card_id: str, *, actor: str, now: datetime) -> bool:
    """Revoke a card (effective at the next look-up); False when it was unknown or revoked."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE health_cards SET revoked_at = %s WHERE card_id = %s AND revoked_at IS NULL"
            " RETURNING subject",
            (now, card_id),
        ).fetchone()
        if row is None:
            return False
        audit.append(
            conn,
            audit.AuditEntry(
                time=now,
                actor=actor,
                action="card_revoke",
                resource=f"subject/{row[0]}",
                detail={"card_id": card_id},
            ),
        )
    return True


def key_ring(settings: HealthCardSettings | None = None) -> KeyRing:
    """The card key ring of the settings in force."""
    return KeyRing((settings or HealthCardSettings()).key_dir)
