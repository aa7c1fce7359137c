"""Glucose Measurement Context 0x2A34 (Glucose Service 1.0, 3.3; GSS "Glucose Measurement
Context") and the pure helper that pairs contexts to measurements by sequence number.

Layout: flags (uint8) · sequence number (uint16) · extended flags (uint8, bit 7) · carbohydrate
id (uint8) and carbohydrate (SFLOAT kg), bit 0 · meal (uint8, bit 1) · tester/health (nibbles,
bit 2) · exercise duration (uint16 s) and intensity (uint8 %), bit 3 · medication id (uint8)
and medication (SFLOAT, kg or litres per bit 5), bit 4 · HbA1c (SFLOAT %, bit 6).

Nothing here is a catalogue metric: the context is all ``fields``. The extended flags byte has
no defined bits in GLS 1.0; its value is reported, not rejected (it announces no field; any
bytes a future revision adds would still be caught as trailing bytes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from firmware_bridge.gatt._core import Cursor, DecodeContext, GattResult, number_field
from firmware_bridge.gatt._values import Value, sfloat_bytes

UUID: Final = 0x2A34

_FLAG_CARBS: Final = 0x01
_FLAG_MEAL: Final = 0x02
_FLAG_TESTER_HEALTH: Final = 0x04
_FLAG_EXERCISE: Final = 0x08
_FLAG_MEDICATION: Final = 0x10
_FLAG_MEDICATION_LITRES: Final = 0x20
_FLAG_HBA1C: Final = 0x40
_FLAG_EXTENDED: Final = 0x80

CARBOHYDRATES: Final[dict[int, str]] = {
    1: "breakfast",
    2: "lunch",
    3: "dinner",
    4: "snack",
    5: "drink",
    6: "supper",
    7: "brunch",
}
MEALS: Final[dict[int, str]] = {
    1: "preprandial",
    2: "postprandial",
    3: "fasting",
    4: "casual",
    5: "bedtime",
}
TESTERS: Final[dict[int, str]] = {
    1: "self",
    2: "health_care_professional",
    3: "lab_test",
    15: "not_available",
}
HEALTH: Final[dict[int, str]] = {
    1: "minor_health_issues",
    2: "major_health_issues",
    3: "during_menses",
    4: "under_stress",
    5: "no_health_issues",
    15: "not_available",
}
MEDICATIONS: Final[dict[int, str]] = {
    1: "rapid_acting_insulin",
    2: "short_acting_insulin",
    3: "intermediate_acting_insulin",
    4: "long_acting_insulin",
    5: "pre_mixed_insulin",
}
#: GLS 3.3.1.6: exercise duration 65535 = overrun.
EXERCISE_OVERRUN: Final = 0xFFFF


def decode(data: bytes, ctx: DecodeContext) -> GattResult:
    """Glucose Measurement Context: all in ``fields`` (no measurements)."""
    cur = Cursor(data, "0x2A34")
    flags = cur.u8("flags")  # all 8 bits are defined
    fields: dict[str, object] = {"flags": flags, "sequence_number": cur.u16("sequence number")}
    if flags & _FLAG_EXTENDED:
        fields["extended_flags"] = cur.u8("extended flags (flags bit 7)")
    if flags & _FLAG_CARBS:
        code = cur.u8("carbohydrate id (flags bit 0)")
        fields["carbohydrate"] = CARBOHYDRATES.get(code, "reserved")
        fields["carbohydrate_kg"] = number_field(cur.sfloat("carbohydrate (flags bit 0)"))
    if flags & _FLAG_MEAL:
        fields["meal"] = MEALS.get(cur.u8("meal (flags bit 1)"), "reserved")
    if flags & _FLAG_TESTER_HEALTH:
        both = cur.u8("tester-health (flags bit 2)")
        fields["tester"] = TESTERS.get(both & 0x0F, "reserved")
        fields["health"] = HEALTH.get(both >> 4, "reserved")
    if flags & _FLAG_EXERCISE:
        duration = cur.u16("exercise duration (flags bit 3)")
        fields["exercise_duration_s"] = None if duration == EXERCISE_OVERRUN else duration
        fields["exercise_duration_overrun"] = duration == EXERCISE_OVERRUN
        fields["exercise_intensity_percent"] = cur.u8("exercise intensity (flags bit 3)")
    if flags & _FLAG_MEDICATION:
        code = cur.u8("medication id (flags bit 4)")
        fields["medication"] = MEDICATIONS.get(code, "reserved")
        amount = number_field(cur.sfloat("medication (flags bit 4)"))
        if flags & _FLAG_MEDICATION_LITRES:
            fields["medication_l"] = amount
        else:
            fields["medication_kg"] = amount
    elif flags & _FLAG_MEDICATION_LITRES:
        fields["medication_unit_without_medication"] = True
    if flags & _FLAG_HBA1C:
        fields["hba1c_percent"] = number_field(cur.sfloat("HbA1c (flags bit 6)"))
    cur.finish()
    return GattResult("0x2A34", (), fields)


def encode(
    sequence_number: int,
    *,
    carbohydrate: tuple[int, Value] | None = None,
    meal: int | None = None,
    tester_health: tuple[int, int] | None = None,
    exercise: tuple[int, int] | None = None,
    medication: tuple[int, Value, bool] | None = None,
    hba1c: Value | None = None,
    extended_flags: int | None = None,
) -> bytes:
    """Build a Glucose Measurement Context (codes as in the tables of this module;
    ``medication`` = (id, amount, amount_in_litres))."""
    flags = 0
    body = sequence_number.to_bytes(2, "little")
    if extended_flags is not None:
        flags |= _FLAG_EXTENDED
        body += bytes((extended_flags,))
    if carbohydrate is not None:
        flags |= _FLAG_CARBS
        body += bytes((carbohydrate[0],)) + sfloat_bytes(carbohydrate[1])
    if meal is not None:
        flags |= _FLAG_MEAL
        body += bytes((meal,))
    if tester_health is not None:
        flags |= _FLAG_TESTER_HEALTH
        body += bytes(((tester_health[1] & 0xF) << 4 | (tester_health[0] & 0xF),))
    if exercise is not None:
        flags |= _FLAG_EXERCISE
        body += exercise[0].to_bytes(2, "little") + bytes((exercise[1],))
    if medication is not None:
        flags |= _FLAG_MEDICATION | (_FLAG_MEDICATION_LITRES if medication[2] else 0)
        body += bytes((medication[0],)) + sfloat_bytes(medication[1])
    if hba1c is not None:
        flags |= _FLAG_HBA1C
        body += sfloat_bytes(hba1c)
    return bytes((flags,)) + body


@dataclass(frozen=True, slots=True)
class GlucosePair:
    """A glucose measurement and the context that carries its sequence number (or None)."""

    measurement: GattResult
    context: GattResult | None


def pair_contexts(
    measurements: Iterable[GattResult], contexts: Iterable[GattResult]
) -> tuple[list[GlucosePair], list[GattResult]]:
    """Pair decoded 0x2A18 results with decoded 0x2A34 results by sequence number (GLS 3.3:
    the context follows the measurement with the same sequence number).

    Returns the pairs in measurement order and the contexts that matched no measurement
    (orphans: report them, never attach them to a neighbour). When several contexts share a
    sequence number, the last one wins (a device resending a record replaces it).
    """
    by_sequence: dict[object, GattResult] = {}
    for candidate in contexts:
        by_sequence[candidate.fields["sequence_number"]] = candidate
    used: set[object] = set()
    pairs = []
    for measurement in measurements:
        sequence = measurement.fields["sequence_number"]
        context = by_sequence.get(sequence)
        if context is not None:
            used.add(sequence)
        pairs.append(GlucosePair(measurement, context))
    orphans = [c for s, c in by_sequence.items() if s not in used]
    return pairs, orphans
