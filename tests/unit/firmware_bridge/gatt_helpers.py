"""Shared helper for the GATT decoder tests (imported by the test modules of this folder)."""

from __future__ import annotations

from datetime import datetime, tzinfo

from firmware_bridge.gatt import GattResult, decode_characteristic


def decode_hex(
    uuid16: int,
    hex_value: str,
    *,
    feature: bytes | None = None,
    device_tz: tzinfo | None = None,
    session_start: datetime | None = None,
) -> GattResult:
    """Decode a hex string (spaces ignored) through the public entry point."""
    return decode_characteristic(
        uuid16,
        bytes.fromhex(hex_value.replace(" ", "")),
        feature=feature,
        device_tz=device_tz,
        session_start=session_start,
    )
