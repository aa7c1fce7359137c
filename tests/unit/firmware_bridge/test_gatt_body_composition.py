"""Body Composition Measurement 0x2A9C.

Vectors: BUILT FROM THE SPEC (BCS 1.0 / GSS field order), not captures.
"""

from __future__ import annotations

import pytest
from gatt_helpers import decode_hex
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import MalformedError
from firmware_bridge.gatt import DecodeContext, body_composition


def test_built_fat_weight_height() -> None:
    data = body_composition.encode(
        215, user_id=2, optional_raw={"weight_kg": 14444, "height_m": 1714, "impedance_ohm": 5000}
    )
    result = decode_hex(0x2A9C, data.hex())
    assert result.fields["body_fat_percent"] == 21.5
    assert result.fields["impedance_ohm"] == 500.0
    assert "body_fat_percent" not in {m.metric for m in result.measurements}
    assert [(m.metric, m.value) for m in result.measurements] == [
        ("weight", 72.22),
        ("height", 1.714),
    ]
    assert all("resolution_assumed" in m.quality for m in result.measurements)


def test_unsuccessful() -> None:
    result = decode_hex(0x2A9C, "0000ffff")
    assert result.fields["measurement_unsuccessful"] is True
    assert result.measurements == ()


@pytest.mark.parametrize(
    ("hex_value", "reason"), [("0020d700", "reserved"), ("0004d700", "weight")]
)
def test_malformed(hex_value: str, reason: str) -> None:
    with pytest.raises(MalformedError, match=reason):
        decode_hex(0x2A9C, hex_value)


@given(
    st.integers(0, 1000),
    st.dictionaries(st.sampled_from(["weight_kg", "muscle_percent"]), st.integers(0, 0xFFFE)),
)
def test_round_trip(fat: int, optional: dict[str, int]) -> None:
    result = body_composition.decode(
        body_composition.encode(fat, optional_raw=optional), DecodeContext()
    )
    assert result.fields["body_fat_percent"] == fat / 10
