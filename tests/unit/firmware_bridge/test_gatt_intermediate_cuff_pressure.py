"""Intermediate Cuff Pressure 0x2A36.

Vectors: NordicSemiconductor/Android-BLE-Common-Library,
ble-common/src/test/.../bps/IntermediateCuffPressureDataCallbackTest.java (pinned byte arrays:
"full" 1E 04 00 00 00 00 00 00 00 04 11 14 29 3B 3C 00 01 27 00; "some" (kPa) 15 6F F0 00 00
00 00 3C 00 12 00; "minimal" 00 D7 F0 00 00 00 00). Nordic writes 0 in the unused diastolic/MAP
fields; they are ignored either way.
"""

from __future__ import annotations

import pytest
from gatt_helpers import decode_hex

from firmware_bridge.errors import MalformedError


def test_nordic_full() -> None:
    result = decode_hex(0x2A36, "1e0400000000000000041114293b3c00012700")
    assert result.fields["cuff_pressure"] == 4.0
    [pulse] = result.measurements
    assert (pulse.metric, pulse.value) == ("pulse_rate", 60.0)
    assert pulse.quality[0] == "intermediate"


def test_nordic_kpa() -> None:
    result = decode_hex(0x2A36, "156ff0000000003c001200")
    assert result.fields["cuff_pressure"] == pytest.approx(11.1 * 7.50062)
    assert result.fields["cuff_pressure_original"] == 11.1


def test_nordic_minimal_has_no_readings() -> None:
    result = decode_hex(0x2A36, "00d7f000000000")
    assert result.measurements == ()
    assert result.fields["cuff_pressure"] == 21.5


def test_too_short() -> None:
    with pytest.raises(MalformedError):
        decode_hex(0x2A36, "010203040506")
