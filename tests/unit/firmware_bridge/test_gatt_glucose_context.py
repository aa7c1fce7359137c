"""Glucose Measurement Context 0x2A34 and the pairing helper.

Vectors: NordicSemiconductor/Android-BLE-Common-Library,
ble-common/src/test/.../glucose/GlucoseMeasurementContextDataCallbackTest.java ("full": flags
0xFF, seq 0, extended flags 0xB3, dinner, 100 kg carbs, casual, HCP/minor issues, 60 s at 50 %,
long acting insulin 123.45, HbA1c 34.5; "invalid": the same cut after the medication).
The bytes below are that test's fields re-encoded with this module's encoder; the medication
is 123.4 here because 123.45 has no exact SFLOAT (12345 exceeds the 12-bit mantissa; Nordic's
float setter rounds, this encoder refuses to).
"""

from __future__ import annotations

import pytest
from gatt_helpers import decode_hex

from firmware_bridge.errors import MalformedError
from firmware_bridge.gatt import DecodeContext, GattResult, glucose, glucose_context, pair_contexts

NORDIC_FULL = glucose_context.encode(
    0,
    extended_flags=0xB3,
    carbohydrate=(3, 100.0),
    meal=4,
    tester_health=(2, 1),
    exercise=(60, 50),
    medication=(4, 123.4, True),
    hba1c=34.5,
)


def test_nordic_full() -> None:
    result = decode_hex(0x2A34, NORDIC_FULL.hex())
    assert result.measurements == ()
    f = result.fields
    assert (f["carbohydrate"], f["carbohydrate_kg"], f["meal"]) == ("dinner", 100.0, "casual")
    assert (f["tester"], f["health"]) == ("health_care_professional", "minor_health_issues")
    assert (f["exercise_duration_s"], f["exercise_intensity_percent"]) == (60, 50)
    assert (f["medication"], f["medication_l"], f["hba1c_percent"]) == (
        "long_acting_insulin",
        123.4,
        34.5,
    )
    assert f["extended_flags"] == 0xB3


def test_nordic_invalid_cut() -> None:
    with pytest.raises(MalformedError, match="HbA1c"):
        decode_hex(0x2A34, NORDIC_FULL[:-2].hex())


def test_pairing_by_sequence_number() -> None:
    ctx = DecodeContext()
    m1 = glucose.decode(glucose.encode(1, None, concentration=0.001, context_follows=True), ctx)
    m2 = glucose.decode(glucose.encode(2, None, concentration=0.001), ctx)
    c1 = glucose_context.decode(glucose_context.encode(1, meal=1), ctx)
    c9 = glucose_context.decode(glucose_context.encode(9, meal=2), ctx)
    pairs, orphans = pair_contexts([m1, m2], [c9, c1])
    assert [(p.measurement, p.context) for p in pairs] == [(m1, c1), (m2, None)]
    assert orphans == [c9]
    assert isinstance(orphans[0], GattResult)
