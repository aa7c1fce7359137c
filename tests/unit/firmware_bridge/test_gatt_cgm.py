"""CGM Measurement 0x2AA7 (and CGM Feature 0x2AA8).

Vectors: NordicSemiconductor/Android-BLE-Common-Library,
ble-common/src/test/.../cgm/ContinuousGlucoseMeasurementDataCallbackTest.java: "full" record
(size 15, flags 0xE3, 1234e-2 mg/dL, offset 5, octets 02 14 FF, trend 2e-1, quality 997e-1,
E2E-CRC 0x3F8E), "small" (06 00, 12e1, offset 6), "double" (two small records, offsets 5 and
6), "crcError" (size 8, CRC 0x6F58 where 0x6F59 is right), "tooShort" and "invalid". Its
util/CRC16Test and the CRC catalogue give the MCRF4XX check value 0x6F91 for "123456789".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from gatt_helpers import decode_hex
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.crc import crc16_mcrf4xx
from firmware_bridge.errors import CrcError, MalformedError
from firmware_bridge.gatt import DecodeContext, cgm

START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
FULL = "0fe3d2e405000214ff02f0e5f38e3f"


def test_crc_check_value() -> None:
    assert crc16_mcrf4xx(b"123456789") == 0x6F91


def test_nordic_full_record() -> None:
    result = decode_hex(0x2AA7, FULL, session_start=START)
    [m] = result.measurements
    assert m.original_value == 12.34
    assert m.value == pytest.approx(12.34 / 18.0156, abs=1e-6)
    assert m.time == START + timedelta(minutes=5)
    [record] = result.fields["records"]  # type: ignore[misc]
    assert record["status"] == ["device_battery_low"]
    assert record["cal_temp"] == ["calibration_recommended", "sensor_temperature_too_high"]
    assert record["trend_mg_dl_per_min"] == 0.2
    assert record["quality_percent"] == 99.7
    assert record["e2e_crc"] is True


def test_nordic_double_record() -> None:
    result = decode_hex(0x2AA7, "06000c10050006000c100600", session_start=START)
    assert [m.extra["time_offset_min"] for m in result.measurements] == [5, 6]
    assert [m.original_value for m in result.measurements] == [120.0, 120.0]


def test_without_session_start_no_time() -> None:
    [m] = decode_hex(0x2AA7, "06000c100600").measurements
    assert m.time is None


def test_nordic_crc_error() -> None:
    with pytest.raises(CrcError) as caught:
        decode_hex(0x2AA7, "08000c100600586f")
    assert caught.value.kind == "crc_error"


def test_feature_says_crc_required() -> None:
    feature = cgm.encode_feature(1 << 12)
    with pytest.raises(MalformedError, match="E2E-CRC"):
        decode_hex(0x2AA7, "06000c100600", feature=feature)
    decode_hex(0x2AA7, FULL, feature=feature, session_start=START)


@pytest.mark.parametrize(
    "hex_value",
    [
        "06e30c1006",  # Nordic "tooShort" (5 bytes, size says 6)
        "07e30c100600",  # Nordic "invalid": size 7, flags announce more than fits
        "",
        "05000c1006",  # built: size below 6
        "06040c100600",  # built: reserved flag bit 2
    ],
)
def test_malformed(hex_value: str) -> None:
    with pytest.raises(MalformedError):
        decode_hex(0x2AA7, hex_value)


@given(
    st.lists(
        st.tuples(
            st.integers(1, 400),
            st.integers(0, 0xFFFF),
            st.none() | st.integers(0, 0x3F),
            st.booleans(),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_round_trip(records: list[tuple[int, int, int | None, bool]]) -> None:
    data = b"".join(
        cgm.encode_record(g, off, status=st_, trend=1.5, e2e_crc=crc)
        for g, off, st_, crc in records
    )
    result = cgm.decode(data, DecodeContext(session_start=START))
    assert [m.original_value for m in result.measurements] == [g for g, *_ in records]
    assert [m.time for m in result.measurements] == [
        START + timedelta(minutes=off) for _, off, *_ in records
    ]
