"""IEEE 11073-20601 SFLOAT and FLOAT: the number formats of the BLE health characteristics.

- **SFLOAT** (16 bit): 4-bit signed exponent (high nibble), 12-bit signed mantissa.
- **FLOAT** (32 bit): 8-bit signed exponent (high byte), 24-bit signed mantissa.

Both travel little-endian (Bluetooth Core, Vol 3 Part G 3.3.3 / GATT Specification Supplement
2.3: "multi-octet fields are transmitted LSO first"). ``value = mantissa * 10**exponent``.

IEEE 11073-20601 Annex F.8 reserves five values (all with exponent 0) that are *not* numbers:
NaN, NRes (not at this resolution), +INF, -INF and one reserved value. A decoder returns them as
"no value, because <reason>" — never as 0 and never as a float NaN that could slip through
arithmetic unnoticed. Only the exact raw patterns are special; a mantissa of 0x7FF with a
non-zero exponent is an ordinary number (the standard defines the specials as whole words).

Division by a power of ten (rather than multiplication by ``10**-n``) keeps decoded values the
nearest double to the decimal the device meant: ``365e-1`` decodes to exactly ``36.5``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Final

from vitals import NoValue

#: A decoded number: ``(value, None)`` or ``(None, reason)``.
Number = tuple[float | None, NoValue | None]

# IEEE 11073-20601 Annex F.8, Table F.3/F.4: special values (exponent 0).
SFLOAT_SPECIALS: Final[dict[int, NoValue]] = {
    0x07FF: "NaN",
    0x0800: "NRes",
    0x07FE: "+INF",
    0x0802: "-INF",
    0x0801: "reserved",
}
FLOAT_SPECIALS: Final[dict[int, NoValue]] = {
    0x007FFFFF: "NaN",
    0x00800000: "NRes",
    0x007FFFFE: "+INF",
    0x00800002: "-INF",
    0x00800001: "reserved",
}
_SFLOAT_BY_REASON: Final[dict[NoValue, int]] = {v: k for k, v in SFLOAT_SPECIALS.items()}
_FLOAT_BY_REASON: Final[dict[NoValue, int]] = {v: k for k, v in FLOAT_SPECIALS.items()}

SFLOAT_MANTISSA_MIN: Final = -2048
SFLOAT_MANTISSA_MAX: Final = 2047
SFLOAT_EXPONENT_MIN: Final = -8
SFLOAT_EXPONENT_MAX: Final = 7
FLOAT_MANTISSA_MIN: Final = -(1 << 23)
FLOAT_MANTISSA_MAX: Final = (1 << 23) - 1
FLOAT_EXPONENT_MIN: Final = -128
FLOAT_EXPONENT_MAX: Final = 127


def _sfloat_number(raw: int) -> Number:
    special = SFLOAT_SPECIALS.get(raw)
    if special is not None:
        return (None, special)
    mantissa = raw & 0x0FFF
    if mantissa >= 0x0800:
        mantissa -= 0x1000
    exponent = raw >> 12
    if exponent >= 0x8:
        exponent -= 0x10
    if exponent >= 0:
        return (float(mantissa * 10**exponent), None)
    return (mantissa / 10**-exponent, None)


# Every 16-bit pattern decoded once at import (64 Ki entries, a few ms): SFLOAT decoding is then
# one tuple lookup, which is what lets the GATT decoders keep up with many devices on one core.
_SFLOAT_TABLE: Final[tuple[Number, ...]] = tuple(_sfloat_number(raw) for raw in range(0x10000))


def sfloat_from_raw(raw: int) -> Number:
    """Decode a 16-bit SFLOAT word (already assembled from its two bytes)."""
    return _SFLOAT_TABLE[raw & 0xFFFF]


def float_from_raw(raw: int) -> Number:
    """Decode a 32-bit FLOAT word (already assembled from its four bytes)."""
    raw &= 0xFFFFFFFF
    special = FLOAT_SPECIALS.get(raw)
    if special is not None:
        return (None, special)
    mantissa = raw & 0x00FFFFFF
    if mantissa >= 0x00800000:
        mantissa -= 0x01000000
    exponent = raw >> 24
    if exponent >= 0x80:
        exponent -= 0x100
    if exponent >= 0:
        return (float(mantissa * 10**exponent), None)
    return (mantissa / 10**-exponent, None)


def decode_sfloat(data: bytes, offset: int = 0) -> Number:
    """Decode the SFLOAT at ``data[offset:offset + 2]`` (little-endian, as received).

    Raises ``ValueError`` when fewer than two bytes are available; GATT decoders check lengths
    themselves and raise ``MalformedError`` with the offset instead.
    """
    if offset < 0 or offset + 2 > len(data):
        raise ValueError(f"SFLOAT needs 2 bytes at offset {offset}, have {len(data) - offset}")
    return _SFLOAT_TABLE[data[offset] | data[offset + 1] << 8]


def decode_float(data: bytes, offset: int = 0) -> Number:
    """Decode the FLOAT at ``data[offset:offset + 4]`` (little-endian, as received)."""
    if offset < 0 or offset + 4 > len(data):
        raise ValueError(f"FLOAT needs 4 bytes at offset {offset}, have {len(data) - offset}")
    return float_from_raw(int.from_bytes(data[offset : offset + 4], "little"))


def _mantissa_exponent(
    value: float,
    decimals: int | None,
    *,
    mantissa_min: int,
    mantissa_max: int,
    exponent_min: int,
    exponent_max: int,
    reserved: frozenset[int],
    kind: str,
) -> tuple[int, int]:
    """The (mantissa, exponent) that represent ``value`` exactly.

    "Exactly" means as the shortest decimal that round-trips to the same double (``repr``):
    36.6 is sent as 366e-1 even though no double equals 36.6. ``decimals`` fixes the exponent
    at ``-decimals`` (a device with 0.01 resolution sends 3650e-2); ``None`` uses exponent 0
    for whole numbers and the fewest decimals otherwise. Trailing zeros move into the exponent
    only when the mantissa would not fit. Never rounds: an inexact request raises ValueError.
    """
    if not math.isfinite(value):
        raise ValueError(f"{kind} encodes finite values only; pass no_value= for NaN/INF")
    sign, digits, exp = Decimal(repr(float(value))).as_tuple()
    assert isinstance(exp, int)  # finite, checked above
    mantissa = int("".join(map(str, digits))) * (-1 if sign else 1)
    target = min(exp, 0) if decimals is None else -decimals
    if exp < target:
        # Fewer decimals than the value has: only exact if the dropped digits are zeros.
        shift = target - exp
        if mantissa % 10**shift:
            raise ValueError(f"{value!r} is not exact to {decimals} decimals")
        mantissa //= 10**shift
    else:
        mantissa *= 10 ** (exp - target)
    exponent = target
    # Too many digits for the mantissa (or exponent below range): drop trailing zeros.
    while (
        (mantissa > mantissa_max or mantissa < mantissa_min or exponent < exponent_min)
        and mantissa % 10 == 0
        and mantissa
    ):
        mantissa //= 10
        exponent += 1
    if mantissa == 0:
        exponent = max(min(exponent, exponent_max), exponent_min)
    # Exponent above range: a small mantissa can absorb powers of ten.
    while exponent > exponent_max and mantissa_min <= mantissa * 10 <= mantissa_max:
        mantissa *= 10
        exponent -= 1
    if not (mantissa_min <= mantissa <= mantissa_max) or not (
        exponent_min <= exponent <= exponent_max
    ):
        raise ValueError(f"{value!r} does not fit a {kind} exactly")
    if exponent == 0 and mantissa in reserved:
        # 2046, 2047, -2048, -2047, -2046 at exponent 0 are the special values themselves.
        if mantissa % 10 == 0:
            return mantissa // 10, 1
        raise ValueError(f"{value!r} collides with a {kind} special value")
    return mantissa, exponent


_SFLOAT_RESERVED_MANTISSAS: Final = frozenset({2046, 2047, -2048, -2047, -2046})
_FLOAT_RESERVED_MANTISSAS: Final = frozenset(
    {FLOAT_MANTISSA_MAX, FLOAT_MANTISSA_MAX - 1, FLOAT_MANTISSA_MIN, -(1 << 23) + 1, -(1 << 23) + 2}
)


def sfloat_raw(
    value: float | None, *, decimals: int | None = None, no_value: NoValue | None = None
) -> int:
    """The 16-bit SFLOAT word for ``value`` (or for the special ``no_value``).

    ``decimals`` fixes the exponent to ``-decimals`` (so ``36.5`` with 2 decimals gives
    mantissa 3650, exponent -2, as a device with that resolution would send it); ``None`` picks
    the fewest decimals that represent the value exactly. A value that cannot be represented
    exactly raises ``ValueError`` — the encoder never rounds.
    """
    if value is None:
        if no_value is None:
            raise ValueError("give a value or a no_value reason")
        if no_value not in _SFLOAT_BY_REASON:
            raise ValueError(f"{no_value!r} is not an IEEE 11073 special value")
        return _SFLOAT_BY_REASON[no_value]
    mantissa, exponent = _mantissa_exponent(
        value,
        decimals,
        mantissa_min=SFLOAT_MANTISSA_MIN,
        mantissa_max=SFLOAT_MANTISSA_MAX,
        exponent_min=SFLOAT_EXPONENT_MIN,
        exponent_max=SFLOAT_EXPONENT_MAX,
        reserved=_SFLOAT_RESERVED_MANTISSAS,
        kind="SFLOAT",
    )
    return ((exponent & 0xF) << 12) | (mantissa & 0x0FFF)


def float_raw(
    value: float | None, *, decimals: int | None = None, no_value: NoValue | None = None
) -> int:
    """The 32-bit FLOAT word for ``value`` (see :func:`sfloat_raw` for ``decimals``)."""
    if value is None:
        if no_value is None:
            raise ValueError("give a value or a no_value reason")
        if no_value not in _FLOAT_BY_REASON:
            raise ValueError(f"{no_value!r} is not an IEEE 11073 special value")
        return _FLOAT_BY_REASON[no_value]
    mantissa, exponent = _mantissa_exponent(
        value,
        decimals,
        mantissa_min=FLOAT_MANTISSA_MIN,
        mantissa_max=FLOAT_MANTISSA_MAX,
        exponent_min=FLOAT_EXPONENT_MIN,
        exponent_max=FLOAT_EXPONENT_MAX,
        reserved=_FLOAT_RESERVED_MANTISSAS,
        kind="FLOAT",
    )
    return ((exponent & 0xFF) << 24) | (mantissa & 0x00FFFFFF)


def encode_sfloat(
    value: float | None, *, decimals: int | None = None, no_value: NoValue | None = None
) -> bytes:
    """SFLOAT bytes, little-endian as a device sends them (``encode_sfloat(36.5) == b'm\\xf1'``)."""
    return sfloat_raw(value, decimals=decimals, no_value=no_value).to_bytes(2, "little")


def encode_float(
    value: float | None, *, decimals: int | None = None, no_value: NoValue | None = None
) -> bytes:
    """FLOAT bytes, little-endian as a device sends them."""
    return float_raw(value, decimals=decimals, no_value=no_value).to_bytes(4, "little")
