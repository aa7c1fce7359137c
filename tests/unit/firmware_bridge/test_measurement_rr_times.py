"""Several RR intervals in one notification must not collide on one idempotency key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from firmware_bridge import place_rr_intervals, to_reading
from firmware_bridge.gatt.registry import decode_characteristic

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_each_rr_interval_gets_the_time_of_the_beat_that_ends_it() -> None:
    # Built from the GATT HRS spec: flags 0x10 (RR present), HR 72, RR 1024 and 512 (1/1024 s).
    result = decode_characteristic(0x2A37, bytes.fromhex("104800040002"))
    placed = place_rr_intervals(result.measurements, NOW)
    rr = [m for m in placed if m.metric == "rr_interval"]
    assert [m.value for m in rr] == [1000.0, 500.0]
    assert [m.time for m in rr] == [NOW - timedelta(milliseconds=500), NOW]
    readings = [
        to_reading(m, subject="sim-s", device="strap", received_at=NOW, source="ble")
        for m in placed
    ]
    assert len({r.key for r in readings}) == len(readings)
    assert all("time_from_rr" in r.quality for r in readings if r.metric == "rr_interval")


def test_measurements_with_their_own_time_are_left_alone() -> None:
    result = decode_characteristic(0x2A37, bytes.fromhex("0048"))
    assert place_rr_intervals(result.measurements, NOW) == list(result.measurements)
