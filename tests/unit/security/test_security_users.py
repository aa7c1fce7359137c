"""Pure parts of the login: argon2id hashing, password policy, account validation, the
failed-login throttle and the revocation cache (ingest_service.users)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import argon2
import pytest

from ingest_service.users import (
    MIN_PASSWORD_LENGTH,
    AccountError,
    RevocationCache,
    RevocationSnapshot,
    SecretHasher,
    check_password_policy,
    throttle_wait,
    validate_user,
)

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
#: Cheap parameters so the unit tests stay fast; the defaults are exercised by integration.
FAST = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def test_hashes_are_argon2id_salted_and_verify() -> None:
    hasher = SecretHasher(FAST)
    first, second = hasher.hash("correct horse battery"), hasher.hash("correct horse battery")
    assert first.startswith("$argon2id$") and first != second  # fresh salt each time
    assert "correct horse" not in first
    assert hasher.verify(first, "correct horse battery")
    assert not hasher.verify(first, "correct horse batterY")
    assert not hasher.verify("not a hash", "correct horse battery")
    assert not hasher.verify(None, "vitalstream-no-such-user")  # the dummy never logs in


def test_the_default_parameters_follow_rfc_9106() -> None:
    stored = SecretHasher().hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_a_hash_made_with_weaker_parameters_needs_rehash() -> None:
    weak = SecretHasher(FAST).hash("correct horse battery")
    assert SecretHasher().needs_rehash(weak)
    assert not SecretHasher(FAST).needs_rehash(weak)
    assert SecretHasher(FAST).needs_rehash("garbage")


def test_password_policy() -> None:
    check_password_policy("x" * MIN_PASSWORD_LENGTH)
    with pytest.raises(AccountError):
        check_password_policy("x" * (MIN_PASSWORD_LENGTH - 1))
    with pytest.raises(AccountError):
        check_password_policy("x" * 257)


def test_validate_user_follows_the_token_rules() -> None:
    assert validate_user("u-1", "patient", "palpha", []) == ("patient", "palpha", ())
    assert validate_user("dr-li", "doctor", None, ["pa", "pb"]) == ("doctor", None, ("pa", "pb"))
    assert validate_user("ops", "admin", None, []) == ("admin", None, ())
    assert validate_user("er-zhao", "er", None, [], "h-ruijin") == ("er", None, ())
    bad_accounts: list[tuple[str, str, str | None, list[str]]] = [
        ("u-1", "patient", None, []),  # a patient needs their subject
        ("dr-li", "doctor", "pa", []),  # a doctor has contracts, not a subject
        ("ops", "admin", None, ["pa"]),  # only doctors have contracts
        ("svc", "service", None, []),  # services are clients, not users
        ("bad name", "er", None, []),  # not an identifier
        ("dr-li", "doctor", None, ["p/a"]),
        ("gw-1", "device", None, []),  # devices are clients, not users
    ]
    for username, role, subject, contracted in bad_accounts:
        with pytest.raises(AccountError):
            validate_user(username, role, subject, contracted)
    for role in ("doctor", "patient", "admin"):  # only an er user belongs to a hospital
        with pytest.raises(AccountError):
            validate_user("u-1", role, "palpha" if role == "patient" else None, [], "h-ruijin")
    with pytest.raises(AccountError):
        validate_user("er-zhao", "er", None, [], "not a/hospital")


def test_throttle_wait_blocks_at_the_limit_until_the_limit_th_newest_leaves_the_window() -> None:
    window = timedelta(minutes=15)
    failures = [T0 + timedelta(minutes=i) for i in range(3)][::-1]  # newest first
    assert throttle_wait(failures[1:], 3, window, T0 + timedelta(minutes=3)) == 0  # two: fine
    wait = throttle_wait(failures, 3, window, T0 + timedelta(minutes=3))
    assert wait == pytest.approx(12 * 60)  # until the first failure leaves the window
    assert throttle_wait(failures, 3, window, T0 + timedelta(minutes=15)) == 0


def test_throttle_wait_counts_only_the_window_and_waits_at_least_a_second() -> None:
    window = timedelta(minutes=15)
    old = [T0 - timedelta(minutes=20)] * 10  # outside the window: forgotten
    assert throttle_wait(old, 3, window, T0) == 0
    almost_free = [T0 - window + timedelta(milliseconds=10)] * 3
    assert throttle_wait(almost_free, 3, window, T0) == 1.0


def test_revocation_cache_reloads_when_stale_or_invalidated() -> None:
    loads: list[int] = []
    revoked: set[str] = set()

    def load() -> RevocationSnapshot:
        loads.append(1)
        return RevocationSnapshot(frozenset(revoked), frozenset({"dr-gone"}))

    cache = RevocationCache(load, max_age_s=2.0)
    assert not cache.is_refused(100.0, "j1", "dr-li")
    revoked.add("j1")
    assert not cache.is_refused(101.0, "j1", "dr-li")  # cached for up to 2 s elsewhere
    assert cache.is_refused(102.0, "j1", "dr-li")
    assert cache.is_refused(102.5, None, "dr-gone")  # a disabled account
    assert not cache.is_refused(102.5, None, "dr-li")
    revoked.add("j2")
    cache.invalidate()  # a revocation made by this process is seen at once
    assert cache.is_refused(102.6, "j2", "dr-li")
    assert len(loads) == 3


def test_revocation_cache_fails_closed() -> None:
    def load() -> RevocationSnapshot:
        raise ConnectionError("database gone")

    with pytest.raises(ConnectionError):
        RevocationCache(load).is_refused(1.0, "j1", "dr-li")
