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

After subscribing, :class:`BleSource` sets the device clock (Current Time 0x2A2B or Date Time
0x2A08 when writable; ``set_time``) and downloads stored records through the Record Access
Control Point 0x2A52 (:mod:`edge_agent.racp_download`: glucose meters, CGMs): the readings carry
the quality flag ``stored_record`` and the last downloaded record key per device is persisted
in ``racp_state_path`` once the agent has taken the readings (docs/edge.md, "RACP").

Tests replace ``discover`` and the client class (the bleak API boundary) with fakes that replay
real characteristic payloads.
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
from pathlib import Path
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from edge_agent.racp_download import (
    CGM_MEASUREMENT,
    GLUCOSE_CONTEXT,
    GLUCOSE_MEASUREMENT,
    RACP,
    STORED_RECORD,
    DownloadResult,
    RacpDownload,
    RacpState,
    RacpStateStore,
    context_quality,
)
from edge_agent.registry import DeviceBinding, DeviceRegistry
from firmware_bridge.errors import DecodeError
from firmware_bridge.gatt import decode_characteristic
from firmware_bridge.gatt.date_time import encode_date_time
from firmware_bridge.gatt.racp import abort as racp_abort
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
#: Current Time (CTS 1.1 3.1, Exact Time 256 + Adjust Reason) and Date Time (GSS): the clocks a
#: gateway sets, in this order of preference, when the device offers them writable.
CURRENT_TIME: Final = 0x2A2B
DATE_TIME: Final = 0x2A08
#: CTS Adjust Reason bit 1: "External Reference Time Update" (the gateway's clock).
ADJUST_EXTERNAL_REFERENCE: Final = 0x02


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
    # GLS 1.0: Glucose Measurement + Context, notify; stored records via RACP 0x2A52.
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


def current_time_value(moment: datetime, adjust_reason: int = ADJUST_EXTERNAL_REFERENCE) -> bytes:
    """Current Time 0x2A2B (CTS 1.1 3.1): Date Time (wall clock of ``moment``, as it is) ·
    Day of Week (1 = Monday .. 7 = Sunday) · Fractions256 · Adjust Reason."""
    fractions = moment.microsecond * 256 // 1_000_000
    return encode_date_time(moment) + bytes((moment.isoweekday(), fractions, adjust_reason))


def stored_readings(
    binding: DeviceBinding, result: DownloadResult, *, now: datetime
) -> tuple[list[Reading], list[str]]:
    """Readings of downloaded RACP records (flagged ``stored_record``, glucose context as
    ``meal:``/``tester:``/``health:`` flags) and the reasons of records that gave none."""
    readings: list[Reading] = []
    skipped: list[str] = []
    for record in result.records:
        user = record.fields.get("user_id")
        subject = binding.subject_for(user if isinstance(user, int) else None)
        if subject is None:
            skipped.append(f"record {record.key}: user id {user} is not bound to a subject")
            continue
        if not record.measurements:
            skipped.append(f"record {record.key}: no measurement")
            continue
        extra = (STORED_RECORD, *context_quality(record.context))
        for measurement in record.measurements:
            reading = to_reading(
                measurement, subject=subject, device=binding.device, received_at=now, source="ble"
            )
            readings.append(reading.model_copy(update={"quality": (*reading.quality, *extra)}))
    return readings, skipped


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

    async def write_gatt_char(
        self, char_specifier: str, data: bytes, response: bool | None = None
    ) -> None: ...

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
    address: str = ""
    features: dict[int, bytes] = field(default_factory=dict)
    session_start: datetime | None = None
    subscribed: set[int] = field(default_factory=set)
    download: RacpDownload | None = None
    download_done: asyncio.Event | None = None


@dataclass(frozen=True, slots=True)
class _Commit:
    """Queue marker after a download's readings: persist its counter once they are taken."""

    device: str
    state: RacpState


def characteristic_properties(client: Any, uuid16: int) -> frozenset[str] | None:
    """The GATT properties bleak reports for a characteristic ("read", "write", "indicate"...),
    or None when the device does not expose it (or the client has no service table)."""
    try:
        characteristic = client.services.get_characteristic(uuid128(uuid16))
    except Exception:  # no service discovery on this client
        return None
    if characteristic is None:
        return None
    return frozenset(str(p) for p in characteristic.properties)


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
        racp_state_path: Path | None = None,
        racp_timeout_s: float = 60.0,
        set_time: bool = True,
        local_zone: tzinfo | None = None,
    ) -> None:
        self.registry = registry
        self.scan_interval_s = scan_interval_s
        self.scan_duration_s = scan_duration_s
        self._discover = discover or bleak_discover(adapter)
        self._connect = connect or retry_connect()
        self._clock = clock
        self._readings: queue.SimpleQueue[Reading | _Commit] = queue.SimpleQueue()
        #: Persisted RACP progress; None path = in memory only (re-downloads after a restart).
        self.racp_state = RacpStateStore(racp_state_path)
        self.racp_timeout_s = racp_timeout_s
        self.set_time = set_time
        self._local_zone = local_zone
        # Counters whose readings the agent took on its previous call (see __call__).
        self._handed: list[_Commit] = []
        # Latest progress per device in this process (committed or waiting for the agent).
        self._racp_latest = RacpStateStore(None)
        #: RACP outcome of each device's last download (for logs/status and tests).
        self.last_download: dict[str, DownloadResult] = {}
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
        """Readings received since the last call.

        The agent puts what one call returns into its outbox before it calls again, so the
        RACP counters of readings handed out on the previous call are persisted now: a crash in
        between re-downloads (harmless: unique keys) instead of losing stored records.
        """
        for commit in self._handed:
            self.racp_state.commit(commit.device, commit.state)
        self._handed = []
        out: list[Reading] = []
        while True:
            try:
                item = self._readings.get_nowait()
            except queue.Empty:
                return out
            if isinstance(item, _Commit):
                self._handed.append(item)
            else:
                out.append(item)

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
        connection = _Connection(binding, client, address=device.address)
        self._connections[binding.device] = connection
        state.connected = True
        log.info("BLE %s connected", binding.device)
        try:
            await self._prepare(connection)
            await self._download(connection, disconnected)
            await disconnected.wait()
        except Exception as exc:  # a GATT error ends this connection only
            log.warning("BLE %s: %s", binding.device, exc)
        finally:
            state.connected = False
            self._connections.pop(binding.device, None)
            log.info("BLE %s disconnected", binding.device)

    async def _prepare(self, connection: _Connection) -> None:
        client = connection.client
        if self.set_time:
            await self._set_time(connection)
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
                connection.subscribed.add(uuid16)
        log.info("BLE %s: %d measurement characteristic(s)", connection.binding.device, subscribed)

    def _device_zone(self, binding: DeviceBinding) -> tzinfo:
        """The device clock's zone: the binding's, else the gateway's local zone."""
        if binding.timezone:
            return ZoneInfo(binding.timezone)
        return self._local_zone or datetime.now().astimezone().tzinfo or UTC

    async def _set_time(self, connection: _Connection) -> None:
        """Write the gateway's clock (in the device's zone) to Current Time or Date Time."""
        client = connection.client
        device = connection.binding.device
        for uuid16 in (CURRENT_TIME, DATE_TIME):
            properties = characteristic_properties(client, uuid16)
            if properties is None or not properties & {"write", "write-without-response"}:
                continue
            moment = self._clock().astimezone(self._device_zone(connection.binding))
            value = (
                current_time_value(moment) if uuid16 == CURRENT_TIME else (encode_date_time(moment))
            )
            try:
                await client.write_gatt_char(uuid128(uuid16), value, response="write" in properties)
            except Exception as exc:  # refused (e.g. needs bonding): the device keeps its clock
                log.warning("BLE %s: setting time via 0x%04X failed: %s", device, uuid16, exc)
                continue
            log.info("BLE %s: device time set to %s (0x%04X)", device, moment.isoformat(), uuid16)
            return

    async def _download(self, connection: _Connection, disconnected: asyncio.Event) -> None:
        """Fetch the records stored since the last download (RACP), if the device has any."""
        record_uuid = next(
            (u for u in (GLUCOSE_MEASUREMENT, CGM_MEASUREMENT) if u in connection.subscribed), None
        )
        if record_uuid is None:
            return
        client = connection.client
        binding = connection.binding
        done = asyncio.Event()
        download: RacpDownload | None = None

        def on_racp(_sender: Any, data: bytearray) -> None:
            if download is not None and download.on_response(bytes(data)):
                done.set()

        try:
            await client.start_notify(uuid128(RACP), on_racp)
        except Exception:  # no RACP on this device
            return
        session = connection.session_start if record_uuid == CGM_MEASUREMENT else None
        # This process's latest progress first (it may still wait for the agent to take the
        # readings), else what is on disk.
        store = self._racp_latest if self._racp_latest.has(binding.device) else self.racp_state
        last_key = store.last_key(
            binding.device,
            address=connection.address,
            characteristic=record_uuid,
            session_start=session,
        )
        download = RacpDownload(record_uuid, last_key)
        connection.download = download
        request = download.request()
        log.info(
            "BLE %s: RACP report stored records from key %s (%s)",
            binding.device,
            download.first_key,
            request.hex(),
        )
        try:
            await client.write_gatt_char(uuid128(RACP), request, response=True)
            waiters = [
                asyncio.ensure_future(done.wait()),
                asyncio.ensure_future(disconnected.wait()),
            ]
            try:
                await asyncio.wait(
                    waiters, timeout=self.racp_timeout_s, return_when="FIRST_COMPLETED"
                )
            finally:
                for waiter in waiters:
                    waiter.cancel()
        finally:
            connection.download = None
        reason = (
            "disconnected before the RACP response"
            if disconnected.is_set()
            else (f"no RACP response within {self.racp_timeout_s:g} s")
        )
        result = download.finish(reason)
        self.last_download[binding.device] = result
        readings, skipped = stored_readings(binding, result, now=self._clock())
        state = self.devices[binding.device]
        for why in skipped:
            state.skipped += 1
            log.warning("BLE %s RACP: %s", binding.device, why)
        for reading in readings:
            self._readings.put(reading)
            if state.last_reading_at is None or reading.time > state.last_reading_at:
                state.last_reading_at = reading.time
        log_level = logging.WARNING if result.response.status == "error" else logging.INFO
        log.log(
            log_level,
            "BLE %s RACP %s (%s): %d record(s), %d reading(s), last key %s -> %s; "
            "%d re-sent old, %d repeated, %d orphan context(s)",
            binding.device,
            result.response.status,
            result.response.reason,
            len(result.records),
            len(readings),
            last_key,
            result.last_key,
            result.dropped_old,
            result.repeated,
            result.orphan_contexts,
        )
        if result.last_key is not None and result.last_key != last_key:
            progress = RacpState(
                address=connection.address,
                characteristic=record_uuid,
                last_key=result.last_key,
                session_start=None if session is None else session.isoformat(),
            )
            self._racp_latest.commit(binding.device, progress)
            self._readings.put(_Commit(binding.device, progress))
        if not done.is_set() and not disconnected.is_set():
            with contextlib.suppress(Exception):  # best effort: stop a runaway transfer
                await client.write_gatt_char(uuid128(RACP), racp_abort(), response=True)

    def _handler(self, connection: _Connection, uuid16: int) -> Callable[[Any, bytearray], None]:
        binding = connection.binding
        zone = ZoneInfo(binding.timezone) if binding.timezone else None

        def on_value(_sender: Any, data: bytearray) -> None:
            download = connection.download
            if download is not None and uuid16 in (download.characteristic, GLUCOSE_CONTEXT):
                self._to_download(connection, download, uuid16, bytes(data), zone)
                return
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

    def _to_download(
        self,
        connection: _Connection,
        download: RacpDownload,
        uuid16: int,
        data: bytes,
        zone: tzinfo | None,
    ) -> None:
        feature_uuid = FEATURE_FOR.get(uuid16)
        feature = connection.features.get(feature_uuid) if feature_uuid is not None else None
        try:
            result = decode_characteristic(
                uuid16,
                data,
                feature=feature,
                device_tz=zone,
                session_start=connection.session_start,
            )
        except DecodeError as error:
            self.devices[connection.binding.device].skipped += 1
            log.warning(
                "BLE %s 0x%04X stored record: %s: %s",
                connection.binding.device,
                uuid16,
                error.kind,
                error.detail,
            )
            return
        if uuid16 == GLUCOSE_CONTEXT:
            download.on_context(result)
        else:
            download.on_measurement(result)
