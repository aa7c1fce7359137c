"""Heart Rate Measurement, UUID 0x2A37 (Heart Rate Service 1.0, 3.1; GSS "Heart Rate Measurement").

Layout: flags (uint8) · heart rate (uint8 or uint16, /min) · energy expended (uint16 kJ, if
flagged) · RR intervals (uint16 each, 1/1024 s, one or more, if flagged) — RR intervals run to
the end of the value, so an odd number of bytes left for them is malformed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

from firmware_bridge.gatt._core import Cursor, DecodeContext, GattResult
from firmware_bridge.measurement import Measurement

UUID: Final = 0x2A37
LABEL: Final = "0x2A37"

# HRS 3.1.1.1 Flags field.
_FLAG_HR_UINT16: Final = 0x01  # bit 0: heart rate value format (0 = uint8, 1 = uint16)
_FLAG_CONTACT: Final = 0x06  # bits 1-2: sensor contact status
_FLAG_ENERGY: Final = 0x08  # bit 3: energy expended present
_FLAG_RR: Final = 0x10  # bit 4: RR-interval present
_FLAGS_DEFINED: Final = 0x1F  # bits 5-7 reserved

SensorContact = Literal["not_supported", "not_detected", "detected"]
# HRS 3.1.1.1.2: bits 1-2 = 0 or 1 -> feature not supported; 2 -> supported, not detected;
# 3 -> supported and detected.
_CONTACT: Final[dict[int, SensorContact]] = {
    0: "not_supported",
    1: "not_supported",
    2: "not_detected",
    3: "detected",
}
_CONTACT_BITS: Final[dict[SensorContact, int]] = {
    "not_supported": 0,
    "not_detected": 2,
    "detected": 3,
}

#: HRS 3.1.1.4: RR-interval resolution is 1/1024 s; 1000/1024 ms per count (exact in binary).
RR_MS_PER_COUNT: Final = 1000 / 1024


def decode(data: bytes, ctx: DecodeContext) -> GattResult:
    """Decode a Heart Rate Measurement into heart_rate, energy_expended and rr_interval(s).

    HR straps have no clock: every measurement has ``time=None`` (the shell stamps receipt
    time). A strap reporting "contact supported but not detected" still sends a value; it is
    kept and flagged ``no_sensor_contact`` rather than dropped or zeroed. RR intervals carry
    ``extra["index"]`` (their order in the notification) because they share one receipt time.
    """
    cur = Cursor(data, LABEL)
    flags = cur.flags("flags", _FLAGS_DEFINED)
    wide = bool(flags & _FLAG_HR_UINT16)
    heart_rate = cur.u16("heart rate (uint16)") if wide else cur.u8("heart rate (uint8)")
    contact = _CONTACT[(flags & _FLAG_CONTACT) >> 1]
    hr_quality = ("no_sensor_contact",) if contact == "not_detected" else ()
    measurements = [
        Measurement(metric="heart_rate", value=float(heart_rate), unit="/min", quality=hr_quality)
    ]
    fields: dict[str, object] = {
        "flags": flags,
        "heart_rate_format": "uint16" if wide else "uint8",
        "sensor_contact": contact,
        "heart_rate": heart_rate,
    }
    if flags & _FLAG_ENERGY:
        energy = cur.u16("energy expended (flags bit 3)")
        fields["energy_expended_kj"] = energy
        measurements.append(Measurement(metric="energy_expended", value=float(energy), unit="kJ"))
    if flags & _FLAG_RR:
        if cur.remaining == 0:
            cur.fail("flags bit 4 announces RR intervals but none follow")
        if cur.remaining % 2:
            cur.fail(f"RR intervals are uint16 but {cur.remaining} byte(s) remain (odd)")
        counts = []
        index = 0
        while cur.remaining:
            count = cur.u16("RR interval")
            counts.append(count)
            measurements.append(
                Measurement(
                    metric="rr_interval",
                    value=count * RR_MS_PER_COUNT,
                    unit="ms",
                    original_value=float(count),
                    original_unit="1/1024 s",
                    extra={"index": index},
                )
            )
            index += 1
        fields["rr_intervals_1024"] = counts
    cur.finish()
    return GattResult(LABEL, tuple(measurements), fields)


def encode(
    heart_rate: int,
    *,
    sensor_contact: SensorContact = "not_supported",
    energy_expended_kj: int | None = None,
    rr_intervals_1024: Sequence[int] = (),
    uint16: bool | None = None,
) -> bytes:
    """Build a Heart Rate Measurement value (the simulator's strap).

    ``uint16`` None picks the uint8 format when the rate fits (HRS recommends uint8 below 256).
    RR intervals are in the wire unit, 1/1024 s (``round(ms * 1.024)``).
    """
    wide = heart_rate > 0xFF if uint16 is None else uint16
    if not 0 <= heart_rate <= (0xFFFF if wide else 0xFF):
        raise ValueError(f"heart rate {heart_rate} does not fit the chosen format")
    flags = (_FLAG_HR_UINT16 if wide else 0) | _CONTACT_BITS[sensor_contact] << 1
    body = heart_rate.to_bytes(2 if wide else 1, "little")
    if energy_expended_kj is not None:
        flags |= _FLAG_ENERGY
        body += energy_expended_kj.to_bytes(2, "little")
    if rr_intervals_1024:
        flags |= _FLAG_RR
        body += b"".join(rr.to_bytes(2, "little") for rr in rr_intervals_1024)
    return bytes((flags,)) + body
