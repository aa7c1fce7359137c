"""Body Composition Measurement 0x2A9C (Body Composition Service 1.0, 3.2; GSS "Body
Composition Measurement").

Layout: flags (uint16) · body fat percentage (uint16, 0.1 %) · then, each when its flag is set,
timestamp (bit 1) · user id (bit 2) · basal metabolism (uint16 kJ, bit 3) · muscle percentage
(uint16 0.1 %, bit 4) · muscle mass (bit 5) · fat free mass (bit 6) · soft lean mass (bit 7) ·
body water mass (bit 8) · impedance (uint16 0.1 Ohm, bit 9) · weight (bit 10) · height (bit 11).
Flags bit 0: SI (masses in 0.005 kg, height 0.001 m) or imperial (0.01 lb, 0.1 in); bit 12:
the measurement is split over several notifications (each is decoded on its own).

Only ``weight`` and ``height`` are catalogue metrics; everything else (body fat %, muscle, water,
impedance, basal metabolism) is reported in ``fields`` in SI units. The Body Composition Feature
is not consulted: mass and height carry the quality flag ``resolution_assumed`` (see
``firmware_bridge.gatt.weight``). Body fat 0xFFFF = "measurement unsuccessful".
"""

from __future__ import annotations

from typing import Final

from firmware_bridge.gatt._core import Cursor, DecodeContext, GattResult, time_quality
from firmware_bridge.gatt.weight import KG_PER_LB, M_PER_IN, UNSUCCESSFUL
from firmware_bridge.measurement import Measurement

UUID: Final = 0x2A9C

_FLAG_IMPERIAL: Final = 0x0001
_FLAG_TIMESTAMP: Final = 0x0002
_FLAG_USER: Final = 0x0004
_FLAG_MULTI_PACKET: Final = 0x1000
_FLAGS_DEFINED: Final = 0x1FFF  # bits 13-15 reserved

# BCS 3.2.1.1: optional uint16 fields after timestamp and user id, in wire order:
# (flag bit, field name, kind) where kind says how the raw value scales.
_OPTIONAL: Final[tuple[tuple[int, str, str], ...]] = (
    (0x0008, "basal_metabolism_kj", "kj"),
    (0x0010, "muscle_percent", "percent"),
    (0x0020, "muscle_mass_kg", "mass"),
    (0x0040, "fat_free_mass_kg", "mass"),
    (0x0080, "soft_lean_mass_kg", "mass"),
    (0x0100, "body_water_mass_kg", "mass"),
    (0x0200, "impedance_ohm", "impedance"),
    (0x0400, "weight_kg", "mass"),
    (0x0800, "height_m", "length"),
)


def _scale(raw: int, kind: str, imperial: bool) -> float | None:
    if kind == "kj":
        return float(raw)
    if kind in ("percent", "impedance"):
        return raw / 10
    if kind == "mass":
        if raw == UNSUCCESSFUL:
            return None
        return round(raw / 100 * KG_PER_LB, 6) if imperial else raw * 5 / 1000
    return round(raw / 10 * M_PER_IN, 6) if imperial else raw / 1000


def decode(data: bytes, ctx: DecodeContext) -> GattResult:
    """Body Composition Measurement: weight/height readings, the rest in ``fields``."""
    cur = Cursor(data, "0x2A9C")
    flags = cur.flags("flags", _FLAGS_DEFINED, width=2)
    imperial = bool(flags & _FLAG_IMPERIAL)
    fat_raw = cur.u16("body fat percentage")
    fields: dict[str, object] = {
        "flags": flags,
        "unit_system": "imperial" if imperial else "SI",
        "multiple_packet": bool(flags & _FLAG_MULTI_PACKET),
        "body_fat_percent": None if fat_raw == UNSUCCESSFUL else fat_raw / 10,
        "measurement_unsuccessful": fat_raw == UNSUCCESSFUL,
    }
    time = None
    if flags & _FLAG_TIMESTAMP:
        time, stamp = cur.date_time("timestamp (flags bit 1)", ctx.device_tz)
        fields.update(stamp)
    if flags & _FLAG_USER:
        user = cur.u8("user id (flags bit 2)")
        fields["user_id"] = user
        fields["user_known"] = user != 0xFF
    raws: dict[str, int] = {}
    for bit, name, kind in _OPTIONAL:
        if flags & bit:
            raw = cur.u16(f"{name} (flags 0x{bit:04X})")
            raws[name] = raw
            fields[name] = _scale(raw, kind, imperial)
    cur.finish()
    quality = (*time_quality(time, ctx), "resolution_assumed")
    measurements: list[Measurement] = []
    if "weight_kg" in raws:
        raw = raws["weight_kg"]
        measurements.append(
            Measurement(
                metric="weight",
                value=_scale(raw, "mass", imperial),
                unit="kg",
                time=time,
                no_value="not_measured" if raw == UNSUCCESSFUL else None,
                original_value=raw / 100 if imperial and raw != UNSUCCESSFUL else None,
                original_unit="[lb_av]" if imperial and raw != UNSUCCESSFUL else None,
                quality=quality,
            )
        )
    if "height_m" in raws:
        raw = raws["height_m"]
        measurements.append(
            Measurement(
                metric="height",
                value=_scale(raw, "length", imperial),
                unit="m",
                time=time,
                original_value=raw / 10 if imperial else None,
                original_unit="[in_i]" if imperial else None,
                quality=quality,
            )
        )
    return GattResult("0x2A9C", tuple(measurements), fields)


def encode(
    body_fat_raw: int,
    *,
    imperial: bool = False,
    user_id: int | None = None,
    optional_raw: dict[str, int] | None = None,
) -> bytes:
    """Build a Body Composition Measurement from wire-unit integers (``optional_raw`` keys are
    the field names of this module, e.g. ``{"weight_kg": 14000, "height_m": 1750}``)."""
    flags = _FLAG_IMPERIAL if imperial else 0
    body = body_fat_raw.to_bytes(2, "little")
    if user_id is not None:
        flags |= _FLAG_USER
        body += bytes((user_id,))
    given = dict(optional_raw or {})
    for bit, name, _kind in _OPTIONAL:
        if name in given:
            flags |= bit
            body += given.pop(name).to_bytes(2, "little")
    if given:
        raise ValueError(f"unknown body composition fields: {sorted(given)}")
    return flags.to_bytes(2, "little") + body
