"""Typed decode failures (STYLE.md: a decoder returns a result or raises a DecodeError).

``kind`` is the contract's ``error.kind`` (CONTRACTS.md, ``vitalstream decode``): ``malformed``,
``crc_error`` or ``unsupported``. ``offset`` is the byte (or, for HL7, segment) position where
decoding stopped, so a field engineer can find the bad byte in a capture.
"""

from __future__ import annotations

from vitals import VitalsError


class DecodeError(VitalsError):
    """Bytes that cannot be decoded into readings."""

    kind = "malformed"

    def __init__(self, detail: str, *, offset: int | None = None, kind: str | None = None) -> None:
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{detail}{where}", kind=kind)
        self.offset = offset


class MalformedError(DecodeError):
    """Too short, fields announced by flags but absent, reserved bits set, bad syntax."""

    kind = "malformed"


class CrcError(DecodeError):
    """An end-to-end CRC (e.g. CGM E2E-CRC) does not match the payload."""

    kind = "crc_error"


class UnsupportedError(DecodeError):
    """A characteristic, message type or feature that vitalstream does not decode."""

    kind = "unsupported"
