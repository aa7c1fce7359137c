"""Optional SM4 payload layer: authenticated encryption of MQTT payloads per gateway.

For deployments that must use national (SM) cryptography end to end, beyond the TLS of the
broker link (issue 10; docs/security.md, "SM4 payload layer"). It sits at the codec level: the
edge seals the bytes :func:`vitals.codec.encode` produced, just before publishing; ingest opens
them just after receiving and before :func:`vitals.codec.decode`. Nothing else changes.

Cipher: SM4 (GM/T 0002-2012, 128-bit block and key) in GCM mode (NIST SP 800-38D; the SM4-GCM
of RFC 8998), an authenticated mode: a 16-byte tag covers the ciphertext and the associated
data. The ``cryptography`` package exposes it as ``Cipher(algorithms.SM4(key), modes.GCM(...))``
(checked with cryptography 50 / OpenSSL 3+; the unit tests pin the RFC 8998 A.1 vector). When
the OpenSSL under ``cryptography`` lacks SM4-GCM, sealing raises :class:`SealedUnavailableError`
instead of falling back silently; the version byte leaves room for another mode (e.g. SM4-CBC
with HMAC-SM3, encrypt-then-MAC) should a deployment ever need one.

Wire format (version 1), all lengths in bytes::

    +---------+--------+------------------+----------+---------------------------+
    | version | id len | key id (ASCII)   | nonce    | ciphertext || tag         |
    | 1: 0x01 | 1: L   | L (1..64)        | 12       | len(payload) + 16         |
    +---------+--------+------------------+----------+---------------------------+

- **key id**: names the key (one per gateway, plus a version for rotation, e.g.
  ``gw-0042.k2``): letters, digits and ``_ . : -``.
- **nonce**: 96 random bits per message (``secrets.token_bytes(12)``). With random nonces one
  key may seal at most 2^32 messages (SP 800-38D §8.3): at one message per second that is
  136 years, but rotate keys yearly anyway.
- **associated data**: the header (version, id length, key id) followed by the MQTT topic in
  UTF-8. A sealed payload copied to another gateway's topic, or with its key id swapped, fails
  authentication.

Pure functions: :func:`seal`, :func:`open_sealed`, :func:`parse_header`. Every failure to open
raises :class:`vitals.errors.PayloadError` with ``kind`` = ``sealed_invalid`` (so ingest can
dead-letter it like any other bad payload); the detail never contains key material.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from vitals.errors import PayloadError, VitalsError

#: Wire-format version of SM4-GCM sealing.
VERSION_SM4_GCM = 0x01
#: SM4 key length (GM/T 0002-2012: 128-bit key).
KEY_BYTES = 16
#: GCM nonce length: 96 bits, the length GCM is defined for without GHASH of the IV.
NONCE_BYTES = 12
#: GCM tag length kept in full (SP 800-38D §5.2.1.2: 128 bits).
TAG_BYTES = 16
MAX_KEY_ID_BYTES = 64
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
#: The smallest possible sealed message: header with a 1-byte key id, nonce, empty payload, tag.
MIN_SEALED_BYTES = 2 + 1 + NONCE_BYTES + TAG_BYTES

SEALED_INVALID = "sealed_invalid"


class SealedUnavailableError(VitalsError):
    """The OpenSSL under ``cryptography`` does not offer SM4-GCM on this machine."""

    kind = "sealed_unavailable"


@dataclass(frozen=True)
class SealedHeader:
    """The clear part of a sealed message: which format and which key."""

    version: int
    key_id: str
    nonce: bytes
    body_offset: int


def generate_key() -> bytes:
    """A fresh 128-bit SM4 key from the OS random source."""
    return secrets.token_bytes(KEY_BYTES)


def _check_key_id(key_id: str) -> bytes:
    if not KEY_ID_PATTERN.match(key_id):
        raise ValueError(
            "a key id is 1-64 characters of letters, digits and _ . : - "
            f"(got {len(key_id)} characters)"
        )
    return key_id.encode("ascii")


def _header(key_id: bytes) -> bytes:
    return bytes((VERSION_SM4_GCM, len(key_id))) + key_id


def _associated_data(header: bytes, topic: str) -> bytes:
    return header + topic.encode("utf-8")


def seal(
    payload: bytes, key: bytes, key_id: str, topic: str, *, nonce: bytes | None = None
) -> bytes:
    """Encrypt and authenticate ``payload`` for ``topic`` under ``key`` (named ``key_id``).

    ``nonce`` is for known-answer tests only; leave it out so a random one is drawn. Raises
    ``ValueError`` for a bad key or key id (a configuration mistake, not a bad message).
    """
    if len(key) != KEY_BYTES:
        raise ValueError(f"an SM4 key has {KEY_BYTES} bytes, not {len(key)}")
    header = _header(_check_key_id(key_id))
    if nonce is None:
        nonce = secrets.token_bytes(NONCE_BYTES)
    elif len(nonce) != NONCE_BYTES:
        raise ValueError(f"the nonce has {NONCE_BYTES} bytes")
    try:
        encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    except UnsupportedAlgorithm as error:
        raise SealedUnavailableError(
            "SM4-GCM is not available in the OpenSSL that cryptography uses; install the "
            "cryptography wheel from PyPI (it bundles an OpenSSL with SM4) or turn the SM4 "
            "payload layer off"
        ) from error
    encryptor.authenticate_additional_data(_associated_data(header, topic))
    ciphertext = encryptor.update(payload) + encryptor.finalize()
    return header + nonce + ciphertext + encryptor.tag


def _invalid(detail: str) -> PayloadError:
    return PayloadError(detail, kind=SEALED_INVALID)


def parse_header(data: bytes) -> SealedHeader:
    """Read the clear header of a sealed message, or raise ``PayloadError(sealed_invalid)``."""
    if len(data) < MIN_SEALED_BYTES:
        raise _invalid(f"a sealed payload has at least {MIN_SEALED_BYTES} bytes; got {len(data)}")
    version, id_length = data[0], data[1]
    if version != VERSION_SM4_GCM:
        raise _invalid(f"unknown sealed-payload version {version} (expected {VERSION_SM4_GCM})")
    if not 1 <= id_length <= MAX_KEY_ID_BYTES:
        raise _invalid(f"key id length {id_length} is outside 1..{MAX_KEY_ID_BYTES}")
    nonce_at = 2 + id_length
    body_at = nonce_at + NONCE_BYTES
    if len(data) < body_at + TAG_BYTES:
        raise _invalid("the sealed payload is shorter than its header, nonce and tag")
    raw_id = data[2:nonce_at]
    try:
        key_id = raw_id.decode("ascii")
    except UnicodeDecodeError:
        raise _invalid("the key id is not ASCII") from None
    if not KEY_ID_PATTERN.match(key_id):
        raise _invalid("the key id has characters outside letters, digits and _ . : -")
    return SealedHeader(
        version=version, key_id=key_id, nonce=data[nonce_at:body_at], body_offset=body_at
    )


def open_sealed(data: bytes, keys: Mapping[str, bytes], topic: str) -> bytes:
    """Authenticate and decrypt a sealed message received on ``topic``.

    ``keys`` maps key id -> 16-byte SM4 key (the keys of the gateway that publishes on
    ``topic``, or all gateways' keys: the topic in the associated data binds the message to its
    gateway either way). Any failure -- truncated or malformed header, unknown key id, wrong
    topic, altered byte, wrong key -- raises ``PayloadError`` with ``kind`` = ``sealed_invalid``.
    """
    header = parse_header(data)
    key = keys.get(header.key_id)
    if key is None:
        raise _invalid(f"no key with id {header.key_id!r} is configured")
    if len(key) != KEY_BYTES:
        raise _invalid(f"the key {header.key_id!r} is not {KEY_BYTES} bytes long")
    body = data[header.body_offset : -TAG_BYTES]
    tag = data[-TAG_BYTES:]
    try:
        decryptor = Cipher(algorithms.SM4(key), modes.GCM(header.nonce, tag)).decryptor()
    except UnsupportedAlgorithm as error:
        raise SealedUnavailableError(
            "SM4-GCM is not available in the OpenSSL that cryptography uses"
        ) from error
    clear_header = data[: header.body_offset - NONCE_BYTES]
    decryptor.authenticate_additional_data(_associated_data(clear_header, topic))
    plaintext = decryptor.update(body)
    try:
        return plaintext + decryptor.finalize()
    except InvalidTag:
        raise _invalid(
            "authentication failed: the payload was altered, sealed for another topic, or "
            f"sealed under another key than {header.key_id!r}"
        ) from None
