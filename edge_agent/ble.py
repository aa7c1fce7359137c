"""BLE GATT source: home medical devices (cuffs, oximeters, scales...) via bleak on BlueZ.

Why this shape (STYLE.md, bleak / bleak-retry-connector / habluetooth): the radio work is a
thin adapter and everything that decides something is pure and table-driven:

- :data:`SERVICES` lists the Bluetooth SIG services a gateway looks for (Assigned Numbers 3.4
  "GATT Services": Heart Rate 0x180D, Blood Pressure 0x1810, Health Thermometer 0x1809,
  Glucose 0x1808, Continuous Glucose Monitoring 0x181F, Pulse Oximeter 0x1822, Weight Scale
  0x181D) with the measurement characteristics to subscribe to and the feature
  characteristics the decoders need (Weight Scale Feature 0x2A9E, CGM Feature 0x2AA8, CGM
  Session Start Time 0x2AAA).
- :func:`readings_from_notification` turns one notification into readings bound to a subject
  (decode with :func:`firmware_bridge.gatt.decode_characteristic`, then the device registry
  decides whose reading it is by the measurement's user id). Pure: ``now`` is an argument.
- :class:`BleSource` is the shell: an asyncio loop in its own thread scans for the services,
  connects with ``bleak_retry_connector.establish_connection`` (retries and BlueZ quirks are
  that library's job, not ours), reads features and battery, subscribes, and hands readings
  to the agent through a thread-safe queue (the agent's source callable drains it).

Tests replace ``discover`` and the client class (the bleak API boundary) with fakes that replay
real characteristic payloads. RACP record download after reconnect is not implemented yet
(docs/edge.md, "BLE").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from edge_agent.registry import DeviceBinding, DeviceRegistry
from firmware_bridge.errors import DecodeError
from firmware_bridge.gatt import decode_characteristic
from firmware_bridge.measurement import place_rr_intervals, to_reading
from vitals import DeviceStatus, Reading

log = logging.getLogger("vitalstream.edge.ble")

#: Bluetooth Base UUID (Core Spec Vol 3 Part B 2.5.1): 16-bit UUIDs are xxxx in this template.
BASE_UUID: Final = "0000{:04x}-0000-1000-8000-00805f9b34fb"
_BASE_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"

#: Battery Service 0x180F / Battery Level 0x2A19 (BAS 1.0): percent, read after connecting.
BATTERY_LEVEL: Final = 0x2A19
#: CGM Session Start Time (CGMS 1.0.1 3.5): the epoch of the CGM records' time offsets.
CGM_SESSION_START: Final = 0x2AAA


def uuid128(uuid16: int) -> str:
    """The 128-bit UUID string bleak uses for an assigned 16-bit UUID."""
    return BASE_UUID.format(uuid16)


def uuid16_of(uuid: str) -> int | None:
    """The 16-bit assigned number of a Base-UUID string, or None for a vendor UUID."""
    text = uuid.lower()
    if len(text) == 36 and text.endswith(_BASE_SUFFIX) and text.startswith("0000"):
        return int(text[4:8], 16)
    return None


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One standard service: what to subscribe to and what to read first."""

    name: str
    measurements: tuple[int, ...]
    """Characteristics delivered by notification or indication (bleak's start_notify does both)."""
    features: tuple[int, ...] = ()
    """Characteristics read once per connection and passed to the decoder as ``feature``."""


#: Service UUID16 -> spec (Bluetooth SIG Assigned Numbers; each service's spec in the comment).
SERVICES: Final[Mapping[int, ServiceSpec]] = {
    0x180D: ServiceSpec("heart_rate", (0x2A37,)),  # HRS 1.0: HR Measurement, notify
    0x1810: ServiceSpec("blood_pressure", (0x2A35,)),  # BLS 1.1: BP Measurement, indicate
    0x1809: ServiceSpec("health_thermometer", (0x2A1C,)),  # HTS 1.0: Temperature, indicate
    # GLS 1.0: Glucose Measurement + Context, notify; stored records need RACP (not yet).
    0x1808: ServiceSpec("glucose", (0x2A18, 0x2A34)),
    # CGMS 1.0.1: CGM Measurement, notify; Feature (E2E-CRC) and Session Start Time read first.
    0x181F: ServiceSpec("cgm", (0x2AA7,), (0x2AA8, CGM_SESSION_START)),
    0x1822: ServiceSpec("pulse_oximeter", (0x2A5E, 0x2A5F)),  # PLXS 1.0: spot-check, continuous
    0x181D: ServiceSpec("weight_scale", (0x2A9D,), (0x2A9E,)),  # WSS 1.0: Measurement + Feature
}

#: Feature characteristic each measurement's decoder takes as ``feature``.
FEATURE_FOR: Final[Mapping[int, int]] = {0x2A9D: 0x2A9E, 0x2AA7: 0x2AA8}


def service_uuids() -> list[str]:
    """The scan filter: every service of :data:`SERVICES` as a 128-bit UUID."""
    return [uuid128(service) for service in SERVICES]


# -- pure core -----------------------------------------------------------------------------------


def cgm_session_start(data: bytes) -> datetime | None:
    """CGM Session Start Time (CGMS 1.0.1 3.5) -> aware UTC datetime, or None if unknown.

    Layout: Date Time (7 bytes, device local) + Time Zone (sint8, 15-minute steps from UTC,
    -128 unknown) + DST Offset (uint8: 0, 2 = +0.5 h, 4 = +1 h, 8 = +2 h, 255 unknown).
    """
    if len(data) < 9:
        return None
    year = int.from_bytes(data[0:2], "little")
    month, day, hours, minutes, seconds = data[2:7]
    zone = int.from_bytes(data[7:8], "little", signed=True)
    dst_minutes = {0: 0, 2: 30, 4: 60, 8: 120}.get(data[8])
    if not (year and month and day) or zone == -128 or dst_minutes is None:
        return None
    try:
        local = datetime(year, month, day, hours, minutes, seconds, tzinfo=UTC)
    except ValueError:
        return None
    return local - timedelta(minutes=zone * 15 + dst_minutes)


@dataclass(frozen=True, slots=True)
class NotificationOutcome:
    """Readings from one notification, or why there are none."""

    readings: tuple[Reading, ...] = ()
    skipped: str = ""


def readings_from_notification(
    binding: DeviceBinding,
    uuid16: int,
    data: bytes,
    *,
    now: datetime,
    features: Mapping[int, bytes] | None = None,
    device_tz: tzinfo | None = None,
    session_start: datetime | None = None,
) -> NotificationOutcome:
    """Decode one characteristic value from a registered device into readings (pure).

    A shared device's measurement goes to the subject of its user id (BLS/WSS/BCS User ID);
    an unknown or unlisted user is skipped with a reason, never guessed onto a patient.
    """
    feature_uuid = FEATURE_FOR.get(uuid16)
    feature = (features or {}).get(feature_uuid) if feature_uuid is not None else None
    try:
        result = decode_characteristic(
            uuid16, data, feature=feature, device_tz=device_tz, session_start=session_start
        )
    except DecodeError as error:
        return NotificationOutcome(skipped=f"{error.kind}: {error.detail}")
    if not result.measurements:
        return NotificationOutcome(skipped="no measurement in this characteristic value")
    user = result.fields.get("user_id")
    subject = binding.subject_for(user if isinstance(user, int) else None)
    if subject is None:
        return NotificationOutcome(skipped=f"user id {user} is not bound to a subject")
    readings = tuple(
        to_reading(m, subject=subject, device=binding.device, received_at=now, source="ble")
        for m in place_rr_intervals(result.measurements, now)
    )
    return NotificationOutcome(readings)


# -- the bleak boundary --------------------------------------------------------------------------


class BleDeviceLike(Protocol):
    """What we use of ``bleak.backends.device.BLEDevice``."""

    @property
    def address(self) -> str: ...

    @property
    def name(self) -> str | None: ...


class ClientLike(Protocol):
    """What we use of ``bleak.BleakClient`` (the fake in the tests implements this)."""

    @property
    def is_connected(self) -> bool: ...

    async def read_gatt_char(self, char_specifier: str) -> bytearray: ...

    async def start_notify(
        self, char_specifier: str, callback: Callable[[Any, bytearray], None]
    ) -> None: ...

    async def disconnect(self) -> None: ...


#: ``discover(timeout) -> [(device, advertised service UUIDs)]``.
Discover = Callable[[float], Awaitable[Sequence[tuple[BleDeviceLike, Sequence[str]]]]]
#: ``connect(device, on_disconnect) -> connected client``.
Connect = Callable[[BleDeviceLike, Callable[[], None]], Awaitable[ClientLike]]


def bleak_discover(adapter: str | None) -> Discover:
    """Scan with ``BleakScanner`` filtered on :data:`SERVICES` (BlueZ passive filters)."""

    async def discover(timeout: float) -> list[tuple[BleDeviceLike, Sequence[str]]]:
        from bleak import BleakScanner  # noqa: PLC0415 - only on a gateway with a radio

        kwargs: dict[str, Any] = {"service_uuids": service_uuids()}
        if adapter:
            kwargs["bluez"] = {"adapter": adapter}
        found = await BleakScanner.discover(timeout, return_adv=True, **kwargs)
        return [(device, list(adv.service_uuids)) for device, adv in found.values()]

    return discover


def retry_connect(client_class: type[Any] | None = None, *, max_attempts: int = 4) -> Connect:
    """Connect through ``bleak_retry_connector.establish_connection`` (backoff, BlueZ cache)."""

    async def connect(device: BleDeviceLike, on_disconnect: Callable[[], None]) -> ClientLike:
        from bleak_retry_connector import (  # noqa: PLC0415
            BleakClientWithServiceCache,
            establish_connection,
        )

        client: ClientLike = await establish_connection(
            client_class or BleakClientWithServiceCache,
            device,  # type: ignore[arg-type]
            device.name or device.address,
            disconnected_callback=lambda _client: on_disconnect(),
            max_attempts=max_attempts,
        )
        return client

    return connect


# -- the shell -----------------------------------------------------------------------------------


@dataclass
class BleDeviceState:
    """Per-device facts for the gateway status (last seen, battery)."""

    connected: bool = False
    last_reading_at: datetime | None = None
    battery_pct: float | None = None
    skipped: int = 0


@dataclass
class _Connection:
    binding: DeviceBinding
    client: ClientLike
    features: dict[int, bytes] = field(default_factory=dict)
    session_start: datetime | None = None


class BleSource:
    """Scans, connects, subscribes; an EdgeAgent source (call it to take new readings)."""

    def __init__(
        self,
        registry: DeviceRegistry,
        *,
        adapter: str | None = None,
        scan_interval_s: float = 30.0,
        scan_duration_s: float = 10.0,
        discover: Discover | None = None,
        connect: Connect | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.registry = registry
        self.scan_interval_s = scan_interval_s
        self.scan_duration_s = scan_duration_s
        self._discover = discover or bleak_discover(adapter)
        self._connect = connect or retry_connect()
        self._clock = clock
        self._readings: queue.SimpleQueue[Reading] = queue.SimpleQueue()
        self.devices: dict[str, BleDeviceState] = {
            b.device: BleDeviceState() for b in registry.devices
        }
        self._connections: dict[str, _Connection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()

    # -- agent side ----------------------------------------------------------------------------
    def __call__(self) -> list[Reading]:
        """Readings received since the last call."""
        out: list[Reading] = []
        while True:
            try:
                out.append(self._readings.get_nowait())
            except queue.Empty:
                return out

    def device_status(self) -> tuple[DeviceStatus, ...]:
        """Last reading time and battery of each registered device (for the retained status)."""
        return tuple(
            DeviceStatus(
                device=device, last_reading_at=s.last_reading_at, battery_pct=s.battery_pct
            )
            for device, s in self.devices.items()
        )

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Run the scan/connect loop in a background thread with its own asyncio loop."""
        self._thread = threading.Thread(target=self._run_thread, name="ble-source", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def close(self) -> None:
        """Stop scanning and disconnect every device."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(15)

    def _run_thread(self) -> None:
        asyncio.run(self.run())

    async def run(self) -> None:
        """Scan every ``scan_interval_s`` and connect to registered devices not yet connected."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        tasks: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping.is_set():
                try:
                    found = await self._discover(self.scan_duration_s)
                except Exception as exc:  # adapter off, bluetoothd restarting
                    log.warning("BLE scan failed: %s", exc)
                    found = []
                for device, _services in found:
                    binding = self.registry.find(device.address, device.name)
                    if binding is None or binding.device in self._connections:
                        continue
                    task = asyncio.create_task(self._serve(binding, device))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.scan_interval_s)
        finally:
            for connection in list(self._connections.values()):
                try:
                    await connection.client.disconnect()
                except Exception as exc:  # already gone
                    log.debug("disconnect %s: %s", connection.binding.device, exc)
            for task in tasks:
                task.cancel()

    async def _serve(self, binding: DeviceBinding, device: BleDeviceLike) -> None:
        disconnected = asyncio.Event()
        loop = asyncio.get_running_loop()
        state = self.devices[binding.device]

        def on_disconnect() -> None:  # called from bleak's callback context
            loop.call_soon_threadsafe(disconnected.set)

        try:
            client = await self._connect(device, on_disconnect)
        except Exception as exc:  # bleak-retry-connector gave up; next scan
            log.warning("BLE %s: cannot connect: %s", binding.device, exc)
            return
        connection = _Connection(binding, client)
        self._connections[binding.device] = connection
        state.connected = True
        log.info("BLE %s connected", binding.device)
        try:
            await self._prepare(connection)
            await disconnected.wait()
        except Exception as exc:  # a GATT error ends this connection only
            log.warning("BLE %s: %s", binding.device, exc)
        finally:
            state.connected = False
            self._connections.pop(binding.device, None)
            log.info("BLE %s disconnected", binding.device)

    async def _prepare(self, connection: _Connection) -> None:
        client = connection.client
        wanted_features = {f for spec in SERVICES.values() for f in spec.features}
        for uuid16 in (*sorted(wanted_features), BATTERY_LEVEL):
            try:
                value = bytes(await client.read_gatt_char(uuid128(uuid16)))
            except Exception:  # noqa: S112 - the device lacks this characteristic
                continue
            if uuid16 == BATTERY_LEVEL and value:
                self.devices[connection.binding.device].battery_pct = float(min(value[0], 100))
            elif uuid16 == CGM_SESSION_START:
                connection.session_start = cgm_session_start(value)
            else:
                connection.features[uuid16] = value
        subscribed = 0
        for spec in SERVICES.values():
            for uuid16 in spec.measurements:
                try:
                    await client.start_notify(uuid128(uuid16), self._handler(connection, uuid16))
                except Exception:  # noqa: S112 - not offered by this device
                    continue
                subscribed += 1
        log.info("BLE %s: %d measurement characteristic(s)", connection.binding.device, subscribed)

    def _handler(self, connection: _Connection, uuid16: int) -> Callable[[Any, bytearray], None]:
        binding = connection.binding
        zone = ZoneInfo(binding.timezone) if binding.timezone else None

        def on_value(_sender: Any, data: bytearray) -> None:
            outcome = readings_from_notification(
                binding,
                uuid16,
                bytes(data),
                now=self._clock(),
                features=connection.features,
                device_tz=zone,
                session_start=connection.session_start,
            )
            state = self.devices[binding.device]
            if outcome.skipped:
                state.skipped += 1
                log.warning("BLE %s 0x%04X: %s", binding.device, uuid16, outcome.skipped)
            for reading in outcome.readings:
                self._readings.put(reading)
                state.last_reading_at = reading.time

        return on_value
