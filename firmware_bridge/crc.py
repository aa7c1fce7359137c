"""CRC-16/MCRF4XX, the E2E-CRC of the CGM, PLX and Insulin Delivery services.

Parameters (CGMS 1.0.1, 2.? "E2E-CRC"; the CRC catalogue name MCRF4XX): polynomial 0x1021
processed bit-reflected (0x8408), initial value 0xFFFF, input and output reflected, no final
XOR. Check value for ASCII "123456789" is 0x6F91.
"""

from __future__ import annotations

from typing import Final


def _table() -> tuple[int, ...]:
    entries = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        entries.append(crc)
    return tuple(entries)


_TABLE: Final = _table()


def crc16_mcrf4xx(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/MCRF4XX of ``data`` (transmitted little-endian after the covered bytes)."""
    table = _TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc
