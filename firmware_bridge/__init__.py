"""firmware_bridge: pure decoders from device bytes to catalogue measurements. No I/O."""

from firmware_bridge.errors import CrcError, DecodeError, MalformedError, UnsupportedError
from firmware_bridge.measurement import Measurement, to_reading

__all__ = [
    "CrcError",
    "DecodeError",
    "MalformedError",
    "Measurement",
    "UnsupportedError",
    "to_reading",
]
