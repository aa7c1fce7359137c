"""Date Time 0x2A08 (and the embedded 7-byte date time).

Vectors: built from the GSS Date Time definition; the year-0 case mirrors the Nordic BPS test
vector (year 0, April 17 20:41:59) used in test_gatt_blood_pressure.py.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from gatt_helpers import decode_hex
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import MalformedError
from firmware_bridge.gatt import encode_date_time


def test_known() -> None:
    fields = decode_hex(0x2A08, "dc070c050b321b").fields
    assert fields == {"timestamp": "2012-12-05T11:50:27", "known": True}


@pytest.mark.parametrize(
    "hex_value", ["0000041114293b", "e4070011000000", "e4070c0000000"[:12] + "00"]
)
def test_unknown_parts_mean_no_time(hex_value: str) -> None:
    fields = decode_hex(0x2A08, hex_value).fields
    assert fields["timestamp"] is None
    assert fields["known"] is False


@pytest.mark.parametrize(
    "hex_value", ["e4070c051800", "e4070c05180000", "2d060101000000", "e4070c0500003c"]
)
def test_malformed(hex_value: str) -> None:
    with pytest.raises(MalformedError):
        decode_hex(0x2A08, hex_value)


@given(st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31)))
def test_round_trip(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    fields = decode_hex(0x2A08, encode_date_time(moment).hex()).fields
    assert fields["timestamp"] == moment.isoformat()
