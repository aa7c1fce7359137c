"""Who may log in to the API: users (password grant), service clients (client-credentials
grant), secret hashing, the failed-login throttle and the token revocation list (issue 10).

Tables: ``users``, ``api_clients``, ``revoked_tokens`` (migration 10); ``hospital`` of ``er``
accounts, ``gateway`` of ``device`` clients and ``login_failures`` (migration 13).

**Hashing.** Passwords and client secrets are stored as argon2id PHC strings (argon2-cffi,
RFC 9106). The parameters are argon2-cffi's defaults, RFC 9106's second recommended option
(t = 3, m = 64 MiB, p = 4): about 50 ms and 64 MiB per check on a gateway-class CPU, so a
stolen table costs an attacker the same per guess. A stored hash made with older parameters
is replaced at the next successful login (:meth:`SecretHasher.needs_rehash`). At most
:data:`KDF_SLOTS` checks run at once so a login flood cannot exhaust the API's memory.

**Throttle.** :class:`LoginThrottle` counts failed logins per username and per client
address in a sliding window, in the ``login_failures`` table, so every API process (and the
web login) shares one count. The names are stored as keyed hashes (HMAC-SHA256 under a key
derived from the API signing key), never as typed: people type their ID number or their
password into the username field. While a key is over its limit, logins for it are refused
without checking the password. :func:`throttle_wait` is the pure rule.

**Revocation.** :class:`RevocationCache` holds the revoked token ids (``jti``) and the
disabled users and clients, reloaded from the database when older than
:data:`REVOCATION_CACHE_S`; a revocation made through this process is seen at once, one made
elsewhere (another process, the CLI) within that time.

Pure core: :class:`SecretHasher`, :func:`throttle_wait`, :func:`check_password_policy`,
:class:`RevocationCache` (given a loader). SQL shell: the functions taking a connection and
:class:`LoginThrottle`.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

import argon2
import psycopg
from argon2.exceptions import InvalidHashError, VerificationError

from ingest_service.api.scopes import UnknownScopeError, canonical
from ingest_service.api.tokens import Role, TokenError, check_claims
from vitals import VitalsError

Connection = psycopg.Connection[Any]

#: Roles a person may hold (the users table's CHECK); services are clients, not users.
USER_ROLES: frozenset[Role] = frozenset({"patient", "doctor", "er", "admin"})
#: Roles a client may hold: none of them is scoped by a subject claim. A ``device`` client is
#: a gateway (its ``gateway`` column, the token's ``gateway`` claim).
CLIENT_ROLES: frozenset[Role] = frozenset({"service", "er", "admin", "device"})

#: NIST SP 800-63B §3.1.1.2: at least 8 characters, longer is better, no composition rules;
#: 12 because these accounts read health data. The upper bound keeps one check cheap.
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
#: Concurrent argon2 checks (64 MiB each).
KDF_SLOTS = 4

#: Failed logins allowed per username / per client address within the window.
USERNAME_FAILURE_LIMIT = 5
ADDRESS_FAILURE_LIMIT = 20
FAILURE_WINDOW = timedelta(minutes=15)

#: How stale the revocation list may be in another process (seconds).
REVOCATION_CACHE_S = 2.0


class AccountError(VitalsError):
    """A user or client that cannot be created or changed as asked."""

    kind = "invalid_account"


# --------------------------------------------------------------------------- hashing


class SecretHasher:
    """argon2id hashing and checking of passwords and client secrets."""

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self._hasher = hasher or argon2.PasswordHasher()
        self._slots = threading.BoundedSemaphore(KDF_SLOTS)
        # Checked when the username is unknown, so an unknown user costs the same time as
        # a wrong password (no user enumeration by timing).
        self._dummy = self._hasher.hash("vitalstream-no-such-user")

    def hash(self, secret: str) -> str:
        """The PHC string (``$argon2id$v=19$m=...``) of ``secret`` with a fresh salt."""
        with self._slots:
            return self._hasher.hash(secret)

    def verify(self, stored: str | None, secret: str) -> bool:
        """Whether ``secret`` matches ``stored``; None checks a dummy hash and is False."""
        with self._slots:
            try:
                ok = self._hasher.verify(stored or self._dummy, secret)
            except (VerificationError, InvalidHashError):
                return False
        return ok and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True


def check_password_policy(password: str) -> None:
    """Refuse passwords that are too short or too long (:class:`AccountError`)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


# --------------------------------------------------------------------------- throttle

Dimension = Literal["user", "address"]


def throttle_wait(
    newest_first: Sequence[datetime], limit: int, window: timedelta, now: datetime
) -> float:
    """Seconds until one more login is allowed (0 = now), given the key's failures newest
    first: blocked while ``limit`` of them are inside the window, until the ``limit``-th
    newest leaves it (at least 1 s, so a client never retries at once)."""
    recent = [moment for moment in newest_first if now - moment < window]
    if len(recent) < limit:
        return 0.0
    frees_at = recent[limit - 1] + window
    return max((frees_at - now).total_seconds(), 1.0)


class LoginThrottle:
    """Failed logins per username and per address, shared through ``login_failures``.

    Each method runs inside the caller's transaction. Two processes counting the same
    failure at the same moment may each let one more attempt through; the limit is about
    stopping online guessing, and one extra guess per process does not change that.
    """

    def __init__(
        self,
        pepper: bytes,
        *,
        username_limit: int = USERNAME_FAILURE_LIMIT,
        address_limit: int = ADDRESS_FAILURE_LIMIT,
        window: timedelta = FAILURE_WINDOW,
    ) -> None:
        # A key of its own, derived from the signing key: the stored hashes cannot be
        # matched against a list of ID numbers without it.
        self._key = hmac.new(pepper, b"vitalstream login throttle v1", hashlib.sha256).digest()
        self.username_limit = username_limit
        self.address_limit = address_limit
        self.window = window

    def _hash(self, dimension: Dimension, value: str) -> bytes:
        return hmac.new(self._key, f"{dimension}|{value}".encode(), hashlib.sha256).digest()

    def _recent(
        self, conn: Connection, dimension: Dimension, value: str, limit: int, now: datetime
    ) -> list[datetime]:
        rows = conn.execute(
            "SELECT failed_at FROM login_failures WHERE dimension = %s AND key = %s"
            " AND failed_at > %s ORDER BY failed_at DESC LIMIT %s",
            (dimension, self._hash(dimension, value), now - self.window, limit),
        ).fetchall()
        return [row[0] for row in rows]

    def retry_after(self, conn: Connection, username: str, address: str, now: datetime) -> float:
        """Seconds until a login for ``username`` from ``address`` is allowed (0 = now)."""
        return max(
            throttle_wait(
                self._recent(conn, "user", username, self.username_limit, now),
                self.username_limit,
                self.window,
                now,
            ),
            throttle_wait(
                self._recent(conn, "address", address, self.address_limit, now),
                self.address_limit,
                self.window,
                now,
            ),
        )

    def record_failure(self, conn: Connection, username: str, address: str, now: datetime) -> bool:
        """Count one failure; True when it puts the username or the address over its limit.
        Failures older than the window are deleted on the way (the table stays small)."""
        before = self.retry_after(conn, username, address, now) > 0
        conn.execute("DELETE FROM login_failures WHERE failed_at <= %s", (now - self.window,))
        conn.execute(
            "INSERT INTO login_failures (dimension, key, failed_at)"
            " VALUES ('user', %s, %s), ('address', %s, %s)",
            (self._hash("user", username), now, self._hash("address", address), now),
        )
        return not before and self.retry_after(conn, username, address, now) > 0

    def record_success(self, conn: Connection, username: str) -> None:
        """A correct password clears the username's failures (not the address's)."""
        conn.execute(
            "DELETE FROM login_failures WHERE dimension = 'user' AND key = %s",
            (self._hash("user", username),),
        )


# --------------------------------------------------------------------------- revocation


@dataclass(frozen=True)
class RevocationSnapshot:
    """Revoked token ids and disabled account names at one moment."""

    token_ids: frozenset[str]
    disabled: frozenset[str]


class RevocationCache:
    """The revocation list, reloaded through ``load`` when older than ``max_age_s``."""

    def __init__(
        self,
        load: Callable[[], RevocationSnapshot],
        max_age_s: float = REVOCATION_CACHE_S,
    ) -> None:
        self._load = load
        self._max_age_s = max_age_s
        self._lock = threading.Lock()
        self._snapshot: RevocationSnapshot | None = None
        self._loaded_at = 0.0

    def snapshot(self, monotonic_now: float) -> RevocationSnapshot:
        """The current list (reloaded first when stale; a failed load raises, fail closed)."""
        with self._lock:
            if self._snapshot is None or monotonic_now - self._loaded_at >= self._max_age_s:
                self._snapshot = self._load()
                self._loaded_at = monotonic_now
            return self._snapshot

    def is_refused(self, monotonic_now: float, token_id: str | None, user: str) -> bool:
        """Whether a token (its ``jti`` and ``sub``) is revoked or its account disabled."""
        current = self.snapshot(monotonic_now)
        return (token_id is not None and token_id in current.token_ids) or (
            user in current.disabled
        )

    def invalidate(self) -> None:
        """Reload at the next check (after a revocation made by this process)."""
        with self._lock:
            self._snapshot = None


# --------------------------------------------------------------------------- SQL shell


@dataclass(frozen=True)
class User:
    """One row of ``users``. ``hospital``: an ``er`` user's hospital (None: every one)."""

    username: str
    role: Role
    subject: str | None
    contracted_subjects: tuple[str, ...]
    password_hash: str
    disabled: bool
    hospital: str | None = None


@dataclass(frozen=True)
class ApiClient:
    """One row of ``api_clients``: an ``er`` client's ``hospital``, a ``device`` client's
    ``gateway``."""

    client_id: str
    role: Role
    scopes: tuple[str, ...]
    secret_hash: str
    disabled: bool
    hospital: str | None = None
    gateway: str | None = None


def _role_of(value: object, allowed: frozenset[Role]) -> Role:
    for role in get_args(Role):
        if value == role and role in allowed:
            checked: Role = role
            return checked
    raise AccountError(f"role must be one of {', '.join(sorted(allowed))}")


def validate_user(
    username: str,
    role: str,
    subject: str | None,
    contracted: Sequence[str],
    hospital: str | None = None,
) -> tuple[Role, str | None, tuple[str, ...]]:
    """The checked role, subject and contracted subjects of a user (the token's rules; only
    an ``er`` user has a ``hospital``)."""
    checked = _role_of(role, USER_ROLES)
    try:
        claims = check_claims(
            checked,
            username,
            subject,
            list(contracted) if checked == "doctor" else None,
            hospital=hospital,
        )
    except TokenError as error:
        raise AccountError(error.detail) from None
    if contracted and checked != "doctor":
        raise AccountError("only a doctor has contracted subjects")
    return checked, claims.subject, claims.subjects or ()


def get_user(conn: Connection, username: str) -> User | None:
    """The user called ``username``, or None."""
    row = conn.execute(
        "SELECT username, role, subject, contracted_subjects, password_hash, disabled, hospital"
        " FROM users WHERE username = %s",
        (username,),
    ).fetchone()
    if row is None:
        return None
    return User(
        username=str(row[0]),
        role=_role_of(row[1], USER_ROLES),
        subject=row[2],
        contracted_subjects=tuple(row[3] or ()),
        password_hash=str(row[4]),
        disabled=bool(row[5]),
        hospital=row[6],
    )


def get_client(conn: Connection, client_id: str) -> ApiClient | None:
    """The client ``client_id``, or None."""
    row = conn.execute(
        "SELECT client_id, role, scopes, secret_hash, disabled, hospital, gateway"
        " FROM api_clients WHERE client_id = %s",
        (client_id,),
    ).fetchone()
    if row is None:
        return None
    return ApiClient(
        client_id=str(row[0]),
        role=_role_of(row[1], CLIENT_ROLES),
        scopes=tuple(row[2] or ()),
        secret_hash=str(row[3]),
        disabled=bool(row[4]),
        hospital=row[5],
        gateway=row[6],
    )


def _name_taken(conn: Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM users WHERE username = %s)"
        " OR EXISTS (SELECT 1 FROM api_clients WHERE client_id = %s)",
        (name, name),
    ).fetchone()
    return bool(row and row[0])


def add_user(
    conn: Connection,
    hasher: SecretHasher,
    *,
    username: str,
    role: str,
    password: str,
    now: datetime,
    subject: str | None = None,
    contracted: Sequence[str] = (),
    hospital: str | None = None,
) -> User:
    """Create a user (usernames and client ids share one namespace: a token's ``sub``)."""
    checked_role, own, subjects = validate_user(username, role, subject, contracted, hospital)
    check_password_policy(password)
    if _name_taken(conn, username):
        raise AccountError(f"{username!r} already exists (as a user or a client)")
    digest = hasher.hash(password)
    conn.execute(
        "INSERT INTO users (username, role, subject, contracted_subjects, password_hash,"
        " created_at, hospital) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (username, checked_role, own, list(subjects), digest, now, hospital),
    )
    return User(username, checked_role, own, subjects, digest, disabled=False, hospital=hospital)


def set_disabled(conn: Connection, username: str, disabled: bool) -> bool:
    """Disable (or enable) a user or client; False when there is none of that name."""
    users = conn.execute(
        "UPDATE users SET disabled = %s WHERE username = %s", (disabled, username)
    ).rowcount
    clients = conn.execute(
        "UPDATE api_clients SET disabled = %s WHERE client_id = %s", (disabled, username)
    ).rowcount
    return bool(users or clients)


def set_password(conn: Connection, hasher: SecretHasher, username: str, password: str) -> bool:
    """Replace a user's password; False when there is no such user."""
    check_password_policy(password)
    return bool(
        conn.execute(
            "UPDATE users SET password_hash = %s WHERE username = %s",
            (hasher.hash(password), username),
        ).rowcount
    )


def rehash_password(conn: Connection, username: str, new_hash: str) -> None:
    """Store a hash re-made with today's parameters (after a successful login)."""
    conn.execute("UPDATE users SET password_hash = %s WHERE username = %s", (new_hash, username))


def add_client(
    conn: Connection,
    hasher: SecretHasher,
    *,
    client_id: str,
    role: str,
    secret: str,
    now: datetime,
    scopes: Iterable[str] = (),
    hospital: str | None = None,
    gateway: str | None = None,
) -> ApiClient:
    """Register a client with a (generated) secret: an ``er`` client may have a
    ``hospital``, a ``device`` client must have its ``gateway``. ``scopes`` are names of
    :data:`ingest_service.api.scopes.SCOPES` (old single-word names are translated)."""
    checked_role = _role_of(role, CLIENT_ROLES)
    try:
        check_claims(checked_role, client_id, None, None, hospital=hospital, gateway=gateway)
    except TokenError as error:
        raise AccountError(error.detail) from None
    try:
        granted = canonical(scopes)
    except UnknownScopeError as error:
        raise AccountError(f"unknown scope {str(error)[:64]!r}; see docs/api.md (Scopes)") from None
    if _name_taken(conn, client_id):
        raise AccountError(f"{client_id!r} already exists (as a user or a client)")
    digest = hasher.hash(secret)
    conn.execute(
        "INSERT INTO api_clients (client_id, secret_hash, role, scopes, created_at, hospital,"
        " gateway) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (client_id, digest, checked_role, list(granted), now, hospital, gateway),
    )
    return ApiClient(
        client_id, checked_role, granted, digest, disabled=False, hospital=hospital, gateway=gateway
    )


def revoke_token(conn: Connection, token_id: str, *, by: str, reason: str, now: datetime) -> bool:
    """Add ``token_id`` to the revocation list; False when it was already there."""
    return bool(
        conn.execute(
            "INSERT INTO revoked_tokens (jti, revoked_at, by, reason) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (jti) DO NOTHING",
            (token_id, now, by, reason[:500]),
        ).rowcount
    )


def load_revocations(conn: Connection, since: datetime) -> RevocationSnapshot:
    """Token ids revoked since ``since`` (older tokens have expired anyway) and the names of
    disabled users and clients."""
    ids = conn.execute("SELECT jti FROM revoked_tokens WHERE revoked_at >= %s", (since,))
    token_ids = frozenset(str(row[0]) for row in ids.fetchall())
    names = conn.execute(
        "SELECT username FROM users WHERE disabled"
        " UNION ALL SELECT client_id FROM api_clients WHERE disabled"
    ).fetchall()
    return RevocationSnapshot(token_ids, frozenset(str(row[0]) for row in names))
