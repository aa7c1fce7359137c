"""Intermediate Temperature 0x2A1E (same layout as 0x2A1C, HTS 1.0 3.3).

Vector: the Nordic HTS test vector of test_gatt_temperature.py sent on 0x2A1E.
"""

from __future__ import annotations

from gatt_helpers import decode_hex


def test_nordic_vector_as_intermediate() -> None:
    result = decode_hex(0x2A1E, "06b00e00fedc070c050b321b04")
    assert result.characteristic == "0x2A1E"
    [m] = result.measurements
    assert m.value == 37.6
    assert m.quality[0] == "intermediate"
