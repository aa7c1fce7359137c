"""The SM4-GCM payload layer (vitals.sealed): vectors, round trip, and every way to fail."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitals.errors import PayloadError
from vitals.sealed import (
    KEY_BYTES,
    NONCE_BYTES,
    SEALED_INVALID,
    TAG_BYTES,
    VERSION_SM4_GCM,
    generate_key,
    open_sealed,
    parse_header,
    seal,
)

TOPIC = "vs/v1/gw/gw-0042/readings"
OTHER_TOPIC = "vs/v1/gw/gw-0043/readings"
KEY = bytes(range(KEY_BYTES))
KEYS = {"gw-0042.k1": KEY}
PAYLOAD = b'{"schema_version":1,"gateway":"gw-0042","readings":[]}'


def test_sm4_gcm_matches_the_rfc8998_known_answer() -> None:
    """RFC 8998 Appendix A.1 (SM4-GCM): the cipher under seal() is the standard one."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    nonce = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plaintext = bytes.fromhex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    assert ciphertext.hex().upper() == (
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
    )
    assert encryptor.tag.hex().upper() == "83DE3541E4C2B58177E065A9BF7B62EC"


def test_sm4_block_matches_gmt_0002_example() -> None:
    """GM/T 0002-2012 Appendix A, example 1: one block under key = plaintext."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    assert (encryptor.update(key) + encryptor.finalize()).hex() == (
        "681edf34d206965e86b3e94f536e4246"
    )


def test_round_trip_and_wire_format() -> None:
    sealed = seal(PAYLOAD, KEY, "gw-0042.k1", TOPIC)
    assert open_sealed(sealed, KEYS, TOPIC) == PAYLOAD
    assert sealed[0] == VERSION_SM4_GCM
    assert sealed[1] == len("gw-0042.k1")
    assert sealed[2:12] == b"gw-0042.k1"
    assert len(sealed) == 2 + 10 + NONCE_BYTES + len(PAYLOAD) + TAG_BYTES
    assert PAYLOAD not in sealed
    header = parse_header(sealed)
    assert header.key_id == "gw-0042.k1"
    assert header.nonce == sealed[12 : 12 + NONCE_BYTES]


def test_each_seal_draws_a_new_nonce() -> None:
    first = seal(PAYLOAD, KEY, "gw-0042.k1", TOPIC)
    second = seal(PAYLOAD, KEY, "gw-0042.k1", TOPIC)
    assert parse_header(first).nonce != parse_header(second).nonce
    assert first != second


def test_fixed_nonce_is_deterministic() -> None:
    nonce = bytes(NONCE_BYTES)
    assert seal(b"x", KEY, "k", TOPIC, nonce=nonce) == seal(b"x", KEY, "k", TOPIC, nonce=nonce)


def test_empty_payload_round_trips() -> None:
    assert open_sealed(seal(b"", KEY, "gw-0042.k1", TOPIC), KEYS, TOPIC) == b""


def _fails(data: bytes, keys: dict[str, bytes] = KEYS, topic: str = TOPIC) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        open_sealed(data, keys, topic)
    assert caught.value.kind == SEALED_INVALID
    return caught.value


@pytest.mark.parametrize("position", [0, 1, 5, 13, 30, -17, -1])
def test_any_altered_byte_is_refused(position: int) -> None:
    sealed = bytearray(seal(PAYLOAD, KEY, "gw-0042.k1", TOPIC))
    sealed[position] ^= 0x01
    _fails(bytes(sealed))


def test_wrong_topic_is_refused() -> None:
    error = _fails(seal(PAYLOAD, KEY, "gw-0042.k1", TOPIC), topic=OTHER_TOPIC)
    assert "another topic" in error.detail


def test_unknown_key_id_is_refused() -> None:
    error = _fails(seal(PAYLOAD, KEY, "gw-0099.k1", TOPIC))
    assert "gw-0099.k1" in error.detail


def test_wrong_key_is_refused_and_key_is_not_leaked() -> None:
    other = generate_key()
    error = _fails(seal(PAYLOAD, other, "gw-0042.k1", TOPIC))
    assert other.hex() not in error.detail and KEY.hex() not in error.detail


def test_truncated_and_empty_are_refused() -> None:
    sealed = seal(PAYLOAD, KEY, "gw-0042.k1", TOPIC)
    for cut in (0, 1, 2, 12, 24, len(sealed) - 1):
        _fails(sealed[:cut])


def test_bad_key_configuration_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        seal(PAYLOAD, b"short", "k", TOPIC)
    with pytest.raises(ValueError, match="key id"):
        seal(PAYLOAD, KEY, "bad/id", TOPIC)
    with pytest.raises(ValueError, match="key id"):
        seal(PAYLOAD, KEY, "", TOPIC)
    _fails(seal(PAYLOAD, KEY, "k", TOPIC), keys={"k": b"short"})


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    with pytest.raises(PayloadError) as caught:
        open_sealed(data, KEYS, TOPIC)
    assert caught.value.kind == SEALED_INVALID


@given(st.binary(max_size=2000), st.text(max_size=60))
def test_round_trip_any_payload_and_topic(payload: bytes, topic: str) -> None:
    assert open_sealed(seal(payload, KEY, "gw-0042.k1", topic), KEYS, topic) == payload


@given(st.binary(min_size=1, max_size=300), st.data())
def test_prefixed_garbage_with_a_valid_header_never_crashes(
    body: bytes, data: st.DataObject
) -> None:
    key_id = data.draw(st.sampled_from(["gw-0042.k1", "unknown"]))
    blob = bytes((VERSION_SM4_GCM, len(key_id))) + key_id.encode() + body
    with pytest.raises(PayloadError):
        open_sealed(blob, KEYS, TOPIC)
