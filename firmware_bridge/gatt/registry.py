"""UUID16 -> decoder: the table a reader audits against the Bluetooth SIG assigned numbers."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Final

from firmware_bridge.errors import UnsupportedError
from firmware_bridge.gatt import (
    blood_pressure,
    body_composition,
    cgm,
    date_time,
    glucose,
    glucose_context,
    heart_rate,
    plx,
    racp,
    temperature,
    weight,
)
from firmware_bridge.gatt._core import DecodeContext, Decoder, GattResult

#: Assigned numbers (Bluetooth SIG, "Assigned Numbers" 3.8 Characteristics).
DECODERS: Final[dict[int, Decoder]] = {
    0x2A08: date_time.decode,  # Date Time
    0x2A18: glucose.decode,  # Glucose Measurement
    0x2A1C: temperature.decode_measurement,  # Temperature Measurement
    0x2A1E: temperature.decode_intermediate,  # Intermediate Temperature
    0x2A34: glucose_context.decode,  # Glucose Measurement Context
    0x2A35: blood_pressure.decode_measurement,  # Blood Pressure Measurement
    0x2A36: blood_pressure.decode_intermediate,  # Intermediate Cuff Pressure
    0x2A37: heart_rate.decode,  # Heart Rate Measurement
    0x2A52: racp.decode,  # Record Access Control Point (responses)
    0x2A5E: plx.decode_spot_check,  # PLX Spot-Check Measurement
    0x2A5F: plx.decode_continuous,  # PLX Continuous Measurement
    0x2A9C: body_composition.decode,  # Body Composition Measurement
    0x2A9D: weight.decode_measurement,  # Weight Measurement
    0x2A9E: weight.decode_feature,  # Weight Scale Feature
    0x2AA7: cgm.decode,  # CGM Measurement
    0x2AA8: cgm.decode_feature,  # CGM Feature
}

NAMES: Final[dict[int, str]] = {
    0x2A08: "Date Time",
    0x2A18: "Glucose Measurement",
    0x2A1C: "Temperature Measurement",
    0x2A1E: "Intermediate Temperature",
    0x2A34: "Glucose Measurement Context",
    0x2A35: "Blood Pressure Measurement",
    0x2A36: "Intermediate Cuff Pressure",
    0x2A37: "Heart Rate Measurement",
    0x2A52: "Record Access Control Point",
    0x2A5E: "PLX Spot-Check Measurement",
    0x2A5F: "PLX Continuous Measurement",
    0x2A9C: "Body Composition Measurement",
    0x2A9D: "Weight Measurement",
    0x2A9E: "Weight Scale Feature",
    0x2AA7: "CGM Measurement",
    0x2AA8: "CGM Feature",
}

_DEFAULT_CONTEXT: Final = DecodeContext()


def decode_characteristic(
    uuid16: int,
    data: bytes,
    *,
    feature: bytes | None = None,
    device_tz: tzinfo | None = None,
    session_start: datetime | None = None,
) -> GattResult:
    """Decode one characteristic value as received (the single entry point).

    Raises ``UnsupportedError`` for a UUID without a decoder, ``MalformedError`` or
    ``CrcError`` for bad bytes; see :class:`DecodeContext` for the keyword arguments.
    """
    decoder = DECODERS.get(uuid16)
    if decoder is None:
        raise UnsupportedError(
            f"no decoder for characteristic 0x{uuid16:04X}; supported: "
            + ", ".join(f"0x{u:04X} {NAMES[u]}" for u in sorted(DECODERS))
        )
    if feature is None and device_tz is None and session_start is None:
        ctx = _DEFAULT_CONTEXT
    else:
        ctx = DecodeContext(feature=feature, device_tz=device_tz, session_start=session_start)
    return decoder(bytes(data), ctx)
