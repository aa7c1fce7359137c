"""BLE source without a radio: a fake at the bleak API boundary replays real payloads.

Payloads are the vectors of tests/unit/firmware_bridge (Nordic sample captures and vectors
built from the GATT specs); the fake client is constructed and connected by the real
``bleak_retry_connector.establish_connection``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from bleak.backends.device import BLEDevice

from edge_agent.ble import (
    SERVICES,
    BleSource,
    cgm_session_start,
    readings_from_notification,
    retry_connect,
    uuid16_of,
    uuid128,
)
from edge_agent.registry import UNKNOWN_USER, DeviceBinding, DeviceRegistry
from vitals import Reading

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
CUFF_ADDRESS = "A4:C1:38:00:00:02"
#: Nordic BP sample: user id 1, 138/88 mmHg, pulse 60 (test_gatt_blood_pressure.py).
BP_USER_1 = bytes.fromhex("1e8a00580078000000041114293b3c00012700")
#: Weight 72.22 kg, user 1, BMI, height (test_gatt_weight.py, built from WSS 1.0).
WEIGHT_USER_1 = bytes.fromhex("0e6c38e4070c1e0a1e0001f000b206")
#: Heart rate 85/min, 8-bit (test_gatt_heart_rate.py).
HR_85 = bytes.fromhex("0055")
#: PLX continuous SpO2 98 %, pulse 72 (test_gatt_plx.py).
PLX = bytes.fromhex("0362004800610" + "04b00ff07ff07")

CUFF = DeviceBinding(
    device="home-cuff", address=CUFF_ADDRESS, users={1: "s-grandma", 2: "s-grandpa"}
)
STRAP = DeviceBinding(device="home-strap", name="HR-Strap", subject="s-grandma")


def test_service_table_uses_sig_assigned_numbers() -> None:
    assert set(SERVICES) == {0x180D, 0x1810, 0x1809, 0x1808, 0x181F, 0x1822, 0x181D}
    assert uuid128(0x180D) == "0000180d-0000-1000-8000-00805f9b34fb"
    assert uuid16_of(uuid128(0x2A37)) == 0x2A37
    assert uuid16_of("6e400001-b5a3-f393-e0a9-e50e24dcca9e") is None


def test_shared_cuff_binds_by_user_id() -> None:
    outcome = readings_from_notification(CUFF, 0x2A35, BP_USER_1, now=NOW)
    assert {r.subject for r in outcome.readings} == {"s-grandma"}
    assert {r.metric: r.value for r in outcome.readings}["bp_systolic"] == 138.0
    assert all(r.source == "ble" and r.device == "home-cuff" for r in outcome.readings)
    # The Nordic sample has no valid timestamp: receipt time, flagged.
    assert all("time_from_receipt" in r.quality for r in outcome.readings)


def test_unlisted_or_unknown_user_is_never_guessed() -> None:
    only_two = DeviceBinding(device="cuff-2", address="AA:00:00:00:00:01", users={2: "s-b"})
    outcome = readings_from_notification(only_two, 0x2A35, BP_USER_1, now=NOW)
    assert outcome.readings == ()
    assert "user id 1" in outcome.skipped
    assert CUFF.subject_for(UNKNOWN_USER) is None
    assert STRAP.subject_for(7) == "s-grandma"  # a personal device: any user id is its owner


def test_malformed_notification_is_skipped_with_reason() -> None:
    outcome = readings_from_notification(STRAP, 0x2A37, b"\x01", now=NOW)
    assert outcome.readings == ()
    assert outcome.skipped.startswith("malformed")


def test_cgm_session_start_time() -> None:
    # 2026-11-25 16:00:00 local, UTC+8 (32 x 15 min), no DST -> 08:00 UTC (CGMS 1.0.1 3.5).
    data = (2026).to_bytes(2, "little") + bytes([11, 25, 16, 0, 0, 32, 0])
    assert cgm_session_start(data) == NOW
    assert cgm_session_start(data[:7] + bytes([0x80, 0])) is None  # time zone unknown


def test_registry_rejects_duplicates_and_unbound_devices() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        DeviceRegistry.from_bindings([CUFF, CUFF])
    with pytest.raises(ValueError, match="subject or users"):
        DeviceBinding(device="x", address="AA:00:00:00:00:09")


class FakeClient:
    """BleakClient-like: the constructor and connect() follow bleak's signatures, as called by
    bleak_retry_connector.establish_connection; notifications replay fixed payloads."""

    payloads: ClassVar[dict[str, dict[int, Sequence[bytes]]]] = {}
    readable: ClassVar[dict[str, dict[int, bytes]]] = {}
    instances: ClassVar[list[FakeClient]] = []

    def __init__(
        self,
        device: BLEDevice,
        disconnected_callback: Callable[[Any], None] | None = None,
        **kwargs: Any,
    ) -> None:
        self.device = device
        self._on_disconnect = disconnected_callback
        self.is_connected = False
        self.subscribed: list[int] = []
        FakeClient.instances.append(self)

    async def connect(self, **kwargs: Any) -> None:
        self.is_connected = True

    async def read_gatt_char(self, char_specifier: str) -> bytearray:
        uuid16 = uuid16_of(char_specifier)
        values = self.readable.get(self.device.address, {})
        if uuid16 not in values:
            raise KeyError(f"characteristic {char_specifier} not found")
        return bytearray(values[uuid16])

    async def start_notify(
        self, char_specifier: str, callback: Callable[[Any, bytearray], None]
    ) -> None:
        uuid16 = uuid16_of(char_specifier)
        payloads = self.payloads.get(self.device.address, {})
        if uuid16 not in payloads:
            raise KeyError(f"characteristic {char_specifier} not found")
        self.subscribed.append(uuid16)
        loop = asyncio.get_running_loop()
        for index, data in enumerate(payloads[uuid16]):
            loop.call_later(0.01 * (index + 1), callback, char_specifier, bytearray(data))

    async def disconnect(self) -> None:
        if self.is_connected and self._on_disconnect is not None:
            self.is_connected = False
            self._on_disconnect(self)


def test_source_discovers_connects_subscribes_and_binds() -> None:
    cuff = BLEDevice(CUFF_ADDRESS, "BP-Cuff", None)
    strap = BLEDevice("C0:00:00:00:00:07", "HR-Strap", None)
    stranger = BLEDevice("C0:00:00:00:00:99", "Neighbour", None)
    FakeClient.instances = []
    FakeClient.payloads = {
        CUFF_ADDRESS: {0x2A35: [BP_USER_1]},
        strap.address: {0x2A37: [HR_85, HR_85[:1]]},  # the second one is malformed
    }
    FakeClient.readable = {CUFF_ADDRESS: {0x2A19: bytes([87])}}

    async def discover(timeout: float) -> list[tuple[BLEDevice, list[str]]]:
        return [
            (cuff, [uuid128(0x1810)]),
            (strap, [uuid128(0x180D)]),
            (stranger, [uuid128(0x180D)]),
        ]

    source = BleSource(
        DeviceRegistry.from_bindings([CUFF, STRAP]),
        scan_interval_s=60,
        discover=discover,
        connect=retry_connect(FakeClient, max_attempts=1),
        clock=lambda: NOW,
    )
    source.start()
    try:
        readings: list[Reading] = []
        deadline = time.monotonic() + 5
        while len(readings) < 5 and time.monotonic() < deadline:
            readings.extend(source())
            time.sleep(0.02)
    finally:
        source.close()
    assert len(FakeClient.instances) == 2  # the stranger is not in the registry
    assert {(r.device, r.subject) for r in readings} == {
        ("home-cuff", "s-grandma"),
        ("home-strap", "s-grandma"),
    }
    assert sorted(r.metric for r in readings) == [
        "bp_diastolic",
        "bp_mean",
        "bp_systolic",
        "heart_rate",
        "pulse_rate",
    ]
    assert source.devices["home-cuff"].battery_pct == 87.0
    assert source.devices["home-strap"].skipped == 1
    status = {s.device: s for s in source.device_status()}
    assert status["home-strap"].last_reading_at == NOW
    assert all(not client.is_connected for client in FakeClient.instances)
