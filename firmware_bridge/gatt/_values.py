"""Encoder helpers: a value for an SFLOAT/FLOAT field is a number or a special value's name."""

from __future__ import annotations

from typing import Final, get_args

from firmware_bridge.ieee11073 import encode_float, encode_sfloat
from vitals import NoValue

#: What an encoder accepts for an IEEE 11073 field: a number, or "NaN"/"NRes"/"+INF"/...
Value = float | NoValue

_SPECIAL_NAMES: Final = frozenset(get_args(NoValue))


def sfloat_bytes(value: Value, decimals: int | None = None) -> bytes:
    """SFLOAT bytes of a number or of a special value named by its reason."""
    if isinstance(value, str):
        if value not in _SPECIAL_NAMES:
            raise ValueError(f"{value!r} is not a special value name")
        return encode_sfloat(None, no_value=value)
    return encode_sfloat(value, decimals=decimals)


def float_bytes(value: Value, decimals: int | None = None) -> bytes:
    """FLOAT bytes of a number or of a special value named by its reason."""
    if isinstance(value, str):
        if value not in _SPECIAL_NAMES:
            raise ValueError(f"{value!r} is not a special value name")
        return encode_float(None, no_value=value)
    return encode_float(value, decimals=decimals)
