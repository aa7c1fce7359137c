"""The edge agent's configuration file (TOML, validated by pydantic).

Why a file of its own rather than ``VITALSTREAM_*`` settings: a gateway's sources are a list of
tables (a simulator, a replay, an HL7 listener with its patient map, BLE devices) that flat
environment variables cannot express, and an installer ships one file per gateway. The file is
validated as a whole before anything starts, so a typo fails at start-up with the field's path,
never half-way through a night. Relative paths in it are relative to the file's directory.

Example (docs/examples/edge-home.toml)::

    gateway = "home-0001"
    broker_url = "mqtt://127.0.0.1:1883"
    outbox = "outbox.sqlite"

    [[sources]]
    kind = "ble"
    registry = "devices.toml"

See docs/edge.md for every key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal, Protocol, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alert_rules import pack_names
from edge_agent.alarms import LocalAlarmSettings
from edge_agent.ambulance import AmbulanceTracker
from edge_agent.link import LinkSealing, LinkTls
from edge_agent.overflow import DEFAULT_MAX_ROWS
from edge_agent.registry import DeviceBinding, Identifier
from edge_agent.simulator import HOME_CONDITIONS
from vitals import (
    DEFAULT_PREFIX,
    Reading,
    Severity,
    VitalsError,
    WaveformSnippet,
    parse_broker_url,
)
from vitals.sealed import SealedKeyError, SealKeyStore

SimCondition = Literal["hypertension", "diabetes", "copd", "heart_failure", "elderly", "ambulance"]


class ConfigError(VitalsError):
    """An edge configuration file that cannot be read or is invalid."""

    kind = "bad_config"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_zone(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like Asia/Shanghai)"
        ) from None
    return name


class SimSourceConfig(_Model):
    """Synthetic patients (``edge_agent.simulator``), one per listed condition."""

    kind: Literal["sim"]
    conditions: tuple[SimCondition, ...] = HOME_CONDITIONS
    speed: float = Field(default=1.0, gt=0)
    """Simulated seconds per wall second (1 = real time)."""
    hours: float = Field(default=24.0, gt=0)
    """Length of the simulated window; the source is exhausted after it."""
    seed: int = 0
    subject_prefix: Identifier = "sim"
    incident: Identifier | None = None
    """Ambulance mode: the incident id put on the ambulance patient's readings."""
    cadence_s: float = Field(default=15.0, gt=0, le=3600)
    """Ambulance patient: seconds between monitor readings (ambulance mode: e.g. 5)."""


class ReplaySourceConfig(_Model):
    """A real recording (WFDB record or long-format CSV) replayed as if measured now."""

    kind: Literal["replay"]
    file: Path
    """A ``.csv`` file, or a WFDB record (``.hea`` file or its path without extension)."""
    speed: float = Field(default=1.0, gt=0)
    subject: Identifier | None = None
    device: Identifier | None = None
    loop: bool = False
    emit_not_measured: bool = True
    waveform: bool = False
    """The record is an ECG (e.g. MIT-BIH): replay ECG snippets for the waveform lane."""
    snippet_s: float = Field(default=10.0, gt=0, le=60)
    """Seconds per ECG snippet."""
    snippet_every_s: float = Field(default=60.0, gt=0)
    """A snippet every this many recorded seconds (= snippet_s: continuous, ambulance mode)."""
    max_seconds: float | None = Field(default=None, gt=0)
    """Replay only the first seconds of the record (waveform records are long)."""
    incident: Identifier | None = None

    @model_validator(mode="after")
    def _snippets(self) -> Self:
        if self.snippet_every_s < self.snippet_s:
            raise ValueError("snippet_every_s must be at least snippet_s")
        return self


class Hl7Binding(_Model):
    """Binds HL7 messages to a subject: by monitor (MSH-3/MSH-4 id) and/or patient (PID-3).

    When both are set, both must match. ``device`` defaults to ``hl7-<monitor id>``.
    """

    subject: Identifier
    monitor: str | None = None
    pid: str | None = None
    device: Identifier | None = None

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        if self.monitor is None and self.pid is None:
            raise ValueError(f"binding of {self.subject}: set monitor, pid or both")
        return self


class Hl7SourceConfig(_Model):
    """An MLLP/HL7 v2 listener that bedside or ambulance monitors connect to."""

    kind: Literal["hl7"]
    host: str = "0.0.0.0"  # noqa: S104 - monitors on the ward/ambulance LAN must reach it
    port: int = Field(default=2575, ge=0, le=65535)
    """2575 is the IANA-registered port for HL7 over MLLP."""
    patients: tuple[Hl7Binding, ...] = ()
    default_subject: Identifier | None = None
    """Subject for messages no binding matches (an ambulance's one patient); else ACK AE."""
    timezone: str | None = None
    """The monitors' local zone, for times sent without an offset."""
    incident: Identifier | None = None
    ack_timeout_s: float = Field(default=10.0, gt=0)

    _zone = field_validator("timezone")(_check_zone)


class BleSourceConfig(_Model):
    """BLE GATT devices discovered by their standard service UUIDs (bleak, BlueZ)."""

    kind: Literal["ble"]
    registry: Path | None = None
    """A device registry TOML file (``[[devices]]``); merged with ``devices`` below."""
    devices: tuple[DeviceBinding, ...] = ()
    adapter: str | None = None
    """BlueZ adapter (``hci0``); default: the system's default adapter."""
    scan_interval_s: float = Field(default=30.0, gt=0)
    scan_duration_s: float = Field(default=10.0, gt=0)
    set_time: bool = True
    """Write the gateway's time into devices that expose Current Time / Date Time."""


class LocalAlarmsConfig(_Model):
    """``[local_alarms]``: the rules engine on the gateway (docs/edge.md, "Local alarms")."""

    enabled: bool = True
    packs: tuple[str, ...] = ("core",)
    """Rule packs (alert_rules) run locally; the down-link's thresholds are added to them."""
    min_severity: Severity = "high"
    notify: Literal["always", "offline"] = "always"
    """Console/hook/command on every alarm, or only while the uplink is down."""
    command: tuple[str, ...] | None = None
    """A program run per alarm (e.g. a buzzer script); the alarm is in its environment."""

    @field_validator("packs")
    @classmethod
    def _known_packs(cls, packs: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(packs) - set(pack_names()))
        if unknown:
            raise ValueError(f"unknown rule pack(s) {unknown}; known: {list(pack_names())}")
        return packs


class DestinationConfig(_Model):
    """The hospital the ambulance drives to (WGS 84 degrees)."""

    name: str = Field(min_length=1, max_length=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class AmbulanceConfig(_Model):
    """``[ambulance]``: position (NMEA 0183) and ETA on the status (docs/edge.md)."""

    destination: DestinationConfig | None = None
    nmea_file: Path | None = None
    """A log of NMEA sentences ($GPRMC/$GPGGA), replayed at ``nmea_speed``."""
    route: tuple[tuple[float, float], ...] = ()
    """Simulated drive: waypoints [lat, lon] driven at ``route_speed_kmh`` (SYNTHETIC)."""
    route_speed_kmh: float = Field(default=50.0, gt=0, le=250)
    nmea_speed: float = Field(default=1.0, gt=0)
    default_speed_kmh: float = Field(default=40.0, gt=0, le=250)
    """ETA speed when the ambulance stands or reports no speed (a crude regional average)."""
    status_interval_s: float = Field(default=2.0, gt=0, le=3600)
    """Status (with position and ETA) every this many seconds: higher cadence than at home."""
    serial_port: str | None = None
    """A serial GPS (/dev/ttyUSB0) needs pyserial, which this build does not include."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [self.nmea_file is not None, bool(self.route), self.serial_port is not None]
        if sum(given) != 1:
            raise ValueError("set exactly one of nmea_file, route, serial_port")
        if self.route and len(self.route) < 2:
            raise ValueError("a route needs at least two waypoints")
        return self


SourceConfig = Annotated[
    SimSourceConfig | ReplaySourceConfig | Hl7SourceConfig | BleSourceConfig,
    Field(discriminator="kind"),
]


class EdgeConfig(_Model):
    """One gateway: its id, its uplink, its outbox file and its sources."""

    gateway: Identifier
    broker_url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: Identifier = DEFAULT_PREFIX
    outbox: Path = Path("outbox.sqlite")
    sources: tuple[SourceConfig, ...] = ()
    drain_on_stop_s: float = Field(default=5.0, ge=0)
    """On SIGTERM, how long to keep sending what is buffered before exiting (outbox kept)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    tls_ca_file: Path | None = None
    """mqtts:// only: the CA that signed the broker's certificate (default: system store)."""
    tls_cert_file: Path | None = None
    """mqtts:// only: this gateway's client certificate (CN = gateway id), PEM."""
    tls_key_file: Path | None = None
    """mqtts:// only: its private key, PEM (keep it mode 0600)."""
    local_alarms: LocalAlarmsConfig = LocalAlarmsConfig()
    max_outbox_rows: int = Field(default=DEFAULT_MAX_ROWS, ge=100)
    """Outbox bound (rows); overflow drops backfill, then waveform, then vitals; never alarms."""
    backfill_after_s: float = Field(default=3600.0, gt=0)
    """A reading older than this when accepted goes into the backfill lane."""
    ambulance: AmbulanceConfig | None = None
    seal_payloads: bool = False
    """SM4 payload layer: seal every publish with this gateway's newest key (docs/security.md)."""
    seal_key_dir: Path = Path("sm4-keys")
    """This gateway's SM4 keys (``<gateway>.k<N>.sm4``, mode 0600; ``pki sm4-key --out``)."""

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, url: str) -> str:
        try:
            parse_broker_url(url)
        except VitalsError as exc:
            raise ValueError(exc.detail) from None
        return url

    @model_validator(mode="after")
    def _tls(self) -> Self:
        files = (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        if any(files) and not parse_broker_url(self.broker_url).tls:
            raise ValueError("tls_* files need an mqtts:// broker_url")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("set both tls_cert_file and tls_key_file, or neither")
        return self

    def link_tls(self) -> LinkTls | None:
        """The TLS material for the gateway link (None for a plain mqtt:// broker)."""
        if not parse_broker_url(self.broker_url).tls:
            return None
        return LinkTls(self.tls_ca_file, self.tls_cert_file, self.tls_key_file)

    def link_sealing(self) -> LinkSealing | None:
        """The SM4 payload layer of the gateway link (None unless ``seal_payloads``).

        Checks that the key directory holds a usable key of this gateway, so a gateway told to
        seal fails at start (ConfigError) instead of in its link thread.
        """
        if not self.seal_payloads:
            return None
        try:
            SealKeyStore(self.seal_key_dir).current(self.gateway)
        except SealedKeyError as error:
            raise ConfigError(f"seal_payloads: {error.detail}") from None
        return LinkSealing(self.seal_key_dir)

    def alarm_settings(self) -> LocalAlarmSettings | None:
        """Local alarm settings for the agent (None when disabled)."""
        alarms = self.local_alarms
        if not alarms.enabled:
            return None
        return LocalAlarmSettings(
            packs=alarms.packs,
            min_severity=alarms.min_severity,
            notify=alarms.notify,
            command=alarms.command,
        )


def _resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


def parse_config(text: str, base_dir: Path) -> EdgeConfig:
    """Validate a TOML text; relative paths are made relative to ``base_dir`` (pure)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    try:
        config = EdgeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(exc)) from None
    sources: list[SimSourceConfig | ReplaySourceConfig | Hl7SourceConfig | BleSourceConfig] = []
    for given in config.sources:
        source = given
        if isinstance(given, ReplaySourceConfig):
            source = given.model_copy(update={"file": _resolve(base_dir, given.file)})
        elif isinstance(given, BleSourceConfig) and given.registry is not None:
            source = given.model_copy(update={"registry": _resolve(base_dir, given.registry)})
        sources.append(source)
    ambulance = config.ambulance
    if ambulance is not None and ambulance.nmea_file is not None:
        ambulance = ambulance.model_copy(
            update={"nmea_file": _resolve(base_dir, ambulance.nmea_file)}
        )
    tls_files = {
        name: _resolve(base_dir, path)
        for name in ("tls_ca_file", "tls_cert_file", "tls_key_file")
        if (path := getattr(config, name)) is not None
    }
    return config.model_copy(
        update={
            "outbox": _resolve(base_dir, config.outbox),
            "seal_key_dir": _resolve(base_dir, config.seal_key_dir),
            "sources": tuple(sources),
            "ambulance": ambulance,
            **tls_files,
        }
    )


def load_config(path: Path) -> EdgeConfig:
    """Read and validate an edge configuration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        return parse_config(text, path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.detail}") from None


# -- from configuration to running sources ------------------------------------------------------


class RunningSource(Protocol):
    """An EdgeAgent source (callable) that may hold a server or a radio to release."""

    def __call__(self) -> Sequence[Reading | WaveformSnippet]:
        """Readings (and ECG snippets) that became available since the last call."""
        ...

    def close(self) -> None:
        """Stop listening / scanning (called before the agent stops taking readings)."""
        ...


def open_source(
    source: SourceConfig, gateway: str, now: datetime, state_dir: Path | None = None
) -> RunningSource:
    """Start one configured source (servers listen, radios scan) for ``gateway``.

    ``state_dir`` (beside the outbox) keeps what a source must remember across restarts
    (the BLE stored-record counters). Imports are local so that a gateway pays only for the
    sources it uses (bleak, wfdb).
    """
    if isinstance(source, SimSourceConfig):
        return _open_sim(source, gateway, now)
    if isinstance(source, ReplaySourceConfig):
        from edge_agent.replay import (  # noqa: PLC0415
            ReplaySchedule,
            ReplaySource,
            WaveformSchedule,
            load_recording,
            load_wfdb_waveform,
        )

        if source.waveform:
            name = source.file.with_suffix("").name if source.file.suffix else source.file.name
            snippets = load_wfdb_waveform(
                source.file,
                snippet_s=source.snippet_s,
                every_s=source.snippet_every_s,
                max_seconds=source.max_seconds,
            )
            return ReplaySource(
                WaveformSchedule(
                    snippets,
                    now,
                    source.speed,
                    subject=source.subject or f"replay-{name}",
                    device=source.device or f"replay-{name}-ecg",
                    incident=source.incident,
                )
            )
        recorded = load_recording(
            source.file,
            subject=source.subject,
            device=source.device,
            emit_not_measured=source.emit_not_measured,
        )
        return ReplaySource(ReplaySchedule(recorded, now, source.speed, loop=source.loop))
    if isinstance(source, Hl7SourceConfig):
        from edge_agent.hl7_listener import Hl7Listener, PatientMap  # noqa: PLC0415

        listener = Hl7Listener(
            PatientMap(source.patients, source.default_subject),
            host=source.host,
            port=source.port,
            default_tz=ZoneInfo(source.timezone) if source.timezone else None,
            incident=source.incident,
            ack_timeout_s=source.ack_timeout_s,
        )
        listener.start()
        return listener
    from edge_agent.ble import BleSource  # noqa: PLC0415
    from edge_agent.registry import DeviceRegistry, load_registry  # noqa: PLC0415

    bindings = list(source.devices)
    if source.registry is not None:
        bindings.extend(load_registry(source.registry).devices)
    ble = BleSource(
        DeviceRegistry.from_bindings(bindings),
        adapter=source.adapter,
        scan_interval_s=source.scan_interval_s,
        scan_duration_s=source.scan_duration_s,
        racp_state_path=state_dir / "ble_racp.json" if state_dir is not None else None,
        set_time=source.set_time,
    )
    ble.start()
    return ble


def _open_sim(source: SimSourceConfig, gateway: str, now: datetime) -> RunningSource:
    from edge_agent.replay import ReplaySource  # noqa: PLC0415
    from edge_agent.simulator import (  # noqa: PLC0415
        SimPatient,
        TimeWarpSource,
        simulate_ambulance,
        simulate_home,
    )

    end = now + timedelta(hours=source.hours)
    readings: list[Reading] = []
    for index, condition in enumerate(source.conditions):
        # SimPatient derives device ids from its "gateway" field: one per patient keeps them
        # unique when several simulated patients share this gateway.
        patient = SimPatient(
            subject=f"{source.subject_prefix}-{gateway}-{index}",
            gateway=f"{gateway}-p{index}",
            condition=condition,
            incident=source.incident if condition == "ambulance" else None,
        )
        if condition == "ambulance":
            readings.extend(
                simulate_ambulance(
                    patient, now, end, seed=source.seed + index, cadence_s=source.cadence_s
                )
            )
        else:
            readings.extend(simulate_home(patient, now, end, seed=source.seed + index))
    return ReplaySource(TimeWarpSource(readings, now, source.speed))


def open_ambulance(config: AmbulanceConfig, now: datetime) -> AmbulanceTracker:
    """The position source and destination of ambulance mode, ready for the agent."""
    from edge_agent.ambulance import (  # noqa: PLC0415
        Destination,
        NmeaReplaySource,
        NmeaSchedule,
        read_nmea_file,
        simulate_route,
    )

    destination = (
        Destination(config.destination.name, config.destination.lat, config.destination.lon)
        if config.destination
        else None
    )
    if config.serial_port is not None:
        raise ConfigError(
            f"[ambulance] serial_port {config.serial_port}: a serial GPS needs pyserial, which "
            "this build does not include; log the receiver's NMEA to a file (nmea_file) instead",
            kind="unsupported",
        )
    if config.nmea_file is not None:
        lines = read_nmea_file(config.nmea_file)
        kind: Literal["replay", "sim"] = "replay"
    else:
        lines = simulate_route(config.route, config.route_speed_kmh, now)
        kind = "sim"
    return AmbulanceTracker(
        NmeaReplaySource(NmeaSchedule(lines, config.nmea_speed)),
        destination,
        default_speed_kmh=config.default_speed_kmh,
        position_source=kind,
    )
