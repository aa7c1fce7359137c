"""Resident ID validation (GB 11643-1999, ISO 7064 MOD 11-2) and pseudonyms.

Every ID in this file is SYNTHETIC: built from the region code 110101, a birth date and a
sequence number, with its check character computed by the code under test's public helper
and cross-checked by an independent implementation below.
"""

from __future__ import annotations

import os
import stat
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest_service.identity import (
    SUBJECT_PATTERN,
    InvalidIdError,
    KeyRing,
    KeyStoreError,
    PseudonymKey,
    check_character,
    is_temporary_subject,
    pseudonym,
    pseudonyms_for,
    temporary_subject,
    validate_resident_id,
)
from vitals.models import is_identifier

TODAY = date(2026, 11, 25)


def _reference_check(body: str) -> str:
    """ISO 7064 MOD 11-2 as the standard states it: iterate p = (p + digit) * 2 mod 11."""
    total = 0
    for digit in body:
        total = ((total + int(digit)) * 2) % 11
    value = (12 - total) % 11
    return "X" if value == 10 else str(value)


def synthetic_id(region: str = "110101", born: str = "19900307", sequence: str = "123") -> str:
    """A SYNTHETIC resident ID with a valid check character."""
    body = region + born + sequence
    return body + _reference_check(body)


def _wrong_check(number: str) -> str:
    wrong = "0" if number[-1] != "0" else "1"
    return number[:-1] + wrong


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_character_matches_the_iso7064_recursive_definition(body: str) -> None:
    assert check_character(body) == _reference_check(body)


def test_check_character_10_is_x() -> None:
    # Find a synthetic body whose check value is 10 ("X").
    for sequence in range(1000):
        body = f"11010119900307{sequence:03d}"
        if _reference_check(body) == "X":
            assert check_character(body) == "X"
            break
    else:  # pragma: no cover
        pytest.fail("no X check character found")


def test_valid_synthetic_id_and_normalisation() -> None:
    number = synthetic_id()
    resident = validate_resident_id(f"  {number}\n", today=TODAY)
    assert resident.number == number
    assert resident.birth_date == date(1990, 3, 7)
    assert number not in repr(resident)


def test_lowercase_x_is_normalised() -> None:
    for sequence in range(1000):
        number = synthetic_id(sequence=f"{sequence:03d}")
        if number.endswith("X"):
            break
    resident = validate_resident_id(number[:-1] + "x", today=TODAY)
    assert resident.number == number


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda n: n[:-1], "has 17"),
        (lambda n: n + "1", "has 19"),
        (lambda n: "", "has 0"),
        (lambda n: n[:5] + "A" + n[6:], "another character"),
        (lambda n: n[:17] + "Y", "another character"),
        (lambda n: "\uff19" + n[1:], "another character"),  # full-width 9: not ASCII
        (_wrong_check, "check character"),
    ],
)
def test_rejections_name_the_check_and_never_echo_the_id(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    number = synthetic_id()
    bad = mutate(number)
    with pytest.raises(InvalidIdError) as caught:
        validate_resident_id(bad, today=TODAY)
    assert caught.value.kind == "invalid_id"
    assert reason in caught.value.detail
    for secret in {number, bad, number[:17], number[6:14]} - {""}:
        assert secret not in caught.value.detail


@pytest.mark.parametrize(
    ("born", "reason"),
    [
        ("19900230", "not a calendar date"),
        ("19901301", "not a calendar date"),
        ("19900001", "not a calendar date"),
        ("18991231", "before 1900"),
        ("20261126", "in the future"),
        ("20300101", "in the future"),
    ],
)
def test_birth_date_checks(born: str, reason: str) -> None:
    number = synthetic_id(born=born)  # valid check character: only the date is wrong
    with pytest.raises(InvalidIdError, match=reason) as caught:
        validate_resident_id(number, today=TODAY)
    assert born not in caught.value.detail


def test_birth_date_bounds_are_inclusive() -> None:
    validate_resident_id(synthetic_id(born="19000101"), today=TODAY)
    validate_resident_id(synthetic_id(born="20261125"), today=TODAY)
    validate_resident_id(synthetic_id(born="20000229"), today=TODAY)  # leap day


@pytest.mark.parametrize("region", ["010101", "910101", "000000"])
def test_region_code_first_digit(region: str) -> None:
    with pytest.raises(InvalidIdError, match="address code"):
        validate_resident_id(synthetic_id(region=region), today=TODAY)


@given(
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=0, max_value=99999),
    st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    st.integers(min_value=0, max_value=999),
)
def test_every_well_formed_synthetic_id_is_accepted(
    first: int, rest: int, born: date, sequence: int
) -> None:
    number = synthetic_id(f"{first}{rest:05d}", born.strftime("%Y%m%d"), f"{sequence:03d}")
    assert validate_resident_id(number, today=TODAY).number == number
    with pytest.raises(InvalidIdError):
        validate_resident_id(_wrong_check(number), today=TODAY)


KEY_1 = PseudonymKey(version=1, secret=bytes(range(32)))
KEY_2 = PseudonymKey(version=2, secret=bytes(range(1, 33)))


def test_pseudonym_is_stable_keyed_and_topic_safe() -> None:
    resident = validate_resident_id(synthetic_id(), today=TODAY)
    other = validate_resident_id(synthetic_id(sequence="124"), today=TODAY)
    first = pseudonym(resident, KEY_1)
    assert first == pseudonym(resident, KEY_1)
    assert first.algorithm == "hmac-sm3"
    assert first.key_version == 1
    assert first.subject != pseudonym(resident, KEY_2).subject
    assert first.subject != pseudonym(other, KEY_1).subject
    sha = pseudonym(resident, KEY_1, "hmac-sha256")
    assert sha.algorithm == "hmac-sha256"
    assert sha.subject != first.subject
    for subject in (first.subject, sha.subject):
        assert is_identifier(subject)
        assert SUBJECT_PATTERN.fullmatch(subject)
        assert len(subject) == 27
        assert resident.number not in subject
    assert KEY_1.secret.hex() not in repr(KEY_1)
    assert str(KEY_1.secret) not in repr(KEY_1)


def test_pseudonym_matches_a_known_hmac_sm3_vector() -> None:
    """HMAC-SM3 computed independently (RFC 2104 over SM3 via hashlib when available)."""
    import base64
    import hashlib
    import hmac as std_hmac

    resident = validate_resident_id(synthetic_id(), today=TODAY)
    if "sm3" not in hashlib.algorithms_available:
        pytest.skip("this OpenSSL has no SM3 in hashlib")
    mac = std_hmac.new(KEY_1.secret, resident.number.encode(), "sm3").digest()
    expected = "p" + base64.b32encode(mac[:16]).decode().rstrip("=").lower()
    assert pseudonym(resident, KEY_1).subject == expected
    mac256 = std_hmac.new(KEY_1.secret, resident.number.encode(), "sha256").digest()
    expected256 = "p" + base64.b32encode(mac256[:16]).decode().rstrip("=").lower()
    assert pseudonym(resident, KEY_1, "hmac-sha256").subject == expected256


def test_pseudonyms_for_every_key_version() -> None:
    resident = validate_resident_id(synthetic_id(), today=TODAY)
    mapping = pseudonyms_for(resident, {1: KEY_1, 2: KEY_2})
    assert mapping == {
        1: pseudonym(resident, KEY_1).subject,
        2: pseudonym(resident, KEY_2).subject,
    }


def test_temporary_subject() -> None:
    subject = temporary_subject(bytes(16))
    assert subject.startswith("tmp-")
    assert is_identifier(subject)
    assert is_temporary_subject(subject)
    assert not is_temporary_subject(
        pseudonym(validate_resident_id(synthetic_id(), today=TODAY), KEY_1).subject
    )
    assert temporary_subject(os.urandom(16)) != temporary_subject(os.urandom(16))
    with pytest.raises(ValueError, match="random bytes"):
        temporary_subject(b"short")


def test_keyring_generates_once_with_mode_0600_and_rotates(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys")
    assert ring.versions() == []
    first = ring.current()
    assert first.version == 1
    assert len(first.secret) == 32
    path = ring.path(1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert ring.current() == first  # not regenerated
    second = ring.rotate()
    assert second.version == 2
    assert second.secret != first.secret
    assert ring.current() == second
    assert ring.get(1) == first
    assert sorted(ring.all()) == [1, 2]
    assert not [p for p in (tmp_path / "keys").iterdir() if p.name.startswith(".")]


def test_keyring_refuses_open_or_short_keys(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path)
    ring.current()
    ring.path(1).chmod(0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        ring.get(1)
    ring.path(1).chmod(0o600)
    ring.path(1).write_bytes(b"short")
    with pytest.raises(KeyStoreError, match="not 32"):
        ring.get(1)
    with pytest.raises(KeyStoreError) as caught:
        ring.get(9)
    assert caught.value.kind == "unknown_key_version"
