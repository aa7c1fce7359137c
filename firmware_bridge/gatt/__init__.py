"""BLE GATT characteristic decoders and encoders (pure: bytes in, results out).

Use :func:`decode_characteristic`; :data:`DECODERS` maps UUID16 to decoder. Each characteristic
has its own module with its spec table, ``decode`` and ``encode`` functions.
"""

from firmware_bridge.gatt._core import DecodeContext, Decoder, GattResult, encode_date_time
from firmware_bridge.gatt.glucose_context import GlucosePair, pair_contexts
from firmware_bridge.gatt.registry import DECODERS, NAMES, decode_characteristic

__all__ = [
    "DECODERS",
    "NAMES",
    "DecodeContext",
    "Decoder",
    "GattResult",
    "GlucosePair",
    "decode_characteristic",
    "encode_date_time",
    "pair_contexts",
]
