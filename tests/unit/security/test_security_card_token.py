"""Health-card tokens (pure part) and their QR codes."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest_service.health_card import (
    TOKEN_LENGTH,
    TOKEN_PREFIX,
    HealthCardError,
    make_token,
    parse_token,
    render_qr,
)
from ingest_service.identity import PseudonymKey

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
KEY = PseudonymKey(version=1, secret=bytes(range(32)))
KEY_2 = PseudonymKey(version=2, secret=bytes(range(32, 64)))
KEYS = {1: KEY, 2: KEY_2}
CARD = bytes(range(16))


def _token(key: PseudonymKey = KEY, days: int = 30) -> str:
    return make_token(CARD, NOW + timedelta(days=days), key)


def _kind(token: str, keys: dict[int, PseudonymKey] = KEYS, now: datetime = NOW) -> str:
    with pytest.raises(HealthCardError) as caught:
        parse_token(token, keys, now=now)
    return caught.value.kind


def test_round_trip() -> None:
    token = _token()
    assert token.startswith(TOKEN_PREFIX) and len(token) == TOKEN_LENGTH
    assert token.isalnum() and token == token.upper()  # QR alphanumeric mode
    claims = parse_token(token, KEYS, now=NOW)
    assert claims.card_id == CARD.hex()
    assert claims.key_version == 1
    assert claims.expires_at == NOW + timedelta(days=30)
    # Scanners that lower-case or split the text still work.
    assert parse_token(token.lower(), KEYS, now=NOW) == claims
    assert parse_token(token[:30] + " " + token[30:], KEYS, now=NOW) == claims
    assert parse_token(_token(KEY_2), KEYS, now=NOW).key_version == 2


def test_token_is_opaque() -> None:
    """Nothing but version, key version, card id, expiry and tag: no subject, no ID."""
    raw_length = struct.calcsize(">BH16sq") + 16
    assert len(TOKEN_PREFIX) + (8 * raw_length + 4) // 5 == TOKEN_LENGTH
    # Two cards for the same subject share nothing but the format.
    other = make_token(bytes(range(16, 32)), NOW + timedelta(days=30), KEY)
    assert other[:8] == _token()[:8] and other[8:40] != _token()[8:40]


def test_expiry() -> None:
    token = _token(days=1)
    assert parse_token(token, KEYS, now=NOW + timedelta(hours=23))
    assert _kind(token, now=NOW + timedelta(days=1)) == "card_expired"
    assert _kind(token, now=NOW + timedelta(days=400)) == "card_expired"


@pytest.mark.parametrize("position", [3, 4, 10, 40, 60, TOKEN_LENGTH - 1])
def test_tamper_is_refused(position: int) -> None:
    token = _token()
    swapped = "A" if token[position] != "A" else "B"
    assert _kind(token[:position] + swapped + token[position + 1 :]) == "card_invalid"


def test_forged_and_foreign_tokens_are_refused() -> None:
    assert _kind(_token(PseudonymKey(version=1, secret=bytes(32)))) == "card_invalid"
    assert _kind(_token(PseudonymKey(version=7, secret=bytes(32)))) == "card_invalid"
    assert _kind(_token(KEY_2), keys={1: KEY}) == "card_invalid"
    for junk in ("", "VSC", "hello", "VSC" + "1" * (TOKEN_LENGTH - 3), _token()[:-1]):
        assert _kind(junk) == "card_invalid"


@given(st.text(max_size=120))
def test_arbitrary_text_never_crashes(text: str) -> None:
    with pytest.raises(HealthCardError):
        parse_token(text, KEYS, now=NOW)


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=69, max_size=69))
def test_well_shaped_garbage_never_crashes(body: str) -> None:
    with pytest.raises(HealthCardError):
        parse_token(TOKEN_PREFIX + body, KEYS, now=NOW)


def test_qr_png_and_svg_are_written(tmp_path: Path) -> None:
    token = _token()
    png = render_qr(token, tmp_path / "card.png")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert width == height >= 8 * (33 + 8)  # version 4 = 33 modules, quiet zone 4 each side
    svg = render_qr(token, tmp_path / "card.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert token not in svg  # the image, not the text
    with pytest.raises(ValueError, match=r"png or \.svg"):
        render_qr(token, tmp_path / "card.jpg")


def test_qr_decodes_back_to_the_token(tmp_path: Path) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    image_module = pytest.importorskip("PIL.Image")
    token = _token()
    path = render_qr(token, tmp_path / "card.png")
    with image_module.open(path) as image:
        results = zxingcpp.read_barcodes(image.convert("L"))
    assert [result.text for result in results] == [token]
