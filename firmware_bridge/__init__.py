"""firmware_bridge: pure decoders from device bytes to catalogue measurements. No I/O."""

from firmware_bridge.errors import CrcError, DecodeError, MalformedError, UnsupportedError
from firmware_bridge.measurement import Measurement, place_rr_intervals, to_reading

__all__ = [
    "CrcError",
    "DecodeError",
    "MalformedError",
    "Measurement",
    "UnsupportedError",
    "place_rr_intervals",
    "to_reading",
]
