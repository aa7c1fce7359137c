"""Token minting and verification (pure), and the signing-key file."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from ingest_service.api.tokens import (
    AUDIENCE,
    ISSUER,
    KEY_BYTES,
    KeyFileError,
    TokenError,
    decode_token,
    load_signing_key,
    mint_token,
)

KEY = b"k" * KEY_BYTES
NOW = datetime.now(UTC)


def test_a_doctor_token_round_trips_with_its_contracted_subjects() -> None:
    token = mint_token(KEY, user="dr-li", role="doctor", now=NOW, subjects=["p1", "p2"])
    who = decode_token(KEY, token)
    assert (who.user, who.role, who.subjects, who.subject) == (
        "dr-li",
        "doctor",
        ("p1", "p2"),
        None,
    )
    assert who.actor == "doctor:dr-li"
    assert who.expires_at is not None
    assert who.expires_at - NOW <= timedelta(seconds=901)


def test_default_lifetime_is_fifteen_minutes() -> None:
    claims = jwt.decode(
        mint_token(KEY, user="ops", role="admin", now=NOW),
        KEY,
        algorithms=["HS256"],
        audience=AUDIENCE,
        issuer=ISSUER,
    )
    assert claims["exp"] - claims["iat"] == 900
    assert claims["jti"]


def test_a_patient_token_carries_their_own_subject() -> None:
    who = decode_token(KEY, mint_token(KEY, user="u1", role="patient", subject="p1", now=NOW))
    assert who.subject == "p1"


@pytest.mark.parametrize(
    ("role", "subject", "subjects"),
    [
        ("nurse", None, None),  # not a role
        ("patient", None, None),  # a patient without their subject would see everyone
        ("doctor", "p1", None),  # `subject` is for patients only
        ("admin", None, ["p1"]),  # `subjects` is for doctors only
        ("doctor", None, ["has/slash"]),  # not an identifier
        ("device", None, None),  # a device token without its gateway could be any gateway
    ],
)
def test_bad_claims_are_refused_at_minting(
    role: str, subject: str | None, subjects: list[str] | None
) -> None:
    with pytest.raises(TokenError):
        mint_token(KEY, user="u", role=role, now=NOW, subject=subject, subjects=subjects)


def test_an_expired_token_is_refused() -> None:
    token = mint_token(KEY, user="dr-li", role="doctor", now=NOW - timedelta(hours=1), ttl_s=60)
    with pytest.raises(TokenError) as caught:
        decode_token(KEY, token)
    assert caught.value.kind == "expired_token"


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = mint_token(b"x" * KEY_BYTES, user="dr-li", role="admin", now=NOW)
    with pytest.raises(TokenError):
        decode_token(KEY, token)


def test_alg_none_and_other_algorithms_are_refused() -> None:
    claims = {
        "sub": "mallory",
        "role": "admin",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 600,
    }
    unsigned = jwt.encode(claims, "", algorithm="none")
    hs512 = jwt.encode(claims, KEY, algorithm="HS512")
    for token in (unsigned, hs512, "not-a-jwt", ""):
        with pytest.raises(TokenError):
            decode_token(KEY, token)


def test_a_validly_signed_token_with_bad_claims_is_refused() -> None:
    """A patient token minted elsewhere without `subject` must not mean 'every subject'."""
    claims = {
        "sub": "u1",
        "role": "patient",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 600,
    }
    with pytest.raises(TokenError):
        decode_token(KEY, jwt.encode(claims, KEY, algorithm="HS256"))
    wrong_audience = {**claims, "subject": "p1", "aud": "someone-else"}
    with pytest.raises(TokenError):
        decode_token(KEY, jwt.encode(wrong_audience, KEY, algorithm="HS256"))


def test_the_signing_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "api-token.key"
    first = load_signing_key(path)
    assert len(first) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key(path) == first
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "api-token.key"
    load_signing_key(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError):
        load_signing_key(path)


def test_a_missing_key_is_not_created_when_not_allowed(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        load_signing_key(tmp_path / "absent.key", create=False)


def test_hospital_gateway_and_scope_claims_round_trip() -> None:
    er = decode_token(KEY, mint_token(KEY, user="er-zhao", role="er", hospital="h-a", now=NOW))
    assert (er.hospital, er.gateway, er.scopes) == ("h-a", None, None)
    device = decode_token(
        KEY,
        mint_token(
            KEY, user="gw-1-client", role="device", gateway="gw-1", scopes=["gateways:write"],
            now=NOW,
        ),
    )  # fmt: skip
    assert (device.role, device.gateway, device.scopes) == ("device", "gw-1", {"gateways:write"})
    assert device.has_scope("gateways:write") and not device.has_scope("readings:read")
    assert er.has_scope("readings:read")  # no scope claim: the role alone decides
    empty = decode_token(KEY, mint_token(KEY, user="svc", role="service", scopes=[], now=NOW))
    assert empty.scopes == frozenset() and not empty.has_scope("readings:read")


@pytest.mark.parametrize(
    ("role", "claims"),
    [
        ("doctor", {"hospital": "h-a"}),  # only an er token carries a hospital
        ("admin", {"gateway": "gw-1"}),  # only a device token carries a gateway
        ("er", {"hospital": "h/a"}),  # not an identifier
    ],
)
def test_hospital_and_gateway_claims_belong_to_their_roles(
    role: str, claims: dict[str, str]
) -> None:
    with pytest.raises(TokenError):
        mint_token(KEY, user="u", role=role, now=NOW, **claims)


def test_a_forged_scope_claim_of_the_wrong_type_is_refused() -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "svc", "role": "service", "jti": "j",
              "iat": int(NOW.timestamp()), "exp": int(NOW.timestamp()) + 60,
              "scope": ["readings:read"]}  # fmt: skip
    with pytest.raises(TokenError):
        decode_token(KEY, jwt.encode(claims, KEY, algorithm="HS256"))
