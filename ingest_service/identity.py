"""Resident identity: validate a PRC resident ID number and turn it into a pseudonymous subject.

The national ID number is the master patient index of the policies vitalstream serves
(ARCHITECTURE.md, "Identity"), but it must never leave enrolment in clear. So enrolment
validates it and derives ``subject`` = a keyed HMAC of it; every other part of the system only
ever sees the subject.

Why a keyed HMAC and not encryption or a plain hash:

- a plain hash (SM3/SHA-256 of the ID) is reversible by enumeration: there are only about
  10^10 plausible IDs (region x birth date x sequence), a few hours of work for a GPU;
- encryption would make the subject reversible by anyone holding the key, and the key would have
  to travel with every service that needs to decrypt; nothing downstream needs the clear ID;
- an HMAC (RFC 2104) under a secret key kept by enrolment only is one-way for everyone without
  the key and still deterministic, so the same resident always gets the same subject.

HMAC-SM3 (SM3 = GM/T 0004-2012, the national hash) is the default so that deployments that must
use national cryptography do; HMAC-SHA256 is the option. Keys are versioned (``key-v1.bin``,
``key-v2.bin`` ...); new pseudonyms use the newest, and the older keys stay so that enrolment
can still compute (and map) a resident's earlier subjects.

Pure core: :func:`validate_resident_id`, :func:`pseudonym`, :func:`temporary_subject` (the
caller passes ``today`` and the random bytes). The only I/O is :class:`KeyRing`, which keeps the
key files.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal, get_args

from cryptography.hazmat.primitives import hashes, hmac
from pydantic import Field

from vitals import VitalsError
from vitals.settings import VitalstreamSettings, default_data_dir

Algorithm = Literal["hmac-sm3", "hmac-sha256"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
DEFAULT_ALGORITHM: Algorithm = "hmac-sm3"

#: GB 11643-1999 §4: 6-digit address code, 8-digit birth date, 3-digit sequence, 1 check char.
ID_LENGTH = 18
#: Birth dates before this are not plausible for a living resident (and not before 1900 by rule).
EARLIEST_BIRTH = date(1900, 1, 1)

#: ISO 7064:1983 MOD 11-2 weights, W_i = 2^(17-i) mod 11 for positions i = 0..16 (GB 11643 §7.2).
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
#: Check character for (weighted sum mod 11) = 0..10; 10 is written "X" (GB 11643 §7.2).
_CHECK_CHARACTERS = "10X98765432"

#: Key material per version: 32 random bytes, as long as the SM3/SHA-256 output (RFC 2104 §3).
KEY_BYTES = 32
#: Pseudonyms keep the first 16 bytes (128 bits) of the MAC: collision-free in practice for a
#: population of 1.4e9 (birthday bound ~2^64) and a short, topic-safe string.
_SUBJECT_BYTES = 16
SUBJECT_PREFIX = "p"
#: What a pseudonym looks like: ``p`` + 26 lower-case base32 characters (RFC 4648 §6).
SUBJECT_PATTERN = re.compile(r"^p[a-z2-7]{26}$")
TEMPORARY_PREFIX = "tmp-"
_KEY_FILE = re.compile(r"^key-v([1-9][0-9]{0,5})\.bin$")


class InvalidIdError(VitalsError):
    """A resident ID number that fails one of the GB 11643-1999 checks.

    The detail names the check that failed and never the ID (or any part of it), because the
    detail is printed, logged and stored as a rejection reason.
    """

    kind = "invalid_id"


class KeyStoreError(VitalsError):
    """The pseudonym key directory or a key file is missing, malformed or too open."""

    kind = "key_store"


@dataclass(frozen=True)
class ResidentId:
    """A validated, normalised resident ID number. ``repr`` hides the number."""

    number: str = field(repr=False)
    birth_date: date = field(repr=False)


def normalise_resident_id(text: str) -> str:
    """Strip surrounding whitespace and upper-case a final ``x`` (GB 11643 writes it ``X``)."""
    return text.strip().upper()


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits (GB 11643-1999 §7.2)."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("the check character is computed over exactly 17 ASCII digits")
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARACTERS[total % 11]


def validate_resident_id(text: str, *, today: date) -> ResidentId:
    """Validate and normalise a resident ID number, or raise :class:`InvalidIdError`.

    Checks, in order (GB 11643-1999 §4-§7): 18 characters; 17 ASCII digits then a digit or
    ``X``; a plausible address code (6 digits, first 1-8: the regions of GB/T 2260); a real
    birth date ``YYYYMMDD`` in positions 7-14, not before 1900 and not after ``today``; the
    ISO 7064 MOD 11-2 check character. ``today`` is passed in so the check is pure.
    """
    number = normalise_resident_id(text)
    if len(number) != ID_LENGTH:
        raise InvalidIdError(
            f"a resident ID number has {ID_LENGTH} characters; this one has {len(number)}"
        )
    body, check = number[:17], number[17]
    if not body.isascii() or not body.isdigit() or check not in "0123456789X":
        raise InvalidIdError(
            "a resident ID number is 17 digits followed by a digit or X; this one has "
            "another character"
        )
    if body[0] not in "12345678":
        raise InvalidIdError(
            "the address code (positions 1-6) is not a region code: its first digit must be 1-8"
        )
    try:
        born = date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        raise InvalidIdError(
            "the birth date (positions 7-14, YYYYMMDD) is not a calendar date"
        ) from None
    if born < EARLIEST_BIRTH:
        raise InvalidIdError("the birth date (positions 7-14) is before 1900")
    if born > today:
        raise InvalidIdError("the birth date (positions 7-14) is in the future")
    if check_character(body) != check:
        raise InvalidIdError(
            "the check character (position 18) does not match the ISO 7064 MOD 11-2 checksum "
            "of the first 17 digits: a digit was mistyped"
        )
    return ResidentId(number=number, birth_date=born)


@dataclass(frozen=True)
class PseudonymKey:
    """One version of the enrolment key. ``repr`` hides the secret."""

    version: int
    secret: bytes = field(repr=False)


@dataclass(frozen=True)
class Pseudonym:
    """A subject and how it was made (the ``vitalstream enrol`` output)."""

    subject: str
    algorithm: Algorithm
    key_version: int


def _mac(key: bytes, message: bytes, algorithm: Algorithm) -> bytes:
    digest: hashes.HashAlgorithm = hashes.SM3() if algorithm == "hmac-sm3" else hashes.SHA256()
    mac = hmac.HMAC(key, digest)
    mac.update(message)
    return mac.finalize()


def _base32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def pseudonym(
    resident: ResidentId, key: PseudonymKey, algorithm: Algorithm = DEFAULT_ALGORITHM
) -> Pseudonym:
    """The subject of a resident under one key version: ``p`` + base32(HMAC(key, ID)[:16]).

    HMAC-SM3 per GM/T 0004-2012 with RFC 2104 HMAC, or HMAC-SHA256. The message is the
    normalised 18-character ID in ASCII. Lower-case base32 without padding gives 26 characters
    of ``[a-z2-7]``: topic-safe and within ``vitals.models.IDENTIFIER_PATTERN``.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown pseudonym algorithm {algorithm!r}")
    if len(key.secret) != KEY_BYTES:
        raise ValueError(f"a pseudonym key has {KEY_BYTES} bytes")
    mac = _mac(key.secret, resident.number.encode("ascii"), algorithm)
    return Pseudonym(
        subject=SUBJECT_PREFIX + _base32(mac[:_SUBJECT_BYTES]),
        algorithm=algorithm,
        key_version=key.version,
    )


def pseudonyms_for(
    resident: ResidentId,
    keys: Mapping[int, PseudonymKey],
    algorithm: Algorithm = DEFAULT_ALGORITHM,
) -> dict[int, str]:
    """The resident's subject under every key version: the old-to-new mapping after rotation."""
    return {version: pseudonym(resident, key, algorithm).subject for version, key in keys.items()}


def temporary_subject(entropy: bytes) -> str:
    """A temporary subject for an unidentified patient (e.g. unconscious, in an ambulance).

    ``tmp-`` + base32 of 16 random bytes the caller passes (``secrets.token_bytes(16)``), so it
    carries no information about the patient and cannot collide with an enrolled ``p...``
    subject. Merging it into the real subject once the patient is identified is later work.
    """
    if len(entropy) < _SUBJECT_BYTES:
        raise ValueError(f"a temporary subject needs at least {_SUBJECT_BYTES} random bytes")
    return TEMPORARY_PREFIX + _base32(entropy[:_SUBJECT_BYTES])


def is_temporary_subject(subject: str) -> bool:
    """Whether ``subject`` was made by :func:`temporary_subject`."""
    return subject.startswith(TEMPORARY_PREFIX)


# --------------------------------------------------------------------------- key storage


class EnrolmentSettings(VitalstreamSettings):
    """Where enrolment keeps its pseudonym keys and which MAC it uses by default."""

    data_dir: Path = Field(
        default_factory=default_data_dir, description="Where vitalstream keeps its files."
    )
    enrolment_key_dir: Path | None = Field(
        None,
        description="Directory of the pseudonym keys key-v<N>.bin (32 bytes, mode 0600; "
        "generated on first use); default <data_dir>/keys. Back it up: losing it orphans "
        "every subject.",
    )
    enrolment_algorithm: Algorithm = Field(
        DEFAULT_ALGORITHM, description="Pseudonym MAC: hmac-sm3 (GM/T 0004-2012) or hmac-sha256."
    )

    @property
    def key_dir(self) -> Path:
        """The key directory in force."""
        return self.enrolment_key_dir or self.data_dir / "keys"


class KeyRing:
    """The versioned pseudonym keys in one directory (``key-v1.bin``, ``key-v2.bin`` ...).

    Files are written atomically and never overwritten: a new version is written to a
    temporary file and hard-linked to its final name, which fails if another process made that
    version first. Key files and the directory must not be readable by group or others.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def versions(self) -> list[int]:
        """The key versions present, oldest first."""
        if not self.directory.is_dir():
            return []
        found = (_KEY_FILE.match(path.name) for path in self.directory.iterdir())
        return sorted(int(match.group(1)) for match in found if match)

    def path(self, version: int) -> Path:
        """The file of one key version."""
        return self.directory / f"key-v{version}.bin"

    def get(self, version: int) -> PseudonymKey:
        """One key version, or :class:`KeyStoreError` when it is missing or unusable."""
        path = self.path(version)
        try:
            info = path.stat()
        except FileNotFoundError:
            raise KeyStoreError(
                f"no pseudonym key version {version} in {self.directory} "
                f"(present: {self.versions() or 'none'})",
                kind="unknown_key_version",
            ) from None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyStoreError(
                f"{path} is readable by group or others; run `chmod 600 {path}` "
                "(anyone who reads it can re-identify every subject)"
            )
        secret = path.read_bytes()
        if len(secret) != KEY_BYTES:
            raise KeyStoreError(f"{path} holds {len(secret)} bytes, not {KEY_BYTES}")
        return PseudonymKey(version=version, secret=secret)

    def all(self) -> dict[int, PseudonymKey]:
        """Every key version, oldest first."""
        return {version: self.get(version) for version in self.versions()}

    def current(self) -> PseudonymKey:
        """The newest key; the first one is generated when the directory has none."""
        versions = self.versions()
        if not versions:
            return self._create(1)
        return self.get(versions[-1])

    def rotate(self) -> PseudonymKey:
        """Generate the next key version (new pseudonyms use it; older ones stay readable)."""
        versions = self.versions()
        return self._create(versions[-1] + 1 if versions else 1)

    def _create(self, version: int) -> PseudonymKey:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        final = self.path(version)
        temporary = self.directory / f".key-v{version}.{secrets.token_hex(8)}.tmp"
        secret = secrets.token_bytes(KEY_BYTES)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secret)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, final)
            except FileExistsError:
                return self.get(version)  # another process made this version first: use it
        finally:
            temporary.unlink(missing_ok=True)
        return PseudonymKey(version=version, secret=secret)
