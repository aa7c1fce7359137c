"""Pure parts of the login: argon2id hashing, password policy, account validation, the
failed-login throttle and the revocation cache (ingest_service.users)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import argon2
import pytest

from ingest_service.users import (
    MIN_PASSWORD_LENGTH,
    AccountError,
    LoginThrottle,
    RevocationCache,
    RevocationSnapshot,
    SecretHasher,
    check_password_policy,
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
    bad_accounts: list[tuple[str, str, str | None, list[str]]] = [
        ("u-1", "patient", None, []),  # a patient needs their subject
        ("dr-li", "doctor", "pa", []),  # a doctor has contracts, not a subject
        ("ops", "admin", None, ["pa"]),  # only doctors have contracts
        ("svc", "service", None, []),  # services are clients, not users
        ("bad name", "er", None, []),  # not an identifier
        ("dr-li", "doctor", None, ["p/a"]),
    ]
    for username, role, subject, contracted in bad_accounts:
        with pytest.raises(AccountError):
            validate_user(username, role, subject, contracted)


def test_throttle_blocks_a_username_after_the_limit_and_forgets_after_the_window() -> None:
    throttle = LoginThrottle(username_limit=3, address_limit=100, window=timedelta(minutes=15))
    assert throttle.retry_after("dr-li", "10.0.0.1", T0) == 0
    started = [
        throttle.record_failure("dr-li", "10.0.0.1", T0 + timedelta(minutes=i)) for i in range(3)
    ]
    assert started == [False, False, True]  # the third failure starts the lock-out
    wait = throttle.retry_after("dr-li", "10.0.0.9", T0 + timedelta(minutes=3))
    assert wait == pytest.approx(12 * 60)  # until the first failure leaves the window
    assert throttle.retry_after("dr-wang", "10.0.0.1", T0 + timedelta(minutes=3)) == 0
    assert throttle.retry_after("dr-li", "10.0.0.1", T0 + timedelta(minutes=15)) == 0


def test_throttle_blocks_an_address_spraying_many_usernames() -> None:
    throttle = LoginThrottle(username_limit=3, address_limit=4)
    for index in range(4):
        throttle.record_failure(f"user-{index}", "10.0.0.66", T0)
    assert throttle.retry_after("anyone", "10.0.0.66", T0) > 0
    assert throttle.retry_after("anyone", "10.0.0.67", T0) == 0


def test_a_success_clears_the_usernames_failures_only() -> None:
    throttle = LoginThrottle(username_limit=2, address_limit=3)
    throttle.record_failure("dr-li", "10.0.0.1", T0)
    throttle.record_failure("dr-li", "10.0.0.1", T0)
    throttle.record_success("dr-li")
    assert throttle.retry_after("dr-li", "10.0.0.2", T0) == 0
    throttle.record_failure("dr-wang", "10.0.0.1", T0)
    assert throttle.retry_after("x", "10.0.0.1", T0) > 0  # the address kept its count


def test_throttle_memory_is_bounded() -> None:
    throttle = LoginThrottle(max_keys=10)
    for index in range(100):
        throttle.record_failure(f"made-up-{index}", f"10.0.{index}.1", T0)
    assert len(throttle._users) <= 10 and len(throttle._addresses) <= 10


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
