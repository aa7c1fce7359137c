"""RACP stored-record download and device time, against a fake glucose meter at the bleak API.

The meter stores 3 records (Glucose Measurement 0x2A18 built with the GLS 1.0 encoder, two with
a Glucose Measurement Context 0x2A34), answers a RACP write on 0x2A52 with the records as
notifications and a Response Code indication, and exposes a writable Current Time 0x2A2B.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from bleak.backends.device import BLEDevice

from edge_agent.ble import BleSource, current_time_value, retry_connect, uuid16_of
from edge_agent.racp_download import (
    STORED_RECORD,
    RacpDownload,
    RacpStateStore,
    parse_response,
)
from edge_agent.registry import DeviceBinding, DeviceRegistry
from firmware_bridge.gatt import glucose, glucose_context, racp
from firmware_bridge.gatt._core import DecodeContext
from vitals import Reading

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
METER_ADDRESS = "A4:C1:38:00:00:18"
METER = DeviceBinding(
    device="home-meter", address=METER_ADDRESS, subject="s-grandma", timezone="Europe/Berlin"
)
BASE = datetime(2026, 11, 24, 7, 30)  # device wall clock (Europe/Berlin, UTC+1)


def record(seq: int, mg_dl: float, *, context: bool) -> bytes:
    return glucose.encode(
        seq,
        BASE + timedelta(hours=seq),
        concentration=mg_dl / 100_000,
        context_follows=context,
    )


@dataclass
class Prop:
    properties: list[str]


class Services:
    def __init__(self, table: dict[int, list[str]]) -> None:
        self.table = table

    def get_characteristic(self, specifier: str) -> Prop | None:
        uuid16 = uuid16_of(specifier)
        return Prop(self.table[uuid16]) if uuid16 in self.table else None


class FakeMeter:
    """BleakClient-like glucose meter with a record store behind RACP."""

    records: ClassVar[dict[int, tuple[bytes, bytes | None]]] = {}
    #: Response code the next RACP reports end with (None = success / no records found).
    force_code: ClassVar[int | None] = None
    resend_old: ClassVar[bool] = False
    racp_writes: ClassVar[list[bytes]] = []
    time_writes: ClassVar[list[tuple[int, bytes]]] = []
    instances: ClassVar[list[FakeMeter]] = []

    def __init__(
        self,
        device: BLEDevice,
        disconnected_callback: Callable[[Any], None] | None = None,
        **kwargs: Any,
    ) -> None:
        self.device = device
        self._on_disconnect = disconnected_callback
        self.is_connected = False
        self.callbacks: dict[int, Callable[[Any, bytearray], None]] = {}
        self.services = Services(
            {
                0x2A18: ["notify"],
                0x2A34: ["notify"],
                0x2A52: ["write", "indicate"],
                0x2A2B: ["read", "write", "notify"],
            }
        )
        FakeMeter.instances.append(self)

    async def connect(self, **kwargs: Any) -> None:
        self.is_connected = True

    async def read_gatt_char(self, char_specifier: str) -> bytearray:
        raise KeyError(f"characteristic {char_specifier} not found")

    async def start_notify(
        self, char_specifier: str, callback: Callable[[Any, bytearray], None]
    ) -> None:
        uuid16 = uuid16_of(char_specifier)
        if uuid16 not in (0x2A18, 0x2A34, 0x2A52):
            raise KeyError(f"characteristic {char_specifier} not found")
        assert uuid16 is not None
        self.callbacks[uuid16] = callback

    async def write_gatt_char(
        self, char_specifier: str, data: bytes, response: bool | None = None
    ) -> None:
        uuid16 = uuid16_of(char_specifier)
        if uuid16 != 0x2A52:
            assert uuid16 is not None
            FakeMeter.time_writes.append((uuid16, bytes(data)))
            return
        FakeMeter.racp_writes.append(bytes(data))
        if data[0] != racp.OP_REPORT_RECORDS:
            return
        first = 0 if data[1] == racp.OPERATOR_ALL else int.from_bytes(data[3:5], "little")
        chosen = sorted(s for s in self.records if s >= first)
        if self.resend_old and first > 0:
            chosen = [first - 1, *chosen]  # a device re-sending an old record
        out: list[tuple[int, bytes]] = []
        if self.force_code is None:
            for seq in chosen:
                measurement, context = self.records[seq]
                out.append((0x2A18, measurement))
                if context is not None:
                    out.append((0x2A34, context))
            code = 1 if chosen else 6
        else:
            code = self.force_code
        out.append((0x2A52, racp.encode_response_code(racp.OP_REPORT_RECORDS, code)))
        loop = asyncio.get_running_loop()
        for index, (target, payload) in enumerate(out):
            loop.call_later(0.005 * (index + 1), self.callbacks[target], target, bytearray(payload))

    async def disconnect(self) -> None:
        if self.is_connected and self._on_disconnect is not None:
            self.is_connected = False
            self._on_disconnect(self)


def reset(records: dict[int, tuple[bytes, bytes | None]]) -> None:
    FakeMeter.records = dict(records)
    FakeMeter.force_code = None
    FakeMeter.resend_old = False
    FakeMeter.racp_writes = []
    FakeMeter.time_writes = []
    FakeMeter.instances = []


THREE = {
    1: (record(1, 95, context=True), glucose_context.encode(1, meal=1, tester_health=(1, 15))),
    2: (record(2, 140, context=False), None),
    3: (record(3, 110, context=True), glucose_context.encode(3, meal=2)),
}


def make_source(state: Path, **kwargs: Any) -> BleSource:
    meter = BLEDevice(METER_ADDRESS, "Meter", None)

    async def discover(timeout: float) -> list[tuple[BLEDevice, list[str]]]:
        return [(meter, [])]

    return BleSource(
        DeviceRegistry.from_bindings([METER]),
        scan_interval_s=0.05,
        discover=discover,
        connect=retry_connect(FakeMeter, max_attempts=1),
        clock=lambda: NOW,
        racp_state_path=state,
        racp_timeout_s=2.0,
        **kwargs,
    )


def one_connection(source: BleSource) -> list[Reading]:
    """Run the source until one download finished; take its readings; disconnect; stop."""

    async def scenario() -> list[Reading]:
        runner = asyncio.create_task(source.run())
        deadline = time.monotonic() + 5
        while "home-meter" not in source.last_download and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        readings = source()
        source.close()
        await runner
        source()  # the agent's next turn: readings are in the outbox, counters persist
        return readings

    source.last_download.clear()
    return asyncio.run(scenario())


def test_first_connect_downloads_all_then_only_new_ones(tmp_path: Path) -> None:
    state = tmp_path / "ble_racp.json"
    reset(THREE)
    readings = one_connection(make_source(state))
    assert FakeMeter.racp_writes == [racp.report_all()]
    assert [r.value for r in readings] == [
        round(v / 100_000 * glucose.MMOL_PER_L_PER_KG_PER_L, 6) for v in (95, 140, 110)
    ]
    assert all(STORED_RECORD in r.quality for r in readings)
    # Device wall clock in Europe/Berlin: 08:30 local = 07:30 UTC.
    assert readings[0].time == datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
    assert (
        RacpStateStore(state).last_key("home-meter", address=METER_ADDRESS, characteristic=0x2A18)
        == 3
    )

    # Reconnect (a new process reading the persisted counter): only record 4 is new.
    reset({**THREE, 4: (record(4, 180, context=False), None)})
    FakeMeter.resend_old = True  # and the device re-sends record 3: dropped, counter safe
    source = make_source(state)
    readings = one_connection(source)
    assert FakeMeter.racp_writes == [racp.report_from_sequence(4)]
    assert [r.time.hour for r in readings] == [10]  # record 4 only (base 07:30 + 4 h, UTC+1)
    result = source.last_download["home-meter"]
    assert (result.response.status, result.dropped_old, result.last_key) == ("success", 1, 4)


def test_no_records_found_keeps_the_counter(tmp_path: Path) -> None:
    state = tmp_path / "ble_racp.json"
    reset(THREE)
    one_connection(make_source(state))
    source = make_source(state)
    readings = one_connection(source)
    assert readings == []
    result = source.last_download["home-meter"]
    assert (result.response.status, result.response.response_code) == ("no_records", 6)
    assert result.last_key == 3
    assert (
        RacpStateStore(state).last_key("home-meter", address=METER_ADDRESS, characteristic=0x2A18)
        == 3
    )


def test_error_response_is_typed_and_does_not_advance(tmp_path: Path) -> None:
    state = tmp_path / "ble_racp.json"
    reset(THREE)
    FakeMeter.force_code = 4  # operator not supported
    source = make_source(state)
    assert one_connection(source) == []
    result = source.last_download["home-meter"]
    assert result.response.status == "error"
    assert result.response.reason == "operator_not_supported"
    assert result.last_key is None
    assert not state.exists()


def test_contexts_are_paired_by_sequence_number(tmp_path: Path) -> None:
    reset(THREE)
    readings = one_connection(make_source(tmp_path / "s.json"))
    by_hour = {r.time.hour: r.quality for r in readings}
    assert "meal:preprandial" in by_hour[7] and "tester:self" in by_hour[7]
    assert not any(q.startswith("meal:") for q in by_hour[8])  # record 2 has no context
    assert "meal:postprandial" in by_hour[9]


def test_device_time_is_written_on_connect(tmp_path: Path) -> None:
    reset(THREE)
    one_connection(make_source(tmp_path / "s.json"))
    # 08:00 UTC = 09:00 in Europe/Berlin (the device's zone), a Wednesday, external reference.
    expected = current_time_value(datetime(2026, 11, 25, 9, 0))
    assert FakeMeter.time_writes == [(0x2A2B, expected)]
    assert expected[7:] == bytes((3, 0, 0x02))
    reset(THREE)
    one_connection(make_source(tmp_path / "s2.json", set_time=False))
    assert FakeMeter.time_writes == []


def test_pure_download_counter_rules() -> None:
    ctx = DecodeContext()
    download = RacpDownload(0x2A18, 5)
    assert download.request() == racp.report_from_sequence(6)
    for seq in (4, 6, 7, 7):  # 4: re-sent old record; 7 twice: device repeat
        download.on_measurement(glucose.decode(record(seq, 100, context=False), ctx))
    assert not download.on_response(racp.encode_number_response(3))  # not the end
    assert download.on_response(racp.encode_response_code(racp.OP_REPORT_RECORDS, 1))
    result = download.finish()
    assert [r.key for r in result.records] == [6, 7]
    assert (result.last_key, result.dropped_old, result.repeated) == (7, 1, 1)
    # Timeout: records delivered, counter unchanged.
    stalled = RacpDownload(0x2A18, 5)
    stalled.on_measurement(glucose.decode(record(6, 100, context=False), ctx))
    assert stalled.finish().last_key == 5
    malformed = parse_response(b"\x06\x01")
    assert malformed is not None and malformed.status == "error"
