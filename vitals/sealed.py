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

Keys: :class:`SealKeyStore`, a directory of raw 16-byte key files named
``<gateway>.k<version>.sm4`` (mode 0600, directory 0700), so the key id of a file is
``<gateway>.k<version>``. The ingest side keeps every gateway's keys in one store
(``vitalstream pki sm4-key``); a gateway's store holds its own keys only. Rotation adds version
N+1; the older versions stay in the store, so whatever was sealed under them still opens.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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


# --------------------------------------------------------------------------- key store

#: The file of one key: ``<key id>.sm4``, the 16 raw key bytes.
KEY_FILE_SUFFIX = ".sm4"
#: ``<gateway>.k<version>``: the gateway id is everything before the last ``.k<digits>``.
_GATEWAY_KEY_ID = re.compile(r"^(?P<gateway>[A-Za-z0-9_.:-]+)\.k(?P<version>[1-9][0-9]{0,8})$")


class SealedKeyError(VitalsError):
    """A key store that cannot be used as asked (missing key, unsafe mode, bad file)."""

    kind = "sealed_key"


def is_sealed(payload: bytes) -> bool:
    """Whether ``payload`` claims to be sealed (first byte = a sealing version).

    A JSON payload starts with ``{`` (or whitespace); 0x01 never starts one, so sealed and clear
    payloads can share a topic while a deployment moves to sealing.
    """
    return bool(payload) and payload[0] == VERSION_SM4_GCM


def gateway_key_id(gateway: str, version: int) -> str:
    """The key id of ``gateway``'s key ``version``: ``<gateway>.k<version>``.

    Raises ``ValueError`` when the id would not fit the wire format (more than 64 characters,
    or characters outside letters, digits and ``_ . : -``).
    """
    if version < 1:
        raise ValueError("key versions start at 1")
    key_id = f"{gateway}.k{version}"
    _check_key_id(key_id)
    return key_id


def parse_gateway_key_id(key_id: str) -> tuple[str, int] | None:
    """``(gateway, version)`` of a ``<gateway>.k<version>`` key id, else None."""
    match = _GATEWAY_KEY_ID.match(key_id)
    if match is None or len(key_id) > MAX_KEY_ID_BYTES:
        return None
    return match.group("gateway"), int(match.group("version"))


def header_gateway(data: bytes) -> str | None:
    """The gateway named by a sealed message's key id (None when it is not parseable)."""
    try:
        key_id = parse_header(data).key_id
    except PayloadError:
        return None
    parsed = parse_gateway_key_id(key_id)
    return parsed[0] if parsed else None


class SealKeyStore:
    """A directory of SM4 keys, one file per key id (``<gateway>.k<version>.sm4``).

    Files are written atomically with mode 0600 and never overwritten (a new version is
    hard-linked into place, which fails if another process made it first); the directory is
    made 0700. Reading refuses a key file that group or others may read: anyone who reads it
    can open that gateway's payloads.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, key_id: str) -> Path:
        """The file of one key."""
        _check_key_id(key_id)
        return self.directory / f"{key_id}{KEY_FILE_SUFFIX}"

    def key_ids(self, gateway: str | None = None) -> list[str]:
        """Key ids present (of ``gateway`` only, when given), by gateway then version."""
        if not self.directory.is_dir():
            return []
        found: list[tuple[str, int, str]] = []
        for path in self.directory.iterdir():
            if not path.name.endswith(KEY_FILE_SUFFIX) or path.name.startswith("."):
                continue
            key_id = path.name[: -len(KEY_FILE_SUFFIX)]
            parsed = parse_gateway_key_id(key_id)
            if parsed is None or (gateway is not None and parsed[0] != gateway):
                continue
            found.append((parsed[0], parsed[1], key_id))
        return [key_id for _gateway, _version, key_id in sorted(found)]

    def versions(self, gateway: str) -> list[int]:
        """The key versions of ``gateway``, oldest first."""
        versions = (parse_gateway_key_id(key_id) for key_id in self.key_ids(gateway))
        return [parsed[1] for parsed in versions if parsed is not None]

    def get(self, key_id: str) -> bytes:
        """One key, or :class:`SealedKeyError` when it is missing, unsafe or malformed."""
        path = self.path(key_id)
        try:
            info = path.stat()
        except FileNotFoundError:
            raise SealedKeyError(
                f"no SM4 key {key_id!r} in {self.directory}", kind="unknown_key"
            ) from None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SealedKeyError(
                f"{path} is readable by group or others; run `chmod 600 {path}` (anyone who "
                "reads it can open and forge that gateway's payloads)"
            )
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise SealedKeyError(f"{path} holds {len(key)} bytes, not {KEY_BYTES}")
        return key

    def keys(self, gateway: str | None = None) -> dict[str, bytes]:
        """{key id: key} of every key (of ``gateway`` only, when given)."""
        return {key_id: self.get(key_id) for key_id in self.key_ids(gateway)}

    def current(self, gateway: str) -> tuple[str, bytes]:
        """``(key id, key)`` of ``gateway``'s newest key, or SealedKeyError when it has none."""
        versions = self.versions(gateway)
        if not versions:
            raise SealedKeyError(
                f"no SM4 key of gateway {gateway!r} in {self.directory}: run "
                f"`vitalstream pki sm4-key --gateway {gateway}` and install its --out files",
                kind="unknown_key",
            )
        key_id = gateway_key_id(gateway, versions[-1])
        return key_id, self.get(key_id)

    def create(self, gateway: str) -> tuple[str, bytes]:
        """Generate ``gateway``'s next key version (the first is ``k1``); older ones stay."""
        for _attempt in range(100):
            versions = self.versions(gateway)
            key_id = gateway_key_id(gateway, versions[-1] + 1 if versions else 1)
            key = generate_key()
            if self._write_new(key_id, key):
                return key_id, key
        raise SealedKeyError(f"could not add a key for {gateway!r} in {self.directory}")

    def install(self, key_id: str, key: bytes) -> None:
        """Write a key made elsewhere (a copy for a gateway); an identical file is kept."""
        if len(key) != KEY_BYTES:
            raise ValueError(f"an SM4 key has {KEY_BYTES} bytes, not {len(key)}")
        if parse_gateway_key_id(key_id) is None:
            raise ValueError(f"{key_id!r} is not a <gateway>.k<version> key id")
        if not self._write_new(key_id, key) and self.get(key_id) != key:
            raise SealedKeyError(
                f"{self.path(key_id)} already holds another key; a key id is never reused",
                kind="key_exists",
            )

    def _write_new(self, key_id: str, key: bytes) -> bool:
        """Write ``key`` as ``key_id`` unless that file exists; True when written."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        final = self.path(key_id)
        temporary = self.directory / f".{key_id}.{secrets.token_hex(8)}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(key)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, final)
            except FileExistsError:
                return False
        finally:
            temporary.unlink(missing_ok=True)
        return True
