"""Tamper-evident audit log: an append-only hash chain (issue 10, R14).

Every row carries ``hash = H(prev_hash || canonical_json(row))`` where ``prev_hash`` is the
previous row's hash (32 zero bytes for the first row), ``H`` is SM3 (GM/T 0004-2012, the
default) or SHA-256, and ``canonical_json`` is the row's ``time``, ``actor``, ``action``,
``resource`` and ``detail`` serialised with sorted keys, no insignificant whitespace, UTF-8 and
``time`` as UTC ISO 8601 with microseconds (in the spirit of RFC 8785, JSON canonicalisation).

Altering a row breaks its own hash; deleting one breaks its successor's ``prev_hash``; so
:func:`verify` finds the first altered or deleted row. What a bare chain cannot show: that the
newest rows were cut off, or that an attacker with write access rewrote the whole suffix.
Both need the head hash anchored outside the database (docs/security.md); in the database a
trigger refuses UPDATE, DELETE and TRUNCATE (migration 2) so only a superuser can try.

Pure core: :func:`canonical_json`, :func:`chain_hash`, :func:`verify`. SQL shell:
:func:`append`, :func:`read_all`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

import psycopg
from cryptography.hazmat.primitives import hashes
from psycopg.types.json import Jsonb

ChainAlgorithm = Literal["sm3", "sha256"]
CHAIN_ALGORITHMS: tuple[ChainAlgorithm, ...] = get_args(ChainAlgorithm)
DEFAULT_CHAIN_ALGORITHM: ChainAlgorithm = "sm3"

#: The ``prev_hash`` of the first row (both SM3 and SHA-256 give 32-byte digests).
GENESIS = bytes(32)

#: Advisory-lock key that serialises appends so the chain stays linear ("vsau").
AUDIT_LOCK = 0x76_73_61_75


@dataclass(frozen=True)
class AuditEntry:
    """What happened: who (``actor``) did what (``action``) to which ``resource``, when.

    ``detail`` holds the rest (role, subject, purpose, source address ...) as JSON values.
    It must never hold a clear national ID: the log is read by auditors, not by enrolment.
    """

    time: datetime
    actor: str
    action: str
    resource: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError("an audit entry's time must be timezone-aware")


@dataclass(frozen=True)
class AuditRow:
    """One stored row: the entry, its position (``id``) and its link in the chain."""

    id: int
    entry: AuditEntry
    algorithm: str
    prev_hash: bytes
    hash: bytes


def canonical_json(entry: AuditEntry) -> bytes:
    """The bytes the chain hashes: sorted keys, compact separators, UTF-8, UTC microseconds."""
    document = {
        "time": entry.time.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "action": entry.action,
        "resource": entry.resource,
        # A row read back may hold any JSON in ``detail`` if someone tampered with it; hash
        # what is there rather than coerce it, so the change shows.
        "detail": dict(entry.detail) if isinstance(entry.detail, Mapping) else entry.detail,
    }
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def chain_hash(prev_hash: bytes, entry: AuditEntry, algorithm: ChainAlgorithm) -> bytes:
    """``H(prev_hash || canonical_json(entry))`` with H = SM3 (GM/T 0004-2012) or SHA-256."""
    payload = prev_hash + canonical_json(entry)
    if algorithm == "sha256":
        return hashlib.sha256(payload).digest()
    if algorithm == "sm3":
        digest = hashes.Hash(hashes.SM3())
        digest.update(payload)
        return digest.finalize()
    raise ValueError(f"unknown chain algorithm {algorithm!r}")


def chain_algorithm(name: str) -> ChainAlgorithm | None:
    """``name`` as a chain algorithm, or None when it is not one."""
    for known in CHAIN_ALGORITHMS:
        if name == known:
            return known
    return None


@dataclass(frozen=True)
class Verification:
    """The result of :func:`verify` (the ``vitalstream audit verify`` output)."""

    rows: int
    ok: bool
    first_bad_row: int | None


def verify(rows: Iterable[AuditRow]) -> Verification:
    """Walk the chain in ``id`` order; report the ``id`` of the first row that does not fit.

    A row is bad when its ``prev_hash`` is not the previous row's hash (a row before it was
    deleted, inserted or reordered) or when its ``hash`` does not match its content (it was
    altered). ``rows`` must be in ascending ``id`` order, as :func:`read_all` returns them.
    """
    expected_prev = GENESIS
    count = 0
    first_bad: int | None = None
    for row in rows:
        count += 1
        if first_bad is not None:
            continue
        algorithm = chain_algorithm(row.algorithm)
        if (
            algorithm is None
            or row.prev_hash != expected_prev
            or row.hash != chain_hash(row.prev_hash, row.entry, algorithm)
        ):
            first_bad = row.id
        expected_prev = row.hash
    return Verification(rows=count, ok=first_bad is None, first_bad_row=first_bad)


# --------------------------------------------------------------------------- SQL shell

Connection = psycopg.Connection[Any]


def append(
    conn: Connection, entry: AuditEntry, algorithm: ChainAlgorithm = DEFAULT_CHAIN_ALGORITHM
) -> AuditRow:
    """Append one entry under a transaction-scoped advisory lock and return the stored row.

    The lock makes "read the last hash, insert the next row" atomic across connections; the
    unique index on ``prev_hash`` would refuse a fork even without it. When the caller has a
    transaction open, this runs in a savepoint and the lock lasts until the caller's commit,
    so an action and its audit row commit (or roll back) together; otherwise it commits on
    its own.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
        last = conn.execute("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
        prev_hash = bytes(last[0]) if last is not None else GENESIS
        digest = chain_hash(prev_hash, entry, algorithm)
        stored = conn.execute(
            "INSERT INTO audit_log"
            " (time, actor, action, resource, detail, algorithm, prev_hash, hash)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                entry.time,
                entry.actor,
                entry.action,
                entry.resource,
                Jsonb(dict(entry.detail)),
                algorithm,
                prev_hash,
                digest,
            ),
        ).fetchone()
    assert stored is not None
    return AuditRow(
        id=int(stored[0]), entry=entry, algorithm=algorithm, prev_hash=prev_hash, hash=digest
    )


def _row(row: tuple[Any, ...]) -> AuditRow:
    return AuditRow(
        id=int(row[0]),
        entry=AuditEntry(
            time=row[1],
            actor=row[2],
            action=row[3],
            resource=row[4],
            detail=cast(Mapping[str, Any], row[5]),
        ),
        algorithm=str(row[6]),
        prev_hash=bytes(row[7]),
        hash=bytes(row[8]),
    )


_SELECT = (
    "SELECT id, time, actor, action, resource, detail, algorithm, prev_hash, hash"
    " FROM audit_log ORDER BY id"
)


def iter_rows(conn: Connection, batch: int = 5000) -> Iterator[AuditRow]:
    """Every row in chain (``id``) order through a server-side cursor (constant memory).

    Needs a connection that is not in autocommit mode (server-side cursors live in a
    transaction).
    """
    with conn.cursor(name="audit_log_scan") as cursor:
        cursor.itersize = batch
        cursor.execute(_SELECT)
        for row in cursor:
            yield _row(row)


def read_all(conn: Connection) -> list[AuditRow]:
    """Every row in chain (``id``) order."""
    return [_row(row) for row in conn.execute(_SELECT).fetchall()]


def audit_log_exists(conn: Connection) -> bool:
    """Whether migration 2 has created ``audit_log`` in this database."""
    row = conn.execute("SELECT to_regclass('audit_log') IS NOT NULL").fetchone()
    return bool(row and row[0])
