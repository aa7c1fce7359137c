"""Properties over every registered decoder: any bytes give a result or a DecodeError.

Inputs are arbitrary (hypothesis), plus arbitrary bytes behind each characteristic's valid
flag values so the search reaches past the flags check.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.errors import DecodeError, UnsupportedError
from firmware_bridge.gatt import DECODERS, GattResult, decode_characteristic


@pytest.mark.parametrize("uuid16", sorted(DECODERS))
@settings(max_examples=300)
@given(data=st.binary(max_size=48), feature=st.none() | st.binary(max_size=8))
def test_any_bytes_result_or_decode_error(uuid16: int, data: bytes, feature: bytes | None) -> None:
    try:
        result = decode_characteristic(
            uuid16, data, feature=feature, session_start=datetime(2024, 1, 1, tzinfo=UTC)
        )
    except DecodeError as error:
        assert error.kind in {"malformed", "crc_error", "unsupported"}
        return
    assert isinstance(result, GattResult)
    for m in result.measurements:
        assert (m.value is None) != (m.no_value is None)


@pytest.mark.parametrize("uuid16", sorted(DECODERS))
@settings(max_examples=200)
@given(flags=st.integers(0, 0xFF), rest=st.binary(min_size=1, max_size=40))
def test_valid_flag_prefix(uuid16: int, flags: int, rest: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_characteristic(uuid16, bytes((flags,)) + rest)


def test_unknown_uuid_unsupported() -> None:
    with pytest.raises(UnsupportedError) as caught:
        decode_characteristic(0x2A00, b"\x00")
    assert caught.value.kind == "unsupported"
