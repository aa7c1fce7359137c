"""PLX Spot-check 0x2A5E and PLX Continuous 0x2A5F.

No public capture was found in the time box: every vector here is BUILT FROM THE SPEC (PLXS
1.0 3.1/3.2 field layout) with this module's encoders or by hand, and labelled so.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from gatt_helpers import decode_hex
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import MalformedError
from firmware_bridge.gatt import DecodeContext, plx


def test_spot_check_built_full() -> None:
    # Built: flags 0x0F, SpO2 98, PR 72, 2024-05-01 07:30:00, status bit 14 (questionable),
    # device status bit 5 (low perfusion), PAI 25e-1 %.
    data = plx.encode_spot_check(
        98,
        72,
        timestamp=datetime(2024, 5, 1, 7, 30),
        measurement_status=1 << 14,
        device_status=1 << 5,
        pulse_amplitude_index=2.5,
    )
    result = decode_hex(0x2A5E, data.hex(), device_tz=UTC)
    values = {m.metric: m.value for m in result.measurements}
    assert values == {"spo2": 98.0, "pulse_rate": 72.0, "perfusion_index": 2.5}
    assert result.measurements[0].time == datetime(2024, 5, 1, 7, 30, tzinfo=UTC)
    assert "questionable_measurement_detected" in result.measurements[0].quality
    assert "low_perfusion_detected" in result.measurements[0].quality


def test_spot_check_clock_not_set_drops_time() -> None:
    data = plx.encode_spot_check(97, 60, timestamp=datetime(2000, 1, 1), clock_not_set=True)
    result = decode_hex(0x2A5E, data.hex())
    assert result.measurements[0].time is None
    assert result.fields["device_clock_not_set"] is True
    assert result.fields["timestamp"] == "2000-01-01T00:00:00"


def test_continuous_built_normal_fast_slow() -> None:
    # Built by hand: flags 0x03, normal 98/72, fast 97/75, slow NaN/NaN.
    result = decode_hex(0x2A5F, "03 6200 4800 6100 4b00 ff07 ff07")
    assert [(m.metric, m.value) for m in result.measurements] == [
        ("spo2", 98.0),
        ("pulse_rate", 72.0),
    ]
    assert result.fields["spo2_fast"] == 97.0
    assert result.fields["spo2_slow"] == "NaN"


def test_continuous_nan_spo2_is_no_value() -> None:
    [spo2, _pr] = decode_hex(0x2A5F, "00 ff07 4800").measurements
    assert (spo2.value, spo2.no_value) == (None, "NaN")


@pytest.mark.parametrize(
    ("uuid", "hex_value", "reason"),
    [
        (0x2A5F, "0062004800" + "00", "trailing"),
        (0x2A5F, "016200480061", "fast"),
        (0x2A5F, "2062004800", "reserved"),
        (0x2A5E, "04620048000000", "device and sensor status"),
        (0x2A5E, "016200", "pulse rate"),
    ],
)
def test_malformed(uuid: int, hex_value: str, reason: str) -> None:
    with pytest.raises(MalformedError, match=reason):
        decode_hex(uuid, hex_value)


@given(st.integers(0, 100), st.integers(0, 300), st.none() | st.integers(0, 0xFFFF))
def test_continuous_round_trip(spo2: int, pulse: int, status: int | None) -> None:
    data = plx.encode_continuous(spo2, pulse, measurement_status=status)
    result = plx.decode_continuous(data, DecodeContext())
    assert (result.fields["spo2"], result.fields["pulse_rate"]) == (spo2, pulse)
