"""The audit hash chain, pure part: canonical form, SM3/SHA-256 links, verify()."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import hashes

from ingest_service.audit import (
    GENESIS,
    AuditEntry,
    AuditRow,
    ChainAlgorithm,
    canonical_json,
    chain_hash,
    verify,
)

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _entry(i: int) -> AuditEntry:
    return AuditEntry(
        time=T0 + timedelta(seconds=i, microseconds=i),
        actor=f"doctor-{i % 3}",
        action="read",
        resource=f"subject/pabc{i}",
        detail={"role": "doctor", "purpose": "care", "n": i, "from": "10.0.0.7"},
    )


def _chain(count: int, algorithm: ChainAlgorithm = "sm3") -> list[AuditRow]:
    rows: list[AuditRow] = []
    prev = GENESIS
    for i in range(count):
        entry = _entry(i)
        digest = chain_hash(prev, entry, algorithm)
        rows.append(AuditRow(i + 1, entry, algorithm, prev, digest))
        prev = digest
    return rows


def test_canonical_json_is_stable_and_utc() -> None:
    entry = AuditEntry(
        time=datetime(2026, 11, 25, 16, 0, tzinfo=timezone(timedelta(hours=8))),
        actor="a",
        action="read",
        resource="r",
        detail={"b": 1, "a": "读"},
    )
    assert (
        canonical_json(entry)
        == (
            '{"action":"read","actor":"a","detail":{"a":"读","b":1},'
            '"resource":"r","time":"2026-11-25T08:00:00.000000+00:00"}'
        ).encode()
    )


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        AuditEntry(time=datetime(2026, 1, 1), actor="a", action="b", resource="c")


def test_chain_hash_is_sm3_or_sha256_of_prev_and_canonical_json() -> None:
    entry = _entry(1)
    payload = GENESIS + canonical_json(entry)
    digest = hashes.Hash(hashes.SM3())
    digest.update(payload)
    assert chain_hash(GENESIS, entry, "sm3") == digest.finalize()
    assert chain_hash(GENESIS, entry, "sha256") == hashlib.sha256(payload).digest()


@pytest.mark.parametrize("algorithm", ["sm3", "sha256"])
def test_intact_chain_verifies(algorithm: ChainAlgorithm) -> None:
    result = verify(_chain(10, algorithm))
    assert (result.rows, result.ok, result.first_bad_row) == (10, True, None)


def test_empty_chain_is_ok() -> None:
    assert verify([]) == verify(iter(()))
    assert verify([]).ok
    assert verify([]).rows == 0


@pytest.mark.parametrize(
    "field",
    ["time", "actor", "action", "resource", "detail"],
)
def test_altered_row_is_reported(field: str) -> None:
    rows = _chain(8)
    entry = rows[4].entry
    altered = {
        "time": dataclasses.replace(entry, time=entry.time + timedelta(microseconds=1)),
        "actor": dataclasses.replace(entry, actor="intruder"),
        "action": dataclasses.replace(entry, action="write"),
        "resource": dataclasses.replace(entry, resource="subject/other"),
        "detail": dataclasses.replace(entry, detail={**entry.detail, "purpose": "curiosity"}),
    }[field]
    rows[4] = dataclasses.replace(rows[4], entry=altered)
    result = verify(rows)
    assert (result.rows, result.ok, result.first_bad_row) == (8, False, 5)


def test_deleted_row_is_reported_at_its_successor() -> None:
    rows = _chain(8)
    del rows[2]  # id 3
    assert verify(rows).first_bad_row == 4


def test_reordered_rows_and_rewritten_hash_are_reported() -> None:
    rows = _chain(6)
    rows[1], rows[2] = rows[2], rows[1]
    assert verify(rows).first_bad_row == rows[1].id
    rows = _chain(6)
    # The attacker alters row 3 and recomputes its hash: row 4 no longer links to it.
    forged_entry = dataclasses.replace(rows[2].entry, actor="intruder")
    forged = dataclasses.replace(
        rows[2], entry=forged_entry, hash=chain_hash(rows[2].prev_hash, forged_entry, "sm3")
    )
    rows[2] = forged
    assert verify(rows).first_bad_row == 4


def test_unknown_algorithm_and_non_object_detail_are_bad() -> None:
    rows = _chain(3)
    rows[1] = dataclasses.replace(rows[1], algorithm="md5")
    assert verify(rows).first_bad_row == 2
    rows = _chain(3)
    empty = AuditEntry(time=T0, actor="a", action="b", resource="c", detail={})
    digest = chain_hash(GENESIS, empty, "sm3")
    tampered = dataclasses.replace(empty, detail=[])  # type: ignore[arg-type]
    assert verify([AuditRow(1, empty, "sm3", GENESIS, digest)]).ok
    assert not verify([AuditRow(1, tampered, "sm3", GENESIS, digest)]).ok
